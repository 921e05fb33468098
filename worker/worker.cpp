#include "worker/worker.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/text.hpp"
#include "worker/footprint.hpp"
#include "worker/heartbeat.hpp"
#include "worker/host.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kDetailsBytes = 4000;               // output tail sent with a failure
constexpr auto kMaxClaimBackoff = std::chrono::milliseconds(30s);  // server away: poll at least this often


// The workflow's workdir, inside the worktree: relative, no "..".
std::optional<fs::path> resolve_workdir(const std::string& worktree, const std::string& workdir) {
  const fs::path rel = fs::path(workdir.empty() ? "." : workdir).lexically_normal();
  if (rel.is_absolute()) return std::nullopt;
  for (const auto& part : rel) {
    if (part == "..") return std::nullopt;
  }
  return (fs::path(worktree) / rel).lexically_normal();
}

}  // namespace

std::string_view to_string(JobEnd end) {
  switch (end) {
    case JobEnd::completed: return "completed";
    case JobEnd::failed: return "failed";
    case JobEnd::lease_lost: return "lease_lost";
    case JobEnd::abandoned: return "abandoned";
  }
  return "unknown";
}

JobFailure failure_for_run(const RunResult& result, const ScheduledRun& run) {
  JobFailure f;
  f.code = std::string(to_string(result.outcome));
  f.message = result.message + " (run " + std::to_string(run.run_index) + ", " + run.arm +
              (run.warmup ? ", warm-up" : "") + ")";
  if (result.outcome == RunOutcome::workload_failed) {
    if (const auto line = last_line(result.output_tail); !line.empty()) f.message += ": " + line;
  }
  f.details = tail_of(result.output_tail, kDetailsBytes);
  f.retryable = false;  // the same code fails the same way on any worker
  f.arm = run.arm;
  return f;
}

Worker::Worker(WorkerOptions options, ServerApi& api, StopFlag& stop)
    : options_(std::move(options)),
      api_(api),
      stop_(stop),
      host_(collect_host_facts(options_.name, options_.sandbox.cpus)),
      revisions_(RevisionCacheOptions{options_.cache_dir, options_.run_as, options_.max_worktrees, kDefaultBuildLimits,
                                      options_.sandbox}) {}

int Worker::run() {
  std::string pinned;
  for (int c : options_.sandbox.cpus) pinned += (pinned.empty() ? ", workloads pinned to CPU " : ",") + std::to_string(c);
  spdlog::info("worker {} on {} ({}, {} cores, kernel {}), cache {}{}{}{}", host_.name, host_.host, host_.cpu_model,
               host_.cores, host_.kernel, revisions_.options().cache_dir,
               options_.run_as ? ", workloads run as " + options_.run_as->name : "",
               options_.sandbox.enabled ? ", in bubblewrap sandboxes" : ", WITHOUT A SANDBOX (--no-sandbox)", pinned);
  auto backoff = options_.poll_interval;
  // Since when claims have failed (the server away, or rejecting): for --once's give-up rule.
  bool unreachable = false;
  Clock::time_point unreachable_since{};
  while (!stop_.shutdown()) {
    // Phase: claim.
    ClaimResult c = api_.claim(host_);
    switch (c.call.status) {
      case CallStatus::ok: {
        unreachable = false;
        backoff = options_.poll_interval;
        if (!c.job) {
          spdlog::error("cannot use the claimed job: {}", c.bad_job);
          if (c.bad_job_id) {
            fail_job(Job{.id = *c.bad_job_id}, JobFailure{"internal", "the worker cannot read the job: " + c.bad_job, "", false});
          }
          if (options_.once) return 1;
          continue;
        }
        const JobEnd end = run_job(*c.job);
        stop_.clear(StopFlag::kLeaseLost);  // that job's business; the idle wait must not see it
        spdlog::info("job {}: {}", c.job->id, to_string(end));
        if (options_.once) return end == JobEnd::completed || end == JobEnd::failed ? 0 : 1;
        continue;
      }
      case CallStatus::no_job:
        unreachable = false;
        backoff = options_.poll_interval;
        if (options_.once) {
          spdlog::info("no job to run");
          return 0;
        }
        stop_.wait_for_ms(options_.poll_interval.count());
        continue;
      case CallStatus::rejected:
        if (c.call.http_status == 401 || c.call.http_status == 403) {
          spdlog::critical("the server rejects this worker ({}): check the worker token", c.call.message);
          return 1;
        }
        spdlog::error("claim rejected: {}", c.call.message);
        break;
      case CallStatus::lease_lost:
      case CallStatus::unreachable:
      case CallStatus::gave_up:
        spdlog::warn("cannot claim: {}", c.call.message);
        break;
    }
    if (!unreachable) {
      unreachable = true;
      unreachable_since = Clock::now();
    }
    if (options_.once && Clock::now() - unreachable_since >= options_.unreachable_budget) {
      spdlog::error("giving up: the server was not reachable for {} s",
                    std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - unreachable_since).count());
      return 1;
    }
    stop_.wait_for_ms(backoff.count());
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxClaimBackoff);
  }
  spdlog::info("worker {} stopping", host_.name);
  return 0;
}

JobEnd Worker::fail_job(const Job& job, const JobFailure& failure) {
  if (heartbeat_ != nullptr) heartbeat_->stop();  // no heartbeat for a job that is over
  if (stop_.lease_lost()) return JobEnd::lease_lost;
  spdlog::error("job {}: failing with {} ({}retryable{}): {}", job.id, failure.code, failure.retryable ? "" : "not ",
                failure.arm.empty() ? "" : ", " + failure.arm, failure.message);
  const CallResult r = api_.fail(job.id, failure);
  if (r.ok()) return JobEnd::failed;
  if (r.status == CallStatus::lease_lost) return JobEnd::lease_lost;
  spdlog::error("job {}: the server was not told of the failure ({}); its lease will expire", job.id, r.message);
  return JobEnd::abandoned;
}

JobEnd Worker::interrupted(const Job& job) {
  if (stop_.lease_lost()) {
    spdlog::warn("job {}: lease lost, dropping the job", job.id);
    return JobEnd::lease_lost;
  }
  return fail_job(job, JobFailure{"internal",
                                  "worker " + host_.name + " was shut down during the job; the job can run again", "",
                                  true});
}

WorkloadSpec Worker::workload_spec(const Job& job, const std::string& arm, const std::string& copy) const {
  const Workflow& w = job.workflow;
  const ArmRevision& rev = job.arm(arm);
  WorkloadSpec spec;
  // [prefix...] [interpreter... | command[0]] command[1...]
  spec.argv = rev.command_prefix;
  if (rev.interpreter.empty()) spec.argv.push_back(w.command.front());
  else spec.argv.insert(spec.argv.end(), rev.interpreter.begin(), rev.interpreter.end());
  spec.argv.insert(spec.argv.end(), w.command.begin() + 1, w.command.end());
  spec.cwd = resolve_workdir(copy, w.workdir).value_or(fs::path(copy)).string();
  spec.sandbox = options_.sandbox;
  spec.sandbox.worktree = copy;
  spec.sandbox.worktree_writable = true;  // the job's own copy: runs may write (caches, .pyc), nobody else sees it
  spec.sandbox.host_network = w.network == "host";
  spec.env = w.env;
  for (const auto& [k, v] : rev.env) {
    if (v) {
      spec.env[k] = *v;
    } else {
      spec.env.erase(k);
      spec.env_unset.insert(k);
    }
  }
  spec.probe = w.probe == "stdout" ? ProbeMode::stdout_regex : ProbeMode::fd;
  spec.first_batch_regex = w.first_batch_regex;
  spec.stop_after_first_batch = w.stop_after_first_batch;
  spec.timeout = std::chrono::seconds(w.timeout_seconds);
  spec.limits = ResourceLimits{w.limits.memory_mb, w.limits.cpu_seconds, w.limits.nofile, w.limits.nproc, w.limits.cpus};
  spec.run_as = options_.run_as;
  spec.scratch_root = revisions_.scratch_dir();
  spec.kill_grace = options_.kill_grace;
  spec.cancel_fd = stop_.fd();
  return spec;
}

JobEnd Worker::run_job(const Job& job) {
  stop_.clear(StopFlag::kLeaseLost);
  const int total = static_cast<int>(job.schedule.size());
  spdlog::info("job {}: workflow {} of experiment {} (attempt {}), {} runs, repo {}", job.id, job.workflow.name,
               job.experiment_id, job.attempt, total, job.repo_name);
  Heartbeat heartbeat(api_, job.id, job.lease_seconds, total, stop_);
  heartbeat_ = &heartbeat;
  struct Forget {
    Heartbeat*& ref;
    ~Forget() { ref = nullptr; }
  } forget{heartbeat_};

  // Phase: prepare both arms (one worktree when they are the same revision).
  std::map<std::string, PreparedRevision> prepared;
  for (const char* arm : {"baseline", "candidate"}) {
    const ArmRevision& rev = job.arm(arm);
    RevisionSpec spec{job.repo_name,
                      job.repo_url,
                      rev.commit,
                      rev.diff,
                      job.workflow.build_command,
                      job.workflow.env,
                      std::chrono::seconds(job.workflow.build_timeout_seconds),
                      job.workflow.network == "host"};
    try {
      prepared[arm] = revisions_.prepare(spec, stop_.fd());
    } catch (const PrepareError& e) {
      if (stop_.raised()) return interrupted(job);
      return fail_job(job, JobFailure{e.code(), e.what(), e.details(), e.retryable(), arm});
    } catch (const std::exception& e) {
      if (stop_.raised()) return interrupted(job);
      return fail_job(job, JobFailure{"internal", std::string("preparing the ") + arm + " failed: " + e.what(), "", true, arm});
    }
    if (stop_.raised()) return interrupted(job);
    const auto& p = prepared[arm];
    spdlog::info("job {}: {} ready at {} ({}{})", job.id, arm, p.worktree, p.created ? "new worktree" : "reused worktree",
                 p.built ? ", built" : "");
  }
  // The repositories the arms' runs use ([[dependencies]]), checked out (and patched) like any
  // revision, not built: each is placed in the arm's run copies below.
  std::map<std::string, std::vector<PreparedRevision>> dependencies;
  std::vector<std::string> in_use{prepared["baseline"].worktree, prepared["candidate"].worktree};
  for (const char* arm : {"baseline", "candidate"}) {
    for (const ArmDependency& d : job.arm(arm).dependencies) {
      RevisionSpec spec{d.repo_name, d.repo_url, d.commit, d.diff, {}, job.workflow.env,
                        std::chrono::seconds(job.workflow.build_timeout_seconds), job.workflow.network == "host"};
      const std::string what = "dependency '" + d.repo_name + "' of the " + arm + ": ";
      try {
        dependencies[arm].push_back(revisions_.prepare(spec, stop_.fd()));
      } catch (const PrepareError& e) {
        if (stop_.raised()) return interrupted(job);
        return fail_job(job, JobFailure{e.code(), what + e.what(), e.details(), e.retryable(), arm});
      } catch (const std::exception& e) {
        if (stop_.raised()) return interrupted(job);
        return fail_job(job, JobFailure{"internal", what + e.what(), "", true, arm});
      }
      in_use.push_back(dependencies[arm].back().worktree);
      spdlog::info("job {}: {}{} ready at {}", job.id, what, d.commit.substr(0, 12), dependencies[arm].back().worktree);
    }
  }
  kill_adopted_processes();  // leftovers of the builds
  revisions_.evict(in_use);

  for (const char* arm : {"baseline", "candidate"}) {
    auto dir = resolve_workdir(prepared[arm].worktree, job.workflow.workdir);
    if (!dir) {  // the workflow's fault, not either arm's: no arm
      return fail_job(job, JobFailure{"internal", "the workflow's workdir '" + job.workflow.workdir +
                                                      "' must be a relative path inside the repository", "", false});
    }
    std::error_code ec;
    if (!fs::is_directory(*dir, ec)) {
      return fail_job(job, JobFailure{"workload_failed", "the workflow's workdir '" + job.workflow.workdir +
                                                              "' does not exist in the " + arm + " revision", "", false, arm});
    }
  }

  // Each arm runs in a copy of its worktree that only this job sees, removed when the job ends:
  // nothing a run writes reaches the cache, the other arm or another job.
  std::map<std::string, RunCopy> copies;
  for (const char* arm : {"baseline", "candidate"}) {
    try {
      copies[arm] = revisions_.copy_for_run(prepared[arm], "job" + std::to_string(job.id) + "-" + arm);
      const auto& deps = job.arm(arm).dependencies;
      for (std::size_t i = 0; i < deps.size(); ++i) revisions_.place_dependency(dependencies[arm][i], copies[arm], deps[i].path);
    } catch (const PrepareError& e) {
      return fail_job(job, JobFailure{e.code(), e.what(), e.details(), e.retryable(), arm});
    }
  }

  // Phase: measure, in the server's order (warm-up runs first, then interleaved arms).
  int done = 0;
  std::set<std::string> footprinted;  // arms whose first measured run recorded its footprint
  for (const ScheduledRun& run : job.schedule) {
    RunResult r;
    // The first measured run of each arm: which files of the revision its start-up opens.
    std::optional<FootprintWatch> watch;
    if (!run.warmup && footprinted.insert(run.arm).second) watch.emplace(copies[run.arm].path());
    const auto steal_before = steal_ms(options_.sandbox.cpus);
    try {
      r = run_workload(workload_spec(job, run.arm, copies[run.arm].path()));
    } catch (const std::regex_error& e) {
      return fail_job(job, JobFailure{"internal", "invalid first_batch_regex '" + job.workflow.first_batch_regex + "': " + e.what(), "", false});
    } catch (const std::exception& e) {
      return fail_job(job, JobFailure{"internal", std::string("cannot start the workload: ") + e.what(), "", true});
    }
    if (const auto n = kill_adopted_processes(); n > 0) {
      spdlog::warn("job {}: run {} left {} process(es) outside its process group; killed", job.id, run.run_index, n);
    }
    if (r.outcome == RunOutcome::cancelled || stop_.raised()) return interrupted(job);
    if (r.outcome != RunOutcome::first_batch) return fail_job(job, failure_for_run(r, run));

    Sample s;
    s.run_index = run.run_index;
    s.arm = run.arm;
    s.warmup = run.warmup;
    s.ttfb_ms = r.ttfb_ms;
    for (const auto& p : r.phases) s.phases.push_back({p.name, p.ms});
    s.cpu_ms = r.cpu_ms;
    s.cpu_to_first_batch_ms = r.cpu_to_first_batch_ms;
    if (const auto steal_after = steal_ms(options_.sandbox.cpus); steal_before && steal_after) {
      s.steal_ms = std::max(0.0, *steal_after - *steal_before);
    }
    if (watch) {
      // The run's opens and its build's reads together: a change to either can change start-up.
      const auto& build = prepared[run.arm].build_footprint;
      s.footprint = watch->files();
      if (!s.footprint) {
        spdlog::warn("job {}: no footprint of run {}: {}", job.id, run.run_index, watch->why_not());
      } else if (!build) {
        spdlog::warn("job {}: no footprint of run {}: its build's is not known", job.id, run.run_index);
        s.footprint.reset();
      } else {
        std::set<std::string> all(s.footprint->begin(), s.footprint->end());
        all.insert(build->begin(), build->end());
        std::size_t bytes = 0;
        for (const auto& f : all) bytes += f.size() + 4;
        if (all.size() > kMaxFootprintFiles || bytes > kMaxFootprintBytes) {
          spdlog::warn("job {}: no footprint of run {}: with its build's, more than the limits", job.id, run.run_index);
          s.footprint.reset();
        } else {
          s.footprint.emplace(all.begin(), all.end());
        }
      }
    }
    s.max_rss_kb = r.max_rss_kb;
    s.exit_status = r.exit_status < 0 ? 0 : r.exit_status;
    s.signal = r.signal;
    s.wall_ms = r.wall_ms;
    spdlog::info("job {}: run {} {}{}: ttfb {:.1f} ms, cpu to first batch {}, wall {:.1f} ms, cpu {:.1f} ms, steal {}, rss {} kB{}",
                 job.id, run.run_index, run.arm, run.warmup ? " (warm-up)" : "", r.ttfb_ms,
                 s.cpu_to_first_batch_ms ? fmt::format("{:.1f} ms", *s.cpu_to_first_batch_ms) : "unknown", r.wall_ms,
                 r.cpu_ms, s.steal_ms ? fmt::format("{:.1f} ms", *s.steal_ms) : "unknown", r.max_rss_kb,
                 r.ignored_probe_lines > 0 ? ", " + std::to_string(r.ignored_probe_lines) + " probe lines ignored" : "");

    // Phase: report, at once.
    const CallResult posted = api_.post_samples(job.id, {s});
    if (!posted.ok()) {
      if (posted.status == CallStatus::lease_lost || stop_.raised()) {
        if (posted.status == CallStatus::lease_lost) stop_.raise(StopFlag::kLeaseLost);
        return interrupted(job);
      }
      if (posted.status == CallStatus::rejected) {
        return fail_job(job, JobFailure{"internal", "the server rejected a sample: " + posted.message, "", false});
      }
      spdlog::error("job {}: cannot report samples ({}); dropping the job", job.id, posted.message);
      return JobEnd::abandoned;
    }
    heartbeat.set_done(++done);
  }

  // Phase: complete.
  heartbeat.stop();
  const CallResult completed = api_.complete(job.id);
  if (completed.ok()) return JobEnd::completed;
  if (completed.status == CallStatus::lease_lost) return JobEnd::lease_lost;
  if (stop_.raised()) return interrupted(job);
  spdlog::error("job {}: /complete failed: {}", job.id, completed.message);
  return completed.status == CallStatus::rejected
             ? fail_job(job, JobFailure{"internal", "the server refused to complete the job: " + completed.message, "", false})
             : JobEnd::abandoned;
}

}  // namespace ttfb::worker
