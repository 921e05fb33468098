#include "server/scheduler/scheduler.hpp"

#include "common/errors.hpp"
#include "server/scheduler/analysis.hpp"
#include "server/store/experiments.hpp"
#include "server/store/jobs.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

namespace ttfb {
namespace {
// Arbitrary but fixed: whoever holds this advisory lock runs the scheduler.
constexpr long kSchedulerLockKey = 0x74666273;  // "tfbs"
}  // namespace

Scheduler::Scheduler(const ServerConfig& config, Database& db, Metrics& metrics)
    : config_(config), db_(db), metrics_(metrics) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() { thread_ = std::thread([this] { loop(); }); }

void Scheduler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

int Scheduler::tick() {
  requeue_expired_jobs(db_);
  int analysed = 0;
  for (long id : experiments_ready_for_analysis(db_)) {
    auto outcome = analyse_experiment(db_, id);
    metrics_.count_verdict(outcome);
    ++analysed;
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
    for (auto waited = std::chrono::milliseconds(0); waited < tick_interval && !stop_; waited += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace ttfb
