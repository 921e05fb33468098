// The confirmation rerun (confirm.hpp): its size against the power formula computed here
// independently (std::erfc, not Boost), the one-sided judgement, the floor it must reach, and by
// simulation the two promises the alert budget rests on: under no change a rerun reproduces at
// most rerun_alpha of the time, and a change of the size it was planned for is reproduced about
// as often as planned.
#include "server/stats/confirm.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

AdaptiveDesign design() {
  return AdaptiveDesign{.alpha = 0.1, .threshold_pct = 1.0, .margin_pct = 2.0, .runs_per_block = 10, .max_runs_per_arm = 60};
}

// A stopping look at n runs per arm with per-run noise sigma (log) and the given log CI.
LookSummary look(double sigma, int n, double ci_low, double ci_high) {
  LookSummary l;
  l.valid = true;
  l.se = sigma * std::sqrt(2.0 / n);
  l.diff_ci_low = ci_low;
  l.diff_ci_high = ci_high;
  l.effect_pct = 100.0 * std::expm1((ci_low + ci_high) / 2);
  return l;
}

double phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(Confirm, TheRerunIsSizedForTheSmallestChangeTheFirstStageAllows) {
  // z_0.95 = 1.6448536, z_0.9 = 1.2815516: n = 2 sigma^2 (2.926405)^2 / delta^2.
  const double zz = 1.6448536269514722 + 1.2815515655446004;
  // CI [+3%, +9%] (log): sized for 3%, 2 x 0.03^2 x zz^2 / 0.03^2 = 17.1 -> 2 jobs of 10.
  RerunPlan p = plan_rerun(look(0.03, 30, 0.03, 0.09), 30, design(), 0.05, 120);
  EXPECT_NEAR(p.sized_for_pct, 100.0 * std::expm1(0.03), 1e-9);
  EXPECT_EQ(p.runs_per_arm, 20);
  EXPECT_EQ(p.runs_per_arm, 10 * static_cast<int>(std::ceil(2.0 * zz * zz / 10.0)));  // whole jobs of 10
  EXPECT_EQ(p.jobs, 2);
  EXPECT_FALSE(p.capped);
  EXPECT_NEAR(p.sigma_pct, 3.0, 1e-9);
  EXPECT_NEAR(p.power, phi(0.03 / (0.03 * std::sqrt(2.0 / 20)) - 1.6448536269514722), 1e-9);
  EXPECT_GE(p.power, 0.9);
  // CI [+0.2%, +4%]: its near end is under the 1% threshold, so sized for 1%: 154 runs, capped.
  p = plan_rerun(look(0.03, 60, 0.002, 0.04), 60, design(), 0.05, 120);
  EXPECT_NEAR(p.sized_for_pct, 1.0, 1e-9);
  EXPECT_TRUE(p.capped);
  EXPECT_EQ(p.runs_per_arm, 120);
  EXPECT_EQ(p.jobs, 12);
  EXPECT_NEAR(p.power, phi(std::log1p(0.01) / (0.03 * std::sqrt(2.0 / 120)) - 1.6448536269514722), 1e-9);
  EXPECT_LT(p.power, 0.9) << "the cap leaves less than the target, and says so";
  // Without a cap of its own the design's budget caps it.
  EXPECT_EQ(plan_rerun(look(0.03, 60, 0.002, 0.04), 60, design(), 0.05).runs_per_arm, 60);
  // An improvement is sized the same way, by its interval's end nearer 0.
  p = plan_rerun(look(0.03, 30, -0.09, -0.03), 30, design(), 0.05, 120);
  EXPECT_EQ(p.runs_per_arm, 20);
  // A huge, quiet change needs one job, never less.
  p = plan_rerun(look(0.005, 10, 0.3, 0.4), 10, design(), 0.05, 120);
  EXPECT_EQ(p.runs_per_arm, 10);
  EXPECT_EQ(p.jobs, 1);
  // A cap that is not a whole number of jobs: the last job is shorter.
  p = plan_rerun(look(0.03, 60, 0.002, 0.04), 60, design(), 0.05, 45);
  EXPECT_EQ(p.runs_per_arm, 45);
  EXPECT_EQ(p.jobs, 5);
}

TEST(Confirm, InvalidLevelsAreRefused) {
  EXPECT_THROW(plan_rerun(look(0.03, 30, 0.03, 0.09), 30, design(), 0.0), std::invalid_argument);
  EXPECT_THROW(plan_rerun(look(0.03, 30, 0.03, 0.09), 30, design(), 0.5), std::invalid_argument);
  EXPECT_THROW(plan_rerun(look(0.03, 30, 0.03, 0.09), 30, design(), 0.05, 120, 0.4), std::invalid_argument);
  EXPECT_THROW(plan_rerun(look(0.03, 30, 0.03, 0.09), 30, design(), 0.05, -1), std::invalid_argument);
  const std::vector<double> v = {100, 101, 102};
  EXPECT_THROW(judge_rerun(v, v, {}, {}, design(), 0.7, true), std::invalid_argument);
}

std::vector<double> draw(std::mt19937_64& engine, int n, double ms, double sigma) {
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<double> out(n);
  for (auto& x : out) x = ms * std::exp(sigma * z(engine));
  return out;
}

TEST(Confirm, TheJudgementIsOneSidedAndMustReachTheThreshold) {
  std::mt19937_64 engine(3);
  // +3% against 3% noise, 20 runs per arm: reproduced as a slowdown, never as a speed-up.
  const auto b = draw(engine, 20, 200, 0.03), c = draw(engine, 20, 206, 0.03);
  const RerunResult slow = judge_rerun(b, c, {}, {}, design(), 0.05, true);
  const RerunResult fast = judge_rerun(b, c, {}, {}, design(), 0.05, false);
  const double p = slow.comparison.decision.welch.p_value;
  ASSERT_GT(slow.comparison.decision.welch.diff_log, 0.0);
  EXPECT_DOUBLE_EQ(slow.one_sided_p, p / 2.0);
  EXPECT_DOUBLE_EQ(fast.one_sided_p, 1.0 - p / 2.0);
  EXPECT_TRUE(slow.reproduced);
  EXPECT_FALSE(fast.reproduced);
  EXPECT_DOUBLE_EQ(slow.comparison.decision.welch.confidence, 0.9) << "the two-sided 1 - 2 rerun_alpha interval";
  // The same data against a 5% threshold: significant, but not big enough.
  AdaptiveDesign d = design();
  d.threshold_pct = 5.0;
  EXPECT_FALSE(judge_rerun(b, c, {}, {}, d, 0.05, true).reproduced);
  // Too few runs: not reproduced, and the comparison says why.
  const RerunResult few = judge_rerun(std::vector<double>{200}, std::vector<double>{260}, {}, {}, design(), 0.05, true);
  EXPECT_FALSE(few.reproduced);
  EXPECT_FALSE(few.comparison.decision.welch.valid);
  // Two jobs: the rerun's test is blocked by job.
  std::vector<long> jobs(20, 1);
  for (std::size_t i = 10; i < 20; ++i) jobs[i] = 2;
  EXPECT_EQ(judge_rerun(b, c, jobs, jobs, design(), 0.05, true).comparison.decision.welch.blocks, 2);
}

// 4000 reruns each: the null reproduction rate is at most rerun_alpha (3 standard errors), and a
// change of the planned size is reproduced at about the planned power (the plan's normal
// approximation against t tests after the outlier rule: within 4 percentage points).
TEST(Confirm, ByRerunsUnderNoChangeAndAtThePlannedSize) {
  std::mt19937_64 engine(11);
  const AdaptiveDesign d = design();
  const RerunPlan plan = plan_rerun(look(0.03, 30, 0.03, 0.09), 30, d, 0.05, 120);
  const int trials = 4000;
  int null_reproduced = 0, reproduced = 0;
  for (int t = 0; t < trials; ++t) {
    const auto b = draw(engine, plan.runs_per_arm, 200, 0.03);
    const auto c0 = draw(engine, plan.runs_per_arm, 200, 0.03);
    const auto c1 = draw(engine, plan.runs_per_arm, 200 * std::exp(0.03), 0.03);
    null_reproduced += judge_rerun(b, c0, {}, {}, d, 0.05, true).reproduced;
    reproduced += judge_rerun(b, c1, {}, {}, d, 0.05, true).reproduced;
  }
  const double null_rate = static_cast<double>(null_reproduced) / trials;
  EXPECT_LT(null_rate, 0.05 + 3 * std::sqrt(0.05 * 0.95 / trials));
  EXPECT_NEAR(static_cast<double>(reproduced) / trials, plan.power, 0.04);
}

}  // namespace
}  // namespace ttfb::stats
