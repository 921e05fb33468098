// A/A calibration (server/stats/calibration.hpp): sigma_AA against its theoretical value, the
// ROC's shape, k as the smallest value within budget, a biased pool reported over budget,
// determinism, and input errors.
#include "server/stats/calibration.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

std::vector<AaExperiment> pool(int experiments, std::size_t runs, double sigma, double candidate_bias, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<AaExperiment> out(static_cast<std::size_t>(experiments));
  for (auto& e : out) {
    for (std::size_t i = 0; i < runs; ++i) e.baseline.push_back(200.0 * std::exp(sigma * z(engine)));
    for (std::size_t i = 0; i < runs; ++i) e.candidate.push_back(200.0 * (1 + candidate_bias) * std::exp(sigma * z(engine)));
  }
  return out;
}

CalibrationSettings settings() {
  CalibrationSettings s;
  s.design = AdaptiveDesign{.alpha = 0.01, .threshold_pct = 0.0, .runs_per_block = 10, .max_runs_per_arm = 40};
  s.detection_floor_pct = 0.0;
  s.null_experiments = 1000;
  s.fp_budget_per_week = 1.0;
  s.tests_per_week = 400.0;  // target 0.25%
  return s;
}

TEST(Calibration, SigmaAaIsTheNoiseOfOneBlocksEffect) {
  // Log-normal noise sigma = 3%: the effect of one block of 10 per arm has sd ~ 3% sqrt(2/10).
  auto p = pool(4, 200, 0.03, 0.0, 1);
  Calibration c = calibrate(p, settings());
  const double expected = 100.0 * 0.03 * std::sqrt(2.0 / 10.0);  // 1.34%
  EXPECT_NEAR(c.sigma_aa_pct, expected, 0.15 * expected);
  EXPECT_EQ(c.aa_experiments, 4u);
  EXPECT_EQ(c.samples, 1600u);
  EXPECT_DOUBLE_EQ(c.target_fpr, 1.0 / 400.0);
}

TEST(Calibration, TheRocIsMonotoneAndKIsTheSmallestWithinBudget) {
  auto p = pool(4, 100, 0.04, 0.0, 2);
  Calibration c = calibrate(p, settings());
  ASSERT_EQ(c.roc.size(), 41u) << "default grid 0, 0.1, ..., 4";
  // A larger threshold never adds a first-stage positive (the same draws for every k). The
  // modelled alert rate and power follow, up to the rerun's planning: a larger threshold plans a
  // smaller rerun, whose modelled chance can move by a few 1e-5.
  for (std::size_t i = 1; i < c.roc.size(); ++i) {
    EXPECT_LE(c.roc[i].first_stage_fpr, c.roc[i - 1].first_stage_fpr);
    EXPECT_LE(c.roc[i].fpr, c.roc[i - 1].fpr + 1e-4) << "a larger threshold adds no alerts";
    for (std::size_t e = 0; e < c.roc[i].tpr.size(); ++e) EXPECT_LE(c.roc[i].tpr[e], c.roc[i - 1].tpr[e] + 1e-3);
  }
  EXPECT_GT(c.roc.front().tpr[1], c.roc.back().tpr[1] + 0.1) << "the ROC's points differ";
  for (const auto& point : c.roc)
    for (std::size_t e = 1; e < point.tpr.size(); ++e) EXPECT_GE(point.tpr[e], point.tpr[e - 1] - 0.02) << "larger effects are found more often";
  EXPECT_TRUE(c.budget_met);
  EXPECT_LE(c.achieved_fpr * kSafetyFactor, c.target_fpr);
  std::size_t chosen = 0;
  while (c.roc[chosen].k != c.k) ++chosen;
  if (chosen > 0) {
    EXPECT_GT(c.roc[chosen - 1].fpr * kSafetyFactor, c.target_fpr) << "k is the smallest that meets the budget";
  }
  EXPECT_DOUBLE_EQ(c.threshold_pct, std::max(0.0, c.k * c.sigma_aa_pct));
  EXPECT_LE(c.achieved_fpr_ci_low, c.achieved_fpr);
  EXPECT_GE(c.achieved_fpr_ci_high, c.achieved_fpr);
  ASSERT_EQ(c.power.size(), 4u);
  EXPECT_GT(c.power[3].power, 0.99) << "+10% against 4% noise";
  EXPECT_LT(c.power[3].mean_runs_per_arm, c.power[0].mean_runs_per_arm) << "large effects stop early";
  EXPECT_EQ(c.smallest_effect_90_pct, c.power[2].power >= 0.9 ? (c.power[1].power >= 0.9 ? (c.power[0].power >= 0.9 ? 1.0 : 2.0) : 5.0) : 10.0);
}

TEST(Calibration, TheMinimumEffectIsTheThresholdsFloor) {
  auto s = settings();
  s.detection_floor_pct = 5.0;
  Calibration c = calibrate(pool(2, 60, 0.03, 0.0, 3), s);
  for (const auto& point : c.roc) EXPECT_GE(point.threshold_pct, 5.0);
  EXPECT_GE(c.threshold_pct, 5.0);
}

TEST(Calibration, ABatchsChanceArmDifferenceIsNotReplayedAsAnEffect) {
  // Three A/A batches of only 8 runs per arm: each batch's two arms differ by chance (sd ~ 1.4%
  // at 4% noise). Resampled as if that difference were real, 60 runs per arm would call it far
  // more often than alpha; drawn from the batch as one sample, the design keeps its rate.
  auto s = settings();
  s.detection_floor_pct = 0.0;
  s.k_grid = {0.0};
  s.null_experiments = 2000;
  Calibration c = calibrate(pool(3, 8, 0.04, 0.0, 4), s);
  const double se = std::sqrt(0.01 * 0.99 / 2000);
  EXPECT_LT(c.first_stage_fpr, 0.01 + 3 * se);
}

// The budget counts alerts: a first-stage regression that a rerun reproduces. A first stage at
// alpha 0.1 calls about 10% of A/A experiments different (5% of them regressions): far above a
// target of 0.5%, but a one-sided rerun at 0.05 lets at most 5% of those through, so k = 0 meets
// the budget, with the floor as the threshold, and the power that buys is kept.
TEST(Calibration, TheBudgetCountsAlertsNotFirstStagePositives) {
  auto s = settings();
  s.design.alpha = 0.1;
  s.detection_floor_pct = 1.0;
  s.tests_per_week = 200.0;  // target 0.5% a workflow-test
  s.rerun_alpha = 0.05;
  s.null_experiments = 2000;
  Calibration c = calibrate(pool(4, 60, 0.03, 0.0, 21), s);
  EXPECT_GT(c.first_stage_fpr, 0.05) << "the screen itself is loose";
  EXPECT_DOUBLE_EQ(c.k, 0.0);
  EXPECT_DOUBLE_EQ(c.threshold_pct, 1.0);
  EXPECT_TRUE(c.budget_met);
  // The modelled alert rate is the regressions' share times at most rerun_alpha.
  EXPECT_LE(c.achieved_fpr, c.roc[0].first_stage_fpr * 0.05 + 1e-12);
  EXPECT_GT(c.achieved_fpr, 0.0);
  EXPECT_LE(c.achieved_fpr * kSafetyFactor, c.target_fpr);
  EXPECT_LE(c.achieved_fpr, c.achieved_fpr_ci_high);
  // A stricter rerun halves (about) the alert rate of the same first stage.
  auto strict = s;
  strict.rerun_alpha = 0.025;
  Calibration d = calibrate(pool(4, 60, 0.03, 0.0, 21), strict);
  EXPECT_DOUBLE_EQ(d.first_stage_fpr, c.first_stage_fpr) << "same draws";
  EXPECT_LT(d.achieved_fpr, 0.7 * c.achieved_fpr);
  // The confirmed power at +2% is modelled, and below the first stage's alone.
  ASSERT_EQ(c.power.size(), 4u);
  EXPECT_GT(c.power[1].power, 0.5);
  // A budget 100 times tighter needs a threshold above the floor.
  auto tight = s;
  tight.tests_per_week = 20000.0;
  Calibration e = calibrate(pool(4, 60, 0.03, 0.0, 21), tight);
  EXPECT_GT(e.k, 0.0);
  EXPECT_GT(e.threshold_pct, 1.0);
  EXPECT_LT(e.power[1].power, c.power[1].power) << "a tighter budget costs power";
}

// Simulated experiments are built of jobs, each block drawn from its own A/A batch, and judged
// with the job-blocked test as real ones: batches 15% apart (another worker, another hour) then
// cost the calibration neither false positives nor power.
TEST(Calibration, BatchesThatDifferInLevelAreJobsNotNoise) {
  auto s = settings();
  s.design.alpha = 0.1;
  s.detection_floor_pct = 1.0;
  s.null_experiments = 1000;
  auto level = pool(4, 60, 0.03, 0.0, 31);
  const double factors[] = {1.0, 1.15, 0.92, 1.07};
  for (std::size_t i = 0; i < level.size(); ++i) {
    for (double& x : level[i].baseline) x *= factors[i];
    for (double& x : level[i].candidate) x *= factors[i];
  }
  const Calibration shifted = calibrate(level, s);
  const Calibration even = calibrate(pool(4, 60, 0.03, 0.0, 31), s);
  const double se = std::sqrt(0.1 * 0.9 / 1000);
  EXPECT_LT(shifted.first_stage_fpr, 0.1 + 3 * se);
  ASSERT_EQ(shifted.power.size(), 4u);
  EXPECT_NEAR(shifted.power[1].power, even.power[1].power, 0.06) << "+2%: the shifts between batches are absorbed";
  EXPECT_NEAR(shifted.sigma_aa_pct, even.sigma_aa_pct, 0.25 * even.sigma_aa_pct) << "one block is one batch";
}

// The alert rate's interval resamples whole A/A batches: a pool whose batches disagree (one of
// them noisier) gets a wider interval than one whose batches agree, and a pool of one batch
// falls back to the binomial bound.
TEST(Calibration, TheAlertRatesIntervalBootstrapsBatches) {
  auto s = settings();
  s.design.alpha = 0.1;
  s.detection_floor_pct = 1.0;
  s.null_experiments = 1000;
  const Calibration even = calibrate(pool(4, 60, 0.03, 0.0, 41), s);
  EXPECT_EQ(even.achieved_fpr_ci_method, "bootstrap of the A/A batches");
  EXPECT_LE(even.achieved_fpr_ci_low, even.achieved_fpr);
  EXPECT_GE(even.achieved_fpr_ci_high, even.achieved_fpr);
  auto mixed = pool(4, 60, 0.03, 0.0, 41);
  mixed[3] = pool(1, 60, 0.09, 0.0, 42)[0];  // one batch three times noisier (two workers overlapped)
  const Calibration wide = calibrate(mixed, s);
  EXPECT_GT(wide.achieved_fpr_ci_high - wide.achieved_fpr_ci_low, even.achieved_fpr_ci_high - even.achieved_fpr_ci_low);
  const Calibration one = calibrate(pool(1, 60, 0.03, 0.0, 43), s);
  EXPECT_EQ(one.achieved_fpr_ci_method, "binomial, one A/A batch");
  EXPECT_EQ(to_json(one).at("achieved_fpr_ci_method").as_string(), "binomial, one A/A batch");
}

TEST(Calibration, AnUnreachableBudgetIsReported) {
  auto s = settings();
  s.k_grid = {0.0};                   // no threshold to raise
  s.tests_per_week = 1e9;       // one false alarm a week in a billion experiments
  Calibration c = calibrate(pool(3, 40, 0.04, 0.0, 8), s);
  ASSERT_GT(c.achieved_fpr, 0.0);
  EXPECT_FALSE(c.budget_met);
  EXPECT_DOUBLE_EQ(c.k, 0.0) << "the largest k of the grid";
}

TEST(Calibration, IsDeterministicForASeed) {
  auto p = pool(3, 50, 0.05, 0.0, 5);
  auto s = settings();
  Calibration a = calibrate(p, s), b = calibrate(p, s);
  EXPECT_EQ(boost::json::serialize(to_json(a)), boost::json::serialize(to_json(b)));
  s.seed += 1;
  Calibration c = calibrate(p, s);
  EXPECT_NE(a.sigma_aa_pct, c.sigma_aa_pct);
}

TEST(Calibration, JsonCarriesWhatTheApiShows) {
  Calibration c = calibrate(pool(2, 40, 0.03, 0.0, 6), settings());
  auto j = to_json(c);
  for (const char* key : {"sigma_aa_pct", "k", "threshold_pct", "target_fpr", "achieved_fpr", "achieved_fpr_ci",
                          "budget_met", "power", "roc", "smallest_effect_90_pct", "design", "seed"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.at("roc").as_array().size(), 41u);
}

TEST(Calibration, RejectsBadInput) {
  auto s = settings();
  EXPECT_THROW(calibrate({}, s), std::invalid_argument) << "empty pool";
  std::vector<AaExperiment> tiny{AaExperiment{{200.0}, {200.0, 201.0}}};
  EXPECT_THROW(calibrate(tiny, s), std::invalid_argument) << "one baseline run";
  std::vector<AaExperiment> bad{AaExperiment{{200.0, -1.0}, {200.0, 201.0}}};
  EXPECT_THROW(calibrate(bad, s), std::invalid_argument) << "a negative TTFB";
  auto p = pool(1, 20, 0.03, 0.0, 7);
  auto s2 = s;
  s2.fp_budget_per_week = 0.0;
  EXPECT_THROW(calibrate(p, s2), std::invalid_argument);
  s2 = s;
  s2.null_experiments = 10;
  EXPECT_THROW(calibrate(p, s2), std::invalid_argument);
  s2 = s;
  s2.k_grid = {1.0, 0.5};
  EXPECT_THROW(calibrate(p, s2), std::invalid_argument);
  s2 = s;
  s2.injected_effects_pct = {-100.0};
  EXPECT_THROW(calibrate(p, s2), std::invalid_argument);
}

TEST(Calibration, WilsonIntervalMatchesR) {
  // R: prop.test(3, 1000, correct = FALSE)$conf.int -> 0.001020784, 0.008783014 (Wilson score).
  auto [lo, hi] = wilson_interval(3, 1000);
  EXPECT_NEAR(lo, 0.001020784, 1e-8);
  EXPECT_NEAR(hi, 0.008783014, 1e-8);
  auto [lo0, hi0] = wilson_interval(0, 100);
  EXPECT_NEAR(lo0, 0.0, 1e-15);
  EXPECT_NEAR(hi0, 0.0369935, 1e-7);  // prop.test(0, 100, correct = FALSE)
}

}  // namespace
}  // namespace ttfb::stats
