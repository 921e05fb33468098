// Child processes for short tool invocations (git, build steps): run argv, capture output with a
// bound, enforce a wall-clock timeout by killing the child's whole process group.
//
//   auto r = ttfb::run_process({"git", "rev-parse", "HEAD"}, {.cwd = "/repo"});
//   if (!r.ok()) throw std::runtime_error(r.output_tail());
//
// This is not the workload sandbox (worker/sandbox.hpp): no probe, no limits beyond time.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ttfb {

struct ProcessOptions {
  std::string cwd;                                   // empty: inherit
  std::optional<std::map<std::string, std::string>> env;  // nullopt: inherit; else exactly this
  std::string stdin_data;                            // written to the child's stdin, then closed
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  std::size_t max_output_bytes = 1 << 20;            // per stream; the rest is dropped (counted)
  // When this fd becomes readable (e.g. a stop pipe written by a signal handler or another
  // thread), the child is stopped as on a timeout and `cancelled` is set. -1: none.
  int cancel_fd = -1;
  // Between SIGTERM and SIGKILL to the process group, on timeout or cancel.
  std::chrono::milliseconds kill_grace{std::chrono::seconds(2)};
};

struct ProcessResult {
  int exit_code = -1;       // valid when !signaled
  int signal = 0;           // the signal that ended it, 0 if it exited
  bool timed_out = false;   // killed because the timeout passed
  bool cancelled = false;   // killed because cancel_fd became readable
  std::size_t dropped_bytes = 0;  // output beyond max_output_bytes (both streams)
  std::string out;          // stdout (bounded)
  std::string err;          // stderr (bounded)
  bool ok() const { return !timed_out && !cancelled && signal == 0 && exit_code == 0; }
  // The last `max` bytes of stderr (or stdout when stderr is empty), trimmed: for error messages.
  std::string output_tail(std::size_t max = 2000) const;
};

// Runs argv[0] (looked up in PATH) with argv. Never throws for the child's failure; throws
// std::system_error only when the process cannot be started at all (fork/pipe failure).
// An argv[0] that cannot be executed gives exit_code 127 and a message in `err`.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Building blocks shared with the workload sandbox (worker/sandbox.cpp), which forks on its own.

// The calling process's environment, e.g. to extend it: `auto env = current_environment();
// env["GIT_TERMINAL_PROMPT"] = "0";`.
std::map<std::string, std::string> current_environment();
// The paths execve should try, in order, for argv0 under the PATH-like `search_path` (what
// execvp does, but for a PATH other than the caller's, e.g. the child's scrubbed one). An argv0
// containing '/' is returned alone; an empty search_path means "/usr/bin:/bin".
std::vector<std::string> exec_candidates(const std::string& argv0, const std::string& search_path);
// Closes every file descriptor >= lowfd. Async-signal-safe: for a child between fork and exec.
void close_fds_from(int lowfd) noexcept;
// Closes fd when it is open and sets it to -1, so a second call does nothing.
void close_fd(int& fd) noexcept;
// A pidfd for pid (readable once it exits, for poll), or -1 with errno set where the kernel or
// libc lacks pidfd_open: callers then fall back to polling waitpid.
int pidfd_open(int pid) noexcept;

}  // namespace ttfb
