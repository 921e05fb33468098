// The workload sandbox: runs one workload (or a build command) as a child in its own process
// group, with a scrubbed environment, resource limits and, when the worker is root, another user;
// timestamps the probe events as they arrive and measures TTFB from a CLOCK_MONOTONIC stamp
// taken just before fork/exec.
//
//   WorkloadSpec spec;
//   spec.argv = {"python3", "train.py", "--steps", "1"};
//   spec.cwd = worktree;
//   spec.probe = ProbeMode::fd;           // TTFB_PROBE_FD names a pipe's write end
//   spec.timeout = std::chrono::seconds(60);
//   RunResult r = run_workload(spec);
//   if (r.outcome == RunOutcome::first_batch) use(r.ttfb_ms, r.phases);
//
// What the child gets:
// - environment: exactly PATH=/usr/local/bin:/usr/bin:/bin, HOME and TMPDIR (a fresh per-run
//   directory, removed afterwards), LANG=C.UTF-8, TTFB_PROBE_FD (probe "fd"), then the
//   workflow's env on top. Nothing of the worker's own environment (its token in particular).
// - fds: stdin /dev/null; stdout and stderr captured (only a tail is kept, for error messages);
//   in probe "fd" mode the probe pipe as fd 3; every other fd closed. In probe "stdout" mode
//   stdout is a pseudo-terminal so that stdio and Python flush each line as it is printed
//   (through a pipe they would hold the first_batch line in a buffer until exit).
// - limits (setrlimit): RLIMIT_AS from memory_mb, RLIMIT_CPU, RLIMIT_NOFILE, RLIMIT_NPROC, and
//   RLIMIT_CORE = 0; PR_SET_NO_NEW_PRIVS; the parent-death signal SIGKILL.
// - user: setgroups/setgid/setuid to `run_as` when given (the worker must be root for that).
//
// The whole process group is stopped (SIGTERM, then SIGKILL after `kill_grace`) right after
// first_batch when stop_after_first_batch, at the timeout, and when cancel_fd becomes readable.
// A process that left the group (setsid) escapes that kill; the worker catches those with
// kill_adopted_processes() between runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "worker/probe.hpp"

namespace ttfb::worker {

// 0 means "not set": the worker's own limit is inherited.
struct ResourceLimits {
  std::uint64_t memory_mb = 0;
  std::uint64_t cpu_seconds = 0;
  std::uint64_t nofile = 0;
  std::uint64_t nproc = 0;
};

struct RunAsUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};
// Looks a user up in the passwd database. Throws std::runtime_error("unknown user 'x'").
RunAsUser lookup_user(const std::string& name);

enum class ProbeMode {
  fd,            // probe lines on the pipe named by TTFB_PROBE_FD
  stdout_regex,  // probe "stdout": the first stdout line matching first_batch_regex
  none,          // no probe: run to the end (build commands)
};

struct WorkloadSpec {
  std::vector<std::string> argv;
  std::string cwd;
  std::map<std::string, std::string> env;  // the workflow's env, on top of the scrubbed base
  ProbeMode probe = ProbeMode::fd;
  std::string first_batch_regex;
  bool stop_after_first_batch = true;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  ResourceLimits limits;
  std::optional<RunAsUser> run_as;
  std::string scratch_root;  // the per-run HOME/TMPDIR is made under it; empty: $TMPDIR or /tmp
  std::chrono::milliseconds kill_grace{std::chrono::seconds(1)};
  std::size_t tail_bytes = 16 * 1024;
  int cancel_fd = -1;  // readable -> stop the run (outcome cancelled)
};

enum class RunOutcome {
  first_batch,       // measured
  completed,         // ProbeMode::none: exited with status 0
  workload_failed,   // nonzero exit or killed by a signal, before first_batch
  workload_timeout,  // killed at the timeout before first_batch (or before the end, for none)
  no_first_batch,    // exited with status 0 without the probe event
  cancelled,         // cancel_fd became readable
};
std::string_view to_string(RunOutcome outcome);

struct RunResult {
  RunOutcome outcome = RunOutcome::workload_failed;
  double ttfb_ms = 0;               // first_batch - just before fork/exec
  std::vector<PhaseTiming> phases;  // probe "fd" only
  double wall_ms = 0;               // until the leader was reaped and the output pipes closed
  double cpu_ms = 0;                // user + system, from wait4's rusage
  long max_rss_kb = 0;
  int exit_status = -1;             // -1 when killed by a signal
  int signal = 0;
  bool stopped_after_first_batch = false;
  std::size_t ignored_probe_lines = 0;
  std::string output_tail;          // the end of stdout and stderr, interleaved as read
  std::string message;              // one sentence saying what happened, for users
};

// Runs the workload to its outcome. Never throws for the workload's failure; throws
// std::system_error when the child cannot be started (fork, pipe), std::regex_error for an
// invalid first_batch_regex, std::invalid_argument for an empty argv.
RunResult run_workload(const WorkloadSpec& spec);

// The environment the child gets (exposed for tests).
std::map<std::string, std::string> workload_environment(const WorkloadSpec& spec, const std::string& home,
                                                        const std::string& tmpdir, int probe_fd);

// Kills and reaps every child process of the caller, repeatedly, until there is none; returns how
// many were reaped. Meant for a worker that made itself a child subreaper
// (prctl(PR_SET_CHILD_SUBREAPER), as main does): a workload's process that escaped its group
// (setsid, double fork) is re-parented to the worker when its parent dies, so between runs —
// when the worker has no children of its own — every child is such a leftover. Also reaps
// zombies when the worker is PID 1 in a container. Call only when no child of yours is running.
std::size_t kill_adopted_processes();

// The fd number the probe pipe has in the child.
constexpr int kProbeFdInChild = 3;

}  // namespace ttfb::worker
