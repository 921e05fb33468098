// What an alert looks like on the wire: the webhook's JSON body and the e-mail's RFC 5322
// message. Pure functions of the outbox row (and, for e-mail, the repository's settings and the
// clock), so tests compare them byte for byte. docs/alerts.md shows both.
//
//   std::string body = boost::json::serialize(alerts::webhook_payload(alert));
//   std::string mail = alerts::email_message(alert, config.repos.at(alert.repo).alerts, std::time(nullptr));
#pragma once

#include "server/alerts/outbox.hpp"
#include "server/config.hpp"

#include <boost/json/object.hpp>

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

namespace ttfb::alerts {

// {"text", "id", "kind", "repo", "workflow", "change", "title", "url",
//  "recipient": {"name", "email"}, "fields": {...}}. "text" first and Slack-compatible, so a
// Slack or Mattermost incoming webhook shows the message as it is; it quotes what change
// authors wrote (titles, commit subjects, names), so it is escaped as Slack asks (slack_escape):
// a subject saying "<!channel>" or "<https://evil|docs>" shows as text, never pings or links.
// The structured fields carry the words unescaped.
boost::json::object webhook_payload(const OutboxAlert& alert);

// &, < and > as &amp;, &lt;, &gt; — the three characters Slack's message formatting treats as
// control characters (Mattermost renders the escaped text the same).
std::string slack_escape(std::string_view text);

// The envelope recipients of an e-mail alert: the row's address, then the repository's
// email_cc (without repeating an address).
std::vector<std::string> email_recipients(const OutboxAlert& alert, const RepoAlerts& repo);

// The full message, CRLF line endings: From, To, Cc (when email_cc is set), Subject (the title),
// Date, Message-ID (<ttfb-lab-alert-ID@DOMAIN-OF-FROM>, the same for every attempt so a mail
// system can drop duplicates), MIME-Version, Content-Type text/plain; charset=utf-8,
// Content-Transfer-Encoding 8bit; then the body: text, a blank line, url. Non-ASCII in the
// subject or the recipient's name is RFC 2047 encoded; line breaks in header values become spaces.
std::string email_message(const OutboxAlert& alert, const RepoAlerts& repo, std::time_t now);

// A header value as RFC 2047 encoded words ("=?UTF-8?B?...?=", folded) when it holds anything but
// printable ASCII; unchanged otherwise. Never splits a UTF-8 character across words.
std::string encode_header_value(std::string_view value);

// "Tue, 02 Jan 2024 03:04:05 +0000" (RFC 5322 date-time, UTC).
std::string rfc5322_date(std::time_t t);

}  // namespace ttfb::alerts
