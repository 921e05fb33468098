// The sandbox with real child processes in real bubblewrap sandboxes: small shell and Python
// workloads written to a temporary directory (bound at /ttfb/worktree), and hostile ones that try
// to reach out of it. Timing assertions leave wide margins: the machine is shared.
#include "worker/sandbox.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>
#include <optional>
#include <thread>

#include "test_util.hpp"
#include "worker/host.hpp"

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
    spec.argv = {"/bin/sh", "workload.sh"};  // in the sandbox the directory is /ttfb/worktree
    spec.cwd = dir_.str();
    spec.timeout = 20s;
    spec.kill_grace = 500ms;
    spec.scratch_root = (dir_ / "scratch").string();
    return spec;
  }
  // A marker argument no other process on the machine has: `sleep <marker>` is findable on the host.
  std::string marker() const { return std::to_string(1000 + ::getpid() % 1000) + "." + std::to_string(++markers_); }
  // Hostile workloads run as the worker would run them: as nobody when the tests are root.
  static std::optional<RunAsUser> workload_user() {
    if (::geteuid() == 0) return lookup_user("nobody");
    return std::nullopt;
  }
  TempDir dir_;
  mutable int markers_ = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

TEST_F(SandboxTest, FdProbeMeasuresTtfbAndPhasesAndStopsTheGroup) {
  const std::string m = marker();
  auto spec = spec_for(R"(#!/bin/sh
sleep $MARKER &
echo "phase imports" >&$TTFB_PROBE_FD
sleep 0.3
echo "phase data" >&$TTFB_PROBE_FD
sleep 0.2
echo first_batch >&$TTFB_PROBE_FD
sleep 100
)");
  spec.env["MARKER"] = m;
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

  EXPECT_GT(r.setup_ms, 0.0);
  EXPECT_TRUE(testing::pids_with_arg(m).empty()) << "the grandchild `sleep " << m << "` survived";
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
  EXPECT_NE(env.find("HOME=/ttfb/home\n"), std::string::npos) << env;  // private tmpfs, in the sandbox
  EXPECT_NE(env.find("TMPDIR=/tmp\n"), std::string::npos) << env;
}

// TTFB_PROBE_ID names the probe pipe as the workload sees it (fstat's device and inode of its
// descriptor 3), in the sandbox and without it; a workflow's own value is replaced.
TEST_F(SandboxTest, TheProbesIdentityIsThePipeTheWorkloadHolds) {
  auto spec = spec_for("#!/bin/sh\n"
                       "[ -n \"$TTFB_PROBE_ID\" ] || { echo 'no TTFB_PROBE_ID'; exit 3; }\n"
                       "seen=$(stat -L -c %d:%i /proc/self/fd/3)\n"
                       "[ \"$seen\" = \"$TTFB_PROBE_ID\" ] || { echo \"fd 3 is $seen, not $TTFB_PROBE_ID\"; exit 4; }\n"
                       "echo first_batch >&3\n");
  spec.env["TTFB_PROBE_ID"] = "1:2";
  for (bool sandboxed : {true, false}) {
    spec.sandbox.enabled = sandboxed;
    RunResult r = run_workload(spec);
    EXPECT_EQ(r.outcome, RunOutcome::first_batch) << (sandboxed ? "sandboxed: " : "unsandboxed: ") << r.output_tail;
  }
}

TEST_F(SandboxTest, HomeAndTmpAreWritableAndLeaveNothingOnTheHost) {
  auto spec = spec_for("#!/bin/sh\necho hi > \"$HOME/x\" && echo hi > \"$TMPDIR/y\" && echo first_batch >&3\n");
  spec.run_as = workload_user();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
  EXPECT_FALSE(fs::exists(dir_ / "scratch")) << "the sandbox needs no scratch directory on the host";

  // Without the sandbox: a per-run directory under scratch_root, removed afterwards.
  spec.sandbox.enabled = false;
  r = run_workload(spec);
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

TEST_F(SandboxTest, CpusPinEveryProcessOfTheRunWithOrWithoutTheSandbox) {
  // The last CPU this process may use: every process of the run (here a child of the workload
  // too) may run there and nowhere else; the test process itself is not pinned.
  const auto before = usable_cpus();
  const int cpu = before.back();
  for (const bool sandboxed : {true, false}) {
    auto spec = spec_for("#!/bin/sh\nsh -c 'grep Cpus_allowed_list /proc/self/status'\n");
    if (!sandboxed) spec.argv = {"/bin/sh", (dir_ / "workload.sh").string()};
    spec.sandbox.enabled = sandboxed;
    spec.sandbox.cpus = {cpu};
    spec.probe = ProbeMode::none;
    RunResult r = run_workload(spec);
    ASSERT_EQ(r.outcome, RunOutcome::completed) << r.message << "\n" << r.output_tail;
    EXPECT_NE(r.output_tail.find("Cpus_allowed_list:\t" + std::to_string(cpu) + "\n"), std::string::npos)
        << (sandboxed ? "sandboxed: " : "plain: ") << r.output_tail;
  }
  EXPECT_EQ(usable_cpus(), before) << "the worker itself stays unpinned";
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

TEST_F(SandboxTest, WithoutTheSandboxProcessesThatEscapeTheGroupAreKilledByASubreaper) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  // The escaped process writes its pid once it is in its own session; only then first_batch.
  auto spec = spec_for(R"(#!/bin/sh
setsid sh -c 'echo $$ > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE" && exec sleep 100' > /dev/null 2>&1 &
while [ ! -s "$PIDFILE" ]; do sleep 0.01; done
echo first_batch >&3
sleep 100
)");
  spec.sandbox.enabled = false;
  spec.argv = {"/bin/sh", (dir_ / "workload.sh").string()};
  spec.env["PIDFILE"] = (dir_ / "escaped.pid").string();
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
  const pid_t escaped = std::stoi(testing::read_file(dir_ / "escaped.pid"));
  EXPECT_TRUE(testing::process_alive(escaped));  // not in the group: the group kill missed it
  EXPECT_GE(kill_adopted_processes(), 1u);
  EXPECT_FALSE(testing::process_alive(escaped));
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

// ---- the sandbox against hostile workloads ----------------------------------------------------

TEST_F(SandboxTest, ADaemonLeftBehindIsGoneAfterTheRun) {
  // setsid + double fork: the daemon is in its own session, its parent gone. No subreaper here:
  // only the PID namespace can take it down.
  const std::string m = marker();
  auto spec = spec_for(R"(#!/bin/sh
setsid sh -c 'sh -c "exec sleep $MARKER" < /dev/null > /dev/null 2>&1 &' &
while ! pgrep -f "sleep $MARKER" > /dev/null; do sleep 0.01; done
echo first_batch >&3
)");
  spec.env["MARKER"] = m;
  spec.stop_after_first_batch = false;
  spec.run_as = workload_user();
  RunResult r = run_workload(spec);
  ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_TRUE(testing::pids_with_arg(m).empty()) << "the daemon `sleep " << m << "` outlived its run";
  EXPECT_EQ(kill_adopted_processes(), 0u) << "nothing of the sandbox is left for the worker to reap";
}

TEST_F(SandboxTest, SeesOnlyItsOwnProcessesAndCannotSignalAnythingOutside) {
  // A process of the test's own user outside the sandbox, and the test itself.
  const std::string m = marker();
  const pid_t neighbour = ::fork();
  ASSERT_GE(neighbour, 0);
  if (neighbour == 0) {
    ::execlp("sleep", "sleep", m.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto spec = spec_for(R"SH(#!/bin/sh
echo "processes: $(ls /proc | grep -c '^[0-9]')"
echo "my pid: $$"
kill -9 "$NEIGHBOUR" 2>/dev/null && echo "killed neighbour" || echo "neighbour: no such process"
kill -9 "$WORKER" 2>/dev/null && echo "killed worker" || echo "worker: no such process"
kill -9 -1
echo first_batch >&3
)SH");
  spec.env["NEIGHBOUR"] = std::to_string(neighbour);
  spec.env["WORKER"] = std::to_string(::getpid());
  RunResult r = run_workload(spec);  // as root when the tests are: even root sees nothing outside
  EXPECT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
  EXPECT_NE(r.output_tail.find("neighbour: no such process"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("worker: no such process"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("my pid: 2\n"), std::string::npos) << r.output_tail;  // init is 1
  // init, sh, and the command substitution's subshell, ls and grep at most.
  const auto at = r.output_tail.find("processes: ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_LE(std::stoi(r.output_tail.substr(at + 11)), 5) << r.output_tail;
  EXPECT_TRUE(testing::process_alive(neighbour)) << "kill -9 -1 in the sandbox reached a process outside";
  ::kill(neighbour, SIGKILL);
  ::waitpid(neighbour, nullptr, 0);
}

TEST_F(SandboxTest, NetworkIsLoopbackOnlyUnlessTheWorkflowAsksForTheHost) {
  // A TCP port on the host's 127.0.0.1, as PostgreSQL or the server would listen.
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  testing::write_file(dir_ / "net.py", R"(import os, socket
port = int(os.environ["PORT"])
try:
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    print("host port: connected")
except OSError as e:
    print("host port: refused", e)
own = socket.socket()
own.bind(("127.0.0.1", 0))
own.listen()
socket.create_connection(own.getsockname(), timeout=2).close()
print("own loopback: works")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
    print("internet: connected")
except OSError as e:
    print("internet: unreachable", e)
)");
  WorkloadSpec spec;
  spec.argv = {"python3", "net.py"};
  spec.cwd = dir_.str();
  spec.probe = ProbeMode::none;
  spec.env["PORT"] = std::to_string(ntohs(addr.sin_port));
  spec.run_as = workload_user();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::completed) << r.message << "\n" << r.output_tail;
  EXPECT_NE(r.output_tail.find("host port: refused"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("own loopback: works"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("internet: unreachable"), std::string::npos) << r.output_tail;

  spec.sandbox.host_network = true;  // network = "host" in the workflow
  r = run_workload(spec);
  EXPECT_NE(r.output_tail.find("host port: connected"), std::string::npos) << r.output_tail;
  ::close(listener);
}

TEST_F(SandboxTest, CannotReadAnythingOutsideItsSandbox) {
  // What a worker has around a workload: a token only its owner may read, another job's
  // worktree, the cache with mirrors.
  TempDir outside;
  testing::write_file(outside / "worker-token", "secret-token-123\n");
  fs::permissions(outside / "worker-token", fs::perms::owner_read | fs::perms::owner_write);
  testing::write_file(outside / "cache" / "worktrees" / "other" / "train.py", "other-job-code-456\n");
  testing::write_file(outside / "cache" / "mirrors" / "repo.git" / "config", "mirror-config-789\n");
  auto spec = spec_for(R"(#!/bin/sh
for f in "$OUTSIDE/worker-token" "$OUTSIDE/cache/worktrees/other/train.py" "$OUTSIDE/cache/mirrors/repo.git/config" \
         /root /home /var /run /work /srv; do
  if cat "$f" 2>/dev/null || ls "$f" 2>/dev/null; then echo "READ $f"; else echo "denied $f"; fi
done
ls /
)");
  spec.env["OUTSIDE"] = outside.str();
  spec.probe = ProbeMode::none;
  spec.run_as = workload_user();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::completed) << r.message << "\n" << r.output_tail;
  EXPECT_EQ(r.output_tail.find("READ"), std::string::npos) << r.output_tail;
  for (const char* secret : {"secret-token-123", "other-job-code-456", "mirror-config-789"}) {
    EXPECT_EQ(r.output_tail.find(secret), std::string::npos) << r.output_tail;
  }
  EXPECT_NE(r.output_tail.find("denied " + outside.str() + "/worker-token"), std::string::npos) << r.output_tail;
}

TEST_F(SandboxTest, TmpAndHomeFloodingIsBoundedAndDoesNotTouchTheHost) {
  struct statvfs before {};
  ASSERT_EQ(::statvfs("/tmp", &before), 0);
  auto spec = spec_for(R"(#!/bin/sh
dd if=/dev/zero of=/tmp/flood bs=1M count=64 2>&1 | grep -v records
echo "tmp flood: $(stat -c %s /tmp/flood) bytes"
dd if=/dev/zero of="$HOME/flood" bs=1M count=64 2>&1 | grep -v records
echo "home flood: $(stat -c %s "$HOME/flood") bytes"
)");
  spec.probe = ProbeMode::none;
  spec.sandbox.tmp_mb = 8;
  spec.sandbox.home_mb = 4;
  spec.run_as = workload_user();
  RunResult r = run_workload(spec);
  EXPECT_NE(r.output_tail.find("No space left on device"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("tmp flood: " + std::to_string(8 * 1024 * 1024) + " bytes"), std::string::npos) << r.output_tail;
  EXPECT_NE(r.output_tail.find("home flood: " + std::to_string(4 * 1024 * 1024) + " bytes"), std::string::npos) << r.output_tail;
  struct statvfs after {};
  ASSERT_EQ(::statvfs("/tmp", &after), 0);
  // The host's /tmp did not take the 64 MB (others on the machine may write a little meanwhile).
  const double before_mb = static_cast<double>(before.f_bavail) * before.f_frsize / 1e6;
  const double after_mb = static_cast<double>(after.f_bavail) * after.f_frsize / 1e6;
  EXPECT_GT(after_mb, before_mb - 32) << "host /tmp free: " << before_mb << " MB -> " << after_mb << " MB";
}

TEST_F(SandboxTest, AForkBombIsContainedAndEverythingCarriesOn) {
  const std::string m = marker();
  auto spec = spec_for("#!/bin/sh\nsleep $MARKER &\nb() { b | b & }\nb\nsleep 100\n");
  spec.env["MARKER"] = m;
  spec.limits.nproc = 64;
  spec.timeout = 3s;
  spec.kill_grace = 500ms;
  spec.run_as = workload_user();
  const auto start = std::chrono::steady_clock::now();
  RunResult r = run_workload(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  EXPECT_NE(r.outcome, RunOutcome::first_batch);
  EXPECT_TRUE(testing::pids_with_arg(m).empty()) << "processes of the fork bomb's sandbox survived";
  // The test process (the worker, in real life) forks and runs as before.
  EXPECT_EQ(testing::sh("echo still here", dir_.path()), "still here");
  RunResult next = run_workload(spec_for("#!/bin/sh\necho first_batch >&3\n"));
  EXPECT_EQ(next.outcome, RunOutcome::first_batch) << next.output_tail;
}

TEST_F(SandboxTest, ReadOnlyWorktreeCannotBeWritten) {
  auto spec = spec_for("#!/bin/sh\necho planted > planted.pyc && echo wrote || echo refused\n");
  spec.probe = ProbeMode::none;
  spec.sandbox.worktree_writable = false;
  RunResult r = run_workload(spec);  // even as root
  EXPECT_NE(r.output_tail.find("refused"), std::string::npos) << r.output_tail;
  EXPECT_FALSE(fs::exists(dir_ / "planted.pyc"));
}

TEST_F(SandboxTest, TtfbExcludesTheSandboxSetUp) {
  // The workload reports first_batch at once: what TTFB holds is its exec and one echo, while the
  // sandbox's set-up (bwrap: namespaces, mounts) comes before the stamp.
  std::vector<double> ttfb, setup;
  for (int i = 0; i < 7; ++i) {
    RunResult r = run_workload(spec_for("#!/bin/sh\necho first_batch >&3\n"));
    ASSERT_EQ(r.outcome, RunOutcome::first_batch) << r.output_tail;
    ttfb.push_back(r.ttfb_ms);
    setup.push_back(r.setup_ms);
    EXPECT_GE(r.wall_ms, r.ttfb_ms);
  }
  EXPECT_GT(median(setup), 0.0);
  EXPECT_LT(median(ttfb), median(setup)) << "ttfb " << median(ttfb) << " ms, set-up " << median(setup) << " ms";
}

TEST_F(SandboxTest, ASandboxThatCannotStartFailsTheRunWithBwrapsWords) {
  auto spec = spec_for("#!/bin/sh\necho first_batch >&3\n");
  spec.sandbox.init = (dir_ / "no-such-init").string();
  RunResult r = run_workload(spec);
  EXPECT_EQ(r.outcome, RunOutcome::workload_failed);
  EXPECT_NE(r.message.find("the sandbox could not start"), std::string::npos) << r.message;
  EXPECT_NE(r.output_tail.find("bwrap"), std::string::npos) << r.output_tail;
}

TEST(CheckSandbox, WorksHereAndSaysWhatIsMissingElsewhere) {
  EXPECT_EQ(check_sandbox({}, std::nullopt), "");
  if (::geteuid() == 0) {
    EXPECT_EQ(check_sandbox({}, lookup_user("nobody")), "");
  }
  SandboxOptions missing;
  missing.bwrap = "/nonexistent/bwrap";
  EXPECT_NE(check_sandbox(missing, std::nullopt).find("apt-get install bubblewrap"), std::string::npos);
}

TEST(LookupUser, UnknownUserThrows) { EXPECT_THROW(lookup_user("ttfb-no-such-user"), std::runtime_error); }

}  // namespace
}  // namespace ttfb::worker
