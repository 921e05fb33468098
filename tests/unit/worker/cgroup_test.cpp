// Per-run cgroups on this host's real cgroup hierarchies, with real workloads (sh, Python) run by
// run_workload, in the sandbox and without it. They need root (only root may make groups here);
// where the host offers a memory or pids controller to root, the worker must find it.
#include "worker/cgroup.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_util.hpp"
#include "worker/sandbox.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TempDir;

// Independently of cgroup.cpp: does /proc/mounts show a hierarchy with this controller (a v1
// mount naming it, or a v2 root offering it)?
bool host_offers(const std::string& controller) {
  std::ifstream mounts("/proc/mounts");
  std::string dev, point, type, options;
  while (mounts >> dev >> point >> type >> options) {
    std::string rest;
    std::getline(mounts, rest);
    if (type == "cgroup" && ("," + options + ",").find("," + controller + ",") != std::string::npos) return true;
    if (type == "cgroup2") {
      std::ifstream c(point + "/cgroup.controllers");
      for (std::string w; c >> w;) {
        if (w == controller) return true;
      }
    }
  }
  return false;
}

std::vector<std::string> runs_under(const std::string& base) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(base, ec)) {
    if (e.is_directory()) out.push_back(e.path().filename().string());
  }
  return out;
}

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "making cgroups needs root here";
    cgroups_ = Cgroups::detect("cgroup-test", &report_);
    if (host_offers("memory") || host_offers("pids")) {
      ASSERT_TRUE(cgroups_) << "the host has memory or pids cgroups, yet: " << report_;
    }
    if (!cgroups_) GTEST_SKIP() << "no cgroups on this host: " << report_;
  }
  WorkloadSpec spec_for(const std::string& file, const std::string& text, bool sandboxed) {
    testing::write_file(dir_ / file, text);
    WorkloadSpec spec;
    spec.argv = {file.ends_with(".py") ? "python3" : "/bin/sh", sandboxed ? file : (dir_ / file).string()};
    spec.cwd = dir_.str();
    spec.timeout = 30s;
    spec.kill_grace = 500ms;
    spec.scratch_root = (dir_ / "scratch").string();
    spec.sandbox.enabled = sandboxed;
    spec.sandbox.cgroups = cgroups_;
    if (sandboxed) spec.run_as = lookup_user("nobody");
    return spec;
  }
  TempDir dir_;
  std::string report_;
  std::shared_ptr<Cgroups> cgroups_;
};

TEST_F(CgroupTest, DetectMakesTheWorkersGroupsAndRemovesThemAtTheEnd) {
  std::vector<std::string> bases;
  for (const auto& h : cgroups_->hierarchies()) {
    EXPECT_TRUE(fs::is_directory(h.base)) << h.base;
    EXPECT_NE(h.base.find("ttfb-lab-" + std::to_string(::getpid()) + "-cgroup-test"), std::string::npos) << h.base;
    bases.push_back(h.base);
  }
  EXPECT_EQ(cgroups_->limits("memory"), host_offers("memory")) << report_;
  EXPECT_EQ(cgroups_->limits("pids"), host_offers("pids")) << report_;
  EXPECT_NE(report_.find("under"), std::string::npos) << report_;
  cgroups_.reset();
  for (const auto& b : bases) EXPECT_FALSE(fs::exists(b)) << b << " was left behind";
}

TEST_F(CgroupTest, MemoryOfAllTheRunsProcessesTogetherIsLimitedAndTheMessageSaysSo) {
  if (!cgroups_->limits("memory")) GTEST_SKIP() << report_;
  // Three processes of 60 MB each: each alone is under the 120 MB limit (RLIMIT_AS, per process,
  // would let them all live); together they are not.
  auto spec = spec_for("hungry.py", R"(import os, sys, time
children = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        block = b"x" * (60 * 1024 * 1024)
        time.sleep(3)
        os._exit(0)
    children.append(pid)
killed = 0
for pid in children:
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        killed += 1
print("killed", killed, flush=True)
sys.exit(3 if killed else 0)
)",
                       true);
  spec.limits.memory_mb = 120;
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::workload_failed) << r.message << "\n" << r.output_tail;
  EXPECT_GE(r.cgroup.oom_kills, 1u) << r.output_tail;
  EXPECT_NE(r.message.find("memory limit of 120 MiB"), std::string::npos) << r.message;
  EXPECT_GT(r.cgroup.peak_memory_bytes, 60ull * 1024 * 1024);
  EXPECT_LE(r.cgroup.peak_memory_bytes, 121ull * 1024 * 1024);

  // The same workload with room for all three: no kill, and the peak is all of them together.
  spec.limits.memory_mb = 400;
  RunResult roomy = run_workload(spec);
  EXPECT_EQ(roomy.outcome, RunOutcome::no_first_batch) << roomy.message << "\n" << roomy.output_tail;
  EXPECT_EQ(roomy.cgroup.oom_kills, 0u);
  EXPECT_GT(roomy.cgroup.peak_memory_bytes, 180ull * 1024 * 1024);
}

TEST_F(CgroupTest, TmpfsFloodingCountsAgainstTheRunsMemory) {
  if (!cgroups_->limits("memory")) GTEST_SKIP() << report_;
  // /tmp is a private tmpfs of 1 GiB; what is written there is the run's memory.
  auto spec = spec_for("flood.sh", "#!/bin/sh\nhead -c 300000000 /dev/zero > /tmp/flood\necho wrote\n", true);
  spec.limits.memory_mb = 100;
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed) << r.message << "\n" << r.output_tail;
  EXPECT_EQ(r.output_tail.find("wrote"), std::string::npos) << r.output_tail;
  EXPECT_LE(r.cgroup.peak_memory_bytes, 101ull * 1024 * 1024);
}

TEST_F(CgroupTest, PidsLimitStopsForksOfARootWorkloadThatRlimitsDoNotStop) {
  if (!cgroups_->limits("pids")) GTEST_SKIP() << report_;
  // Without the sandbox and as root: RLIMIT_NPROC does not apply to root, pids.max does.
  auto spec = spec_for("forks.py", R"(import os, time
made = 0
for i in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    made += 1
print("made", made, flush=True)
)",
                       false);
  spec.limits.nproc = 20;
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::no_first_batch) << r.message << "\n" << r.output_tail;
  const auto at = r.output_tail.find("made ");
  ASSERT_NE(at, std::string::npos) << r.output_tail;
  EXPECT_LT(std::stoi(r.output_tail.substr(at + 5)), 20) << r.output_tail;
  EXPECT_GE(r.cgroup.forks_refused, 1u);
  EXPECT_NE(r.message.find("limit of 20 processes"), std::string::npos) << r.message;
}

TEST_F(CgroupTest, WithoutTheSandboxADaemonThatLeftItsSessionDiesWithTheRun) {
  // No subreaper, no PID namespace: only the run's cgroup still holds the daemon.
  auto spec = spec_for("daemon.sh", R"(#!/bin/sh
setsid sh -c 'echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE" && exec sleep 100' > /dev/null 2>&1 < /dev/null &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done
echo first_batch >&3
)",
                       false);
  spec.env["PIDFILE"] = (dir_ / "daemon.pid").string();
  spec.stop_after_first_batch = false;
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  const pid_t daemon = std::stoi(testing::read_file(dir_ / "daemon.pid"));
  // Killed and gone from the group; it may still be a zombie until init reaps it.
  std::string state;
  std::ifstream stat("/proc/" + std::to_string(daemon) + "/stat");
  std::string line;
  if (std::getline(stat, line)) state = line.substr(line.rfind(')') + 2, 1);
  EXPECT_TRUE(state.empty() || state == "Z") << "the daemon " << daemon << " outlived its run (state " << state << ")";
}

TEST_F(CgroupTest, UnderASubreaperTheKilledDaemonIsReapedAndItsGroupStillGoes) {
  // The worker is a child subreaper: the daemon, killed by the cgroup, is a zombie child of this
  // process until reaped. The run's group must not wait for that (a zombie is not a member).
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  auto spec = spec_for("daemon.sh", R"(#!/bin/sh
setsid sh -c 'echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE" && exec sleep 100' > /dev/null 2>&1 < /dev/null &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done
echo first_batch >&3
)",
                       false);
  spec.env["PIDFILE"] = (dir_ / "daemon.pid").string();
  spec.stop_after_first_batch = false;
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  // Were the zombie a member, the group could not be removed (rmdir gives up after 2 s).
  for (const auto& h : cgroups_->hierarchies()) EXPECT_TRUE(runs_under(h.base).empty()) << h.base;
  EXPECT_GE(kill_adopted_processes(), 1u) << "the killed daemon is reaped by the subreaper";
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_F(CgroupTest, CpuQuotaHoldsABusyRunToItsShare) {
  if (!cgroups_->limits("cpu")) GTEST_SKIP() << report_;
  auto spec = spec_for("busy.py", R"(import time
end = time.monotonic() + 1.5
while time.monotonic() < end:
    pass
)",
                       false);
  spec.limits.cpus = 0.25;
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::no_first_batch) << r.message;
  // A quarter of a CPU for 1.5 s is about 375 ms of CPU; unthrottled it would be ~1500 ms.
  EXPECT_LT(r.cpu_ms, 0.5 * r.wall_ms) << "cpu " << r.cpu_ms << " ms in " << r.wall_ms << " ms";
  EXPECT_GT(r.cpu_ms, 50.0);
}

TEST_F(CgroupTest, CpuTimeToTheFirstBatchCountsEveryProcessAndNoWaiting) {
  // A child process works (a fixed amount of work, so a busy machine cannot shrink it), the
  // workload then sleeps 400 ms and reports its first batch, then works on (stopped there).
  auto text = R"(import subprocess, sys, time
subprocess.run([sys.executable, "-c", "x = 0\nfor i in range(3_000_000): x += i"], check=True)
time.sleep(0.4)
import os
os.write(3, b"first_batch\n")
while True:
    pass
)";
  for (bool sandboxed : {false, true}) {
    SCOPED_TRACE(sandboxed ? "in the sandbox" : "without it");
    auto spec = spec_for("work.py", text, sandboxed);
    RunResult r = run_workload(spec);
    ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message;
    ASSERT_TRUE(r.cpu_to_first_batch_ms.has_value()) << "cgroups here count CPU time: " << report_;
    EXPECT_GT(*r.cpu_to_first_batch_ms, 30.0) << "the child's 3e6 additions count";
    EXPECT_LT(*r.cpu_to_first_batch_ms, r.ttfb_ms - 300.0) << "the 400 ms sleep is no CPU time (ttfb " << r.ttfb_ms << ")";
  }
}

TEST_F(CgroupTest, EachRunsGroupIsRemovedWhenItEnds) {
  auto spec = spec_for("quick.sh", "#!/bin/sh\nsleep 100 &\necho first_batch >&3\n", true);
  for (int i = 0; i < 3; ++i) {
    RunResult r = run_workload(spec);
    ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  }
  for (const auto& h : cgroups_->hierarchies()) EXPECT_TRUE(runs_under(h.base).empty()) << h.base;
}

TEST_F(CgroupTest, GroupsOfAWorkerThatDiedAreKilledAndRemovedAtTheNextStart) {
  // A dead worker's pid: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  std::vector<fs::path> stale;
  for (const auto& h : cgroups_->hierarchies()) {
    const fs::path d = fs::path(h.base).parent_path() / ("ttfb-lab-" + std::to_string(dead) + "-gone") / "run-7";
    fs::create_directories(d);
    stale.push_back(d.parent_path());
  }
  // A process still inside one of them, the way a killed worker leaves its last run.
  const pid_t left = ::fork();
  if (left == 0) {
    ::pause();
    ::_exit(0);
  }
  {
    std::ofstream procs(stale.front() / "run-7" / "cgroup.procs");
    procs << left;
  }
  std::string report;
  auto next = Cgroups::detect("cgroup-test-2", &report);
  ASSERT_TRUE(next) << report;
  for (const auto& s : stale) EXPECT_FALSE(fs::exists(s)) << s << " was not removed";
  int status = 0;
  ASSERT_EQ(::waitpid(left, &status, 0), left);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

}  // namespace
}  // namespace ttfb::worker
