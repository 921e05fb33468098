// The scheduler loop: requeues jobs whose lease expired, analyses experiments whose jobs are
// finished, refreshes queue gauges. One server replica holds the role at a time, through a
// PostgreSQL advisory lock on a dedicated connection; the others wait and take over if it dies.
#pragma once

#include "server/config.hpp"
#include "server/metrics.hpp"
#include "server/store/db.hpp"

#include <atomic>
#include <thread>

namespace ttfb {

class Scheduler {
 public:
  Scheduler(const ServerConfig& config, Database& db, Metrics& metrics);
  ~Scheduler();
  void start();
  void stop();
  // One pass of the loop (requeue, analyse, gauges), for tests. Returns experiments analysed.
  int tick();

 private:
  void loop();
  const ServerConfig& config_;
  Database& db_;
  Metrics& metrics_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace ttfb
