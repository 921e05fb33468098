// The v0 decision: turns a Welch test on log(TTFB) and a threshold policy into a verdict
// (regression / improvement / no_change / inconclusive), with the reason in words, a warning
// when the samples are fewer than recommended, and the evidence and thresholds used, so that a
// report can show why without recomputing anything.
//
//   std::vector<double> baseline  = {812.0, 790.5, 845.2, 801.7, 820.3};   // ms
//   std::vector<double> candidate = {861.9, 840.2, 899.0, 850.4, 872.8};
//   ttfb::stats::Policy policy{.alpha = 0.01, .min_effect_pct = 3.0, .confidence = 0.95};
//   ttfb::stats::Decision d = ttfb::stats::compare(baseline, candidate, policy);
//   ttfb::stats::to_string(d.verdict);  // "regression"
//   d.reason;   // "slower by +6.25% [+2.34%, +10.31%] at 95%, p = 0.00578, at least the 3% threshold"
//   d.warning;  // "only 5 baseline and 5 candidate samples; at least 10 per arm are recommended"
//
// The rules (v0), with e = effect_pct and [lo, hi] its CI at policy.confidence:
//   inconclusive  the test is not valid: fewer than kMinSamplesPerArm samples in an arm.
//   regression    p < alpha  AND lo > 0  AND e >= min_effect_pct
//   improvement   p < alpha  AND hi < 0  AND e <= -min_effect_pct
//   no_change     everything else: not significant (p >= alpha), or the CI touches or crosses 0
//                 (possible when alpha > 1 - confidence), or significant but |e| under the
//                 threshold. `reason` says which.
// Boundaries: p == alpha is not significant; e == min_effect_pct is enough. The improvement
// threshold is the same percent on the fast side (a -3% change for a 3% threshold), not the
// log-symmetric -2.91%, because the threshold is read as a percent by people.
//
// On its own this is a one-look rule: "not significant" is called no_change even when the CI is
// wide enough to hide a real regression. The server does not use it alone: adaptive.hpp turns
// it into different / same / unknown per look, with "same" shown by an equivalence test and
// "unknown" answered by more runs. `ttfb-lab compare` (one fixed look) reports it with TOST
// alongside.
//
// `error` is never produced by decide(): it is the verdict of an experiment whose runs failed
// (set by the scheduler), kept here so the whole vocabulary has one to_string/from_string.
#pragma once

#include "server/stats/welch.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ttfb::stats {

enum class Verdict { regression, improvement, no_change, inconclusive, error };

// The vocabulary word used in SQL, JSON and the UI: "regression", "improvement", "no_change",
// "inconclusive", "error".
std::string_view to_string(Verdict v);

// Inverse of to_string (exact, case-sensitive); nullopt for anything else. Named after its type
// (not a bare from_string) so other enums can get their own parser without overloading on the
// return type.
std::optional<Verdict> verdict_from_string(std::string_view s);

// Below this many samples per arm the result carries a warning (it is still decided). Why 10:
// with fewer, the t quantile (df ~ 2(n - 1)) widens the CI well beyond the normal one
// (t_.975 = 2.10 at df 18, 2.31 at df 8, 2.78 at df 4, vs 1.96) and one outlier can dominate an
// arm's variance; gbench's U-test asks for 9 repetitions for a similar reason.
inline constexpr std::size_t kRecommendedSamplesPerArm = 10;

// Thresholds of a decision. Defaults mirror [defaults.policy] of the server's configuration.
// Valid: 0 < alpha < 1, 0 < confidence < 1, min_effect_pct and equivalence_margin_pct finite and >= 0; decide() throws
// std::invalid_argument otherwise.
struct Policy {
  double alpha = 0.01;          // significance level of the two-sided test
  double min_effect_pct = 1.0;  // the detection threshold: smaller changes (percent of the
                                // geometric mean) are never called a regression or improvement
  double confidence = 0.95;     // level of the CI that must lie wholly on one side of 0
  double equivalence_margin_pct = 2.0;  // the margin of the TOST reported beside (comparison.hpp)
};

struct Decision {
  Verdict verdict = Verdict::inconclusive;
  std::string reason;   // one sentence: why this verdict, with the numbers
  std::string warning;  // empty, or what to distrust ("only 4 baseline samples ...")
  Policy policy;        // the thresholds that were applied
  WelchResult welch;    // the evidence: n, medians, effect and CI, p, df
};

// Applies the rules above. Throws std::invalid_argument for an invalid policy, or when
// welch.confidence differs from policy.confidence (the CI rule would be applied to an interval
// of another level). Never throws for an invalid (too small) WelchResult: that is inconclusive.
Decision decide(const WelchResult& welch, const Policy& policy);

// welch_log_t_test at policy.confidence, then decide(). Throws what either throws.
Decision compare(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                 const Policy& policy);

}  // namespace ttfb::stats
