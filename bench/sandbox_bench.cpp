// What the bubblewrap sandbox costs per run, and that TTFB does not pay it. Each repetition runs
// bench/first_batch_probe.cpp (a static program that writes first_batch at once) through the
// worker's own run_workload, plainly (--no-sandbox) and in the sandbox, interleaved:
//
//   plain      fork -> first_batch                         (TTFB without a sandbox: fork + exec)
//   sandbox    fork of bwrap -> "ready" (set-up) -> "go" -> first_batch (the TTFB reported)
//
// and prints medians: the sandbox's set-up (its overhead per run, goal < 5 ms), fork to the
// workload's first instruction in both (and their ratio), and the TTFB each reports (equal when
// the set-up is kept out of TTFB).
//
// and, for context, the whole call's cost (run_workload to its return: set-up, run, teardown) for
// plain, sandbox, and sandbox with the per-run cgroups the worker makes where the host has them;
// and bwrap's own floor on this host: `bwrap` with one bind of /usr running /bin/true, against
// /bin/true alone (spawn to reaped).
//
//   ttfb_sandbox_bench [--runs 200] [--user nobody]
//   ttfb_sandbox_bench --workload DIR [--runs 40] -- COMMAND ARGS...
//
// With --workload: a real workload instead (e.g. the example trainer, examples/trainer), run in
// DIR plainly and in the sandbox, interleaved, to see whether the sandbox changes the TTFB it
// measures or its spread (per-run namespaces torn down while the next run starts would show as
// noise): medians, and the robust spread (MAD / median) and log-sd of each.
//
// Medians, because these machines are shared: a run that another process delayed moves a mean,
// not a median.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "worker/sandbox.hpp"

namespace {

namespace fs = std::filesystem;
using ttfb::worker::RunOutcome;
using ttfb::worker::RunResult;
using ttfb::worker::WorkloadSpec;

constexpr double kGoalSetupMs = 5.0;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// posix_spawn to reaped, in ms; -1 when the program failed.
double spawn_ms(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const auto start = Clock::now();
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  const double ms = ms_since(start);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ms : -1;
}

double mad_ratio(const std::vector<double>& v) {
  const double m = median(v);
  std::vector<double> dev;
  for (double x : v) dev.push_back(std::fabs(x - m));
  return m > 0 ? 1.4826 * median(dev) / m : 0.0;
}

double log_sd(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double mean = 0;
  for (double x : v) mean += std::log(x);
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (std::log(x) - mean) * (std::log(x) - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

int real_workload(WorkloadSpec spec, int runs) {
  std::vector<double> plain, boxed;
  for (int i = 0; i < runs + 1; ++i) {  // the first of each is a warm-up
    for (const bool sandboxed : {i % 2 == 0, i % 2 != 0}) {  // alternate which goes first
      spec.sandbox.enabled = sandboxed;
      const RunResult r = ttfb::worker::run_workload(spec);
      if (r.outcome != RunOutcome::first_batch) {
        std::fprintf(stderr, "ttfb_sandbox_bench: a %s run failed: %s\n%s\n", sandboxed ? "sandboxed" : "plain",
                     r.message.c_str(), r.output_tail.c_str());
        return 1;
      }
      if (i > 0) (sandboxed ? boxed : plain).push_back(r.ttfb_ms);
    }
  }
  std::printf("real workload, %d runs each, interleaved (TTFB ms)\n\n", runs);
  std::printf("| | median | p90 | MAD / median | log-sd |\n| --- | --- | --- | --- | --- |\n");
  std::printf("| plain | %.1f | %.1f | %.2f%% | %.3f |\n", median(plain), percentile(plain, 0.9), 100 * mad_ratio(plain),
              log_sd(plain));
  std::printf("| sandbox | %.1f | %.1f | %.2f%% | %.3f |\n\n", median(boxed), percentile(boxed, 0.9),
              100 * mad_ratio(boxed), log_sd(boxed));
  std::printf("sandbox / plain: median %.3f, MAD/median %.2f, log-sd %.2f\n", median(boxed) / median(plain),
              mad_ratio(plain) > 0 ? mad_ratio(boxed) / mad_ratio(plain) : 0.0,
              log_sd(plain) > 0 ? log_sd(boxed) / log_sd(plain) : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 200;
  std::optional<ttfb::worker::RunAsUser> user;
  if (::geteuid() == 0) user = ttfb::worker::lookup_user("nobody");
  std::string workload_dir;
  std::vector<std::string> workload_argv;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      workload_argv.assign(argv + i + 1, argv + argc);
      break;
    }
    if (std::strcmp(argv[i], "--workload") == 0 && i + 1 < argc) {
      workload_dir = argv[++i];
    } else if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
      user = ttfb::worker::lookup_user(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--runs N] [--user NAME] [--workload DIR -- COMMAND ARGS...]\n", argv[0]);
      return 2;
    }
  }
  if (!workload_dir.empty()) {
    if (workload_argv.empty()) {
      std::fprintf(stderr, "ttfb_sandbox_bench: --workload needs a command after --\n");
      return 2;
    }
    WorkloadSpec spec;
    spec.argv = workload_argv;
    spec.cwd = fs::absolute(workload_dir).string();
    spec.run_as = user;
    spec.timeout = std::chrono::seconds(120);
    std::string report;
    spec.sandbox.cgroups = ttfb::worker::Cgroups::detect("sandbox-bench", &report);
    return real_workload(spec, runs);
  }
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const fs::path probe = self.parent_path() / "ttfb_first_batch_probe";
  if (ec || !fs::exists(probe)) {
    std::fprintf(stderr, "ttfb_sandbox_bench: %s is missing (built beside this program)\n", probe.c_str());
    return 1;
  }
  if (const std::string problem = ttfb::worker::check_sandbox({}, user); !problem.empty()) {
    std::fprintf(stderr, "ttfb_sandbox_bench: %s\n", problem.c_str());
    return 1;
  }

  WorkloadSpec spec;
  spec.argv = {"./" + probe.filename().string()};
  spec.cwd = probe.parent_path().string();
  spec.sandbox.worktree_writable = false;
  spec.run_as = user;
  spec.timeout = std::chrono::seconds(30);
  spec.kill_grace = std::chrono::milliseconds(100);

  std::string cgroup_report;
  const auto cgroups = ttfb::worker::Cgroups::detect("sandbox-bench", &cgroup_report);
  std::vector<double> plain_ttfb, sandbox_setup, sandbox_ttfb, sandbox_total, plain_call, sandbox_call, cgroup_call;
  const std::string bwrap = "/usr/bin/bwrap";
  const std::vector<std::string> bwrap_true{bwrap, "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
                                            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
                                            "--proc", "/proc", "--dev", "/dev", "/bin/true"};
  std::vector<double> true_alone, bwrap_floor;
  for (int i = 0; i < runs; ++i) {
    spec.sandbox.enabled = false;
    spec.sandbox.cgroups = nullptr;
    auto t = Clock::now();
    const RunResult plain = ttfb::worker::run_workload(spec);
    plain_call.push_back(ms_since(t));
    spec.sandbox.enabled = true;
    t = Clock::now();
    const RunResult boxed = ttfb::worker::run_workload(spec);
    sandbox_call.push_back(ms_since(t));
    RunResult grouped = boxed;
    if (cgroups) {
      spec.sandbox.cgroups = cgroups;
      t = Clock::now();
      grouped = ttfb::worker::run_workload(spec);
      cgroup_call.push_back(ms_since(t));
    }
    if (plain.outcome != RunOutcome::first_batch || boxed.outcome != RunOutcome::first_batch ||
        grouped.outcome != RunOutcome::first_batch) {
      std::fprintf(stderr, "ttfb_sandbox_bench: a run failed: %s / %s / %s\n%s\n", plain.message.c_str(),
                   boxed.message.c_str(), grouped.message.c_str(), boxed.output_tail.c_str());
      return 1;
    }
    if (::access(bwrap.c_str(), X_OK) == 0) {
      true_alone.push_back(spawn_ms({"/bin/true"}));
      bwrap_floor.push_back(spawn_ms(bwrap_true));
    }
    plain_ttfb.push_back(plain.ttfb_ms);
    sandbox_setup.push_back(boxed.setup_ms);
    sandbox_ttfb.push_back(boxed.ttfb_ms);
    sandbox_total.push_back(boxed.setup_ms + boxed.ttfb_ms);
  }
  const double plain_ms = median(plain_ttfb);
  const double total_ms = median(sandbox_total);
  const double setup_ms = median(sandbox_setup);
  std::printf("sandbox overhead, %d runs each, interleaved; workload %s as %s (medians, ms)\n\n", runs,
              probe.filename().c_str(), user ? user->name.c_str() : "this user");
  std::printf("| measure | median | p90 |\n| --- | --- | --- |\n");
  std::printf("| plain exec: fork -> first_batch | %.2f | %.2f |\n", plain_ms, percentile(plain_ttfb, 0.9));
  std::printf("| sandbox: fork of bwrap -> workload's first_batch | %.2f | %.2f |\n", total_ms,
              percentile(sandbox_total, 0.9));
  std::printf("| sandbox set-up (fork of bwrap -> ready), outside TTFB | %.2f | %.2f |\n", setup_ms,
              percentile(sandbox_setup, 0.9));
  std::printf("| TTFB reported, plain | %.2f | %.2f |\n", plain_ms, percentile(plain_ttfb, 0.9));
  std::printf("| TTFB reported, sandbox (from \"go\") | %.2f | %.2f |\n\n", median(sandbox_ttfb),
              percentile(sandbox_ttfb, 0.9));
  std::printf("overhead per run: %.2f ms (%.1fx a plain exec's %.2f ms); set-up goal < %.0f ms: %s\n", total_ms - plain_ms,
              plain_ms > 0 ? total_ms / plain_ms : 0.0, plain_ms, kGoalSetupMs, setup_ms < kGoalSetupMs ? "met" : "NOT met");
  std::printf("TTFB in the sandbox / TTFB plain: %.2f (1.0 = the set-up is kept out of TTFB)\n\n",
              plain_ms > 0 ? median(sandbox_ttfb) / plain_ms : 0.0);

  std::printf("| whole call (run_workload to its return) | median | p90 | ratio to plain |\n| --- | --- | --- | --- |\n");
  const double plain_call_ms = median(plain_call);
  auto row = [&](const char* name, const std::vector<double>& v) {
    std::printf("| %s | %.2f | %.2f | %.2f |\n", name, median(v), percentile(v, 0.9),
                plain_call_ms > 0 ? median(v) / plain_call_ms : 0.0);
  };
  row("plain", plain_call);
  row("sandbox", sandbox_call);
  if (cgroups) row("sandbox + per-run cgroups", cgroup_call);
  std::printf("\ncgroups: %s\n", cgroup_report.c_str());
  if (!bwrap_floor.empty()) {
    std::printf("bwrap's own floor here (spawn to reaped): /bin/true %.2f ms, bwrap with /usr bound running /bin/true "
                "%.2f ms: %.2f ms of namespaces and mounts that no bwrap sandbox avoids on this host\n",
                median(true_alone), median(bwrap_floor), median(bwrap_floor) - median(true_alone));
  }
  return 0;
}
