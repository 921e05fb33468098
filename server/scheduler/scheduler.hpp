// The scheduler loop: requeues jobs whose lease expired, analyses workflows whose jobs are
// finished (next block, confirmation rerun, verdict, calibration), decides release gates and
// advances bisections, redoes stale calibrations at
// low priority, refreshes queue gauges. One server replica holds the role at a time, through a
// PostgreSQL advisory lock on a dedicated connection; the others wait and take over if it dies.
#pragma once

#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/repos.hpp"
#include "server/store/db.hpp"

#include <atomic>
#include <chrono>
#include <thread>

namespace ttfb {

class Scheduler {
 public:
  Scheduler(const ServerConfig& config, Database& db, Metrics& metrics, RepoMirrors& mirrors);
  ~Scheduler();
  void start();
  void stop();
  // One pass of the loop (requeue, analyse, gates, bisections, recalibrate, gauges). Returns how
  // many workflows, gates and bisections moved.
  int tick();

 private:
  void loop();
  const ServerConfig& config_;
  Database& db_;
  Metrics& metrics_;
  RepoMirrors& mirrors_;
  std::chrono::steady_clock::time_point next_staleness_check_{};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ttfb
