// Keeps a job's lease alive from a thread of its own while the job's runs go on, as the protocol
// asks (at least every lease_seconds/3). When the server answers 409 (or 404: the job is gone)
// the lease is lost: it raises StopFlag::kLeaseLost, which stops the running workload at once.
//
//   Heartbeat hb(api, job.id, job.lease_seconds, total_runs, stop);
//   ... hb.set_done(n) after each run ...
//   hb.stop();   // also in the destructor
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "worker/server_api.hpp"
#include "worker/stop_flag.hpp"

namespace ttfb::worker {

class Heartbeat {
 public:
  Heartbeat(ServerApi& api, std::int64_t job_id, int lease_seconds, int total, StopFlag& stop);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void set_done(int done);
  void stop();

  // Interval for a lease: a quarter of it (the protocol asks for at least every third), so that
  // two heartbeats may be lost before it expires.
  static std::chrono::milliseconds interval_for(int lease_seconds);

 private:
  void loop();

  ServerApi& api_;
  std::int64_t job_id_;
  int total_;
  StopFlag& stop_flag_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  int done_ = 0;
  std::chrono::milliseconds interval_;
  std::thread thread_;
};

}  // namespace ttfb::worker
