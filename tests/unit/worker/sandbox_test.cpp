// The sandbox with real child processes: small shell and Python workloads written to a temporary
// directory. Timing assertions leave wide margins: the machine is shared.
#include "worker/sandbox.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <sstream>
#include <thread>

#include "test_util.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;
using testing::write_script;

class SandboxTest : public ::testing::Test {
 protected:
  WorkloadSpec spec_for(const std::string& script_text) {
    write_script(dir_ / "workload.sh", script_text);
    WorkloadSpec spec;
    spec.argv = {"/bin/sh", (dir_ / "workload.sh").string()};
    spec.cwd = dir_.str();
    spec.timeout = 20s;
    spec.kill_grace = 500ms;
    spec.scratch_root = (dir_ / "scratch").string();
    return spec;
  }
  TempDir dir_;
};

TEST_F(SandboxTest, FdProbeMeasuresTtfbAndPhasesAndStopsTheGroup) {
  auto spec = spec_for(R"(#!/bin/sh
sleep 100 &
echo $! > "$PIDFILE"
echo "phase imports" >&$TTFB_PROBE_FD
sleep 0.3
echo "phase data" >&$TTFB_PROBE_FD
sleep 0.2
echo first_batch >&$TTFB_PROBE_FD
sleep 100
)");
  spec.env["PIDFILE"] = (dir_ / "grandchild.pid").string();
  const auto start = std::chrono::steady_clock::now();
  RunResult r = run_workload(spec);
  const auto elapsed = std::chrono::steady_clock::now() - start;

  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  EXPECT_GE(r.ttfb_ms, 500.0);
  EXPECT_LT(r.ttfb_ms, 3000.0);
  ASSERT_EQ(r.phases.size(), 2u);
  EXPECT_EQ(r.phases[0].name, "imports");
  EXPECT_GE(r.phases[0].ms, 300.0);
  EXPECT_LT(r.phases[0].ms, 1500.0);
  EXPECT_EQ(r.phases[1].name, "data");
  EXPECT_GE(r.phases[1].ms, 200.0);
  EXPECT_LT(r.phases[1].ms, 1500.0);
  EXPECT_LE(r.phases[0].ms + r.phases[1].ms, r.ttfb_ms);
  EXPECT_TRUE(r.stopped_after_first_batch);
  EXPECT_EQ(r.signal, SIGTERM);  // stopped by us, right after first_batch
  EXPECT_GE(r.wall_ms, r.ttfb_ms);
  EXPECT_LT(elapsed, 10s);  // not the 100 s the script would sleep
  EXPECT_GT(r.max_rss_kb, 0);

  const pid_t grandchild = std::stoi(testing::read_file(dir_ / "grandchild.pid"));
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(testing::process_alive(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST_F(SandboxTest, WithoutStopAfterFirstBatchTheWorkloadRunsToItsEnd) {
  auto spec = spec_for("#!/bin/sh\necho first_batch >&3\nsleep 0.3\necho done\n");
  spec.stop_after_first_batch = false;
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message;
  EXPECT_FALSE(r.stopped_after_first_batch);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_GE(r.wall_ms, 300.0);
  EXPECT_LT(r.ttfb_ms, 300.0);
  EXPECT_NE(r.output_tail.find("done"), std::string::npos);
}

TEST_F(SandboxTest, StdoutRegexProbeSeesUnflushedPythonOutputAsItIsPrinted) {
  // print() to a pipe would sit in Python's buffer until exit; the pty makes it line-buffered.
  testing::write_file(dir_ / "train.py",
                      "import time\n"
                      "print('loading data')\n"
                      "time.sleep(0.3)\n"
                      "print('step 0 loss=2.31')\n"
                      "time.sleep(100)\n");
  WorkloadSpec spec;
  spec.argv = {"python3", "train.py"};
  spec.cwd = dir_.str();
  spec.probe = ProbeMode::stdout_regex;
  spec.first_batch_regex = R"(^step \d+ loss=)";
  spec.timeout = 20s;
  spec.kill_grace = 500ms;
  spec.scratch_root = (dir_ / "scratch").string();
  const auto start = std::chrono::steady_clock::now();
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  EXPECT_GE(r.ttfb_ms, 300.0);
  EXPECT_LT(r.ttfb_ms, 5000.0);
  EXPECT_TRUE(r.phases.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_NE(r.output_tail.find("loading data\n"), std::string::npos);  // raw pty: no "\r\n"
}

TEST_F(SandboxTest, HangingWorkloadIsKilledAtItsTimeout) {
  auto spec = spec_for("#!/bin/sh\ntrap '' TERM\necho started\nsleep 100\n");
  spec.timeout = 500ms;
  spec.kill_grace = 300ms;
  const auto start = std::chrono::steady_clock::now();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_timeout) << r.message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(r.message.find("500 ms"), std::string::npos) << r.message;
  EXPECT_NE(r.output_tail.find("started"), std::string::npos);
}

TEST_F(SandboxTest, CrashingWorkloadFailsWithItsStatusAndOutput) {
  auto spec = spec_for("#!/bin/sh\necho 'phase imports' >&3\necho 'Traceback: ModuleNotFoundError: torch' >&2\nexit 3\n");
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed);
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_NE(r.message.find("status 3"), std::string::npos) << r.message;
  EXPECT_NE(r.output_tail.find("ModuleNotFoundError: torch"), std::string::npos);
}

TEST_F(SandboxTest, WorkloadKilledBySignalFailsWithTheSignal) {
  auto spec = spec_for("#!/bin/sh\nkill -SEGV $$\n");
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_NE(r.message.find("SIGSEGV"), std::string::npos) << r.message;
}

TEST_F(SandboxTest, ExitZeroWithoutFirstBatchIsNoFirstBatch) {
  auto spec = spec_for("#!/bin/sh\necho 'phase imports' >&3\necho bye\n");
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::no_first_batch);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_NE(r.message.find("TTFB_PROBE_FD"), std::string::npos);
}

TEST_F(SandboxTest, StdoutModeWithoutAMatchIsNoFirstBatch) {
  auto spec = spec_for("#!/bin/sh\necho nothing to see\n");
  spec.probe = ProbeMode::stdout_regex;
  spec.first_batch_regex = "^step";
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::no_first_batch);
  EXPECT_NE(r.message.find("^step"), std::string::npos);
}

TEST_F(SandboxTest, MissingCommandFailsWith127) {
  WorkloadSpec spec;
  spec.argv = {"ttfb-no-such-trainer"};
  spec.scratch_root = (dir_ / "scratch").string();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed);
  EXPECT_EQ(r.exit_status, 127);
  EXPECT_NE(r.output_tail.find("command not found: ttfb-no-such-trainer"), std::string::npos) << r.output_tail;
}

TEST_F(SandboxTest, EnvironmentIsScrubbed) {
  ::setenv("TTFB_LAB_WORKER_TOKEN", "worker-secret", 1);
  ::setenv("TTFB_SANDBOX_TEST_LEAK", "leak", 1);
  auto spec = spec_for("#!/bin/sh\nenv\n");
  spec.env["TRAINER_DEVICE"] = "cpu";
  spec.env["TTFB_PROBE_FD"] = "99";  // the workflow cannot point the probe elsewhere
  RunResult r = run_workload(spec);
  ::unsetenv("TTFB_LAB_WORKER_TOKEN");
  ::unsetenv("TTFB_SANDBOX_TEST_LEAK");
  const std::string& env = r.output_tail;
  EXPECT_EQ(env.find("worker-secret"), std::string::npos) << env;
  EXPECT_EQ(env.find("TTFB_LAB_WORKER_TOKEN"), std::string::npos) << env;
  EXPECT_EQ(env.find("TTFB_SANDBOX_TEST_LEAK"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH=/usr/local/bin:/usr/bin:/bin\n"), std::string::npos) << env;
  EXPECT_NE(env.find("LANG=C.UTF-8\n"), std::string::npos) << env;
  EXPECT_NE(env.find("TRAINER_DEVICE=cpu\n"), std::string::npos) << env;
  EXPECT_NE(env.find("TTFB_PROBE_FD=3\n"), std::string::npos) << env;
  EXPECT_NE(env.find("HOME=" + (dir_ / "scratch").string() + "/run-"), std::string::npos) << env;
  EXPECT_NE(env.find("TMPDIR=" + (dir_ / "scratch").string() + "/run-"), std::string::npos) << env;
}

TEST_F(SandboxTest, ScratchDirectoryIsWritableAndRemovedAfterTheRun) {
  auto spec = spec_for("#!/bin/sh\necho hi > \"$HOME/x\" && echo hi > \"$TMPDIR/y\" && echo first_batch >&3\n");
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
  EXPECT_TRUE(fs::is_empty(dir_ / "scratch"));
}

TEST_F(SandboxTest, OnlyStandardFdsAndTheProbeAreOpen) {
  const int leaked = ::open("/dev/null", O_RDONLY);  // not close-on-exec
  ASSERT_GE(leaked, 0);
  auto spec = spec_for("#!/bin/sh\nls /proc/self/fd\n");  // ls lists its own dir fd too
  RunResult r = run_workload(spec);
  ::close(leaked);
  std::istringstream in(r.output_tail);
  std::set<int> fds;
  for (std::string line; std::getline(in, line);) fds.insert(std::stoi(line));
  fds.erase(*fds.rbegin());  // ls's own
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2, 3})) << r.output_tail;
}

TEST_F(SandboxTest, ResourceLimitsAreSet) {
  auto spec = spec_for("#!/bin/sh\necho nofile=$(ulimit -n) core=$(ulimit -c) cpu=$(ulimit -t) as=$(ulimit -v)\n");
  spec.limits = ResourceLimits{512, 30, 123, 0};
  RunResult r = run_workload(spec);
  EXPECT_NE(r.output_tail.find("nofile=123 core=0 cpu=30 as=524288"), std::string::npos) << r.output_tail;
}

TEST_F(SandboxTest, MemoryLimitMakesAHungryWorkloadFail) {
  testing::write_file(dir_ / "hungry.py", "x = bytearray(400 * 1024 * 1024)\nprint('allocated')\n");
  WorkloadSpec spec;
  spec.argv = {"python3", "hungry.py"};
  spec.cwd = dir_.str();
  spec.limits.memory_mb = 200;
  spec.scratch_root = (dir_ / "scratch").string();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed);
  EXPECT_NE(r.output_tail.find("MemoryError"), std::string::npos) << r.output_tail;
}

TEST_F(SandboxTest, CancelFdStopsTheRun) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  auto spec = spec_for("#!/bin/sh\nsleep 100\n");
  spec.cancel_fd = fds[0];
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    (void)!::write(fds[1], "x", 1);
  });
  const auto start = std::chrono::steady_clock::now();
  RunResult r = run_workload(spec);
  canceller.join();
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_EQ(r.outcome, RunOutcome::cancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(SandboxTest, BuildModeRunsToCompletion) {
  auto spec = spec_for("#!/bin/sh\necho building\n");
  spec.probe = ProbeMode::none;
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::completed);
  spec = spec_for("#!/bin/sh\necho 'error: no compiler' >&2\nexit 1\n");
  spec.probe = ProbeMode::none;
  r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed);
  EXPECT_EQ(r.message, "the command exited with status 1");
}

TEST_F(SandboxTest, RunsAsAnotherUserWhenRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto spec = spec_for("#!/bin/sh\necho uid=$(id -u) gid=$(id -g) groups=$(id -G)\ntouch \"$HOME/ok\" && echo home-writable\n");
  spec.run_as = lookup_user("nobody");
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::no_first_batch) << r.output_tail;
  const std::string id = "uid=" + std::to_string(spec.run_as->uid) + " gid=" + std::to_string(spec.run_as->gid) +
                         " groups=" + std::to_string(spec.run_as->gid);
  EXPECT_NE(r.output_tail.find(id), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("home-writable"), std::string::npos) << r.output_tail;
}

TEST_F(SandboxTest, ProcessesThatEscapeTheGroupAreKilledByASubreaper) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  // The escaped process writes its pid once it is in its own session; only then first_batch.
  auto spec = spec_for(R"(#!/bin/sh
setsid sh -c 'echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE" && exec sleep 100' > /dev/null 2>&1 &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done
echo first_batch >&3
sleep 100
)");
  spec.env["PIDFILE"] = (dir_ / "escaped.pid").string();
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
  const pid_t escaped = std::stoi(testing::read_file(dir_ / "escaped.pid"));
  EXPECT_TRUE(testing::process_alive(escaped));  // not in the group: the group kill missed it
  EXPECT_GE(kill_adopted_processes(), 1u);
  EXPECT_FALSE(testing::process_alive(escaped));
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(LookupUser, UnknownUserThrows) { EXPECT_THROW(lookup_user("ttfb-no-such-user"), std::runtime_error); }

}  // namespace
}  // namespace ttfb::worker
