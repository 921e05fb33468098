// The alert dispatcher: a thread that delivers due outbox rows (outbox.hpp) through their
// channel (channels.hpp), one at a time, at most once each. Every server replica may run one;
// FOR UPDATE SKIP LOCKED keeps them from taking the same row.
//
//   alerts::AlertDispatcher dispatcher(config, db, metrics);
//   dispatcher.start();   // does nothing when [alerts] enabled = false
//   ...
//   dispatcher.stop();    // wakes the thread, lets the delivery in flight finish, joins
//
// Each pass: rows 'sending' for longer than their timeout + 30 s become 'unknown' (their server
// died mid-delivery; resending could deliver twice), then due rows are claimed (committed as
// 'sending'), sent, and recorded: delivered, pending again after a backoff, or failed. Database
// errors are logged and the pass is tried again after poll_ms: the database may restart, the
// server must not stop.
#pragma once

#include "server/alerts/channels.hpp"
#include "server/alerts/outbox.hpp"
#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/store/db.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace ttfb::alerts {

// Seconds to wait after the attempts-th failed attempt (attempts >= 1):
// backoff_initial_seconds * 2^(attempts - 1), capped at backoff_max_seconds.
double backoff_seconds(const AlertsConfig& config, int attempts);

class AlertDispatcher {
 public:
  AlertDispatcher(const ServerConfig& config, Database& db, Metrics& metrics);
  ~AlertDispatcher();
  AlertDispatcher(const AlertDispatcher&) = delete;
  AlertDispatcher& operator=(const AlertDispatcher&) = delete;

  void start();
  // Finishes the delivery in flight (bounded by its channel timeout), then returns. Idempotent.
  void stop();

  // One pass, on the caller's thread: marks stale 'sending' rows 'unknown', then claims and
  // delivers due rows until none is due (or stop() was called). Returns the attempts made.
  // Database errors propagate (as ApiError). The thread runs this every poll_ms; tests call it.
  int deliver_due();

 private:
  void loop();
  DeliveryResult send(const OutboxAlert& alert) const;
  void record(const OutboxAlert& alert, const DeliveryResult& result);
  bool stopping();

  const ServerConfig& config_;
  Database& db_;
  Metrics& metrics_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ttfb::alerts
