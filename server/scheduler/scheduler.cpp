#include "server/scheduler/scheduler.hpp"

#include "common/errors.hpp"
#include "server/scheduler/analysis.hpp"
#include "server/scheduler/bisections.hpp"
#include "server/scheduler/calibrate.hpp"
#include "server/scheduler/releases.hpp"
#include "server/store/calibrations.hpp"
#include "server/store/experiments.hpp"
#include "server/store/jobs.hpp"
#include "server/store/workflow_state.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace ttfb {
namespace {
// Arbitrary but fixed: whoever holds this advisory lock runs the scheduler.
constexpr long kSchedulerLockKey = 0x74666273;  // "tfbs"
}  // namespace

Scheduler::Scheduler(const ServerConfig& config, Database& db, Metrics& metrics, RepoMirrors& mirrors)
    : config_(config), db_(db), metrics_(metrics), mirrors_(mirrors) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() { thread_ = std::thread([this] { loop(); }); }

void Scheduler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

int Scheduler::tick() {
  requeue_expired_jobs(db_);
  int analysed = 0;
  for (const auto& [experiment, workflow] : workflows_ready(db_)) {
    if (auto verdict = analyse_workflow(db_, experiment, workflow, &config_)) metrics_.count_verdict(*verdict);
    ++analysed;
  }
  // Gates whose experiment just ended (a blocked one starts its bisections), then bisections
  // whose round of probes finished.
  analysed += advance_releases(config_, db_, mirrors_);
  analysed += advance_bisections(config_, db_, mirrors_);
  const auto now = std::chrono::steady_clock::now();
  if (config_.auto_recalibrate && now >= next_staleness_check_) {
    next_staleness_check_ = now + std::chrono::seconds(60);
    for (const auto& workflow : stale_calibrations(db_, config_.workflows)) {
      try {
        request_calibration(config_, db_, mirrors_,
                            CalibrationRequest{.workflow = workflow, .trigger = "stale", .requested_by = "scheduler", .priority = -10});
      } catch (const ApiError& e) {
        spdlog::warn("recalibrating {}: {}", workflow, e.what());
      }
    }
  }
  metrics_.set_queue_counts(queue_counts(db_, config_.worker_alive_seconds));
  return analysed;
}

void Scheduler::loop() {
  std::unique_ptr<pqxx::connection> lock_conn;
  bool leader = false;
  auto tick_interval = std::chrono::milliseconds(config_.scheduler_tick_ms);
  while (!stop_) {
    try {
      if (!lock_conn || !lock_conn->is_open()) {
        leader = false;
        lock_conn = std::make_unique<pqxx::connection>(config_.database_dsn);
      }
      if (!leader) {
        pqxx::nontransaction nt(*lock_conn);
        leader = nt.exec_params1("SELECT pg_try_advisory_lock($1)", kSchedulerLockKey)[0].as<bool>();
        if (leader) spdlog::info("this server now runs the scheduler");
      }
      if (leader) tick();
    } catch (const ApiError& e) {
      spdlog::warn("scheduler: {} ({})", e.what(), e.details());
      lock_conn.reset();  // a database restart drops the lock with the session: take it again
      leader = false;
    } catch (const std::exception& e) {
      spdlog::warn("scheduler: {}", e.what());
      lock_conn.reset();
      leader = false;
    }
    metrics_.set_scheduler_leader(leader);
    for (auto waited = std::chrono::milliseconds(0); waited < tick_interval && !stop_; waited += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace ttfb
