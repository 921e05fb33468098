// The worker loop: a plain synchronous sequence of named phases per job —
//   claim -> prepare (both arms: mirror, worktree, diff, build; then a private copy of each arm's
//   worktree for this job) -> measure (the schedule in the server's order, warm-up runs included
//   and flagged; each sample reported as soon as it is measured; every run in the sandbox) ->
//   complete (the copies are removed)
// with a heartbeat thread beside it. Any failure ends the job with /fail and the protocol's code;
// the worker then claims the next job.
//
//   StopFlag stop;                                  // raised by SIGINT/SIGTERM
//   HttpServerApi api(url, token, "w1", {}, &stop);
//   Worker worker({.name = "w1", .cache_dir = dir}, api, stop);
//   return worker.run();
//
// Stopping: a lost lease (409) stops the running workload at once and the job is dropped without
// /fail (it is no longer ours). SIGINT/SIGTERM stop the running workload, report the job as failed
// with retryable = true (so it goes back to the queue) and end the loop.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "worker/protocol.hpp"
#include "worker/revisions.hpp"
#include "worker/sandbox.hpp"
#include "worker/server_api.hpp"
#include "worker/stop_flag.hpp"

namespace ttfb::worker {

class Heartbeat;

struct WorkerOptions {
  std::string name;
  std::string cache_dir;
  std::optional<RunAsUser> run_as;  // builds and workloads run as this user
  std::chrono::milliseconds poll_interval{1000};  // between claims when there is no job
  bool once = false;                // one claim: run its job (if any), then return
  std::size_t max_worktrees = 32;
  std::chrono::milliseconds kill_grace{1000};  // SIGTERM -> SIGKILL for workloads
  std::chrono::milliseconds unreachable_budget{std::chrono::minutes(3)};  // --once: claim retries
  SandboxOptions sandbox;           // builds and workloads; enabled = false is --no-sandbox
};

enum class JobEnd {
  completed,   // every run measured and reported, /complete accepted
  failed,      // reported with /fail
  lease_lost,  // the server took the job back: dropped
  abandoned,   // the server could not be told (unreachable): the lease will expire
};
std::string_view to_string(JobEnd end);

class Worker {
 public:
  // Opens the revision cache (which locks the cache directory): throws std::runtime_error.
  Worker(WorkerOptions options, ServerApi& api, StopFlag& stop);

  // Claims and runs jobs until SIGINT/SIGTERM (or after one claim with `once`). Returns the
  // process exit code: 0; 1 when the server rejects the worker (e.g. a bad token) or, with
  // `once`, cannot be reached.
  int run();

  // One claimed job, all phases.
  JobEnd run_job(const Job& job);

  const HostFacts& host() const { return host_; }
  RevisionCache& revisions() { return revisions_; }

 private:
  JobEnd fail_job(const Job& job, const JobFailure& failure);
  JobEnd interrupted(const Job& job);
  // The spec of one run in `copy`, the job's private copy of the arm's worktree.
  // The run of `arm` ("baseline" or "candidate") in its copy: the workflow's command and env with
  // the arm's command prefix, interpreter and env applied.
  WorkloadSpec workload_spec(const Job& job, const std::string& arm, const std::string& copy) const;

  WorkerOptions options_;
  ServerApi& api_;
  Heartbeat* heartbeat_ = nullptr;  // of the running job; stopped before /fail
  StopFlag& stop_;
  HostFacts host_;
  RevisionCache revisions_;
};

// A job failure for a run that did not reach first_batch (exposed for tests).
JobFailure failure_for_run(const RunResult& result, const ScheduledRun& run);

}  // namespace ttfb::worker
