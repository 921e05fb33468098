// The worker's side of docs/worker-protocol.md as C++ values: the job a claim returns, the
// samples, heartbeats and failures the worker sends, and their JSON (Boost.JSON, in
// protocol.cpp only).
//
//   Job job = parse_job(response.body);      // throws JobParseError
//   client.post("/api/v1/worker/jobs/" + std::to_string(job.id) + "/samples",
//               samples_body("w1", {sample}));
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/version.hpp"

namespace ttfb::worker {

inline constexpr const char* kWorkerVersion = ttfb::kVersion;  // project(VERSION)

struct HostFacts {
  std::string name;       // the worker's name (--name)
  std::string host;       // gethostname
  std::string cpu_model;  // /proc/cpuinfo "model name"
  std::string kernel;     // uname release
  int cores = 0;          // CPUs this process may run on
  std::string version = kWorkerVersion;
};

struct WorkflowLimits {
  std::uint64_t memory_mb = 0;  // 0: not set
  std::uint64_t cpu_seconds = 0;
  std::uint64_t nofile = 0;
  std::uint64_t nproc = 0;
  double cpus = 0;  // 0: not set
};

struct Workflow {
  std::string name;
  std::vector<std::string> command;
  std::vector<std::string> build_command;  // empty: none
  std::string workdir = ".";
  std::map<std::string, std::string> env;
  std::string probe = "fd";  // "fd" | "stdout"
  std::string first_batch_regex;
  bool stop_after_first_batch = true;
  int timeout_seconds = 60;
  int build_timeout_seconds = 600;
  WorkflowLimits limits;
  std::string network = "none";  // "none": loopback only in the sandbox | "host": the host's network
};

// Another repository an arm's runs use (a workflow's [[dependencies]]): its commit, with a diff
// or none, placed at `path` in each run's copy of the arm's revision.
struct ArmDependency {
  std::string repo_name;
  std::string repo_url;
  std::string commit;
  std::string diff;
  std::string path;  // relative, without '.' or '..' parts, not under .git
};

struct ArmRevision {
  std::string commit;
  std::string diff;
  std::vector<ArmDependency> dependencies;
  // What this arm runs differently (an infra owner's experiment, on the candidate only): variables
  // set over the workflow's environment, or (nullopt) removed from the workload's environment
  // altogether; words before the command; words in place of the command's first word. Applied to
  // the arm's runs, never to its build.
  std::map<std::string, std::optional<std::string>> env;
  std::vector<std::string> command_prefix;
  std::vector<std::string> interpreter;
};

struct ScheduledRun {
  int run_index = 0;
  std::string arm;  // "baseline" | "candidate"
  bool warmup = false;
};

// What a worker presents with every write to a job it claimed: the claim's random lease id and
// attempt (the server refuses writes with any other with 409: the job is no longer ours).
struct JobLease {
  std::string id;
  int attempt = 1;
};

struct Job {
  std::int64_t id = 0;
  std::int64_t experiment_id = 0;
  int attempt = 1;
  std::string lease_id;  // required in a claim answer
  int lease_seconds = 30;
  std::string repo_name;
  std::string repo_url;
  Workflow workflow;
  ArmRevision baseline;
  ArmRevision candidate;
  std::vector<ScheduledRun> schedule;

  const ArmRevision& arm(const std::string& name) const { return name == "baseline" ? baseline : candidate; }
};

struct PhaseSample {
  std::string name;
  double ms = 0;
};

struct Sample {
  int run_index = 0;
  std::string arm;
  bool warmup = false;
  double ttfb_ms = 0;
  std::vector<PhaseSample> phases;
  double cpu_ms = 0;
  std::optional<double> cpu_to_first_batch_ms;  // the workload's CPU time to its first batch (cgroup)
  std::optional<double> steal_ms;               // steal time on the run's CPUs during the run
  // The files of the revision the run opened (worker/footprint.hpp), relative, sorted; sent for
  // the first measured run of each arm in a job, nullopt otherwise or when it is incomplete.
  std::optional<std::vector<std::string>> footprint;
  long max_rss_kb = 0;
  int exit_status = 0;
  int signal = 0;
  double wall_ms = 0;
};

// Codes: diff_does_not_apply, revision_unavailable, build_failed, workload_failed,
// workload_timeout, no_first_batch, internal.
struct JobFailure {
  std::string code;
  std::string message;  // users see it verbatim
  std::string details;  // last lines of output
  bool retryable = false;
  // The arm whose revision failed ("baseline" or "candidate"), so the server can tell which
  // commit is broken; empty when the failure is not one arm's (the job, the worker, the server).
  std::string arm;
};

// A claim answer the worker cannot use. job_id is set when the job's id could be read, so the
// job can still be failed rather than left to time out.
class JobParseError : public std::runtime_error {
 public:
  JobParseError(const std::string& message, std::optional<std::int64_t> job_id)
      : std::runtime_error(message), job_id_(job_id) {}
  std::optional<std::int64_t> job_id() const { return job_id_; }

 private:
  std::optional<std::int64_t> job_id_;
};

// Parses the body of a 200 answer to a claim ({"job": {...}}). Optional fields take the defaults
// above; required: id, repo.url, workflow.command (non-empty), both arms' commits, a schedule
// whose arms are baseline/candidate and whose run_index values are unique.
Job parse_job(const std::string& body);
// The lease of a claim answer that parse_job refused, when it can be read (to fail the job).
std::optional<JobLease> lease_in_claim(const std::string& body);

std::string claim_body(const HostFacts& host);
// Each write names the worker (the server checks it against the token's name) and the lease.
std::string heartbeat_body(const std::string& worker, const JobLease& lease, int done, int total);
std::string samples_body(const std::string& worker, const JobLease& lease, const std::vector<Sample>& samples);
std::string complete_body(const std::string& worker, const JobLease& lease);
// Message and details become valid UTF-8 (a failing build's output may be any bytes); error.arm
// is sent only when the failure names an arm.
std::string fail_body(const std::string& worker, const JobLease& lease, const JobFailure& failure);

// lease_seconds from a heartbeat answer, when present.
std::optional<int> parse_lease_seconds(const std::string& body);
// "code: message" from an error body {"error": {...}}, or the body itself (shortened).
std::string describe_error_body(const std::string& body);

}  // namespace ttfb::worker
