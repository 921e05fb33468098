#include "server/alerts/outbox.hpp"

#include "common/errors.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace ttfb::alerts {
namespace {
namespace json = boost::json;

constexpr std::array<const char*, 3> kKinds = {"presubmit_regression", "culprit", "release_blocked"};
constexpr std::array<const char*, 5> kStatuses = {"pending", "sending", "delivered", "failed", "unknown"};
constexpr int kMaxListLimit = 1000;

constexpr const char* kInsertAlert = R"sql(
INSERT INTO alerts (kind, repo, change, workflow, channel, target, recipient_name, recipient_email,
                    title, text, url, fields, max_attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13)
ON CONFLICT (kind, change, workflow, channel, target) DO NOTHING
RETURNING id)sql";

constexpr const char* kListAlertsJson = R"sql(
SELECT coalesce(json_agg(json_build_object(
  'id', a.id, 'kind', a.kind, 'repo', a.repo, 'change', a.change, 'workflow', a.workflow,
  'channel', a.channel, 'target', a.target,
  'recipient', json_build_object('name', a.recipient_name, 'email', a.recipient_email),
  'title', a.title, 'url', a.url, 'status', a.status, 'attempts', a.attempts, 'max_attempts', a.max_attempts,
  'last_error', nullif(a.last_error, ''),
  'next_attempt_at', CASE WHEN a.status = 'pending' THEN a.next_attempt_at END,
  'created_at', a.created_at, 'delivered_at', a.delivered_at) ORDER BY a.id DESC), '[]'::json)::text
FROM (SELECT * FROM alerts
      WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR repo = $2) AND ($3::text IS NULL OR kind = $3)
      ORDER BY id DESC LIMIT $4) a)sql";

constexpr const char* kMarkStaleSending = R"sql(
UPDATE alerts SET status = 'unknown', last_error = $1
WHERE status = 'sending' AND claimed_at < now() - (timeout_seconds + $2::integer) * interval '1 second'
RETURNING id, channel, repo)sql";

constexpr const char* kSelectDueAlert = R"sql(
SELECT id, kind, repo, change, workflow, channel, target, recipient_name, recipient_email,
       title, text, url, fields::text, attempts, max_attempts
FROM alerts WHERE status = 'pending' AND next_attempt_at <= now()
ORDER BY next_attempt_at, id LIMIT 1
FOR UPDATE SKIP LOCKED)sql";

constexpr const char* kClaimAlert = R"sql(
UPDATE alerts SET status = 'sending', attempts = attempts + 1, claimed_at = now(), timeout_seconds = $2
WHERE id = $1 RETURNING attempts)sql";

constexpr const char* kRecordDelivered = R"sql(
UPDATE alerts SET status = 'delivered', delivered_at = now(), last_error = ''
WHERE id = $1 AND status = 'sending')sql";

constexpr const char* kRecordRetry = R"sql(
UPDATE alerts SET status = 'pending', next_attempt_at = now() + $2::double precision * interval '1 second', last_error = $3
WHERE id = $1 AND status = 'sending')sql";

constexpr const char* kRecordFailed = R"sql(
UPDATE alerts SET status = 'failed', last_error = $2
WHERE id = $1 AND status = 'sending')sql";

template <std::size_t N>
bool one_of(const std::string& s, const std::array<const char*, N>& names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}

template <std::size_t N>
std::string joined(const std::array<const char*, N>& names) {
  std::string out;
  for (const char* n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::optional<std::string> filter(const std::string& s) {
  if (s.empty()) return std::nullopt;
  return s;
}

}  // namespace

std::string redact_url(const std::string& url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "...";
  std::size_t authority_begin = scheme_end + 3;
  std::size_t authority_end = url.find_first_of("/?#", authority_begin);
  std::string authority = url.substr(authority_begin, authority_end == std::string::npos ? std::string::npos
                                                                                         : authority_end - authority_begin);
  if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  std::string out = url.substr(0, authority_begin) + authority;
  bool has_rest = authority_end != std::string::npos && url.find_first_not_of('/', authority_end) != std::string::npos;
  return has_rest ? out + "/..." : out;
}

int enqueue_alert(pqxx::work& tx, const ServerConfig& config, const AlertEvent& event) {
  if (!one_of(event.kind, kKinds))
    throw ApiError(ErrorCode::invalid_argument, "unknown alert kind '" + event.kind + "'", "known: " + joined(kKinds));
  if (event.change.empty()) throw ApiError(ErrorCode::invalid_argument, "an alert needs a change (its dedup key)");
  if (event.title.empty()) throw ApiError(ErrorCode::invalid_argument, "an alert needs a title");
  if (!config.alerts.enabled) return 0;
  auto repo = config.repos.find(event.repo);
  if (repo == config.repos.end()) {
    spdlog::warn("alert {} {}: repository '{}' is not configured; nobody is told", event.kind, event.change, event.repo);
    return 0;
  }
  const RepoAlerts& channels = repo->second.alerts;
  std::vector<std::pair<std::string, std::string>> rows;  // channel, target
  if (!channels.webhook_url.empty()) rows.emplace_back("webhook", redact_url(channels.webhook_url));
  if (!channels.smtp_url.empty() && !event.recipient_email.empty()) {
    if (is_plain_email_address(event.recipient_email)) {
      rows.emplace_back("email", event.recipient_email);
    } else {
      spdlog::warn("alert {} {}: recipient address '{}' is not a plain address; no e-mail", event.kind, event.change,
                   event.recipient_email);
    }
  }
  const std::string fields = json::serialize(event.fields);
  int inserted = 0;
  for (const auto& [channel, target] : rows) {
    auto r = tx.exec_params(kInsertAlert, event.kind, event.repo, event.change, event.workflow, channel, target,
                            event.recipient_name, event.recipient_email, event.title, event.text, event.url, fields,
                            config.alerts.max_attempts);
    inserted += static_cast<int>(r.size());
  }
  return inserted;
}

json::object list_alerts(Database& db, const AlertQuery& q) {
  if (!q.status.empty() && !one_of(q.status, kStatuses))
    throw ApiError(ErrorCode::invalid_argument, "unknown alert status '" + q.status + "'", "known: " + joined(kStatuses));
  if (!q.kind.empty() && !one_of(q.kind, kKinds))
    throw ApiError(ErrorCode::invalid_argument, "unknown alert kind '" + q.kind + "'", "known: " + joined(kKinds));
  if (q.limit < 1 || q.limit > kMaxListLimit)
    throw ApiError(ErrorCode::invalid_argument, "limit must be an integer from 1 to " + std::to_string(kMaxListLimit));
  json::array alerts = db.transact([&](pqxx::work& tx) {
    auto text = tx.exec_params1(kListAlertsJson, filter(q.status), filter(q.repo), filter(q.kind), q.limit)[0].as<std::string>();
    return json::parse(text).as_array();
  });
  auto count = static_cast<std::int64_t>(alerts.size());
  return json::object{{"alerts", std::move(alerts)}, {"count", count}};
}

std::vector<StaleAlert> mark_stale_sending(Database& db) {
  return db.transact([&](pqxx::work& tx) {
    std::vector<StaleAlert> out;
    for (const auto& row : tx.exec_params(kMarkStaleSending, kStaleSendingError, kStaleGraceSeconds))
      out.push_back({row[0].as<long>(), row[1].as<std::string>(), row[2].as<std::string>()});
    return out;
  });
}

int channel_timeout_seconds(const ServerConfig& config, const std::string& repo, const std::string& channel) {
  RepoAlerts channels;
  if (auto it = config.repos.find(repo); it != config.repos.end()) channels = it->second.alerts;
  return channel == "email" ? channels.smtp_timeout_seconds : channels.webhook_timeout_seconds;
}

std::optional<OutboxAlert> claim_due_alert(Database& db, const ServerConfig& config) {
  return db.transact([&](pqxx::work& tx) -> std::optional<OutboxAlert> {
    auto r = tx.exec(kSelectDueAlert);
    if (r.empty()) return std::nullopt;
    const auto& row = r[0];
    OutboxAlert a;
    a.id = row[0].as<long>();
    a.kind = row[1].as<std::string>();
    a.repo = row[2].as<std::string>();
    a.change = row[3].as<std::string>();
    a.workflow = row[4].as<std::string>();
    a.channel = row[5].as<std::string>();
    a.target = row[6].as<std::string>();
    a.recipient_name = row[7].as<std::string>();
    a.recipient_email = row[8].as<std::string>();
    a.title = row[9].as<std::string>();
    a.text = row[10].as<std::string>();
    a.url = row[11].as<std::string>();
    json::value fields = json::parse(row[12].as<std::string>());
    if (fields.is_object()) a.fields = std::move(fields.as_object());
    a.max_attempts = row[14].as<int>();
    a.attempts = tx.exec_params1(kClaimAlert, a.id, channel_timeout_seconds(config, a.repo, a.channel))[0].as<int>();
    return a;
  });
}

bool record_delivered(Database& db, long id) {
  return db.transact([&](pqxx::work& tx) { return tx.exec_params(kRecordDelivered, id).affected_rows() == 1; });
}

bool record_retry(Database& db, long id, double delay_seconds, const std::string& error) {
  return db.transact(
      [&](pqxx::work& tx) { return tx.exec_params(kRecordRetry, id, delay_seconds, error).affected_rows() == 1; });
}

bool record_failed(Database& db, long id, const std::string& error) {
  return db.transact([&](pqxx::work& tx) { return tx.exec_params(kRecordFailed, id, error).affected_rows() == 1; });
}

}  // namespace ttfb::alerts
