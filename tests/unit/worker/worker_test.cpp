// The worker loop against a fake server (ServerApi) and real everything else: a git repository,
// the revision cache, shell workloads in the sandbox.
#include "worker/worker.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "test_util.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;
using testing::TrainerRepo;
using testing::write_file;

// Records every call; answers with what the test set.
class FakeServer : public ServerApi {
 public:
  ClaimResult claim(const HostFacts& host) override {
    std::lock_guard lock(mutex_);
    claims.push_back(host);
    ClaimResult r;
    if (jobs.empty()) {
      r.call.status = CallStatus::no_job;
      r.call.http_status = 204;
    } else {
      r.job = jobs.front();
      jobs.erase(jobs.begin());
    }
    return r;
  }
  CallResult heartbeat(std::int64_t, int done, int total, int& lease_seconds) override {
    std::lock_guard lock(mutex_);
    heartbeats.emplace_back(done, total);
    lease_seconds = 0;
    CallResult r;
    if (lose_lease_at_heartbeat > 0 && static_cast<int>(heartbeats.size()) >= lose_lease_at_heartbeat) {
      r.status = CallStatus::lease_lost;
      r.http_status = 409;
    }
    return r;
  }
  CallResult post_samples(std::int64_t, const std::vector<Sample>& s) override {
    std::lock_guard lock(mutex_);
    samples.insert(samples.end(), s.begin(), s.end());
    return {};
  }
  CallResult complete(std::int64_t id) override {
    std::lock_guard lock(mutex_);
    completed.push_back(id);
    return {};
  }
  CallResult fail(std::int64_t id, const JobFailure& f) override {
    std::lock_guard lock(mutex_);
    failed.emplace_back(id, f);
    return {};
  }

  std::mutex mutex_;
  std::vector<Job> jobs;
  int lose_lease_at_heartbeat = 0;
  std::vector<HostFacts> claims;
  std::vector<std::pair<int, int>> heartbeats;
  std::vector<Sample> samples;
  std::vector<std::int64_t> completed;
  std::vector<std::pair<std::int64_t, JobFailure>> failed;
};

class WorkerTest : public ::testing::Test {
 protected:
  WorkerTest() : repo_(dir_ / "src") {
    // The workload: phases and first_batch on the probe fd; the candidate's diff adds a phase.
    write_file(repo_.path / "run.sh",
               "#!/bin/sh\n"
               "echo 'phase imports' >&$TTFB_PROBE_FD\n"
               "sleep 0.05\n"
               "echo first_batch >&$TTFB_PROBE_FD\n"
               "sleep 100\n");
    fs::permissions(repo_.path / "run.sh", fs::perms::all);
    repo_.head = repo_.commit("workload");
  }

  Job job(int id = 1) const {
    Job j;
    j.id = id;
    j.experiment_id = 5;
    j.lease_seconds = 30;
    j.repo_name = "example";
    j.repo_url = repo_.path.string();
    j.workflow.name = "test-train";
    j.workflow.command = {"sh", "run.sh"};
    j.workflow.timeout_seconds = 20;
    j.baseline = {repo_.head, ""};
    j.candidate = {repo_.head, TrainerRepo::steps_diff()};
    j.schedule = {{0, "baseline", true}, {1, "candidate", true}, {2, "baseline", false}, {3, "candidate", false},
                  {4, "candidate", false}, {5, "baseline", false}};
    return j;
  }

  WorkerOptions options() const {
    WorkerOptions o;
    o.name = "w1";
    o.cache_dir = (dir_ / "cache").string();
    if (::geteuid() == 0) o.run_as = lookup_user("nobody");
    o.poll_interval = 10ms;
    o.kill_grace = 300ms;
    return o;
  }

  TempDir dir_;
  TrainerRepo repo_;
  FakeServer server_;
  StopFlag stop_;
};

TEST_F(WorkerTest, RunsTheScheduleInOrderAndReportsEachSample) {
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(job()), JobEnd::completed);
  ASSERT_EQ(server_.samples.size(), 6u);
  const auto j = job();
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(server_.samples[i].run_index, j.schedule[i].run_index);
    EXPECT_EQ(server_.samples[i].arm, j.schedule[i].arm);
    EXPECT_EQ(server_.samples[i].warmup, j.schedule[i].warmup);
    EXPECT_GE(server_.samples[i].ttfb_ms, 50.0);
    ASSERT_EQ(server_.samples[i].phases.size(), 1u);
    EXPECT_EQ(server_.samples[i].phases[0].name, "imports");
    EXPECT_GE(server_.samples[i].wall_ms, server_.samples[i].ttfb_ms);
  }
  EXPECT_EQ(server_.completed, std::vector<std::int64_t>{1});
  EXPECT_TRUE(server_.failed.empty());
}

// An infra owner's experiment: both arms run the same revision; the candidate's runs get its own
// environment (a variable set, the workflow's own removed, a base one removed), a command prefix
// and an interpreter in place of the command's first word. The workload reports what it saw as
// its phase names.
TEST_F(WorkerTest, TheCandidateArmRunsWithItsEnvPrefixAndInterpreter) {
  write_file(repo_.path / "env.sh",
             "#!/bin/sh\n"
             "shell=sh; [ -n \"$BASH_VERSION\" ] && shell=bash\n"
             "echo \"phase mode-${MODE:-none}\" >&$TTFB_PROBE_FD\n"
             "echo \"phase base-${BASE_KNOB:-unset}\" >&$TTFB_PROBE_FD\n"
             "echo \"phase lang-${LANG:-unset}\" >&$TTFB_PROBE_FD\n"
             "echo \"phase via-${VIA:-direct}\" >&$TTFB_PROBE_FD\n"
             "echo \"phase shell-$shell\" >&$TTFB_PROBE_FD\n"
             "echo first_batch >&$TTFB_PROBE_FD\n");
  const std::string head = repo_.commit("env workload");
  Job j = job();
  j.workflow.command = {"sh", "env.sh"};
  j.workflow.env = {{"BASE_KNOB", "on"}};
  j.baseline = {head, ""};
  j.candidate = {head, ""};
  j.candidate.env = {{"MODE", "tuned"}, {"BASE_KNOB", std::nullopt}, {"LANG", std::nullopt}};
  j.candidate.command_prefix = {"env", "VIA=prefix"};
  j.candidate.interpreter = {"bash"};
  j.schedule = {{0, "baseline", false}, {1, "candidate", false}};
  Worker worker(options(), server_, stop_);
  ASSERT_EQ(worker.run_job(j), JobEnd::completed) << (server_.failed.empty() ? "" : server_.failed[0].second.message);
  ASSERT_EQ(server_.samples.size(), 2u);
  auto names = [](const Sample& s) {
    std::vector<std::string> out;
    for (const auto& p : s.phases) out.push_back(p.name);
    return out;
  };
  EXPECT_EQ(names(server_.samples[0]),
            (std::vector<std::string>{"mode-none", "base-on", "lang-C.UTF-8", "via-direct", "shell-sh"}));
  EXPECT_EQ(names(server_.samples[1]),
            (std::vector<std::string>{"mode-tuned", "base-unset", "lang-unset", "via-prefix", "shell-bash"}));
}

TEST_F(WorkerTest, OnceRunsOneJobThenStops) {
  server_.jobs = {job(7), job(8)};
  WorkerOptions o = options();
  o.once = true;
  Worker worker(o, server_, stop_);
  EXPECT_EQ(worker.run(), 0);
  EXPECT_EQ(server_.completed, std::vector<std::int64_t>{7});
  EXPECT_EQ(server_.jobs.size(), 1u);
  ASSERT_EQ(server_.claims.size(), 1u);
  EXPECT_EQ(server_.claims[0].name, "w1");
  EXPECT_FALSE(server_.claims[0].cpu_model.empty());
}

TEST_F(WorkerTest, OnceWithoutAJobReturnsAtOnce) {
  WorkerOptions o = options();
  o.once = true;
  Worker worker(o, server_, stop_);
  EXPECT_EQ(worker.run(), 0);
  EXPECT_EQ(server_.claims.size(), 1u);
}

TEST_F(WorkerTest, HangingWorkloadFailsTheJobWithWorkloadTimeoutAndTheWorkerCarriesOn) {
  Job hanging = job(1);
  hanging.workflow.command = {"sleep", "100"};
  hanging.workflow.timeout_seconds = 1;
  server_.jobs = {hanging, job(2)};
  Worker worker(options(), server_, stop_);
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    // Let both jobs run, then stop the loop as SIGTERM would.
    for (int i = 0; i < 600; ++i) {
      {
        std::lock_guard lock(server_.mutex_);
        if (!server_.completed.empty()) break;
      }
      std::this_thread::sleep_for(50ms);
    }
    stop_.raise(StopFlag::kShutdown);
  });
  EXPECT_EQ(worker.run(), 0);
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  ASSERT_EQ(server_.failed.size(), 1u);
  EXPECT_EQ(server_.failed[0].first, 1);
  EXPECT_EQ(server_.failed[0].second.code, "workload_timeout");
  EXPECT_FALSE(server_.failed[0].second.retryable);
  EXPECT_NE(server_.failed[0].second.message.find("run 0, baseline, warm-up"), std::string::npos)
      << server_.failed[0].second.message;
  EXPECT_EQ(server_.completed, std::vector<std::int64_t>{2});
}

TEST_F(WorkerTest, CrashingWorkloadFailsWithItsOutput) {
  Job j = job();
  j.workflow.command = {"sh", "-c", "echo 'ImportError: no module named torch' >&2; exit 1"};
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(j), JobEnd::failed);
  ASSERT_EQ(server_.failed.size(), 1u);
  const JobFailure& f = server_.failed[0].second;
  EXPECT_EQ(f.code, "workload_failed");
  EXPECT_NE(f.message.find("exited with status 1"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("ImportError: no module named torch"), std::string::npos) << f.message;
  EXPECT_NE(f.details.find("ImportError"), std::string::npos);
  EXPECT_EQ(f.arm, "baseline");  // the schedule's first run
  EXPECT_TRUE(server_.samples.empty());
}

TEST_F(WorkerTest, AFailedRunNamesItsArm) {
  // The baseline's runs succeed; the candidate's (its diff adds a failing file) fail.
  Job j = job();
  j.workflow.command = {"sh", "-c", "if [ -f broken ]; then echo broken >&2; exit 3; fi; echo first_batch >&3; sleep 100"};
  j.candidate.diff = "diff --git a/broken b/broken\nnew file mode 100644\n--- /dev/null\n+++ b/broken\n@@ -0,0 +1 @@\n+x\n";
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(j), JobEnd::failed);
  ASSERT_EQ(server_.failed.size(), 1u);
  EXPECT_EQ(server_.failed[0].second.code, "workload_failed");
  EXPECT_EQ(server_.failed[0].second.arm, "candidate") << server_.failed[0].second.message;
  EXPECT_EQ(server_.samples.size(), 1u);  // the baseline's warm-up
}

TEST_F(WorkerTest, DiffThatDoesNotApplyFailsTheJob) {
  Job j = job();
  j.candidate.diff = "diff --git a/train.py b/train.py\n--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-nope\n+yes\n";
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(j), JobEnd::failed);
  ASSERT_EQ(server_.failed.size(), 1u);
  EXPECT_EQ(server_.failed[0].second.code, "diff_does_not_apply");
  EXPECT_NE(server_.failed[0].second.message.find("patch failed: train.py:1"), std::string::npos)
      << server_.failed[0].second.message;
  EXPECT_FALSE(server_.failed[0].second.retryable);
  EXPECT_EQ(server_.failed[0].second.arm, "candidate");  // the arm with the diff
}

TEST_F(WorkerTest, AWorkdirMissingFromOneRevisionNamesThatArm) {
  // The workdir exists at the candidate's revision (its diff adds it) and not at the baseline's.
  Job j = job();
  j.workflow.workdir = "sub";
  j.candidate.diff = "diff --git a/sub/x b/sub/x\nnew file mode 100644\n--- /dev/null\n+++ b/sub/x\n@@ -0,0 +1 @@\n+x\n";
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(j), JobEnd::failed);
  ASSERT_EQ(server_.failed.size(), 1u);
  EXPECT_NE(server_.failed[0].second.message.find("does not exist in the baseline revision"), std::string::npos)
      << server_.failed[0].second.message;
  EXPECT_EQ(server_.failed[0].second.arm, "baseline");
}

TEST_F(WorkerTest, LostLeaseStopsTheRunningWorkloadPromptly) {
  Job j = job();
  j.lease_seconds = 1;  // heartbeats every ~333 ms
  j.workflow.command = {"sleep", "100"};
  j.workflow.timeout_seconds = 60;
  server_.lose_lease_at_heartbeat = 1;
  Worker worker(options(), server_, stop_);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(worker.run_job(j), JobEnd::lease_lost);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(server_.failed.empty());  // not ours any more: nothing to report
  EXPECT_TRUE(server_.completed.empty());
  // The next job starts clean.
  server_.lose_lease_at_heartbeat = 0;
  EXPECT_EQ(worker.run_job(job(2)), JobEnd::completed);
}

TEST_F(WorkerTest, ShutdownFailsTheJobAsRetryable) {
  Job j = job();
  j.workflow.command = {"sleep", "100"};
  Worker worker(options(), server_, stop_);
  std::thread signaller([&] {
    std::this_thread::sleep_for(1500ms);
    stop_.raise(StopFlag::kShutdown);
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(worker.run_job(j), JobEnd::failed);
  signaller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  ASSERT_EQ(server_.failed.size(), 1u);
  EXPECT_TRUE(server_.failed[0].second.retryable);
  EXPECT_EQ(server_.failed[0].second.code, "internal");
}

TEST_F(WorkerTest, HeartbeatsCarryProgress) {
  Job j = job();
  j.lease_seconds = 1;
  j.workflow.command = {"sh", "-c", "sleep 0.25; echo first_batch >&3; sleep 100"};
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(j), JobEnd::completed);
  ASSERT_FALSE(server_.heartbeats.empty());
  for (const auto& [done, total] : server_.heartbeats) {
    EXPECT_EQ(total, 6);
    EXPECT_LE(done, 6);
  }
  EXPECT_GT(server_.heartbeats.back().first, 0);
}

TEST_F(WorkerTest, WorkdirMustStayInsideTheRepository) {
  Job j = job();
  j.workflow.workdir = "../..";
  Worker worker(options(), server_, stop_);
  EXPECT_EQ(worker.run_job(j), JobEnd::failed);
  ASSERT_EQ(server_.failed.size(), 1u);
  EXPECT_NE(server_.failed[0].second.message.find("workdir"), std::string::npos);
  EXPECT_EQ(server_.failed[0].second.arm, "");  // the workflow's fault, not an arm's
}

TEST(FailureForRun, NamesTheRunAndCarriesTheTail) {
  RunResult r;
  r.outcome = RunOutcome::no_first_batch;
  r.message = "the workload exited with status 0 without writing first_batch to the fd in TTFB_PROBE_FD";
  r.output_tail = "line 1\nline 2\n";
  JobFailure f = failure_for_run(r, ScheduledRun{4, "candidate", false});
  EXPECT_EQ(f.code, "no_first_batch");
  EXPECT_EQ(f.message, r.message + " (run 4, candidate)");
  EXPECT_EQ(f.details, r.output_tail);
  EXPECT_FALSE(f.retryable);
  EXPECT_EQ(f.arm, "candidate");
}

}  // namespace
}  // namespace ttfb::worker
