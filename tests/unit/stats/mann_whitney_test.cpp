// Mann-Whitney U test and Hodges-Lehmann shift: hand-computed cases, every edge case of
// mann_whitney.hpp, symmetry under swapping the arms, and R's wilcox.test on the cases of
// tests/data/stats/mann_whitney_reference.csv.
#include "server/stats/mann_whitney.hpp"

#include "reference_csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
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

}  // namespace
}  // namespace ttfb::stats
