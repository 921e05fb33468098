// run_process against real child processes: exit codes, output, stdin, environment, timeouts
// that take the whole process group down, and an executable that does not exist.
#include "common/process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

namespace ttfb {
namespace {

using namespace std::chrono_literals;

// Alive and not a zombie (a killed orphan may wait a moment for its new parent to reap it).
bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

TEST(RunProcess, ReportsExitCodeAndOutput) {
  auto r = run_process({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(r.output_tail(), "err");
}

TEST(RunProcess, SuccessIsOk) {
  auto r = run_process({"true"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.ok());
}

TEST(RunProcess, ReportsTheSignalThatEndedTheChild) {
  auto r = run_process({"sh", "-c", "kill -SEGV $$"});
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_FALSE(r.ok());
}

TEST(RunProcess, FeedsStdin) {
  ProcessOptions options;
  options.stdin_data = "hello\nworld\n";
  auto r = run_process({"wc", "-l"}, options);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(std::stoi(r.out), 2);
}

TEST(RunProcess, LargeStdinAndOutputDoNotDeadlock) {
  ProcessOptions options;
  options.stdin_data = std::string(4 << 20, 'x');  // far beyond a pipe buffer both ways
  options.max_output_bytes = 8 << 20;
  auto r = run_process({"cat"}, options);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.out.size(), options.stdin_data.size());
}

TEST(RunProcess, ChildThatIgnoresStdinDoesNotKillUs) {
  ProcessOptions options;
  options.stdin_data = std::string(1 << 20, 'x');
  auto r = run_process({"true"}, options);  // exits without reading: our writes get EPIPE
  EXPECT_TRUE(r.ok());
}

TEST(RunProcess, BoundsCapturedOutputKeepingHeadAndTail) {
  ProcessOptions options;
  options.max_output_bytes = 1000;
  auto r = run_process({"sh", "-c", "echo FIRST; head -c 100000 /dev/zero | tr '\\0' y; echo; echo LAST"}, options);
  ASSERT_TRUE(r.ok());
  EXPECT_LT(r.out.size(), 1100u);
  EXPECT_EQ(r.out.rfind("FIRST", 0), 0u);
  EXPECT_NE(r.out.find("LAST"), std::string::npos);
  EXPECT_NE(r.out.find("bytes dropped"), std::string::npos);
  EXPECT_GT(r.dropped_bytes, 90000u);
}

TEST(RunProcess, ReplacesTheEnvironment) {
  ::setenv("TTFB_PROCESS_TEST_SECRET", "s3cret", 1);
  ProcessOptions options;
  options.env = std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}, {"ONLY", "this"}};
  auto r = run_process({"env"}, options);
  ::unsetenv("TTFB_PROCESS_TEST_SECRET");
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_NE(r.out.find("ONLY=this"), std::string::npos);
  EXPECT_EQ(r.out.find("TTFB_PROCESS_TEST_SECRET"), std::string::npos);
  EXPECT_EQ(r.out.find("HOME="), std::string::npos);
}

TEST(RunProcess, InheritsTheEnvironmentByDefault) {
  ::setenv("TTFB_PROCESS_TEST_VAR", "inherited", 1);
  auto r = run_process({"sh", "-c", "echo $TTFB_PROCESS_TEST_VAR"});
  ::unsetenv("TTFB_PROCESS_TEST_VAR");
  EXPECT_EQ(r.out, "inherited\n");
}

TEST(RunProcess, RunsInTheGivenDirectory) {
  ProcessOptions options;
  options.cwd = "/usr";
  auto r = run_process({"pwd"}, options);
  EXPECT_EQ(r.out, "/usr\n");
}

TEST(RunProcess, MissingDirectoryGives127) {
  ProcessOptions options;
  options.cwd = "/nonexistent/dir";
  auto r = run_process({"true"}, options);
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("/nonexistent/dir"), std::string::npos);
}

TEST(RunProcess, MissingBinaryGives127WithAMessage) {
  auto r = run_process({"ttfb-no-such-binary-xyz", "arg"});
  EXPECT_EQ(r.exit_code, 127);
  EXPECT_NE(r.err.find("ttfb-no-such-binary-xyz"), std::string::npos);
  EXPECT_NE(r.err.find("command not found"), std::string::npos);
}

TEST(RunProcess, TimeoutKillsTheChildAndItsGrandchildren) {
  ProcessOptions options;
  options.timeout = 300ms;
  options.kill_grace = 300ms;
  // The shell prints its background child's pid, then waits: both must be gone after the timeout.
  const auto start = std::chrono::steady_clock::now();
  auto r = run_process({"sh", "-c", "sleep 100 & echo $!; sleep 100"}, options);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_LT(elapsed, 5s);
  const pid_t grandchild = std::stoi(r.out);
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(process_alive(grandchild)) << "grandchild " << grandchild << " survived";
}

TEST(RunProcess, TimeoutEscalatesToSigkillForAChildIgnoringSigterm) {
  ProcessOptions options;
  options.timeout = 200ms;
  options.kill_grace = 200ms;
  const auto start = std::chrono::steady_clock::now();
  auto r = run_process({"sh", "-c", "trap '' TERM; sleep 100 & wait; sleep 100"}, options);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunProcess, BackgroundLeftoversDoNotHoldTheCallerHostage) {
  // The leader exits at once, its background child keeps stdout open: the group is killed.
  const auto start = std::chrono::steady_clock::now();
  auto r = run_process({"sh", "-c", "sleep 100 & echo started"});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.out, "started\n");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunProcess, CancelFdStopsTheChild) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    (void)!::write(fds[1], "x", 1);
  });
  ProcessOptions options;
  options.cancel_fd = fds[0];
  options.kill_grace = 200ms;
  const auto start = std::chrono::steady_clock::now();
  auto r = run_process({"sleep", "100"}, options);
  canceller.join();
  ::close(fds[0]);
  ::close(fds[1]);
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunProcess, OutputTailTakesTheEndOfStderrThenStdout) {
  ProcessResult r;
  r.out = "line 1\nline 2\n";
  EXPECT_EQ(r.output_tail(), "line 1\nline 2");
  r.err = std::string(5000, 'a') + "\nthe error\n";
  EXPECT_EQ(r.output_tail(100), std::string(90, 'a') + "\nthe error");
  EXPECT_EQ(r.output_tail(12), "the error");  // "aa\nthe error": starts at the line
}

TEST(ExecCandidates, SearchesEveryPathEntry) {
  EXPECT_EQ(exec_candidates("git", "/a:/b"), (std::vector<std::string>{"/a/git", "/b/git"}));
  EXPECT_EQ(exec_candidates("./x.sh", "/a"), (std::vector<std::string>{"./x.sh"}));
  EXPECT_EQ(exec_candidates("x", "/a::/b"), (std::vector<std::string>{"/a/x", "./x", "/b/x"}));
  EXPECT_TRUE(exec_candidates("", "/a").empty());
}

}  // namespace
}  // namespace ttfb
