// Why the current work must stop, visible both as flags and as a file descriptor that poll()
// loops (the sandbox, run_process via cancel_fd, the idle wait between claims) can watch.
// raise() is async-signal-safe: the SIGINT/SIGTERM handler calls it.
//
//   StopFlag stop;
//   // heartbeat thread, on 409:         stop.raise(StopFlag::kLeaseLost);
//   // signal handler:                   stop.raise(StopFlag::kShutdown);
//   // sandbox:                          poll({..., stop.fd()}) -> kill the run
//   // next job:                         stop.clear(StopFlag::kLeaseLost);
#pragma once

#include <atomic>

namespace ttfb::worker {

class StopFlag {
 public:
  using Reason = unsigned;
  static constexpr Reason kLeaseLost = 1;  // the server answered 409: the job is no longer ours
  static constexpr Reason kShutdown = 2;   // SIGINT/SIGTERM: stop the job, fail it, exit

  StopFlag();  // throws std::system_error when no pipe can be made
  ~StopFlag();
  StopFlag(const StopFlag&) = delete;
  StopFlag& operator=(const StopFlag&) = delete;

  void raise(Reason reason) noexcept;
  // Clears `reason`; the fd stays readable while another reason is raised.
  void clear(Reason reason) noexcept;

  bool raised() const noexcept { return reasons_.load() != 0; }
  bool lease_lost() const noexcept { return (reasons_.load() & kLeaseLost) != 0; }
  bool shutdown() const noexcept { return (reasons_.load() & kShutdown) != 0; }
  // Readable while any reason is raised.
  int fd() const noexcept { return read_fd_; }
  // Sleeps up to `ms` milliseconds, less when a reason is (or becomes) raised.
  void wait_for_ms(long long ms) const noexcept;

 private:
  std::atomic<Reason> reasons_{0};
  int read_fd_ = -1;
  int write_fd_ = -1;
};

}  // namespace ttfb::worker
