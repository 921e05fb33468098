// The workload sandbox: runs one workload (or a build command) inside bubblewrap (Debian's
// `bwrap`, https://github.com/containers/bubblewrap), timestamps the probe events as they arrive
// and measures TTFB from a CLOCK_MONOTONIC stamp taken just before the workload's exec, so that
// the sandbox's own set-up is not part of it.
//
//   WorkloadSpec spec;
//   spec.argv = {"python3", "train.py", "--steps", "1"};
//   spec.cwd = worktree;                  // bound read-write at /ttfb/worktree
//   spec.probe = ProbeMode::fd;           // TTFB_PROBE_FD names a pipe's write end
//   spec.timeout = std::chrono::seconds(60);
//   RunResult r = run_workload(spec);
//   if (r.outcome == RunOutcome::first_batch) use(r.ttfb_ms, r.phases);
//
// What the sandbox is (docs/security.md, "Sandbox"):
// - namespaces: PID (the workload sees only its own processes and signals nothing outside; when
//   the run ends, everything it started dies with it, daemons included), network (loopback only,
//   unless SandboxOptions::host_network), mount, IPC, UTS, cgroup.
// - files: /usr, /etc and the /bin, /lib... of the host read-only; a fresh /proc, a minimal /dev
//   with a private size-limited /dev/shm; a private size-limited tmpfs at /tmp and at HOME
//   (/ttfb/home); the worktree (SandboxOptions::worktree, default: cwd) at /ttfb/worktree,
//   read-write or read-only. Nothing else of the host: not /root, /home, /var, /run, the worker's
//   cache, its token, PostgreSQL's socket.
// - start: the worker forks bwrap; inside it, ttfb-lab-sandbox-init (worker/sandbox_init.cpp)
//   says "ready" when every mount is in place and waits; the worker stamps the start and says
//   "go"; init forks, sets the limits, switches user and execs the workload. RunResult::setup_ms
//   is the time the sandbox took to get ready, outside ttfb_ms and wall_ms.
// - user: a root worker runs bwrap as root (no user namespace: bwrap can reach a cache in a
//   folder only root can enter) with only CAP_SETUID/SETGID/CHOWN for init, and init drops the
//   workload to `run_as`; a non-root worker runs bwrap unprivileged, in a user namespace, as
//   itself.
//
// What the child gets (with or without the sandbox):
// - environment: exactly PATH=/usr/local/bin:/usr/bin:/bin, HOME and TMPDIR (in the sandbox
//   /ttfb/home and /tmp; without it a fresh per-run directory, removed afterwards),
//   LANG=C.UTF-8, TTFB_PROBE_FD (probe "fd"), then the workflow's env on top. Nothing of the
//   worker's own environment (its token in particular).
// - fds: stdin /dev/null; stdout and stderr captured (only a tail is kept, for error messages);
//   in probe "fd" mode the probe pipe as fd 3; every other fd closed. In probe "stdout" mode
//   stdout is a pseudo-terminal so that stdio and Python flush each line as it is printed
//   (through a pipe they would hold the first_batch line in a buffer until exit).
// - limits (setrlimit): RLIMIT_AS from memory_mb, RLIMIT_CPU, RLIMIT_NOFILE, RLIMIT_NPROC
//   (kDefaultNproc when the workflow sets none), and RLIMIT_CORE = 0; PR_SET_NO_NEW_PRIVS; the
//   parent-death signal SIGKILL; no capabilities.
// - cgroups (SandboxOptions::cgroups): the child joins a fresh run group before its exec, so
//   every process of the run is in it: memory_mb is the run's memory.max (RLIMIT_AS is then not
//   set), nproc its pids.max, cpus its CPU quota; at the end whatever is left in the group is
//   killed (without bwrap too: a setsid daemon cannot escape it) and RunResult::cgroup says what
//   the run used.
//
// Stopping: right after first_batch when stop_after_first_batch, at the timeout, and when
// cancel_fd becomes readable, every process of the sandbox gets SIGTERM, then SIGKILL after
// `kill_grace`. Without the sandbox (SandboxOptions::enabled = false, the worker's --no-sandbox)
// the signals go to the workload's process group, and a process that left the group (setsid)
// escapes them; the worker catches those with kill_adopted_processes() between runs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "worker/cgroup.hpp"
#include "worker/probe.hpp"

namespace ttfb::worker {

// 0 means "not set": the worker's own limit is inherited.
struct ResourceLimits {
  std::uint64_t memory_mb = 0;
  std::uint64_t cpu_seconds = 0;
  std::uint64_t nofile = 0;
  std::uint64_t nproc = 0;
  double cpus = 0;  // CPUs' worth of time per period, all the run's processes together (cgroup cpu only)
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

// Where things are inside the sandbox.
inline constexpr const char* kSandboxWorktree = "/ttfb/worktree";
inline constexpr const char* kSandboxHome = "/ttfb/home";
inline constexpr const char* kSandboxInit = "/ttfb/init";
// RLIMIT_NPROC when the workflow sets none: a fork bomb stops here. The limit counts every
// process and thread of the user the workload runs as (on the host: give workers distinct
// --run-as-user to keep them apart); 1024 leaves room for PyTorch's thread pools and DataLoader
// workers.
inline constexpr std::uint64_t kDefaultNproc = 1024;

struct SandboxOptions {
  bool enabled = true;           // false: the worker's --no-sandbox (plain fork/exec, as before bwrap)
  std::string worktree;          // host directory bound at kSandboxWorktree; empty: cwd. cwd must be inside it
  bool worktree_writable = true;
  bool host_network = false;     // the workflow's network = "host"; default: loopback only
  std::uint64_t tmp_mb = 1024;   // size of the /tmp tmpfs (memory, freed when the run ends)
  std::uint64_t home_mb = 256;   // size of the HOME tmpfs
  std::uint64_t shm_mb = 512;    // size of /dev/shm (PyTorch's DataLoader passes batches through it)
  std::string bwrap;             // the bwrap binary; empty: `bwrap` in the worker's PATH
  std::string init;              // ttfb-lab-sandbox-init; empty: default_sandbox_init()
  // Per-run cgroups (worker/cgroup.hpp), with or without bwrap; null: rlimits only. Where the
  // host gives a memory cgroup, memory_mb limits the run's memory there instead of RLIMIT_AS;
  // with pids, nproc (default kDefaultNproc) is the run's pids.max instead of RLIMIT_NPROC.
  std::shared_ptr<const Cgroups> cgroups;
  // The worker's --cpus: every process of each run and build is pinned to these CPUs
  // (sched_setaffinity before the exec, inherited by all it starts); empty: not pinned.
  std::vector<int> cpus;
};

struct WorkloadSpec {
  std::vector<std::string> argv;
  std::string cwd;  // a host path; in the sandbox the same place under kSandboxWorktree
  std::map<std::string, std::string> env;  // the workflow's env, on top of the scrubbed base
  std::set<std::string> env_unset;          // then removed (an experiment's candidate_env null), base included
  ProbeMode probe = ProbeMode::fd;
  std::string first_batch_regex;
  bool stop_after_first_batch = true;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
  ResourceLimits limits;
  std::optional<RunAsUser> run_as;
  std::string scratch_root;  // without the sandbox: the per-run HOME/TMPDIR is made under it; empty: $TMPDIR or /tmp
  SandboxOptions sandbox;
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
  double ttfb_ms = 0;               // first_batch - just before the workload's fork/exec
  double setup_ms = 0;              // the sandbox's set-up (fork of bwrap -> "ready"); in neither ttfb_ms nor wall_ms
  std::vector<PhaseTiming> phases;  // probe "fd" only
  double wall_ms = 0;               // from the start until the leader was reaped and the output pipes closed
  double cpu_ms = 0;                // user + system, from wait4's rusage
  // User + system time of all the workload's processes from its start to its first batch (the
  // run's cgroup read as the first batch arrives); nullopt without a cgroup that counts CPU time.
  std::optional<double> cpu_to_first_batch_ms;
  long max_rss_kb = 0;
  CgroupUsage cgroup;               // the run's cgroups, all its processes together (zero without cgroups)
  int exit_status = -1;             // -1 when killed by a signal
  int signal = 0;
  bool stopped_after_first_batch = false;
  std::size_t ignored_probe_lines = 0;
  std::string output_tail;          // the end of stdout and stderr, interleaved as read
  std::string message;              // one sentence saying what happened, for users
};

// Runs the workload to its outcome. Never throws for the workload's failure (a sandbox that
// cannot start is a workload_failed run with bwrap's words in output_tail); throws
// std::system_error when the child cannot be started (fork, pipe), std::regex_error for an
// invalid first_batch_regex, std::invalid_argument for an empty argv or a cwd outside the
// sandbox's worktree.
RunResult run_workload(const WorkloadSpec& spec);

// ttfb-lab-sandbox-init: $TTFB_LAB_SANDBOX_INIT, else beside the running executable, else where
// the build put it.
std::string default_sandbox_init();
// Starts one sandbox the way run_workload would (as `run_as`, with `options`) and runs /bin/true
// in it. Returns "" when that works, else a sentence saying what is wrong and what to do: the
// worker calls it at start-up and refuses to run without a working sandbox.
std::string check_sandbox(const SandboxOptions& options, const std::optional<RunAsUser>& run_as);

// "DEV:INO" of a descriptor (fstat), the probe pipe's identity in TTFB_PROBE_ID; "" if unknown.
std::string probe_identity(int fd);
// The environment the child gets (exposed for tests); run_workload adds TTFB_PROBE_ID.
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
