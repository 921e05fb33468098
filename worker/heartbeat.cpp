#include "worker/heartbeat.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace ttfb::worker {
namespace {
using namespace std::chrono_literals;
// After a failed heartbeat the next one comes sooner, still within the lease.
constexpr auto kRetryAfterFailure = 2s;
}  // namespace

std::chrono::milliseconds Heartbeat::interval_for(int lease_seconds) {
  // A quarter rather than the protocol's third: the request itself takes time.
  return std::max<std::chrono::milliseconds>(std::chrono::milliseconds(lease_seconds * 1000 / 4), 200ms);
}

Heartbeat::Heartbeat(ServerApi& api, std::int64_t job_id, int lease_seconds, int total, StopFlag& stop)
    : api_(api), job_id_(job_id), total_(total), stop_flag_(stop), interval_(interval_for(lease_seconds)) {
  thread_ = std::thread([this] { loop(); });
}

Heartbeat::~Heartbeat() { stop(); }

void Heartbeat::set_done(int done) {
  std::lock_guard lock(mutex_);
  done_ = done;
}

void Heartbeat::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Heartbeat::loop() {
  auto wait = interval_;
  while (true) {
    int done = 0;
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
      done = done_;
    }
    int lease_seconds = 0;
    const CallResult r = api_.heartbeat(job_id_, done, total_, lease_seconds);
    if (r.ok()) {
      if (lease_seconds > 0) interval_ = interval_for(lease_seconds);
      wait = interval_;
      continue;
    }
    if (r.status == CallStatus::lease_lost || r.http_status == 404 || r.http_status == 410) {
      spdlog::warn("job {}: lease lost ({}): stopping its work", job_id_, r.message);
      stop_flag_.raise(StopFlag::kLeaseLost);
      return;
    }
    spdlog::warn("job {}: heartbeat failed ({}); trying again", job_id_, r.message);
    wait = std::min<std::chrono::milliseconds>(interval_, kRetryAfterFailure);
  }
}

}  // namespace ttfb::worker
