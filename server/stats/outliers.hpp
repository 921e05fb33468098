// Robust outlier rule for one arm of TTFB samples (DESIGN.md §5: "a documented, robust rule,
// counted and reported"). A value is an outlier when, on log scale,
//     |ln x - median(ln x)| > k * MAD(ln x),   MAD scaled by kMadNormalScale (1.4826),
// i.e. a robust z-score above k (Iglewicz & Hoaglin's modified z-score rule, which uses 3.5).
// Why logs: TTFB is right-skewed with multiplicative noise, so on the raw scale a rule like this
// flags ordinary slow tails; on logs the bulk is roughly symmetric. Why median/MAD: unlike
// mean/sd they are not dragged by the outliers they are meant to find (50% breakdown point).
//
//   std::vector<double> ms = {812, 790, 845, 801, 820, 9400, 808, 799, 830, 815};
//   ttfb::stats::OutlierResult o = ttfb::stats::remove_outliers(ms);
//   // o.removed_indices = {5}, o.kept has the other 9 values in their original order
//
// Rules and edge cases (all defined):
// - A value <= 0, NaN or infinite: throws std::invalid_argument naming the index.
// - k must be finite and > 0, max_fraction in [0, 1): else std::invalid_argument.
// - MAD = 0 (more than half of the values are identical, common with coarse integer timers):
//   nothing is removed. With no spread the robust z-score of every other value is infinite, so
//   the rule would call every value that differs from the majority an outlier; that says more
//   about the timer's resolution than about the values. `mad_zero = true` reports it.
// - Cap: at most floor(max_fraction * n) values are removed (default 20%). When the rule flags
//   more than that, NOTHING is removed and `cap_exceeded = true`: that many "outliers" means
//   the distribution is heavy-tailed or bimodal, not contaminated by a few bad values, and
//   trimming only its most extreme part would invent a different distribution. The report
//   should show the arm as too noisy (flagged_count says how many the rule flagged); the rank
//   test is the one to trust then. As a consequence small arms (n < 5 at 20%) never lose values.
// - Empty input: an empty result (nothing to remove); n = 1 or 2: nothing removed (the cap is 0
//   below 5 values at the default fraction, and the MAD of two values flags nothing anyway).
// Matches R: median(log(x)), mad(log(x)) and the flag abs(log(x) - median) > k * mad, see
// tests/data/stats/make_reference_rank.R.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

namespace ttfb::stats {

// Iglewicz & Hoaglin (1993) recommend |modified z| > 3.5 as "potential outlier".
inline constexpr double kOutlierK = 3.5;
// Never remove more than this fraction of an arm (see the cap above).
inline constexpr double kOutlierMaxFraction = 0.2;

struct OutlierResult {
  std::vector<double> kept;                 // the values not removed, original order
  std::vector<std::size_t> removed_indices;  // ascending, into the input
  std::size_t removed_count = 0;            // removed_indices.size()
  std::size_t flagged_count = 0;            // flagged by the rule, before the cap
  bool cap_exceeded = false;                // flagged_count > max removable: nothing removed
  bool mad_zero = false;                    // MAD of the logs is 0: nothing removed
  double center_log = 0.0;                  // median of ln x (NaN for empty input)
  double mad_log = 0.0;                     // scaled MAD of ln x (NaN for empty input)
  double k = kOutlierK;                     // as passed
  double max_fraction = kOutlierMaxFraction;  // as passed
};

OutlierResult remove_outliers(std::span<const double> ttfb_ms, double k = kOutlierK,
                              double max_fraction = kOutlierMaxFraction);

// The rule as comparisons apply it: the center and MAD come from BOTH arms pooled, and each arm's
// values are flagged against them (the cap applies per arm). Why pooled: with the center and MAD
// of each arm alone, small arms get a noisy, often too small MAD, lose their most extreme values
// and with them variance, and the t-test on what is left calls A/A noise a change: at 5-10 runs
// per arm that took the false-positive rate of a 5% test to 6-8% in simulation (bench/). Under
// "no change" both arms come from one distribution, so the pooled estimate is twice as stable
// and flags the same kind of value in either arm; the same simulation gives 4.3-4.7%, while
// keeping nearly all the power that removing slowdown bursts buys (95% vs 50% without removal
// at +3% with 3% of runs in bursts). Values in the results are those of remove_outliers with
// the pooled center/MAD in center_log/mad_log of both arms.
struct PooledOutliers {
  OutlierResult baseline, candidate;
  double center_log = 0.0, mad_log = 0.0;  // of both arms together
};
PooledOutliers remove_outliers_pooled(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                                      double k = kOutlierK, double max_fraction = kOutlierMaxFraction);

}  // namespace ttfb::stats
