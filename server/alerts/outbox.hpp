// The alert outbox: alerts are written to PostgreSQL (table `alerts`, schema/004_alerts.sql) in
// the transaction that reaches the verdict they report, one row per channel and destination,
// and delivered later by the AlertDispatcher (dispatcher.hpp). docs/alerts.md has the whole story.
//
//   db.transact([&](pqxx::work& tx) {
//     ... store the verdict ...
//     alerts::enqueue_alert(tx, config, alerts::AlertEvent{.kind = "presubmit_regression", .repo = "example",
//                                                          .change = "experiment:12", .workflow = "example-train", ...});
//   });
//   auto page = alerts::list_alerts(db, {.status = "failed"});     // GET /api/v1/alerts
//
// Everything of the alerts part lives in namespace ttfb::alerts. Row statuses:
//   pending -> sending -> delivered | pending (retry later) | failed (gave up, or refused for good)
//   sending -> unknown (the server died mid-delivery: never resent, delivery is at most once)
// The functions below the line are the dispatcher's steps, each its own committed transaction.
#pragma once

#include "server/config.hpp"
#include "server/store/db.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb::alerts {

struct AlertEvent {
  std::string kind;            // "presubmit_regression" | "culprit" | "release_blocked"
  std::string repo;            // repository name (selects [repos.X.alerts])
  std::string change;          // dedup key part: e.g. "experiment:12", "commit:<sha>", "release:v1.1"
  std::string workflow;        // dedup key part; may be ""
  std::string recipient_name;  // may be ""
  std::string recipient_email; // may be "" (then no e-mail channel for this alert)
  std::string title;           // one line: "example-train: time to first batch +38% (eager-import ...)"
  std::string text;            // the Slack-compatible text: what regressed, by how much, which phase, the link
  std::string url;             // dashboard link
  boost::json::object fields;  // structured fields copied into the webhook JSON
};

// Inserts one outbox row per configured channel of event.repo ([repos.X.alerts]): a webhook row
// when webhook_url is set, an e-mail row when smtp_url is set and recipient_email is a plain
// address (anything else is skipped with a warning, so a bad author address never fails the
// caller's verdict). Idempotent: ON CONFLICT (kind, change, workflow, channel, target) DO NOTHING.
// Returns how many new rows it inserted; 0 when [alerts] enabled = false or the repository has
// no channel. Call inside the caller's transaction so the alert commits with the verdict.
// Throws ApiError(invalid_argument) for an unknown kind or an empty change or title (a bug in
// the caller).
int enqueue_alert(pqxx::work& tx, const ServerConfig& config, const AlertEvent& event);

// Filters of GET /api/v1/alerts; "" means any. limit: 1..1000.
struct AlertQuery {
  std::string status;
  std::string repo;
  std::string kind;
  int limit = 100;
};

// {"alerts": [{id, kind, repo, change, workflow, channel, target, recipient: {name, email}, title,
// url, status, attempts, max_attempts, last_error, next_attempt_at, created_at, delivered_at}],
// "count": n}, newest first. last_error is null when there is none; next_attempt_at is null
// unless the alert is pending. Throws ApiError(invalid_argument) for an unknown status or kind
// or a limit outside 1..1000.
boost::json::object list_alerts(Database& db, const AlertQuery& q);

// The webhook URL as rows and the API show it: scheme, host and port; the path and query, which
// often carry a secret token, become "/..." ("https://hooks.example.com/..."). Userinfo is dropped.
std::string redact_url(const std::string& url);

// ------------------------------------------------------------------------------------------------
// The dispatcher's steps.

// One outbox row as the dispatcher delivers it.
struct OutboxAlert {
  long id = 0;
  std::string kind, repo, change, workflow;
  std::string channel;  // "webhook" | "email"
  std::string target;   // the recipient's address (email) or the redacted URL (webhook)
  std::string recipient_name, recipient_email;
  std::string title, text, url;
  boost::json::object fields;
  int attempts = 0;  // including the attempt in flight once claimed
  int max_attempts = 1;
};

// What a row left in 'sending' too long says, in last_error.
inline constexpr const char* kStaleSendingError =
    "server stopped during delivery; not resent to keep delivery at most once";
// How long past its channel timeout a row may stay 'sending' before it is called 'unknown'.
inline constexpr int kStaleGraceSeconds = 30;

struct StaleAlert {
  long id = 0;
  std::string channel;
  std::string repo;
};
// Marks rows that have been 'sending' for longer than their timeout + kStaleGraceSeconds as
// 'unknown' (last_error kStaleSendingError) and returns them.
std::vector<StaleAlert> mark_stale_sending(Database& db);

// The channel timeout in force for a repository's channel (for the stale rule), from config;
// the defaults of RepoAlerts when the repository is no longer configured.
int channel_timeout_seconds(const ServerConfig& config, const std::string& repo, const std::string& channel);

// Claims the most overdue pending row (status 'pending', next_attempt_at <= now(), FOR UPDATE
// SKIP LOCKED, so several dispatchers never take the same row): sets 'sending', attempts + 1,
// claimed_at and timeout_seconds, and commits before returning it. nullopt: nothing is due.
std::optional<OutboxAlert> claim_due_alert(Database& db, const ServerConfig& config);

// Outcomes of an attempt. Each updates the row only while it is still 'sending' and returns
// whether it did (false: someone marked it 'unknown' meanwhile).
bool record_delivered(Database& db, long id);
bool record_retry(Database& db, long id, double delay_seconds, const std::string& error);  // back to 'pending'
bool record_failed(Database& db, long id, const std::string& error);

}  // namespace ttfb::alerts
