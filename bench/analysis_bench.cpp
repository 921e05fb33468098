// How long the server's analysis of one experiment takes at 10^6 samples, against the cost floor
// of any rank-based analysis: one std::sort of all the values. The target is (b) under 100 ms.
//
//   ttfb_analysis_bench                 # 500,000 samples per arm, Markdown table
//   ttfb_analysis_bench --n 200000      # 100,000 per arm
//   ttfb_analysis_bench --json          # the same numbers as one JSON object
//
// Samples: seeded, TTFB-like: log-normal with median 200 ms (baseline) or 202 ms (candidate, a
// 1% slowdown for the tests to find) and log-sd 0.05, with 1% of the values multiplied by 1.5 to
// 3 for a heavy right tail (the outlier rule's business). Each step runs 5 times and reports the
// fastest: these machines are shared, and the minimum is the least disturbed. Everything but the
// timings is deterministic (for a given standard library); the analysis's own numbers are
// printed so that runs can be checked against each other.
#include "server/stats/comparison.hpp"
#include "server/stats/mann_whitney.hpp"
#include "server/stats/welch.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kDefaultSamples = 1'000'000;  // both arms together
constexpr int kRepetitions = 5;
constexpr double kTargetMs = 100.0;  // for (b), the full comparison
constexpr std::uint64_t kSeed = 20240601;

std::vector<double> ttfb_arm(std::mt19937_64& rng, std::size_t n, double median_ms) {
  std::lognormal_distribution<double> body(std::log(median_ms), 0.05);
  std::bernoulli_distribution in_tail(0.01);
  std::uniform_real_distribution<double> tail_factor(1.5, 3.0);
  std::vector<double> xs(n);
  for (double& x : xs) {
    x = body(rng);
    if (in_tail(rng)) x *= tail_factor(rng);
  }
  return xs;
}

// The fastest of kRepetitions runs of fn, in milliseconds; setup runs untimed before each.
double best_ms(const std::function<void()>& fn, const std::function<void()>& setup = [] {}) {
  double best = INFINITY;
  for (int i = 0; i < kRepetitions; ++i) {
    setup();
    const auto start = std::chrono::steady_clock::now();
    fn();
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count());
  }
  return best;
}

struct Step {
  const char* key;    // JSON name
  const char* label;  // table row
  double ms;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--n TOTAL_SAMPLES (>= 4, default %zu)] [--json]\n", argv0,
               kDefaultSamples);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t total = kDefaultSamples;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (std::strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long long n = std::strtoull(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || n < 4) usage(argv[0]);
      total = static_cast<std::size_t>(n);
    } else {
      usage(argv[0]);
    }
  }

  std::mt19937_64 rng(kSeed);
  const std::vector<double> baseline = ttfb_arm(rng, total / 2, 200.0);
  const std::vector<double> candidate = ttfb_arm(rng, total - total / 2, 202.0);
  std::vector<double> all(baseline);
  all.insert(all.end(), candidate.begin(), candidate.end());

  const ttfb::stats::Policy policy{};
  ttfb::stats::Comparison comparison;
  ttfb::stats::WelchResult welch;
  std::vector<double> scratch;
  std::vector<Step> steps;
  steps.push_back({"sort", "(a) std::sort of all values (the floor)",
                   best_ms([&] { std::sort(scratch.begin(), scratch.end()); },
                           [&] { scratch = all; })});
  steps.push_back({"compare_arms", "(b) compare_arms: outliers, Welch, Mann-Whitney + HL, TOST",
                   best_ms([&] {
                     comparison = ttfb::stats::compare_arms(baseline, candidate, policy);
                   })});
  steps.push_back({"welch", "(c) welch_log_t_test alone", best_ms([&] {
                     welch = ttfb::stats::welch_log_t_test(baseline, candidate, policy.confidence);
                   })});
  // Where (b) goes, for whoever tunes it next, and the interval phases.cpp adds per phase.
  const auto& kept_b = comparison.baseline_outliers.kept;
  const auto& kept_c = comparison.candidate_outliers.kept;
  steps.push_back({"mann_whitney", "in (b): mann_whitney_u_test (ranks, HL in ms and %)",
                   best_ms([&] { (void)ttfb::stats::mann_whitney_u_test(kept_b, kept_c); })});
  steps.push_back({"hodges_lehmann_ci", "not in (b): hodges_lehmann_ci, 95%",
                   best_ms([&] { (void)ttfb::stats::hodges_lehmann_ci(kept_b, kept_c); })});

  const double sort_ms = steps.front().ms;
  const unsigned cores = std::thread::hardware_concurrency();
  const auto& rank = comparison.rank;
  const std::string verdict(ttfb::stats::to_string(comparison.decision.verdict));
  if (json) {
    std::printf("{\"n_total\": %zu, \"n_baseline\": %zu, \"n_candidate\": %zu, \"cores\": %u, "
                "\"repetitions\": %d, \"target_ms\": %g, \"ms\": {",
                total, baseline.size(), candidate.size(), cores, kRepetitions, kTargetMs);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      std::printf("%s\"%s\": %.3f", i ? ", " : "", steps[i].key, steps[i].ms);
    }
    std::printf("}, \"compare_arms_under_target\": %s, \"result\": {\"verdict\": \"%s\", "
                "\"welch_effect_pct\": %.17g, \"hl_shift_ms\": %.17g, \"hl_shift_pct\": %.17g, "
                "\"rank_p_value\": %.17g, \"outliers_baseline\": %zu, "
                "\"outliers_candidate\": %zu}}\n",
                steps[1].ms < kTargetMs ? "true" : "false", verdict.c_str(), welch.effect_pct,
                rank.hl_shift, rank.hl_shift_pct, rank.p_value,
                comparison.baseline_outliers.removed_count,
                comparison.candidate_outliers.removed_count);
    return 0;
  }
  std::printf("%zu samples (%zu baseline, %zu candidate), %u cores, best of %d\n\n", total,
              baseline.size(), candidate.size(), cores, kRepetitions);
  std::printf("| step | ms (best of %d) | ratio to sort |\n|---|---:|---:|\n", kRepetitions);
  for (const Step& s : steps) {
    std::printf("| %s | %.1f | %.2f |\n", s.label, s.ms, s.ms / sort_ms);
  }
  std::printf("\ntarget: (b) under %.0f ms -- %s\n", kTargetMs,
              steps[1].ms < kTargetMs ? "met" : "NOT met");
  std::printf("result: %s, Welch %+.4f%%, HL %+.6f ms (%+.4f%%), rank p %.3g, "
              "outliers removed %zu / %zu\n",
              verdict.c_str(), welch.effect_pct, rank.hl_shift, rank.hl_shift_pct, rank.p_value,
              comparison.baseline_outliers.removed_count,
              comparison.candidate_outliers.removed_count);
  return 0;
}
