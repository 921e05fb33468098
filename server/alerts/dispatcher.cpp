#include "server/alerts/dispatcher.hpp"

#include "common/errors.hpp"
#include "server/alerts/message.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

namespace ttfb::alerts {
namespace {

// An outcome that cannot be written (the database is away) is tried this often, this far apart:
// long enough to ride out a restart, well inside the 30 s after which the row would be called
// 'unknown' anyway.
constexpr int kRecordAttempts = 10;
constexpr auto kRecordRetryPause = std::chrono::milliseconds(500);

}  // namespace

double backoff_seconds(const AlertsConfig& config, int attempts) {
  int doublings = std::clamp(attempts - 1, 0, 62);  // 2^62 times anything positive is past any cap
  return std::min(config.backoff_max_seconds, config.backoff_initial_seconds * std::ldexp(1.0, doublings));
}

AlertDispatcher::AlertDispatcher(const ServerConfig& config, Database& db, Metrics& metrics)
    : config_(config), db_(db), metrics_(metrics) {}

AlertDispatcher::~AlertDispatcher() { stop(); }

void AlertDispatcher::start() {
  if (!config_.alerts.enabled) {
    spdlog::info("alerts are disabled ([alerts] enabled = false): no dispatcher");
    return;
  }
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void AlertDispatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AlertDispatcher::stopping() {
  std::lock_guard lock(mu_);
  return stop_;
}

void AlertDispatcher::loop() {
  bool database_away = false;  // log a database outage once, not every poll
  while (!stopping()) {
    try {
      deliver_due();
      if (database_away) spdlog::info("alerts: the database is back");
      database_away = false;
    } catch (const ApiError& e) {
      if (!database_away || e.code() != ErrorCode::unavailable)
        spdlog::warn("alerts: {} ({}); trying again in {} ms", e.what(), e.details(), config_.alerts.poll_ms);
      database_away = e.code() == ErrorCode::unavailable;
    } catch (const std::exception& e) {
      spdlog::warn("alerts: {}; trying again in {} ms", e.what(), config_.alerts.poll_ms);
    }
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, std::chrono::milliseconds(config_.alerts.poll_ms), [this] { return stop_; });
  }
}

int AlertDispatcher::deliver_due() {
  for (const auto& stale : mark_stale_sending(db_)) {
    spdlog::warn("alert {} ({} of {}): {}", stale.id, stale.channel, stale.repo, kStaleSendingError);
    metrics_.count_alert(stale.channel, "unknown");
  }
  int attempts = 0;
  while (!stopping()) {
    auto alert = claim_due_alert(db_, config_);
    if (!alert) break;
    ++attempts;
    DeliveryResult result;
    try {
      result = send(*alert);
    } catch (const std::exception& e) {
      result = {Delivery::retry, e.what()};
    }
    record(*alert, result);
  }
  return attempts;
}

DeliveryResult AlertDispatcher::send(const OutboxAlert& alert) const {
  auto repo = config_.repos.find(alert.repo);
  if (repo == config_.repos.end())
    return {Delivery::failed, "repository '" + alert.repo + "' is no longer configured"};
  const RepoAlerts& channels = repo->second.alerts;
  if (alert.channel == "webhook") {
    if (channels.webhook_url.empty())
      return {Delivery::failed, "repos." + alert.repo + ".alerts.webhook_url is no longer set"};
    return send_webhook(channels.webhook_url, channels.webhook_timeout_seconds, alert.id,
                        boost::json::serialize(webhook_payload(alert)));
  }
  if (alert.channel == "email") {
    if (channels.smtp_url.empty())
      return {Delivery::failed, "repos." + alert.repo + ".alerts.smtp_url is no longer set"};
    return send_email(channels, email_recipients(alert, channels), email_message(alert, channels, std::time(nullptr)));
  }
  return {Delivery::failed, "unknown channel '" + alert.channel + "'"};
}

void AlertDispatcher::record(const OutboxAlert& alert, const DeliveryResult& result) {
  Delivery outcome = result.outcome;
  std::string error = result.error;
  double delay = 0;
  if (outcome == Delivery::retry) {
    if (alert.attempts >= alert.max_attempts) {
      outcome = Delivery::failed;
      error = "gave up after " + std::to_string(alert.attempts) + " attempts; last: " + error;
    } else {
      delay = backoff_seconds(config_.alerts, alert.attempts);
    }
  }
  const std::string what = "alert " + std::to_string(alert.id) + " (" + alert.kind + " " + alert.change + " by " +
                           alert.channel + " to " + alert.target + ", attempt " + std::to_string(alert.attempts) +
                           " of " + std::to_string(alert.max_attempts) + ")";
  switch (outcome) {
    case Delivery::delivered: spdlog::info("{}: delivered", what); break;
    case Delivery::retry: spdlog::warn("{}: {}; next attempt in {:.1f} s", what, error, delay); break;
    case Delivery::failed: spdlog::error("{}: failed: {}", what, error); break;
  }
  metrics_.count_alert(alert.channel, to_string(outcome));
  for (int attempt = 1;; ++attempt) {
    try {
      bool updated = outcome == Delivery::delivered ? record_delivered(db_, alert.id)
                     : outcome == Delivery::retry   ? record_retry(db_, alert.id, delay, error)
                                                    : record_failed(db_, alert.id, error);
      if (!updated) spdlog::warn("{}: was no longer 'sending' when its outcome came", what);
      return;
    } catch (const std::exception& e) {
      if (attempt >= kRecordAttempts) {
        // The row stays 'sending' and becomes 'unknown' after its grace period: never resent.
        spdlog::error("{}: outcome '{}' could not be recorded ({}); the alert will be marked unknown", what,
                      to_string(outcome), e.what());
        return;
      }
      std::this_thread::sleep_for(kRecordRetryPause);
    }
  }
}

}  // namespace ttfb::alerts
