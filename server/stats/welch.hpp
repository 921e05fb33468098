// Welch's two-sample t-test on log(TTFB): the primary comparison of a baseline arm and a
// candidate arm. TTFB is right-skewed and its noise is roughly multiplicative, so the test runs
// on natural logs and the effect is reported as the percent change of the geometric mean, with
// the confidence interval transformed the same way. The decision (regression or not) is not made
// here; see verdict.hpp.
//
//   std::vector<double> baseline  = {812.0, 790.5, 845.2, 801.7, 820.3};   // ms
//   std::vector<double> candidate = {861.9, 840.2, 899.0, 850.4, 872.8};
//   ttfb::stats::WelchResult r = ttfb::stats::welch_log_t_test(baseline, candidate, 0.95);
//   if (r.valid) std::printf("%+.2f%% [%+.2f, %+.2f], p=%.3g\n",   // +6.25% [+2.34, +10.31], p=0.00578
//                            r.effect_pct, r.effect_ci_low_pct, r.effect_ci_high_pct, r.p_value);
//
// Matches R: t.test(log(candidate), log(baseline), var.equal = FALSE, conf.level = confidence)
// gives `t`, `df`, `p_value` and `diff_ci_low`/`diff_ci_high` (its conf.int); the reference
// tests hold it to that within 1e-9 (t, df) and 1e-8 (p), see tests/data/stats/.
//
// Edge cases (all defined, none crash):
// - A value that is <= 0, NaN or infinite, in either arm: throws std::invalid_argument naming the
//   arm and index (a non-positive duration is a measurement bug, not data). Checked before
//   anything else, even when an arm is too small to test.
// - confidence not strictly inside (0, 1): throws std::invalid_argument.
// - Fewer than kMinSamplesPerArm values in an arm: `valid = false`, `reason` says which arm and
//   how many; the per-arm summaries that exist are filled (mean_log and median_ms need n >= 1,
//   sd_log needs n >= 2), every other number is NaN. Never throws for this.
// - Both arms constant (every value of an arm identical): the test statistic is 0/0 or x/0.
//   Defined as: se = 0, df = n_baseline + n_candidate - 2 (no Welch-Satterthwaite df exists; the
//   pooled df is reported so the field stays finite), and
//     * equal values in both arms: t = 0, p = 1, diff 0, CI [0, 0];
//     * different values: t = +/-infinity (sign of the difference), p = 0, CI degenerate at the
//       observed difference (ci_low = ci_high = diff).
//   `both_arms_constant = true` marks this case so reports can say why the CI has no width.
// - One arm constant, the other not: an ordinary Welch test (the constant arm contributes no
//   variance; df = n_other - 1).
// - Nearly constant arms are tested as they are (no "essentially constant" cut-off as in R's
//   t.test): a tiny but significant effect is kept from being called a regression by the
//   min_effect_pct threshold of the verdict, not by refusing to compute.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ttfb::stats {

// The sample variance needs two values; below this per arm there is no test at all.
inline constexpr std::size_t kMinSamplesPerArm = 2;

// Summary of one arm as the test saw it.
struct ArmSummary {
  std::size_t n = 0;
  double mean_log = 0.0;   // mean of ln(ms); exp(mean_log) is the geometric mean in ms
  double sd_log = 0.0;     // sample standard deviation of ln(ms) (~ the CV for small noise)
  double median_ms = 0.0;  // median of the raw values, ms
};

struct WelchResult {
  bool valid = false;   // false: too few samples; see `reason`, the test fields are NaN
  std::string reason;   // empty when valid
  double confidence = 0.95;  // level of the intervals below, as passed in

  ArmSummary baseline;
  ArmSummary candidate;

  // The test on logs: candidate minus baseline.
  double diff_log = 0.0;      // mean_log(candidate) - mean_log(baseline)
  double se = 0.0;            // standard error of diff_log
  double t = 0.0;             // diff_log / se
  double df = 0.0;            // Welch-Satterthwaite degrees of freedom
  double p_value = 1.0;       // two-sided
  double diff_ci_low = 0.0;   // confidence interval on diff_log
  double diff_ci_high = 0.0;

  // The same on the scale people read: percent change of the geometric mean, candidate vs
  // baseline. Positive = candidate slower. effect_pct = 100 (exp(diff_log) - 1), computed with
  // expm1 so small effects keep their digits; the CI ends are the same transform of
  // diff_ci_low / diff_ci_high (exp is monotone, so coverage is kept; the interval is not
  // symmetric around effect_pct).
  double effect_pct = 0.0;
  double effect_ci_low_pct = 0.0;
  double effect_ci_high_pct = 0.0;

  bool both_arms_constant = false;  // the zero-variance case described above

  // 0 for Welch's test (the arms' values pooled over jobs); the number of jobs for the blocked
  // test of blocked.hpp, which fills this same result.
  int blocks = 0;
};

// Welch's t-test on ln(baseline_ms) vs ln(candidate_ms) at the given confidence level.
// Allocates one scratch buffer per arm (for the median and the logs).
WelchResult welch_log_t_test(std::span<const double> baseline_ms,
                             std::span<const double> candidate_ms, double confidence = 0.95);

}  // namespace ttfb::stats
