// The two delivery channels, over libcurl's easy API: an HTTP POST of the webhook JSON, and an
// e-mail through an SMTP server. Each call is one attempt, blocking up to its timeout, and says
// whether to try again. Call them from the dispatcher's thread, never from an I/O thread.
//
//   auto r = alerts::send_webhook(url, 10, alert.id, boost::json::serialize(alerts::webhook_payload(alert)));
//   if (r.outcome == alerts::Delivery::retry) ...
#pragma once

#include "server/config.hpp"

#include <string>
#include <vector>

namespace ttfb::alerts {

enum class Delivery {
  delivered,  // the receiver accepted it
  retry,      // not delivered this time (connection, timeout, 5xx, 429, any SMTP error): try later
  failed,     // refused for good (HTTP 4xx but 429, 3xx): a configuration problem, not retried
};
const char* to_string(Delivery d);

struct DeliveryResult {
  Delivery outcome = Delivery::retry;
  std::string error;  // "" when delivered; otherwise what went wrong, for last_error and the log
};

// How a webhook's HTTP status is judged: 2xx delivered; 429 and 5xx retry; anything else
// (redirects are not followed, 4xx means the URL or payload is wrong) failed.
Delivery classify_http_status(long status);

// POSTs body (JSON) to url with Content-Type: application/json, X-TTFB-Lab-Delivery: delivery_id,
// User-Agent: ttfb-lab; the whole request within timeout_seconds. Only http and https.
DeliveryResult send_webhook(const std::string& url, int timeout_seconds, long delivery_id, const std::string& body);

// Sends message (a complete RFC 5322 message, CRLF line ends) through repo.smtp_url, from
// repo.email_from to recipients, with SMTP AUTH when smtp_username is set. smtp:// upgrades to
// TLS with STARTTLS when the server offers it; smtps:// is TLS from the start. Any error: retry.
DeliveryResult send_email(const RepoAlerts& repo, const std::vector<std::string>& recipients, const std::string& message);

}  // namespace ttfb::alerts
