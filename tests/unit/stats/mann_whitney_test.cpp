// Mann-Whitney U test and Hodges-Lehmann shift: hand-computed cases, every edge case of
// mann_whitney.hpp, symmetry under swapping the arms, R's wilcox.test on the cases of
// tests/data/stats/mann_whitney_reference.csv, and the selection path for large samples held to
// == against the all-pairs path.
#include "server/stats/mann_whitney.hpp"

#include "reference_csv.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

// {100, 110} vs {200, 210}: the candidate wins all 4 pairs, W = 4, and only 1 of the C(4, 2) = 6
// equally likely orders is that extreme, so the two-sided exact p is 2/6.
TEST(MannWhitney, CompleteSeparationOfTwoByTwoIsOneThird) {
  const std::vector<double> b = {100, 110};
  const std::vector<double> c = {200, 210};
  const MannWhitneyResult r = mann_whitney_u_test(b, c);
  ASSERT_TRUE(r.valid);
  EXPECT_EQ(r.method, MannWhitneyMethod::kExact);
  EXPECT_STREQ(to_string(r.method), "exact");
  EXPECT_EQ(r.w, 4.0);
  EXPECT_DOUBLE_EQ(r.p_value, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.min_p_attainable, 1.0 / 3.0);
  EXPECT_TRUE(std::isnan(r.z));
  // Differences 100, 90, 110, 100: median 100.
  EXPECT_EQ(r.hl_shift, 100.0);
  EXPECT_EQ(r.n_baseline, 2u);
  EXPECT_EQ(r.n_candidate, 2u);
}

// 4 vs 4 can reach 2/70 at best, below 0.05; 3 vs 3 (2/20) cannot.
TEST(MannWhitney, MinimumAttainablePTellsWhetherAlphaIsReachable) {
  const std::vector<double> b4 = {1, 2, 3, 4}, c4 = {5, 6, 7, 8};
  EXPECT_DOUBLE_EQ(mann_whitney_u_test(b4, c4).min_p_attainable, 2.0 / 70.0);
  EXPECT_DOUBLE_EQ(mann_whitney_u_test(b4, c4).p_value, 2.0 / 70.0);
  const std::vector<double> b3 = {1, 2, 3}, c3 = {5, 6, 7};
  EXPECT_DOUBLE_EQ(mann_whitney_u_test(b3, c3).min_p_attainable, 0.1);
}

TEST(MannWhitney, TooFewSamplesIsInvalidNotAnError) {
  const std::vector<double> one = {5.0}, two = {5.0, 6.0}, none;
  MannWhitneyResult r = mann_whitney_u_test(one, two);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("baseline has 1"), std::string::npos) << r.reason;
  EXPECT_TRUE(std::isnan(r.p_value));
  EXPECT_TRUE(std::isnan(r.hl_shift));
  r = mann_whitney_u_test(none, none);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("baseline has 0"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("candidate has 0"), std::string::npos) << r.reason;
}

TEST(MannWhitney, BadValuesThrowNamingArmAndIndexEvenForTinyArms) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> ok = {1.0, 2.0, 3.0};
  const std::vector<double> with_nan = {1.0, nan};
  const std::vector<double> with_inf = {inf};
  const std::vector<double> with_zero = {1.0, 2.0, 0.0};
  expect_invalid([&] { mann_whitney_u_test(with_nan, ok); }, "baseline value at index 1");
  expect_invalid([&] { mann_whitney_u_test(ok, with_inf); }, "candidate value at index 0");
  expect_invalid([&] { mann_whitney_u_test(ok, with_zero); }, "candidate value at index 2");
  expect_invalid([&] { hodges_lehmann_shift(ok, with_nan); }, "candidate value at index 1");
  expect_invalid([&] { hodges_lehmann_shift_pct(with_zero, ok); }, "baseline value at index 2");
  expect_invalid([&] { hodges_lehmann_shift(std::vector<double>{}, ok); }, "baseline is empty");
}

TEST(MannWhitney, AllTiedIsPOneNotNaN) {
  const std::vector<double> b = {7, 7, 7}, c = {7, 7, 7, 7};
  const MannWhitneyResult r = mann_whitney_u_test(b, c);
  ASSERT_TRUE(r.valid);
  EXPECT_TRUE(r.all_tied);
  EXPECT_EQ(r.method, MannWhitneyMethod::kNormal);
  EXPECT_EQ(r.w, 6.0);
  EXPECT_EQ(r.p_value, 1.0);
  EXPECT_EQ(r.hl_shift, 0.0);
  EXPECT_EQ(r.hl_shift_pct, 0.0);
}

TEST(MannWhitney, TiesForceTheNormalMethodAndFiftyPerArmToo) {
  const std::vector<double> b = {1, 2, 3}, c = {3, 4, 5};
  EXPECT_EQ(mann_whitney_u_test(b, c).method, MannWhitneyMethod::kNormal);
  std::vector<double> b50, c49;
  for (int i = 0; i < 50; ++i) b50.push_back(100.0 + i);
  for (int i = 0; i < 49; ++i) c49.push_back(100.5 + i);
  EXPECT_EQ(mann_whitney_u_test(b50, c49).method, MannWhitneyMethod::kNormal);
  b50.pop_back();
  EXPECT_EQ(mann_whitney_u_test(b50, c49).method, MannWhitneyMethod::kExact);
}

TEST(MannWhitney, SwappingArmsMirrorsWAndNegatesTheShift) {
  const std::vector<double> b = {812.0, 790.5, 845.2, 801.7, 820.3, 803.0, 811.1};
  const std::vector<double> c = {861.9, 840.2, 899.0, 850.4, 872.8, 805.5};
  const MannWhitneyResult bc = mann_whitney_u_test(b, c);
  const MannWhitneyResult cb = mann_whitney_u_test(c, b);
  EXPECT_EQ(bc.w + cb.w, 42.0);
  EXPECT_DOUBLE_EQ(bc.p_value, cb.p_value);
  EXPECT_EQ(bc.hl_shift, -cb.hl_shift);
  // Log-scale percent: exp(-x) - 1 mirrors exp(x) - 1.
  EXPECT_TRUE(near_rel(1.0 + bc.hl_shift_pct / 100.0, 1.0 / (1.0 + cb.hl_shift_pct / 100.0),
                       1e-14));
}

TEST(MannWhitney, HodgesLehmannOfShiftedCopyIsTheShift) {
  const std::vector<double> b = {3.0, 9.0, 1.0, 4.0, 7.0};
  std::vector<double> c = b;
  for (double& x : c) x += 2.5;
  EXPECT_EQ(hodges_lehmann_shift(b, c), 2.5);
  std::vector<double> scaled = b;
  for (double& x : scaled) x *= 1.1;
  EXPECT_TRUE(near_rel(hodges_lehmann_shift_pct(b, scaled), 10.0, 1e-12));
  // Works on any finite values, negative included.
  const std::vector<double> neg = {-1.0, -3.0};
  EXPECT_EQ(hodges_lehmann_shift(neg, b), 6.5);  // median of {2,4,4,5,6,7,8,10,10,12}
}

// Every case of mann_whitney_reference.csv against R 4.2's
// wilcox.test(candidate, baseline, exact = NULL, correct = TRUE, conf.int = TRUE).
TEST(MannWhitney, MatchesRReference) {
  const auto table = testing::read_reference("mann_whitney_reference.csv");
  ASSERT_GE(table.rows.size(), 15u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE(row[0]);
    const std::vector<double> b = table.numbers(row, "baseline");
    const std::vector<double> c = table.numbers(row, "candidate");
    const MannWhitneyResult r = mann_whitney_u_test(b, c);
    ASSERT_TRUE(r.valid);
    EXPECT_EQ(to_string(r.method), table.field(row, "method"));
    EXPECT_EQ(r.w, table.number(row, "w"));
    const double p_tol = r.method == MannWhitneyMethod::kExact ? 1e-12 : 1e-9;
    EXPECT_TRUE(near_rel(r.p_value, table.number(row, "p_value"), p_tol));
    EXPECT_TRUE(near_rel(r.hl_shift, table.number(row, "hl_shift"), 1e-13));
    EXPECT_TRUE(near_rel(r.hl_shift_pct, table.number(row, "hl_shift_pct"), 1e-10, 1e-12));
    if (r.method == MannWhitneyMethod::kExact) {
      // R's conf.int estimate is the median of the pairwise differences here.
      EXPECT_TRUE(near_rel(r.hl_shift, table.number(row, "r_estimate"), 1e-13));
    }
  }
}

// hodges_lehmann_ci against R 4.2.2. Every value below is from this snippet (x = candidate):
//   f <- function(c, b, ...) { w <- suppressWarnings(wilcox.test(c, b, conf.int = TRUE, ...))
//     cat(sprintf("%.17g", c(w$conf.int, attr(w$conf.int, "conf.level"))), "\n") }
//   f(c(861.9, 840.2, 899.0, 850.4, 872.8), c(812.0, 790.5, 845.2, 801.7, 820.3))
//     # 16.699999999999932 87 0.95
//   f(<same>, conf.level = 0.8)                # 28.200000000000045 71.399999999999977 0.8
//   f(c(200, 210), c(100, 110))                # 90 110 0.66666666666666674 (not achievable)
//   f(c(5, 6, 7), c(1, 2, 3))                  # 2 6 0.9 (not achievable)
//   f(c(14,15,17,17,19,21,22,22,25), c(10,12,12,13,15,15,15,18,20))
//     # 1.0000202349444025 8.9999538190168771 0.95 (ties: normal)
//   b <- 800 + (((0:59) * 37) %% 61); c <- 830 + (((0:54) * 23) %% 59) * 1.1
//   f(c, b)                     # 24.400027050284244 38.799992849492071 0.95 (n >= 50: normal)
//   f(c, b, conf.level = 0.9)   # 25.699987578841352 37.599962982685781 0.9
// R finds the normal ends with uniroot(tol = 1e-4); ours are the pairwise differences it
// converges to, so those are held to 2e-4.
TEST(MannWhitney, HodgesLehmannIntervalExactMatchesR) {
  const std::vector<double> b = {812.0, 790.5, 845.2, 801.7, 820.3};
  const std::vector<double> c = {861.9, 840.2, 899.0, 850.4, 872.8};
  HodgesLehmannInterval ci = hodges_lehmann_ci(b, c);
  EXPECT_EQ(ci.method, MannWhitneyMethod::kExact);
  EXPECT_TRUE(near_rel(ci.low, 16.699999999999932, 1e-13));
  EXPECT_TRUE(near_rel(ci.high, 87.0, 1e-13));
  // R reports the requested 0.95; q = qwilcox(0.025, 5, 5) = 3 and the interval [D_(3), D_(23)]
  // of 25 covers 1 - 2 P(W <= 2) = 1 - 2 * 4/252 (counts of W = 0, 1, 2: 1, 1, 2).
  EXPECT_DOUBLE_EQ(ci.confidence, 1.0 - 8.0 / 252.0);
  ci = hodges_lehmann_ci(b, c, 0.8);
  EXPECT_TRUE(near_rel(ci.low, 28.200000000000045, 1e-13));
  EXPECT_TRUE(near_rel(ci.high, 71.399999999999977, 1e-13));
  EXPECT_GE(ci.confidence, 0.8);
}

TEST(MannWhitney, HodgesLehmannIntervalTooSmallForTheLevelIsTheWidestWithItsLevel) {
  HodgesLehmannInterval ci = hodges_lehmann_ci(std::vector<double>{100, 110}, std::vector<double>{200, 210});
  EXPECT_EQ(ci.low, 90.0);
  EXPECT_EQ(ci.high, 110.0);
  EXPECT_DOUBLE_EQ(ci.confidence, 2.0 / 3.0);
  ci = hodges_lehmann_ci(std::vector<double>{1, 2, 3}, std::vector<double>{5, 6, 7});
  EXPECT_EQ(ci.low, 2.0);
  EXPECT_EQ(ci.high, 6.0);
  EXPECT_DOUBLE_EQ(ci.confidence, 0.9);
}

TEST(MannWhitney, HodgesLehmannIntervalNormalMatchesRWithinItsRootTolerance) {
  const std::vector<double> b = {10, 12, 12, 13, 15, 15, 15, 18, 20};
  const std::vector<double> c = {14, 15, 17, 17, 19, 21, 22, 22, 25};
  HodgesLehmannInterval ci = hodges_lehmann_ci(b, c);
  EXPECT_EQ(ci.method, MannWhitneyMethod::kNormal);
  EXPECT_NEAR(ci.low, 1.0000202349444025, 2e-4);
  EXPECT_NEAR(ci.high, 8.9999538190168771, 2e-4);
  EXPECT_EQ(ci.confidence, 0.95);

  std::vector<double> b60, c55;
  for (int i = 0; i < 60; ++i) b60.push_back(800.0 + static_cast<double>((i * 37) % 61));
  for (int i = 0; i < 55; ++i) c55.push_back(830.0 + static_cast<double>((i * 23) % 59) * 1.1);
  ci = hodges_lehmann_ci(b60, c55);
  EXPECT_EQ(ci.method, MannWhitneyMethod::kNormal);
  EXPECT_NEAR(ci.low, 24.400027050284244, 2e-4);
  EXPECT_NEAR(ci.high, 38.799992849492071, 2e-4);
  ci = hodges_lehmann_ci(b60, c55, 0.9);
  EXPECT_NEAR(ci.low, 25.699987578841352, 2e-4);
  EXPECT_NEAR(ci.high, 37.599962982685781, 2e-4);
}

TEST(MannWhitney, HodgesLehmannIntervalEdgeCases) {
  // Both arms constant: R stops ("all observations are tied"); the shift is known exactly.
  HodgesLehmannInterval ci = hodges_lehmann_ci(std::vector<double>{7, 7, 7}, std::vector<double>{9, 9});
  EXPECT_EQ(ci.method, MannWhitneyMethod::kNormal);
  EXPECT_EQ(ci.low, 2.0);
  EXPECT_EQ(ci.high, 2.0);
  // Swapping the arms mirrors the interval.
  const std::vector<double> b = {10, 12, 12, 13, 15, 15, 15, 18, 20};
  const std::vector<double> c = {14, 15, 17, 17, 19, 21, 22, 22, 25};
  const HodgesLehmannInterval bc = hodges_lehmann_ci(b, c), cb = hodges_lehmann_ci(c, b);
  EXPECT_EQ(bc.low, -cb.high);
  EXPECT_EQ(bc.high, -cb.low);
  const std::vector<double> ok = {1.0, 2.0}, with_nan = {1.0, std::numeric_limits<double>::quiet_NaN()};
  expect_invalid([&] { hodges_lehmann_ci(std::vector<double>{}, ok); }, "baseline is empty");
  expect_invalid([&] { hodges_lehmann_ci(ok, with_nan); }, "candidate value at index 1");
  expect_invalid([&] { hodges_lehmann_ci(ok, ok, 1.0); }, "confidence must be inside (0, 1)");
  expect_invalid([&] { hodges_lehmann_ci(ok, ok, 0.0); }, "confidence must be inside (0, 1)");
}

// ---- Large samples: selection from the sorted arms instead of all pairs ----

// Seeded arms of a given kind. Every kind is a case the selection must survive: smooth values
// (one difference per rank), integers (few distinct differences, huge tie groups), tenths (the
// same mathematical difference computed as neighbouring doubles), repeated values, a constant
// arm, and arms that do not overlap at all.
std::vector<double> make_arm(std::mt19937_64& rng, std::size_t n, int kind, double scale) {
  std::lognormal_distribution<double> lognormal(std::log(200.0 * scale), 0.08);
  std::uniform_int_distribution<int> small(0, 6);
  std::vector<double> xs(n);
  for (double& x : xs) {
    switch (kind) {
      case 0: x = lognormal(rng); break;
      case 1: x = std::round(lognormal(rng)); break;
      case 2: x = std::round(lognormal(rng) * 10.0) / 10.0; break;
      case 3: x = 200.0 * scale + 5.0 * small(rng); break;
      case 4: x = 200.0 * scale; break;
      default: x = lognormal(rng) * (scale > 1.0 ? 10.0 : 1.0); break;
    }
  }
  return xs;
}

void expect_same_results(const std::vector<double>& b, const std::vector<double>& c) {
  const auto all = HodgesLehmannAlgorithm::kAllPairs;
  const auto sel = HodgesLehmannAlgorithm::kSortedSelection;
  EXPECT_EQ(hodges_lehmann_shift(b, c, all), hodges_lehmann_shift(b, c, sel));
  EXPECT_EQ(hodges_lehmann_shift_pct(b, c, all), hodges_lehmann_shift_pct(b, c, sel));
  const MannWhitneyResult ra = mann_whitney_u_test(b, c, all);
  const MannWhitneyResult rs = mann_whitney_u_test(b, c, sel);
  EXPECT_EQ(ra.hl_shift, rs.hl_shift);
  EXPECT_EQ(ra.hl_shift_pct, rs.hl_shift_pct);
  EXPECT_EQ(ra.w, rs.w);
  EXPECT_EQ(ra.p_value, rs.p_value);
  for (double level : {0.95, 0.8}) {
    const HodgesLehmannInterval ca = hodges_lehmann_ci(b, c, level, all);
    const HodgesLehmannInterval cs = hodges_lehmann_ci(b, c, level, sel);
    EXPECT_EQ(ca.method, cs.method);
    EXPECT_EQ(ca.low, cs.low) << "level " << level;
    EXPECT_EQ(ca.high, cs.high) << "level " << level;
    EXPECT_EQ(ca.confidence, cs.confidence);
  }
}

// The selection path returns the very same doubles as materialising every pair: medians of an
// odd and an even number of pairs, log scale, and both ends of the interval, exact and normal.
// Sizes 50..400 per arm make tens of thousands of pairs, so the selection runs its sampled,
// interpolated and bisecting passes before the final copy; a few runs below 50 cover the exact
// interval.
TEST(MannWhitney, SortedSelectionEqualsAllPairsOnRandomArms) {
  std::mt19937_64 rng(20240601);
  std::uniform_int_distribution<std::size_t> size(50, 400), small_size(2, 49);
  std::uniform_int_distribution<int> kind(0, 5);
  std::uniform_real_distribution<double> shift(0.9, 1.1);
  for (int run = 0; run < 120; ++run) {
    const bool small = run % 10 == 9;
    const std::size_t nb = small ? small_size(rng) : size(rng);
    const std::size_t nc = small ? small_size(rng) : size(rng);
    const int kb = kind(rng);
    const int kc = kb == 4 ? kind(rng) : kb;  // a constant arm against any other
    const std::vector<double> b = make_arm(rng, nb, kb, 1.0);
    const std::vector<double> c = make_arm(rng, nc, kc, run % 7 == 0 ? 1.0 : shift(rng));
    SCOPED_TRACE("run " + std::to_string(run) + ": " + std::to_string(nb) + " vs " +
                 std::to_string(nc) + ", kinds " + std::to_string(kb) + "/" + std::to_string(kc));
    expect_same_results(b, c);
  }
}

TEST(MannWhitney, SortedSelectionEqualsAllPairsOnEdgeCases) {
  std::vector<double> ramp;
  for (int i = 1; i <= 300; ++i) ramp.push_back(static_cast<double>(i));
  std::vector<double> shifted = ramp;
  for (double& x : shifted) x += 1000.0;  // no overlap: every difference positive
  expect_same_results(ramp, shifted);
  expect_same_results(shifted, ramp);  // every difference negative
  expect_same_results(ramp, ramp);     // median difference 0, tied everywhere
  const std::vector<double> seven(257, 7.0), nine(300, 9.0);
  expect_same_results(seven, nine);  // both constant
  std::vector<double> two_levels(301, 1.0);
  for (std::size_t i = 0; i < two_levels.size(); i += 2) two_levels[i] = 2.0;
  expect_same_results(two_levels, ramp);
  // Negative and positive values (hodges_lehmann_shift takes any finite values).
  std::vector<double> signed_values;
  for (int i = 0; i < 350; ++i) signed_values.push_back(static_cast<double>((i * 37) % 101) - 50.5);
  const auto all = HodgesLehmannAlgorithm::kAllPairs;
  const auto sel = HodgesLehmannAlgorithm::kSortedSelection;
  EXPECT_EQ(hodges_lehmann_shift(signed_values, ramp, all),
            hodges_lehmann_shift(signed_values, ramp, sel));
  EXPECT_EQ(hodges_lehmann_shift(ramp, signed_values, all),
            hodges_lehmann_shift(ramp, signed_values, sel));
  const HodgesLehmannInterval a = hodges_lehmann_ci(ramp, signed_values, 0.95, all);
  const HodgesLehmannInterval s = hodges_lehmann_ci(ramp, signed_values, 0.95, sel);
  EXPECT_EQ(a.low, s.low);
  EXPECT_EQ(a.high, s.high);
}

// How many differences c_i - b_j are < d and <= d, counted with a binary search per candidate
// value: independent of the two-pointer passes under test. `b` sorted.
std::pair<std::uint64_t, std::uint64_t> count_around(const std::vector<double>& b,
                                                     const std::vector<double>& c, double d) {
  std::uint64_t below = 0, at_most = 0;
  for (double x : c) {
    // x - b_j falls as b_j grows: the pairs <= d (< d) are those from the first such b_j on.
    const auto le = std::partition_point(b.begin(), b.end(), [&](double y) { return x - y > d; });
    const auto lt = std::partition_point(b.begin(), b.end(), [&](double y) { return x - y >= d; });
    at_most += static_cast<std::uint64_t>(b.end() - le);
    below += static_cast<std::uint64_t>(b.end() - lt);
  }
  return {below, at_most};
}

// R's W counted pair by pair: pairs with candidate > baseline, ties counting 1/2 (a difference of
// two doubles is 0 only when they are equal, and has the sign of their order).
double w_by_counting(std::vector<double> b, const std::vector<double>& c) {
  std::sort(b.begin(), b.end());
  const auto [below, at_most] = count_around(b, c, 0.0);
  const auto pairs = static_cast<std::uint64_t>(b.size()) * c.size();
  return static_cast<double>(pairs - at_most) + static_cast<double>(at_most - below) / 2.0;
}

// Arms of 4096 values and more are sorted by radix, not std::sort: the ranks (W, against a pair
// count) and the selected shifts (against all pairs, which need no sort) must not notice.
TEST(MannWhitney, RadixSortedArmsGiveTheSameRanksAndShifts) {
  std::mt19937_64 rng(3);
  for (int kind : {0, 1, 2, 3}) {
    SCOPED_TRACE("kind " + std::to_string(kind));
    const std::vector<double> b = make_arm(rng, 6000, kind, 1.0);
    const std::vector<double> c = make_arm(rng, 37, kind, 1.03);
    const MannWhitneyResult r = mann_whitney_u_test(b, c);
    EXPECT_EQ(r.w, w_by_counting(b, c));
    expect_same_results(b, c);
  }
}

// 200,000 per arm is 4e10 pairs, 320 GB materialised: only the selection path can do it. No
// timing asserted; the median is checked to be the middle order statistic by counting.
TEST(MannWhitney, LargeArmsCompleteAndGiveTheMiddleDifference) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> ttfb(std::log(200.0), 0.05);
  std::vector<double> b(200'001), c(199'999);
  for (double& x : b) x = ttfb(rng);
  for (double& x : c) x = ttfb(rng) * 1.02;
  const MannWhitneyResult r = mann_whitney_u_test(b, c);
  ASSERT_TRUE(r.valid);
  EXPECT_EQ(r.method, MannWhitneyMethod::kNormal);
  EXPECT_EQ(r.w, w_by_counting(b, c));
  EXPECT_LT(r.p_value, 1e-12);
  EXPECT_NEAR(r.hl_shift_pct, 2.0, 0.1);
  // An odd number of pairs: the shift is one difference, the ((N + 1) / 2)-th smallest.
  std::sort(b.begin(), b.end());
  const std::uint64_t middle = (static_cast<std::uint64_t>(b.size()) * c.size() + 1) / 2;
  const auto [below, at_most] = count_around(b, c, r.hl_shift);
  EXPECT_LT(below, middle);
  EXPECT_GE(at_most, middle);
  EXPECT_EQ(hodges_lehmann_shift(b, c), r.hl_shift);
  const HodgesLehmannInterval ci = hodges_lehmann_ci(b, c);
  EXPECT_EQ(ci.method, MannWhitneyMethod::kNormal);
  EXPECT_LT(ci.low, r.hl_shift);
  EXPECT_GT(ci.high, r.hl_shift);
  EXPECT_LT(ci.high - ci.low, 0.5);  // ms; the shift is about 4 ms
}

// The same size with TTFB rounded to whole milliseconds: a few dozen distinct differences, each
// billions of pairs deep, so no bracket of ranks ever gets small; the selection ends when the
// bracket holds a single value.
TEST(MannWhitney, LargeHeavilyTiedArmsComplete) {
  std::mt19937_64 rng(11);
  std::lognormal_distribution<double> ttfb(std::log(200.0), 0.05);
  std::vector<double> b(200'000), c(200'000);
  for (double& x : b) x = std::round(ttfb(rng));
  for (double& x : c) x = std::round(ttfb(rng) * 1.02);
  const MannWhitneyResult r = mann_whitney_u_test(b, c);
  ASSERT_TRUE(r.valid);
  EXPECT_EQ(r.w, w_by_counting(b, c));
  EXPECT_EQ(r.hl_shift, std::round(r.hl_shift * 2.0) / 2.0);  // a whole or half millisecond
  EXPECT_NEAR(r.hl_shift, 4.0, 1.0);
  const HodgesLehmannInterval ci = hodges_lehmann_ci(b, c);
  EXPECT_LE(ci.low, r.hl_shift);
  EXPECT_GE(ci.high, r.hl_shift);
}

}  // namespace
}  // namespace ttfb::stats
