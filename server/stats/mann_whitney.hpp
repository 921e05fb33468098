// Mann-Whitney U test (Wilcoxon rank-sum), two-sided, of a baseline arm vs a candidate arm, with
// the Hodges-Lehmann shift estimate: the rank test reported alongside Welch (DESIGN.md §5). It
// needs no normality and a few wild values move it by at most a rank each, so when it disagrees
// with welch.hpp the report should say so.
//
//   std::vector<double> baseline  = {812.0, 790.5, 845.2, 801.7, 820.3};   // ms
//   std::vector<double> candidate = {861.9, 840.2, 899.0, 850.4, 872.8};
//   ttfb::stats::MannWhitneyResult r = ttfb::stats::mann_whitney_u_test(baseline, candidate);
//   // r.w = 24, r.p_value = 0.015873 (exact), r.hl_shift = 49.9 ms, r.hl_shift_pct = +6.29%
//
// Matches R 4.2: wilcox.test(candidate, baseline, exact = NULL, correct = TRUE) gives `w`
// (R's W: the rank sum of the candidate minus n_c (n_c + 1) / 2, i.e. the number of pairs with
// candidate > baseline, ties counting 1/2) and `p_value`:
// - exact: both arms have fewer than kMannWhitneyExactMaxN (50) values -- R's rule is
//   n < 50, not <= 50 -- and no value occurs twice in the pooled sample. The null distribution
//   of W is counted exactly; p = min(1, 2 * smaller tail), the tails as R takes them
//   (W > n_b n_c / 2: P(W' >= W), else P(W' <= W)).
// - normal otherwise: z = (W - n_b n_c / 2 - 0.5 sign(.)) / sigma with the tie-corrected sigma
//   sqrt(n_b n_c / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1)))), t the size of each tie group,
//   N = n_b + n_c; p = 2 * min(Phi(z), 1 - Phi(z)).
// hl_shift is the Hodges-Lehmann estimate, the median of all n_b n_c differences
// candidate_i - baseline_j (ms; positive = candidate slower). It is what R's conf.int = TRUE
// estimate reports for the exact method. For the normal method R instead returns a root of the
// continuity-corrected statistic found by uniroot(tol = 1e-4): any point of the interval where
// that step function is zero, which contains the median but can be far from it with ties (0.4
// ms off in the reference case normal_60v25_heavy, 12 ms off with five tied baseline values in
// one_arm_constant_5v8). We always return the median itself: deterministic, and the same
// definition whatever the method.
// hl_shift_pct is the same estimate on log scale as percent: 100 (exp(HL of the log
// differences) - 1), the rank-based counterpart of welch's effect_pct.
// The reference tests hold it to R within 1e-12 relative (W, exact p) and 1e-9 (normal p),
// see tests/data/stats/make_reference_rank.R.
//
// Cost: O(N log N) time and O(N) memory for N = n_b + n_c values; 500,000 per arm takes about
// half the time of one std::sort of the 10^6 values (bench/analysis_bench.cpp). The test sorts
// each arm once (radix sort from 4096 values) and merges them for the ranks. The Hodges-Lehmann
// medians are order statistics of the n_b n_c pairwise differences: up to
// kHodgesLehmannMaxMaterializedPairs pairs they are materialised and selected with nth_element,
// as always; above it they are selected from the two sorted arms without storing the pairs
// (each pass counts the differences <= d in O(N) with two pointers; sampled, interpolated or
// bisecting probes narrow the rank bracket, in three passes for TTFB-like data, until its few
// differences are copied out). Both give the identical double: the same differences, computed
// the same way, ranked the same way. The exact p-value, O(n_b^2 n_c^2), only ever runs below
// kMannWhitneyExactMaxN per arm.
//
// Edge cases (all defined, none crash):
// - A value that is <= 0, NaN or infinite: throws std::invalid_argument naming the arm and index
//   (durations only; the log-scale shift needs positive values). Checked first, for any n.
// - Fewer than kMannWhitneyMinSamplesPerArm values in an arm: `valid = false`, `reason` says
//   which arm; n_baseline / n_candidate are set, every number is NaN. Never throws for this.
// - All values tied (both arms one single value): the rank statistic has no variance; R
//   returns p = NaN. Defined here as w = n_b n_c / 2, p = 1 (no evidence of a shift),
//   method normal, hl_shift = 0, hl_shift_pct = 0, `all_tied = true`.
// - Ties in general: exact p is not used (as in R), the normal approximation is tie-corrected.
// - min_p_attainable: for the exact method the smallest p this pair of sizes can ever give,
//   2 / C(N, n_b) (e.g. 0.333 for 2 vs 2, 0.0286 for 4 vs 4); a report should warn when it is
//   not below alpha, since then no data can be significant. NaN for the normal method.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace ttfb::stats {

// Below two values per arm the rank test can never be significant (1 vs 1: p = 1 always).
inline constexpr std::size_t kMannWhitneyMinSamplesPerArm = 2;
// R's wilcox.test default: exact p only while both arms have fewer values than this.
inline constexpr std::size_t kMannWhitneyExactMaxN = 50;

enum class MannWhitneyMethod { kExact, kNormal };

// Up to this many pairs (n_b n_c) the Hodges-Lehmann estimates and interval are computed from all
// pairwise differences materialised (8 bytes each, nth_element or sort); above it by selection
// from the sorted arms. The results are the same doubles either way (the tests hold the two paths
// to ==), so the number is only about speed. Measured: the two cost the same around 32 per arm;
// at 64 per arm selection is 2-5x faster, at 1,000 per arm 40x (the interval 600x: 77 ms
// against 0.12 ms), and at 500,000 per arm all pairs would need 2 TB. 64 x 64 also keeps every
// reference case against R on the all-pairs path.
inline constexpr std::size_t kHodgesLehmannMaxMaterializedPairs = 64 * 64;

// Which path computes the Hodges-Lehmann order statistics. kAuto picks by the constant above;
// the other two force a path, for tests that compare them and for benchmarks.
enum class HodgesLehmannAlgorithm { kAuto, kAllPairs, kSortedSelection };

struct MannWhitneyResult {
  bool valid = false;   // false: too few samples, see `reason`; numbers are NaN
  std::string reason;   // empty when valid
  std::size_t n_baseline = 0;
  std::size_t n_candidate = 0;
  MannWhitneyMethod method = MannWhitneyMethod::kNormal;
  double w = 0.0;          // R's W (= U of the candidate)
  double p_value = 1.0;    // two-sided
  double z = 0.0;          // normal method: the continuity-corrected z; exact: NaN
  double min_p_attainable = 0.0;  // exact method only, see above; NaN for normal
  double hl_shift = 0.0;      // median of candidate_i - baseline_j, ms
  double hl_shift_pct = 0.0;  // 100 (exp(median of ln c_i - ln b_j) - 1)
  bool all_tied = false;
};

// "exact" or "normal", for reports.
const char* to_string(MannWhitneyMethod m);

// The test of the header comment. Allocates O(N) (O(n_b n_c) for the Hodges-Lehmann
// differences while that is at most kHodgesLehmannMaxMaterializedPairs) and, for the exact
// method, O(n_b * n_b n_c) for the counts.
MannWhitneyResult mann_whitney_u_test(
    std::span<const double> baseline_ms, std::span<const double> candidate_ms,
    HodgesLehmannAlgorithm algorithm = HodgesLehmannAlgorithm::kAuto);

// Hodges-Lehmann shift alone: median of candidate_i - baseline_j over all pairs. Any finite
// values (not only durations); empty arm or non-finite value throws std::invalid_argument.
// O(N log N) above kHodgesLehmannMaxMaterializedPairs pairs, as mann_whitney_u_test.
double hodges_lehmann_shift(std::span<const double> baseline, std::span<const double> candidate,
                            HodgesLehmannAlgorithm algorithm = HodgesLehmannAlgorithm::kAuto);

// The same on log scale as percent, 100 (exp(HL(ln candidate, ln baseline)) - 1). Values must be
// finite and > 0, arms non-empty, else std::invalid_argument naming arm and index.
double hodges_lehmann_shift_pct(std::span<const double> baseline_ms,
                                std::span<const double> candidate_ms,
                                HodgesLehmannAlgorithm algorithm = HodgesLehmannAlgorithm::kAuto);

// Distribution-free confidence interval for the Hodges-Lehmann shift (candidate - baseline), the
// interval R reports as wilcox.test(candidate, baseline, conf.int = TRUE, conf.level =
// confidence)$conf.int (Bauer 1972). The method follows the test's rule above: exact when
// neither arm has kMannWhitneyExactMaxN values or more and no value occurs twice in the pooled
// sample, normal otherwise.
// - exact: with D_(1) <= ... <= D_(mn) the sorted differences and q = qwilcox((1 - confidence)
//   / 2, n_c, n_b) (raised to 1 when it is 0), the interval is [D_(q), D_(mn + 1 - q)], as R.
//   Its level is exact: `confidence` = 1 - 2 P(W <= q - 1), at least the requested level, except
//   for arms so small that even [min D, max D] covers less (e.g. 2 vs 2: 2/3; 3 vs 3: 0.9 for a
//   requested 0.95). R reports the requested level unless it misses by more than half of
//   1 - confidence; we always report the achieved one.
// - normal: each end is where R's continuity-corrected, tie-corrected normal statistic of the
//   shifted candidate, (W(d) - n_b n_c / 2 - 0.5 sign(.)) / sigma(d), crosses -/+ z_(1 -
//   (1 - confidence) / 2). That statistic is a step function of d that jumps only at pairwise
//   differences, so each end is a pairwise difference, found by bisection over them: R's
//   uniroot (tol = 1e-4) lands within 1e-4 of the same point. When the statistic is beyond the
//   quantile already at the smallest (largest) difference, the end is that difference, as in R.
//   `confidence` is the requested level (the approximation's nominal level).
// Edge cases: both arms constant (every difference equal; R warns "all observations are tied"
// and has no usable interval): the degenerate interval [D, D], method normal. Any finite values are allowed (not
// only durations); an empty arm, a non-finite value or confidence outside (0, 1) throws
// std::invalid_argument. Allocates O(n_b n_c) for the differences up to
// kHodgesLehmannMaxMaterializedPairs pairs and, exact, the counts of mann_whitney_u_test.
// Above that, O(N log N): no list of differences, and each evaluation of the statistic is a
// merge of the sorted arms. There the end is found as the order statistic the quantile implies
// (between two neighbouring differences the statistic depends only on how many differences lie
// below), then checked with the statistic itself on the midpoints on both sides and moved to the
// neighbouring difference until the check holds, so it is the same difference the bisection
// over the list finds (they could part only if rounding made the statistic non-monotone across
// midpoints, which it is not in exact arithmetic). Values so far apart that a difference
// overflows to infinity (beyond DBL_MAX) make any interval meaningless; the two paths may then
// disagree.
struct HodgesLehmannInterval {
  MannWhitneyMethod method = MannWhitneyMethod::kNormal;
  double low = 0.0;          // candidate - baseline, the values' unit
  double high = 0.0;
  double confidence = 0.0;   // the level the interval has, see above
};

HodgesLehmannInterval hodges_lehmann_ci(
    std::span<const double> baseline, std::span<const double> candidate, double confidence = 0.95,
    HodgesLehmannAlgorithm algorithm = HodgesLehmannAlgorithm::kAuto);

}  // namespace ttfb::stats
