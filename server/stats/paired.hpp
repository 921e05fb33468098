// The paired t-test on log(TTFB): two commits measured side by side in the same jobs (run i of
// one beside run i of the other, ABBA), as a bisection's sandwich measures a culprit against its
// parent. Each pair's log ratio ln(commit_i / parent_i) cancels whatever the machine was doing
// during those two runs (a busy spell, a slower job, a drifting clock), so the test sees only the
// step between the commits and the noise within a pair; Welch's two-sample test (welch.hpp) on
// the same runs would count the drift between pairs as noise too.
//
//   std::vector<double> parent = {200.1, 214.9, 199.0, 230.4, 201.2};   // ms, pair i = run i
//   std::vector<double> commit = {209.8, 226.1, 208.2, 241.7, 210.9};
//   ttfb::stats::PairedResult r = ttfb::stats::paired_log_t_test(parent, commit, 0.99);
//   // r.effect_pct is the percent change of the geometric mean ratio, with its 99% interval
//
// Matches R: t.test(log(commit), log(parent), paired = TRUE, conf.level = confidence) gives
// `t`, `df` (n - 1), `p_value` and the interval (tests/data/stats/make_reference_paired.R; the
// unit tests hold it to that within 1e-9).
//
// Edge cases (all defined): arms of different lengths or a value <= 0, NaN or infinite:
// std::invalid_argument; confidence not inside (0, 1): std::invalid_argument; fewer than 2 pairs:
// valid = false with a reason; every log ratio identical (no spread): se = 0 and, like welch.hpp,
// p = 1 with a degenerate interval at 0 when the ratios are all 1, else p = 0 and t = +/-inf.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ttfb::stats {

struct PairedResult {
  bool valid = false;
  std::string reason;        // empty when valid
  double confidence = 0.95;
  std::size_t n = 0;         // pairs
  double diff_log = 0.0;     // mean of ln(commit_i / parent_i)
  double sd_log = 0.0;       // sample standard deviation of the log ratios
  double se = 0.0;           // sd_log / sqrt(n)
  double t = 0.0;
  double df = 0.0;           // n - 1
  double p_value = 1.0;      // two-sided
  double diff_ci_low = 0.0, diff_ci_high = 0.0;
  // On the scale people read: 100 (exp(diff_log) - 1), the interval's ends transformed the same way.
  double effect_pct = 0.0, effect_ci_low_pct = 0.0, effect_ci_high_pct = 0.0;
};

PairedResult paired_log_t_test(std::span<const double> parent_ms, std::span<const double> commit_ms,
                               double confidence);

}  // namespace ttfb::stats
