// Equivalence test (TOST: two one-sided Welch t-tests on log(TTFB)): can we say the candidate is
// the SAME as the baseline within +/- margin_pct? This is the "same" leg of the three-way
// outcome (DESIGN.md §5): a non-significant Welch test is not evidence of no change; a
// significant TOST is.
//
//   std::vector<double> baseline  = {812.0, 790.5, 845.2, 801.7, 820.3};   // ms
//   std::vector<double> candidate = {815.1, 798.0, 840.9, 806.3, 818.8};
//   ttfb::stats::TostResult r = ttfb::stats::tost_log_equivalence(baseline, candidate, 5.0);
//   if (r.valid && r.equivalent) { /* same within 5% at alpha = 0.05 */ }
//
// Bounds, symmetric on log scale: with d = mean(ln c) - mean(ln b) (the log ratio of geometric
// means) and delta = ln(1 + margin_pct / 100), the hypotheses are
//     H0: d <= -delta or d >= +delta      vs      H1: -delta < d < +delta,
// i.e. the ratio of geometric means within [1 / (1 + m), 1 + m] (for m = 5%: -4.76% .. +5%).
// Symmetric in logs because a slowdown by a factor and a speedup by the same factor are equally
// far from "same"; it is also what makes swapping the arms give the same p.
//     p_lower = P(T_df > (d + delta) / se)
//               (R: t.test(ln c, ln b, mu = -delta, alternative = "greater"))
//     p_upper = P(T_df < (d - delta) / se)
//               (R: t.test(ln c, ln b, mu = +delta, alternative = "less"))
// with Welch's se and df (welch.hpp); p_value = max(p_lower, p_upper); equivalent = p < alpha.
// Equivalently the (1 - 2 alpha) CI of d lies inside (-delta, +delta); that CI is reported.
// The reference tests hold p_lower / p_upper to R within 1e-8 relative
// (tests/data/stats/make_reference_rank.R).
//
// Edge cases (all defined):
// - A value <= 0, NaN or infinite: throws std::invalid_argument naming arm and index.
// - margin_pct not finite or <= 0, alpha not strictly in (0, 0.5): throws std::invalid_argument.
// - Fewer than kMinSamplesPerArm (welch.hpp, 2) values in an arm: valid = false with `reason`,
//   equivalent = false, numbers NaN.
// - Both arms constant (se = 0): p_lower = 0 when d > -delta else 1, p_upper = 0 when
//   d < +delta else 1 (the limits of the tests as se -> 0); df as welch.hpp defines it.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ttfb::stats {

struct TostResult {
  bool valid = false;
  std::string reason;          // empty when valid
  std::size_t n_baseline = 0;
  std::size_t n_candidate = 0;
  double margin_pct = 0.0;     // as passed
  double alpha = 0.05;         // as passed
  double lower_bound_log = 0.0;  // -ln(1 + margin_pct / 100)
  double upper_bound_log = 0.0;  // +ln(1 + margin_pct / 100)
  double diff_log = 0.0;       // mean(ln c) - mean(ln b)
  double se = 0.0;
  double df = 0.0;
  double t_lower = 0.0;        // (diff_log - lower_bound_log) / se
  double t_upper = 0.0;        // (diff_log - upper_bound_log) / se
  double p_lower = 1.0;        // H0: diff <= lower bound
  double p_upper = 1.0;        // H0: diff >= upper bound
  double p_value = 1.0;        // max(p_lower, p_upper)
  bool equivalent = false;     // valid && p_value < alpha
  double effect_pct = 0.0;           // 100 (exp(diff_log) - 1)
  double ci_low_pct = 0.0;           // (1 - 2 alpha) CI of the effect, percent
  double ci_high_pct = 0.0;
};

TostResult tost_log_equivalence(std::span<const double> baseline_ms,
                                std::span<const double> candidate_ms, double margin_pct,
                                double alpha = 0.05);

}  // namespace ttfb::stats
