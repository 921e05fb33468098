// Per-run cgroups: limits over all the processes of one run together (memory, number of
// processes, CPU), a kill that reaches every one of them, and what the run used. The rlimits of
// sandbox.hpp limit each process alone (RLIMIT_AS is address space, not memory; RLIMIT_NPROC
// counts the whole user); a cgroup limits the run.
//
//   std::string report;
//   std::shared_ptr<Cgroups> cgroups = Cgroups::detect("w1", &report);  // null: the host offers none
//   spdlog::info("cgroups: {}", report);
//   auto run = cgroups->make_run(CgroupLimits{.memory_mb = 2048, .pids = 1024});
//   // in the child, after fork and before exec:
//   join_cgroups(run->procs_fds().data(), run->procs_fds().size());
//   ...
//   run->kill_all();                  // every process still in the run
//   double cpu = run->cpu_ms().value_or(0);  // CPU time of the run so far (at its first batch, say)
//   CgroupUsage used = run->usage();  // peak memory, OOM kills, refused forks
//   // ~RunCgroup removes the groups
//
// Where the groups are: for each of memory, pids, cpu and cpuacct, the cgroup v2 hierarchy when it offers
// that controller to the worker's cgroup, else a cgroup v1 hierarchy that has it (hosts in
// "hybrid" mode mount memory and pids as v1 beside an empty v2 hierarchy). Under the worker's own
// cgroup of each hierarchy, never above it (a container's limits stay in force):
//
//   <worker's cgroup>/ttfb-lab-<pid>-<name>/run-<n>
//
// cgroup v2 allows no processes in a group whose children have controllers: when the worker's
// cgroup holds the worker alone (a delegated systemd scope or service), the worker moves itself
// into <worker's cgroup>/ttfb-lab-<pid>-<name>-self first; when it holds other processes too, v2
// is not used. Groups of workers that died (their pid is gone) are killed and removed by detect().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ttfb::worker {

struct CgroupLimits {
  std::uint64_t memory_mb = 0;  // v2 memory.max (swap 0); v1 memory.limit_in_bytes (and memsw); 0: none
  std::uint64_t pids = 0;       // pids.max; 0: none
  double cpus = 0;              // v2 cpu.max, v1 cpu.cfs_quota_us: this many CPUs' time per period; 0: none
};

struct CgroupUsage {
  std::uint64_t peak_memory_bytes = 0;  // the run's processes together, page cache and tmpfs included; 0: unknown
  std::uint64_t oom_kills = 0;          // processes the kernel killed at the memory limit
  std::uint64_t forks_refused = 0;      // forks and clones refused at pids.max
};

class RunCgroup;

class Cgroups {
 public:
  struct Hierarchy {
    int version = 2;                       // 1 or 2
    std::string base;                      // <worker's cgroup>/ttfb-lab-<pid>-<name>
    std::vector<std::string> controllers;  // of memory, pids, cpu: those limited here
  };

  // Looks at /proc/self/mountinfo and /proc/self/cgroup, makes the worker's groups, and checks
  // with a child process that a run can join them. Returns null when no controller can be used;
  // `report` (if given) says what is limited where, or why nothing is.
  static std::shared_ptr<Cgroups> detect(const std::string& name, std::string* report = nullptr);
  ~Cgroups();  // removes the worker's groups (runs must have ended)
  Cgroups(const Cgroups&) = delete;
  Cgroups& operator=(const Cgroups&) = delete;

  bool limits(const std::string& controller) const;
  const std::vector<Hierarchy>& hierarchies() const { return hierarchies_; }
  // Makes run-<n> in every hierarchy with the limits written. Throws std::system_error.
  std::unique_ptr<RunCgroup> make_run(const CgroupLimits& limits) const;

 private:
  Cgroups() = default;
  std::vector<Hierarchy> hierarchies_;
  mutable std::atomic<unsigned> next_run_{0};
};

class RunCgroup {
 public:
  ~RunCgroup();  // kill_all(), then removes the groups
  RunCgroup(const RunCgroup&) = delete;
  RunCgroup& operator=(const RunCgroup&) = delete;

  // One open cgroup.procs per hierarchy, close-on-exec: the child writes "0" to each.
  const std::vector<int>& procs_fds() const { return procs_fds_; }
  // SIGKILL to every process in the run without waiting (cgroup.kill where the kernel has it).
  void signal_all() const;
  // SIGKILL until the groups are empty (at most about 2 s). True when they are.
  bool kill_all() const;
  CgroupUsage usage() const;
  // CPU time (user + system) of all the run's processes so far, exited ones included, read while
  // the run goes on: v2 cpu.stat usage_usec, v1 cpuacct.usage. nullopt when no hierarchy counts it.
  std::optional<double> cpu_ms() const;
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  friend class Cgroups;
  RunCgroup() = default;
  std::vector<Cgroups::Hierarchy> hierarchies_;  // with base replaced by this run's directory
  std::vector<std::string> dirs_;
  std::vector<int> procs_fds_;
};

// In a child between fork and exec (async-signal-safe): moves the calling process into the run's
// groups. Returns 0, or the errno of the first write that failed.
int join_cgroups(const int* procs_fds, std::size_t count) noexcept;

}  // namespace ttfb::worker
