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
//   ttfb_sandbox_bench [--runs 200] [--user nobody]
//
// Medians, because these machines are shared: a run that another process delayed moves a mean,
// not a median.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

}  // namespace

int main(int argc, char** argv) {
  int runs = 200;
  std::optional<ttfb::worker::RunAsUser> user;
  if (::geteuid() == 0) user = ttfb::worker::lookup_user("nobody");
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
      user = ttfb::worker::lookup_user(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--runs N] [--user NAME]\n", argv[0]);
      return 2;
    }
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

  std::vector<double> plain_ttfb, sandbox_setup, sandbox_ttfb, sandbox_total;
  for (int i = 0; i < runs; ++i) {
    spec.sandbox.enabled = false;
    const RunResult plain = ttfb::worker::run_workload(spec);
    spec.sandbox.enabled = true;
    const RunResult boxed = ttfb::worker::run_workload(spec);
    if (plain.outcome != RunOutcome::first_batch || boxed.outcome != RunOutcome::first_batch) {
      std::fprintf(stderr, "ttfb_sandbox_bench: a run failed: %s / %s\n%s\n", plain.message.c_str(),
                   boxed.message.c_str(), boxed.output_tail.c_str());
      return 1;
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
  std::printf("TTFB in the sandbox / TTFB plain: %.2f (1.0 = the set-up is kept out of TTFB)\n",
              plain_ms > 0 ? median(sandbox_ttfb) / plain_ms : 0.0);
  return 0;
}
