// TOST equivalence on log(TTFB), tost.hpp: closed-form cases, the edge cases of the header, the
// symmetry of the log bounds, and R's two one-sided t.test calls,
// tests/data/stats/tost_reference.csv.
#include "server/stats/tost.hpp"

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

std::vector<double> exp_of(std::vector<double> logs) {
  for (double& x : logs) x = std::exp(x);
  return logs;
}

TEST(Tost, BoundsAreSymmetricInLogs) {
  const std::vector<double> b = {100, 101, 99, 100.5}, c = {100.2, 99.8, 100.1, 100.4};
  const TostResult r = tost_log_equivalence(b, c, 5.0);
  EXPECT_EQ(r.upper_bound_log, std::log1p(0.05));
  EXPECT_EQ(r.lower_bound_log, -r.upper_bound_log);
  EXPECT_EQ(r.margin_pct, 5.0);
  EXPECT_EQ(r.alpha, 0.05);
}

// Logs {0, 2} vs {1, 3}: d = 1, se = sqrt(2), df = 2. With margin e - 1 (delta = 1):
// t_lower = 2 / sqrt(2) = sqrt(2), t_upper = 0, so p_upper = 0.5 and p = 0.5.
TEST(Tost, ClosedFormTwoDegreesOfFreedom) {
  const auto b = exp_of({0.0, 2.0}), c = exp_of({1.0, 3.0});
  const TostResult r = tost_log_equivalence(b, c, 100.0 * (std::exp(1.0) - 1.0));
  ASSERT_TRUE(r.valid);
  EXPECT_TRUE(near_rel(r.diff_log, 1.0, 1e-15));
  EXPECT_TRUE(near_rel(r.se, std::sqrt(2.0), 1e-15));
  EXPECT_TRUE(near_rel(r.df, 2.0, 1e-14));
  EXPECT_TRUE(near_rel(r.t_lower, std::sqrt(2.0), 1e-14));
  EXPECT_TRUE(near_rel(r.t_upper, 0.0, 0.0, 1e-14));
  EXPECT_TRUE(near_rel(r.p_upper, 0.5, 1e-13));
  // t with 2 df: P(T > t) = (1 - t / sqrt(t^2 + 2)) / 2; at sqrt(2): (1 - 1/sqrt(2)) / 2.
  EXPECT_TRUE(near_rel(r.p_lower, (1.0 - 1.0 / std::sqrt(2.0)) / 2.0, 1e-13));
  EXPECT_TRUE(near_rel(r.p_value, 0.5, 1e-13));
  EXPECT_FALSE(r.equivalent);
}

TEST(Tost, SwappingArmsSwapsTheOneSidedTests) {
  const std::vector<double> b = {812.0, 790.5, 845.2, 801.7, 820.3, 803.0};
  const std::vector<double> c = {815.1, 798.0, 840.9, 806.3, 818.8, 809.9, 812.4};
  const TostResult bc = tost_log_equivalence(b, c, 4.0);
  const TostResult cb = tost_log_equivalence(c, b, 4.0);
  EXPECT_TRUE(near_rel(bc.p_lower, cb.p_upper, 1e-12));
  EXPECT_TRUE(near_rel(bc.p_upper, cb.p_lower, 1e-12));
  EXPECT_TRUE(near_rel(bc.p_value, cb.p_value, 1e-12));
  EXPECT_EQ(bc.equivalent, cb.equivalent);
}

TEST(Tost, EquivalentIffTheShortenedIntervalIsInsideTheMargin) {
  const std::vector<double> b = {812.0, 790.5, 845.2, 801.7, 820.3, 803.0};
  const std::vector<double> c = {815.1, 798.0, 840.9, 806.3, 818.8, 809.9, 812.4};
  for (double m : {0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0}) {
    SCOPED_TRACE(m);
    const TostResult r = tost_log_equivalence(b, c, m);
    const bool inside = r.ci_low_pct > 100.0 * (1.0 / (1.0 + m / 100.0) - 1.0) &&
                        r.ci_high_pct < m;
    EXPECT_EQ(r.equivalent, inside);
  }
}

TEST(Tost, TooFewSamplesIsInvalidAndNotEquivalent) {
  const std::vector<double> one = {5.0}, two = {5.0, 6.0};
  const TostResult r = tost_log_equivalence(one, two, 5.0);
  EXPECT_FALSE(r.valid);
  EXPECT_FALSE(r.equivalent);
  EXPECT_NE(r.reason.find("baseline has 1"), std::string::npos) << r.reason;
  EXPECT_TRUE(std::isnan(r.p_value));
}

TEST(Tost, BothArmsConstant) {
  const std::vector<double> b = {100, 100, 100}, same = {100, 100};
  const std::vector<double> near = {103, 103, 103}, far = {110, 110};
  TostResult r = tost_log_equivalence(b, same, 5.0);
  EXPECT_EQ(r.p_value, 0.0);
  EXPECT_TRUE(r.equivalent);
  r = tost_log_equivalence(b, near, 5.0);
  EXPECT_EQ(r.p_value, 0.0);
  EXPECT_TRUE(r.equivalent);
  r = tost_log_equivalence(b, far, 5.0);
  EXPECT_EQ(r.p_upper, 1.0);
  EXPECT_EQ(r.p_lower, 0.0);
  EXPECT_FALSE(r.equivalent);
}

TEST(Tost, BadInputThrows) {
  const std::vector<double> ok = {1.0, 2.0, 3.0};
  const std::vector<double> bad = {1.0, 0.0};
  expect_invalid([&] { tost_log_equivalence(bad, ok, 5.0); }, "baseline value at index 1");
  expect_invalid([&] { tost_log_equivalence(ok, bad, 5.0); }, "candidate value at index 1");
  expect_invalid([&] { tost_log_equivalence(ok, ok, 0.0); }, "margin_pct");
  expect_invalid([&] { tost_log_equivalence(ok, ok, std::nan("")); }, "margin_pct");
  expect_invalid([&] { tost_log_equivalence(ok, ok, 5.0, 0.5); }, "alpha");
  expect_invalid([&] { tost_log_equivalence(ok, ok, 5.0, 0.0); }, "alpha");
}

TEST(Tost, MatchesRReference) {
  const auto table = testing::read_reference("tost_reference.csv");
  ASSERT_GE(table.rows.size(), 10u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE(row[0]);
    const TostResult r =
        tost_log_equivalence(table.numbers(row, "baseline"), table.numbers(row, "candidate"),
                             table.number(row, "margin_pct"), table.number(row, "alpha"));
    ASSERT_TRUE(r.valid);
    EXPECT_TRUE(near_rel(r.t_lower, table.number(row, "t_lower"), 1e-9));
    EXPECT_TRUE(near_rel(r.t_upper, table.number(row, "t_upper"), 1e-9));
    EXPECT_TRUE(near_rel(r.df, table.number(row, "df"), 1e-9));
    EXPECT_TRUE(near_rel(r.p_lower, table.number(row, "p_lower"), 1e-8));
    EXPECT_TRUE(near_rel(r.p_upper, table.number(row, "p_upper"), 1e-8));
    EXPECT_TRUE(near_rel(r.p_value, table.number(row, "p_value"), 1e-8));
    EXPECT_EQ(r.equivalent, table.field(row, "equivalent") == "1");
    EXPECT_TRUE(near_rel(r.ci_low_pct, table.number(row, "ci_low_pct"), 1e-8, 1e-12));
    EXPECT_TRUE(near_rel(r.ci_high_pct, table.number(row, "ci_high_pct"), 1e-8, 1e-12));
  }
}

}  // namespace
}  // namespace ttfb::stats
