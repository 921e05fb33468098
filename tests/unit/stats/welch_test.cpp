// Welch's t-test on log(TTFB): closed-form cases computed by hand, every edge case of welch.hpp,
// invariances the log scale promises, and R's t.test on the cases of
// tests/data/stats/welch_reference.csv.
#include "server/stats/welch.hpp"

#include "reference_csv.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<double> exp_of(std::vector<double> logs) {
  for (double& x : logs) x = std::exp(x);
  return logs;
}

// logs {0, 2} vs {1, 3}: means 1 and 2, variances 2 and 2, so se = sqrt(2/2 + 2/2) = sqrt(2),
// t = 1/sqrt(2), df = 2^2 / (1^2/1 + 1^2/1) = 2. For 2 df the t distribution has closed forms:
// F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - t / sqrt(2 + t^2) = 1 - 1/sqrt(5); and its
// quantile at F is (2F - 1) / sqrt(2 F (1 - F)).
TEST(Welch, ClosedFormTwoDegreesOfFreedom) {
  const WelchResult r = welch_log_t_test(exp_of({0, 2}), exp_of({1, 3}), 0.95);
  ASSERT_TRUE(r.valid) << r.reason;
  EXPECT_TRUE(r.reason.empty());
  EXPECT_EQ(r.baseline.n, 2u);
  EXPECT_EQ(r.candidate.n, 2u);
  EXPECT_TRUE(near_rel(r.baseline.mean_log, 1.0, 1e-15));
  EXPECT_TRUE(near_rel(r.candidate.mean_log, 2.0, 1e-15));
  EXPECT_TRUE(near_rel(r.baseline.sd_log, std::sqrt(2.0), 1e-15));
  EXPECT_TRUE(near_rel(r.baseline.median_ms, (1.0 + std::exp(2.0)) / 2.0, 1e-15));
  EXPECT_TRUE(near_rel(r.candidate.median_ms, (std::exp(1.0) + std::exp(3.0)) / 2.0, 1e-15));
  EXPECT_TRUE(near_rel(r.diff_log, 1.0, 1e-15));
  EXPECT_TRUE(near_rel(r.se, std::sqrt(2.0), 1e-15));
  EXPECT_TRUE(near_rel(r.t, 1.0 / std::sqrt(2.0), 1e-14));
  EXPECT_TRUE(near_rel(r.df, 2.0, 1e-14));
  EXPECT_TRUE(near_rel(r.p_value, 1.0 - 1.0 / std::sqrt(5.0), 1e-13));
  const double q = 0.95 / std::sqrt(2.0 * 0.975 * 0.025);  // 4.3027
  EXPECT_TRUE(near_rel(r.diff_ci_low, 1.0 - q * std::sqrt(2.0), 1e-13));
  EXPECT_TRUE(near_rel(r.diff_ci_high, 1.0 + q * std::sqrt(2.0), 1e-13));
  EXPECT_TRUE(near_rel(r.effect_pct, 100.0 * (std::exp(1.0) - 1.0), 1e-14));
  EXPECT_TRUE(near_rel(r.effect_ci_low_pct, 100.0 * (std::exp(1.0 - q * std::sqrt(2.0)) - 1.0), 1e-13));
  EXPECT_TRUE(near_rel(r.effect_ci_high_pct, 100.0 * (std::exp(1.0 + q * std::sqrt(2.0)) - 1.0), 1e-13));
  EXPECT_FALSE(r.both_arms_constant);
}

// logs {0, 1, 2} vs {1, 2, 3}: variances 1, se = sqrt(2/3), t = sqrt(3/2),
// df = (2/3)^2 / ((1/3)^2/2 + (1/3)^2/2) = 4, and for 4 df the t distribution has the closed form
// F(t) = 1/2 + 3/8 * (t / sqrt(s)) * (1 - t^2 / (12 s)) with s = 1 + t^2/4.
TEST(Welch, ClosedFormFourDegreesOfFreedom) {
  const WelchResult r = welch_log_t_test(exp_of({0, 1, 2}), exp_of({1, 2, 3}), 0.95);
  ASSERT_TRUE(r.valid);
  const double t = std::sqrt(1.5);
  const double s = 1.0 + t * t / 4.0;
  const double cdf = 0.5 + 3.0 / 8.0 * (t / std::sqrt(s)) * (1.0 - t * t / (12.0 * s));
  EXPECT_TRUE(near_rel(r.t, t, 1e-14));
  EXPECT_TRUE(near_rel(r.df, 4.0, 1e-14));
  EXPECT_TRUE(near_rel(r.p_value, 2.0 * (1.0 - cdf), 1e-13));
  EXPECT_TRUE(near_rel(r.baseline.median_ms, std::exp(1.0), 1e-15));
  EXPECT_TRUE(near_rel(r.candidate.median_ms, std::exp(2.0), 1e-15));
}

TEST(Welch, TooFewSamplesIsInvalidNotAnError) {
  const std::vector<double> one = {1000.0};
  const std::vector<double> three = {1000.0, 1010.0, 990.0};
  const WelchResult r = welch_log_t_test(one, three);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("baseline has 1 sample"), std::string::npos) << r.reason;
  EXPECT_EQ(r.reason.find("candidate"), std::string::npos) << r.reason;
  // Summaries that exist are filled; the test itself is NaN.
  EXPECT_EQ(r.baseline.n, 1u);
  EXPECT_TRUE(near_rel(r.baseline.mean_log, std::log(1000.0), 1e-15));
  EXPECT_EQ(r.baseline.median_ms, 1000.0);
  EXPECT_TRUE(std::isnan(r.baseline.sd_log));
  EXPECT_EQ(r.candidate.n, 3u);
  EXPECT_EQ(r.candidate.median_ms, 1000.0);
  EXPECT_FALSE(std::isnan(r.candidate.sd_log));
  for (double v : {r.diff_log, r.se, r.t, r.df, r.p_value, r.diff_ci_low, r.diff_ci_high,
                   r.effect_pct, r.effect_ci_low_pct, r.effect_ci_high_pct}) {
    EXPECT_TRUE(std::isnan(v));
  }
}

TEST(Welch, EmptyArmsAreInvalidAndReasonNamesBoth) {
  const std::vector<double> none;
  const std::vector<double> one = {5.0};
  const WelchResult r = welch_log_t_test(none, one);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("baseline has 0 sample"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("candidate has 1 sample"), std::string::npos) << r.reason;
  EXPECT_EQ(r.baseline.n, 0u);
  EXPECT_TRUE(std::isnan(r.baseline.mean_log));
  EXPECT_TRUE(std::isnan(r.baseline.median_ms));
  EXPECT_EQ(r.candidate.median_ms, 5.0);

  const WelchResult c = welch_log_t_test(std::vector<double>{1.0, 2.0}, none);
  EXPECT_FALSE(c.valid);
  EXPECT_NE(c.reason.find("candidate has 0 sample"), std::string::npos) << c.reason;
}

TEST(Welch, BadValuesThrowNamingArmAndIndexEvenForTinyArms) {
  const std::vector<double> good = {10.0, 11.0, 12.0};
  expect_invalid([&] { welch_log_t_test(std::vector<double>{10.0, 0.0}, good); }, "baseline value at index 1");
  expect_invalid([&] { welch_log_t_test(good, std::vector<double>{-3.0}); }, "candidate value at index 0");
  expect_invalid([&] { welch_log_t_test(good, std::vector<double>{1.0, kNaN}); }, "candidate value at index 1");
  expect_invalid([&] { welch_log_t_test(std::vector<double>{kInf}, good); }, "baseline value at index 0");
}

TEST(Welch, ConfidenceMustBeStrictlyInsideZeroOne) {
  const std::vector<double> xs = {10.0, 11.0, 12.0};
  for (double c : {0.0, 1.0, -0.5, 95.0, kNaN}) {
    expect_invalid([&] { welch_log_t_test(xs, xs, c); }, "confidence");
  }
}

TEST(Welch, BothArmsConstantAndEqualGivesPOne) {
  const std::vector<double> b(4, 1500.0);
  const std::vector<double> c(6, 1500.0);
  const WelchResult r = welch_log_t_test(b, c);
  ASSERT_TRUE(r.valid);
  EXPECT_TRUE(r.both_arms_constant);
  EXPECT_EQ(r.se, 0.0);
  EXPECT_EQ(r.t, 0.0);
  EXPECT_EQ(r.df, 8.0);  // n_b + n_c - 2
  EXPECT_EQ(r.p_value, 1.0);
  EXPECT_EQ(r.diff_log, 0.0);
  EXPECT_EQ(r.diff_ci_low, 0.0);
  EXPECT_EQ(r.diff_ci_high, 0.0);
  EXPECT_EQ(r.effect_pct, 0.0);
  EXPECT_EQ(r.effect_ci_low_pct, 0.0);
  EXPECT_EQ(r.effect_ci_high_pct, 0.0);
  EXPECT_EQ(r.baseline.sd_log, 0.0);
}

TEST(Welch, BothArmsConstantAndDifferentGivesPZeroAndDegenerateInterval) {
  const std::vector<double> b(3, 1000.0);
  const std::vector<double> c(5, 1100.0);
  const WelchResult up = welch_log_t_test(b, c);
  ASSERT_TRUE(up.valid);
  EXPECT_TRUE(up.both_arms_constant);
  EXPECT_EQ(up.t, kInf);
  EXPECT_EQ(up.p_value, 0.0);
  EXPECT_EQ(up.df, 6.0);
  EXPECT_TRUE(near_rel(up.effect_pct, 10.0, 1e-12));
  EXPECT_EQ(up.effect_ci_low_pct, up.effect_pct);
  EXPECT_EQ(up.effect_ci_high_pct, up.effect_pct);
  EXPECT_EQ(up.diff_ci_low, up.diff_log);
  EXPECT_EQ(up.diff_ci_high, up.diff_log);

  const WelchResult down = welch_log_t_test(c, b);
  EXPECT_EQ(down.t, -kInf);
  EXPECT_EQ(down.p_value, 0.0);
  EXPECT_LT(down.effect_pct, 0.0);
}

TEST(Welch, OneConstantArmIsAnOrdinaryTestWithTheOtherArmsDf) {
  const std::vector<double> constant(5, 2000.0);
  const std::vector<double> varying = {2010.0, 2090.0, 1980.0, 2055.0, 2120.0, 2031.0, 1999.0, 2075.0};
  const WelchResult r = welch_log_t_test(constant, varying);
  ASSERT_TRUE(r.valid);
  EXPECT_FALSE(r.both_arms_constant);
  EXPECT_EQ(r.baseline.sd_log, 0.0);
  EXPECT_TRUE(near_rel(r.df, 7.0, 1e-14));
  EXPECT_GT(r.p_value, 0.0);
  EXPECT_LT(r.p_value, 1.0);
  EXPECT_LT(r.diff_ci_low, r.diff_log);
  EXPECT_GT(r.diff_ci_high, r.diff_log);
}

// Swapping the arms mirrors everything on the log scale and keeps p.
TEST(Welch, SwappingArmsNegatesTheLogDifference) {
  const std::vector<double> b = {812.0, 790.5, 845.2, 801.7, 820.3, 799.9};
  const std::vector<double> c = {861.9, 840.2, 899.0, 850.4, 872.8};
  const WelchResult r = welch_log_t_test(b, c);
  const WelchResult s = welch_log_t_test(c, b);
  EXPECT_TRUE(near_rel(s.t, -r.t, 1e-14));
  EXPECT_TRUE(near_rel(s.df, r.df, 1e-14));
  EXPECT_TRUE(near_rel(s.p_value, r.p_value, 1e-12));
  EXPECT_TRUE(near_rel(s.diff_ci_low, -r.diff_ci_high, 1e-13));
  EXPECT_TRUE(near_rel(s.diff_ci_high, -r.diff_ci_low, 1e-13));
  // On the percent scale the mirror is multiplicative: (1 + e/100)(1 + e'/100) = 1.
  EXPECT_TRUE(near_rel((1 + r.effect_pct / 100) * (1 + s.effect_pct / 100), 1.0, 1e-14));
}

// The log scale makes the test unit-free: ms or s, the same answer; and a pure multiplicative
// slowdown of the candidate shifts the difference by exactly its log.
TEST(Welch, LogScaleMakesTheTestUnitFree) {
  const std::vector<double> b = {812.0, 790.5, 845.2, 801.7, 820.3, 799.9};
  const std::vector<double> c = {861.9, 840.2, 899.0, 850.4, 872.8};
  std::vector<double> b_s = b, c_s = c, c_slow = c;
  for (double& x : b_s) x /= 1000.0;
  for (double& x : c_s) x /= 1000.0;
  for (double& x : c_slow) x *= 1.05;
  const WelchResult ms = welch_log_t_test(b, c);
  const WelchResult s = welch_log_t_test(b_s, c_s);
  EXPECT_TRUE(near_rel(s.t, ms.t, 1e-9));
  EXPECT_TRUE(near_rel(s.p_value, ms.p_value, 1e-8));
  EXPECT_TRUE(near_rel(s.effect_pct, ms.effect_pct, 1e-9));
  const WelchResult slow = welch_log_t_test(b, c_slow);
  EXPECT_TRUE(near_rel(slow.diff_log, ms.diff_log + std::log(1.05), 1e-12));
  EXPECT_TRUE(near_rel(slow.se, ms.se, 1e-9));
}

// Every case of welch_reference.csv against R 4.2's
// t.test(log(candidate), log(baseline), var.equal = FALSE, conf.level = confidence).
// Tolerances: t and df 1e-9 relative, p 1e-8 relative (also for p ~ 1e-120: the upper tail is
// computed directly, never as 1 - cdf), CI ends 1e-9 of the interval's scale (|diff| + half
// width: an end near 0 is a difference of two close numbers, so relative-to-itself would be
// unfair), summaries 1e-12.
TEST(Welch, MatchesRReference) {
  const auto table = testing::read_reference("welch_reference.csv");
  ASSERT_GE(table.rows.size(), 30u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE("case " + table.field(row, "case"));
    const std::vector<double> b = table.numbers(row, "baseline");
    const std::vector<double> c = table.numbers(row, "candidate");
    const double confidence = table.number(row, "confidence");
    const WelchResult r = welch_log_t_test(b, c, confidence);
    ASSERT_TRUE(r.valid) << r.reason;
    EXPECT_FALSE(r.both_arms_constant);
    EXPECT_EQ(r.baseline.n, b.size());
    EXPECT_EQ(r.candidate.n, c.size());
    EXPECT_EQ(r.confidence, confidence);

    EXPECT_TRUE(near_rel(r.t, table.number(row, "t"), 1e-9, 1e-12));
    EXPECT_TRUE(near_rel(r.df, table.number(row, "df"), 1e-9));
    EXPECT_TRUE(near_rel(r.p_value, table.number(row, "p_value"), 1e-8));

    const double lo = table.number(row, "ci_low");
    const double hi = table.number(row, "ci_high");
    const double scale = std::fabs(lo + hi) / 2 + (hi - lo) / 2;
    EXPECT_TRUE(near_rel(r.diff_ci_low, lo, 0.0, 1e-9 * scale));
    EXPECT_TRUE(near_rel(r.diff_ci_high, hi, 0.0, 1e-9 * scale));
    // Same bound carried through 100 (exp(x) - 1), whose slope is at most 100 exp(hi).
    const double pct_tol = 100 * std::exp(hi) * 1e-9 * scale;
    EXPECT_TRUE(near_rel(r.effect_ci_low_pct, 100 * std::expm1(lo), 0.0, pct_tol));
    EXPECT_TRUE(near_rel(r.effect_ci_high_pct, 100 * std::expm1(hi), 0.0, pct_tol));

    const double mb = table.number(row, "mean_log_baseline");
    const double mc = table.number(row, "mean_log_candidate");
    EXPECT_TRUE(near_rel(r.baseline.mean_log, mb, 1e-12));
    EXPECT_TRUE(near_rel(r.candidate.mean_log, mc, 1e-12));
    EXPECT_TRUE(near_rel(r.diff_log, mc - mb, 0.0, 1e-12 * std::fmax(std::fabs(mb), std::fabs(mc))));
    EXPECT_TRUE(near_rel(r.baseline.sd_log, table.number(row, "sd_log_baseline"), 1e-12));
    EXPECT_TRUE(near_rel(r.candidate.sd_log, table.number(row, "sd_log_candidate"), 1e-12));
    EXPECT_TRUE(near_rel(r.baseline.median_ms, table.number(row, "median_baseline"), 1e-12));
    EXPECT_TRUE(near_rel(r.candidate.median_ms, table.number(row, "median_candidate"), 1e-12));
    // The CI is consistent with the point estimate.
    EXPECT_LE(r.effect_ci_low_pct, r.effect_pct);
    EXPECT_GE(r.effect_ci_high_pct, r.effect_pct);
  }
}

}  // namespace
}  // namespace ttfb::stats
