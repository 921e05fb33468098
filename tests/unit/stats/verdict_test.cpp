// The v0 decision rules of verdict.hpp: each rule and boundary on hand-made Welch results (so
// the rule, not the test statistic, is what is checked), then end to end on fixed samples.
#include "server/stats/verdict.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A valid result with the given effect, CI (percent) and p; n per arm.
WelchResult evidence(double effect_pct, double lo_pct, double hi_pct, double p,
                     std::size_t n = 20) {
  WelchResult w;
  w.valid = true;
  w.confidence = 0.95;
  w.baseline.n = w.candidate.n = n;
  w.p_value = p;
  w.effect_pct = effect_pct;
  w.effect_ci_low_pct = lo_pct;
  w.effect_ci_high_pct = hi_pct;
  w.diff_log = std::log1p(effect_pct / 100);
  w.diff_ci_low = std::log1p(lo_pct / 100);
  w.diff_ci_high = std::log1p(hi_pct / 100);
  return w;
}

const Policy kPolicy{.alpha = 0.01, .min_effect_pct = 3.0, .confidence = 0.95};

// Ten fixed multipliers around 1 (sd ~ 1.9%): the "noise" of a run.
const std::vector<double> kNoise = {0.97, 1.02, 0.99, 1.01, 1.00, 0.98, 1.03, 1.00, 0.995, 1.005};

std::vector<double> arm(double median_ms, std::size_t repeats = 1, std::size_t rotate = 0) {
  std::vector<double> out;
  for (std::size_t r = 0; r < repeats; ++r) {
    for (std::size_t i = 0; i < kNoise.size(); ++i) {
      out.push_back(median_ms * kNoise[(i + rotate) % kNoise.size()]);
    }
  }
  return out;
}

TEST(Verdict, NamesRoundTripAndUnknownNamesAreRejected) {
  for (Verdict v : {Verdict::regression, Verdict::improvement, Verdict::no_change,
                    Verdict::inconclusive, Verdict::error}) {
    EXPECT_EQ(verdict_from_string(to_string(v)), v);
  }
  EXPECT_EQ(to_string(Verdict::no_change), "no_change");
  EXPECT_EQ(to_string(Verdict::regression), "regression");
  EXPECT_EQ(verdict_from_string("Regression"), std::nullopt);
  EXPECT_EQ(verdict_from_string("no change"), std::nullopt);
  EXPECT_EQ(verdict_from_string(""), std::nullopt);
}

TEST(Verdict, ClearSlowdownIsRegression) {
  const Decision d = decide(evidence(8.0, 5.0, 11.0, 1e-6), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::regression);
  EXPECT_TRUE(contains(d.reason, "slower")) << d.reason;
  EXPECT_TRUE(d.warning.empty()) << d.warning;
  EXPECT_EQ(d.policy.min_effect_pct, 3.0);
  EXPECT_EQ(d.welch.effect_pct, 8.0);
}

TEST(Verdict, ClearSpeedupIsImprovement) {
  const Decision d = decide(evidence(-8.0, -11.0, -5.0, 1e-6), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::improvement);
  EXPECT_TRUE(contains(d.reason, "faster")) << d.reason;
}

TEST(Verdict, SignificantButUnderThresholdIsNoChange) {
  const Decision slow = decide(evidence(1.0, 0.5, 1.5, 1e-9), kPolicy);
  EXPECT_EQ(slow.verdict, Verdict::no_change);
  EXPECT_TRUE(contains(slow.reason, "smaller than the 3% threshold")) << slow.reason;
  const Decision fast = decide(evidence(-2.9, -3.5, -2.3, 1e-9), kPolicy);
  EXPECT_EQ(fast.verdict, Verdict::no_change);
}

TEST(Verdict, NotSignificantIsNoChangeEvenWithALargeEstimate) {
  const Decision d = decide(evidence(6.0, -4.0, 17.0, 0.2), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::no_change);
  EXPECT_TRUE(contains(d.reason, "not significant")) << d.reason;
}

// With alpha above 1 - confidence a result can be significant while its (95%) CI still crosses
// 0: the whole interval must be on the slow side, so this is not a regression.
TEST(Verdict, IntervalStraddlingZeroIsNeverRegression) {
  const Policy loose{.alpha = 0.10, .min_effect_pct = 3.0, .confidence = 0.95};
  const Decision d = decide(evidence(5.0, -0.5, 10.8, 0.07), loose);
  EXPECT_EQ(d.verdict, Verdict::no_change);
  EXPECT_TRUE(contains(d.reason, "includes 0")) << d.reason;
  // Touching 0 is not "wholly on the slow side" either.
  EXPECT_EQ(decide(evidence(5.0, 0.0, 10.0, 0.005), kPolicy).verdict, Verdict::no_change);
  EXPECT_EQ(decide(evidence(-5.0, -10.0, 0.0, 0.005), kPolicy).verdict, Verdict::no_change);
}

TEST(Verdict, Boundaries) {
  // p == alpha is not significant.
  EXPECT_EQ(decide(evidence(8.0, 5.0, 11.0, 0.01), kPolicy).verdict, Verdict::no_change);
  // effect == threshold is enough, on both sides.
  EXPECT_EQ(decide(evidence(3.0, 1.0, 5.0, 0.001), kPolicy).verdict, Verdict::regression);
  EXPECT_EQ(decide(evidence(-3.0, -5.0, -1.0, 0.001), kPolicy).verdict, Verdict::improvement);
  // A zero threshold leaves significance and the CI as the only conditions.
  const Policy any{.alpha = 0.01, .min_effect_pct = 0.0, .confidence = 0.95};
  EXPECT_EQ(decide(evidence(0.2, 0.1, 0.3, 0.001), any).verdict, Verdict::regression);
}

TEST(Verdict, InvalidEvidenceIsInconclusiveWithItsReason) {
  WelchResult w;  // as welch_log_t_test returns it for a 1-sample arm
  w.valid = false;
  w.reason = "baseline has 1 sample(s); the t-test needs at least 2 per arm";
  w.confidence = 0.95;
  w.baseline.n = 1;
  w.candidate.n = 12;
  w.p_value = w.effect_pct = w.effect_ci_low_pct = w.effect_ci_high_pct = kNaN;
  const Decision d = decide(w, kPolicy);
  EXPECT_EQ(d.verdict, Verdict::inconclusive);
  EXPECT_TRUE(contains(d.reason, "baseline has 1 sample")) << d.reason;
  EXPECT_TRUE(contains(d.warning, "only 1 baseline")) << d.warning;
}

TEST(Verdict, FewerThanRecommendedSamplesStillDecidesButWarns) {
  const Decision d = decide(evidence(8.0, 5.0, 11.0, 1e-4, kRecommendedSamplesPerArm - 1), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::regression);
  EXPECT_TRUE(contains(d.warning, "only 9 baseline and 9 candidate samples")) << d.warning;
  EXPECT_TRUE(contains(d.warning, "at least 10 per arm")) << d.warning;
  EXPECT_TRUE(decide(evidence(8.0, 5.0, 11.0, 1e-4, kRecommendedSamplesPerArm), kPolicy)
                  .warning.empty());
}

TEST(Verdict, InvalidPolicyThrows) {
  const WelchResult w = evidence(8.0, 5.0, 11.0, 1e-6);
  for (const Policy& bad : {Policy{.alpha = 0.0}, Policy{.alpha = 1.0}, Policy{.alpha = kNaN},
                            Policy{.min_effect_pct = -1.0}, Policy{.min_effect_pct = kNaN},
                            Policy{.confidence = 1.0}}) {
    EXPECT_THROW(decide(w, bad), std::invalid_argument);
  }
}

TEST(Verdict, EvidenceAtAnotherConfidenceLevelThrows) {
  const Policy p99{.alpha = 0.01, .min_effect_pct = 3.0, .confidence = 0.99};
  try {
    decide(evidence(8.0, 5.0, 11.0, 1e-6), p99);
    ADD_FAILURE() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_TRUE(contains(e.what(), "95% intervals but the policy asks for 99%")) << e.what();
  }
}

// End to end: welch_log_t_test + decide on fixed samples.

TEST(Compare, TenPercentSlowerIsRegression) {
  const Decision d = compare(arm(1000), arm(1100, 1, 3), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::regression) << d.reason;
  EXPECT_NEAR(d.welch.effect_pct, 10.0, 0.5);
  EXPECT_GT(d.welch.effect_ci_low_pct, 3.0);
  EXPECT_TRUE(d.warning.empty()) << d.warning;
}

TEST(Compare, TenPercentFasterIsImprovement) {
  EXPECT_EQ(compare(arm(1000), arm(900, 1, 7), kPolicy).verdict, Verdict::improvement);
}

TEST(Compare, NoiseIsNoChange) {
  const Decision d = compare(arm(1000), arm(1005, 1, 4), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::no_change) << d.reason;
  EXPECT_GT(d.welch.p_value, 0.1);
  EXPECT_LT(d.welch.effect_ci_low_pct, 0.0);  // the CI straddles 0
  EXPECT_GT(d.welch.effect_ci_high_pct, 0.0);
}

TEST(Compare, TinySignificantSlowdownUnderThresholdIsNoChange) {
  // 200 samples per arm make a 1% slowdown highly significant; 1% is under the 3% threshold.
  const Decision d = compare(arm(1000, 20), arm(1010, 20, 5), kPolicy);
  EXPECT_LT(d.welch.p_value, 1e-4);
  EXPECT_GT(d.welch.effect_ci_low_pct, 0.0);
  EXPECT_EQ(d.verdict, Verdict::no_change) << d.reason;
  EXPECT_TRUE(contains(d.reason, "smaller than the 3% threshold")) << d.reason;
}

TEST(Compare, OneSampleIsInconclusive) {
  const Decision d = compare(std::vector<double>{1000.0}, arm(1100), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::inconclusive);
  EXPECT_TRUE(contains(d.reason, "baseline has 1 sample")) << d.reason;
}

TEST(Compare, FewSamplesWithAClearEffectIsRegressionWithAWarning) {
  const std::vector<double> b = {1000, 1010, 990, 1005, 995};
  const std::vector<double> c = {1200, 1190, 1210, 1205, 1195};
  const Decision d = compare(b, c, kPolicy);
  EXPECT_EQ(d.verdict, Verdict::regression) << d.reason;
  EXPECT_TRUE(contains(d.warning, "only 5 baseline and 5 candidate")) << d.warning;
}

TEST(Compare, ConstantArmsDecideWithCertaintyAndSayWhy) {
  const Decision d = compare(std::vector<double>(12, 1000.0), std::vector<double>(12, 1100.0), kPolicy);
  EXPECT_EQ(d.verdict, Verdict::regression) << d.reason;
  EXPECT_TRUE(contains(d.warning, "identical")) << d.warning;
  const Decision same = compare(std::vector<double>(12, 1000.0), std::vector<double>(12, 1000.0), kPolicy);
  EXPECT_EQ(same.verdict, Verdict::no_change) << same.reason;
}

TEST(Compare, BadSamplesThrow) {
  EXPECT_THROW(compare(std::vector<double>{1000.0, 0.0}, arm(1000), kPolicy), std::invalid_argument);
}

}  // namespace
}  // namespace ttfb::stats
