// The adaptive design (server/stats/adaptive.hpp): where looks fall, the three-way rules, the
// final look, the fixed design as a special case, and — by seeded simulation — that repeated
// looks with alpha spending keep the false-positive rate at alpha while naive repeated testing
// does not.
#include "server/stats/adaptive.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

// Log-normal TTFB-like runs: median `ms`, log-sd `sigma`, deterministic per seed.
std::vector<double> runs(std::size_t n, double ms, double sigma, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  std::vector<double> out(n);
  for (auto& x : out) x = ms * std::exp(sigma * z(engine));
  return out;
}

AdaptiveDesign design(double threshold = 3.0, double margin = 3.0) {
  return AdaptiveDesign{
      .alpha = 0.01, .threshold_pct = threshold, .margin_pct = margin, .runs_per_block = 10, .max_runs_per_arm = 60};
}

TEST(Adaptive, RejectsInvalidDesigns) {
  auto d = design();
  d.alpha = 0.0;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.alpha = 0.6;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.threshold_pct = -1.0;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.threshold_pct = NAN;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.margin_pct = -0.5;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.margin_pct = INFINITY;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.runs_per_block = 1;
  EXPECT_THROW(validate(d), std::invalid_argument);
  d = design();
  d.max_runs_per_arm = 5;
  EXPECT_THROW(validate(d), std::invalid_argument);
  EXPECT_NO_THROW(validate(design()));
}

TEST(Adaptive, PlansALookAfterEveryBlock) {
  const auto plan = plan_looks(design());
  ASSERT_EQ(plan.size(), 6u);
  for (std::size_t j = 0; j < plan.size(); ++j) {
    EXPECT_EQ(plan[j].runs_per_arm, 10 * static_cast<int>(j + 1));
    EXPECT_LT(plan[j].nominal_alpha, 0.01) << "each look tests below the total alpha";
  }
}

TEST(Adaptive, BeforeTheFirstLookAsksForMoreRuns) {
  auto b = runs(9, 200, 0.03, 1), c = runs(9, 200, 0.03, 2);
  LookDecision d = decide_look(b, c, design());
  EXPECT_EQ(d.look, 0);
  EXPECT_TRUE(d.more_runs);
  EXPECT_FALSE(d.final);
  EXPECT_EQ(d.verdict, Verdict::inconclusive);
}

TEST(Adaptive, ALargeSlowdownIsDifferentAtTheFirstLook) {
  auto b = runs(10, 200, 0.03, 3), c = runs(10, 260, 0.03, 4);  // +30%
  LookDecision d = decide_look(b, c, design());
  EXPECT_EQ(d.look, 1);
  EXPECT_EQ(d.outcome, Outcome::different);
  EXPECT_EQ(d.verdict, Verdict::regression);
  EXPECT_FALSE(d.more_runs);
  EXPECT_NE(d.reason.find("look 1 of 6"), std::string::npos) << d.reason;
  EXPECT_DOUBLE_EQ(d.comparison.decision.welch.confidence, 1.0 - d.nominal_alpha) << "the CI is the look's";
}

TEST(Adaptive, ALargeSpeedupIsAnImprovement) {
  auto b = runs(20, 200, 0.03, 5), c = runs(20, 150, 0.03, 6);
  LookDecision d = decide_look(b, c, design());
  EXPECT_EQ(d.look, 2);
  EXPECT_EQ(d.verdict, Verdict::improvement);
}

TEST(Adaptive, QuietEqualArmsAreTheSame) {
  auto b = runs(10, 200, 0.002, 7), c = runs(10, 200, 0.002, 8);  // 0.2% noise, 3% threshold
  LookDecision d = decide_look(b, c, design());
  EXPECT_EQ(d.outcome, Outcome::same);
  EXPECT_EQ(d.verdict, Verdict::no_change);
  EXPECT_FALSE(d.more_runs);
}

TEST(Adaptive, NoisyEqualArmsNeedMoreRunsThenRunOutOfBudget) {
  auto b = runs(60, 200, 0.15, 9), c = runs(60, 200, 0.15, 10);  // 15% noise: never "same" within 3%
  LookDecision early = decide_look(std::span(b).first(10), std::span(c).first(10), design());
  EXPECT_EQ(early.outcome, Outcome::unknown);
  EXPECT_TRUE(early.more_runs);
  LookDecision last = decide_look(b, c, design());
  EXPECT_TRUE(last.final);
  EXPECT_FALSE(last.more_runs);
  EXPECT_EQ(last.verdict, Verdict::inconclusive);
  EXPECT_NE(last.reason.find("budget"), std::string::npos) << last.reason;
}

TEST(Adaptive, ASignificantChangeBelowTheThresholdIsInconclusiveAndSaysSo) {
  // Exactly +1.5% (the same noise pattern in both arms) with 0.5% noise: significant, below a
  // 1.6% threshold, and its CI reaches past the 1.6% margin, so neither different nor the same.
  // That is not no_change: no_change is only ever an equivalence result.
  auto b = runs(10, 200, 0.005, 11), c = runs(10, 203, 0.005, 11);
  AdaptiveDesign d = design(1.6, 1.6);
  d.max_runs_per_arm = 10;  // one look: final
  LookDecision r = decide_look(b, c, d);
  ASSERT_TRUE(r.final);
  const auto& w = r.comparison.decision.welch;
  ASSERT_LT(w.p_value, r.nominal_alpha);
  ASSERT_LT(w.effect_pct, 1.6);
  ASSERT_GT(w.effect_ci_high_pct, 1.6);
  EXPECT_EQ(r.outcome, Outcome::unknown);
  EXPECT_EQ(r.verdict, Verdict::inconclusive);
  EXPECT_NE(r.reason.find("significant but below the 1.6% detection threshold"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("not within the 1.6% equivalence margin"), std::string::npos) << r.reason;
}

// The threshold and the margin are two settings: the same +1.5% is "the same" within a 3% margin
// while a 1% threshold calls it a regression, whichever the margin.
TEST(Adaptive, TheThresholdAndTheMarginAreSeparate) {
  auto b = runs(10, 200, 0.005, 11), c = runs(10, 203, 0.005, 11);
  AdaptiveDesign d = design(1.6, 3.0);
  d.max_runs_per_arm = 10;
  LookDecision same = decide_look(b, c, d);
  EXPECT_EQ(same.outcome, Outcome::same);
  EXPECT_EQ(same.verdict, Verdict::no_change);
  EXPECT_NE(same.reason.find("the same within the 3% equivalence margin"), std::string::npos) << same.reason;
  for (double margin : {0.5, 3.0}) {
    d = design(1.0, margin);
    d.max_runs_per_arm = 10;
    LookDecision regression = decide_look(b, c, d);
    EXPECT_EQ(regression.verdict, Verdict::regression) << "margin " << margin << ": " << regression.reason;
  }
  // A true +2.5% with a 2% margin: never "same" (its CI is inside +/-2% about 1 time in 10^4).
  auto c2 = runs(10, 205, 0.005, 11);
  d = design(3.0, 2.0);
  d.max_runs_per_arm = 10;
  LookDecision r = decide_look(b, c2, d);
  EXPECT_NE(r.outcome, Outcome::same) << r.reason;
}

// With the job of every run, the look's test is blocked by job: two jobs 15% apart (another
// worker, a busy hour) hide a +2% change from the pooled Welch test but not from the blocked one.
TEST(Adaptive, JobLabelsMakeTheLookBlockedByJob) {
  std::vector<double> b = runs(20, 200, 0.01, 21), c = runs(20, 204, 0.01, 22);
  for (std::size_t i = 10; i < 20; ++i) {
    b[i] *= 1.15;
    c[i] *= 1.15;
  }
  std::vector<long> jobs(20, 7);
  for (std::size_t i = 10; i < 20; ++i) jobs[i] = 8;
  const AdaptiveDesign d = design(1.0, 2.0);
  const LookDecision blocked = decide_look(b, c, d, jobs, jobs);
  EXPECT_EQ(blocked.comparison.decision.welch.blocks, 2);
  EXPECT_EQ(blocked.verdict, Verdict::regression) << blocked.reason;
  const LookDecision pooled = decide_look(b, c, d);
  EXPECT_EQ(pooled.comparison.decision.welch.blocks, 0);
  EXPECT_EQ(pooled.outcome, Outcome::unknown) << pooled.reason;
  EXPECT_GT(pooled.comparison.decision.welch.se, 3.0 * blocked.comparison.decision.welch.se);
  // summarize_looks with the labels agrees with decide_look.
  const auto plan = plan_looks(d);
  std::vector<LookPlan> two(plan.begin(), plan.begin() + 2);
  const auto looks = summarize_looks(b, c, two, jobs, jobs);
  EXPECT_DOUBLE_EQ(looks[1].p_value, blocked.comparison.decision.welch.p_value);
  EXPECT_THROW(decide_look(b, c, d, std::vector<long>(19, 7), jobs), std::invalid_argument);
}

TEST(Adaptive, AFixedDesignIsOneLookAtAlpha) {
  AdaptiveDesign d = design();
  d.runs_per_block = 20;
  d.max_runs_per_arm = 20;
  const auto plan = plan_looks(d);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_NEAR(plan[0].nominal_alpha, 0.01, 1e-9);
}

TEST(Adaptive, RulesWithoutWordsAgreeWithDecideLook) {
  const AdaptiveDesign d = design(2.0);
  const auto plan = plan_looks(d);
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    const double shift = (seed % 4) * 0.02;  // 0, 2, 4, 6 %
    auto b = runs(60, 200, 0.04, 100 + seed), c = runs(60, 200 * (1 + shift), 0.04, 200 + seed);
    const auto looks = summarize_looks(b, c, plan);
    const RulesOutcome r = apply_rules(looks, plan, d.threshold_pct, d.margin_pct);
    // Replay it look by look, as the server does.
    LookDecision last;
    for (const auto& look : plan) {
      last = decide_look(std::span(b).first(look.runs_per_arm), std::span(c).first(look.runs_per_arm), d);
      if (!last.more_runs) break;
    }
    EXPECT_EQ(r.verdict, last.verdict) << "seed " << seed;
    EXPECT_EQ(r.runs_per_arm, last.runs_per_arm) << "seed " << seed;
  }
}

// Under no change, how often does a design end as regression or improvement?
double false_positive_rate(const std::vector<LookPlan>& plan, int experiments, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  const auto n = static_cast<std::size_t>(plan.back().runs_per_arm);
  std::vector<double> b(n), c(n);
  int positives = 0;
  for (int e = 0; e < experiments; ++e) {
    for (auto& x : b) x = 200 * std::exp(0.04 * z(engine));
    for (auto& x : c) x = 200 * std::exp(0.04 * z(engine));
    const RulesOutcome r = apply_rules(summarize_looks(b, c, plan), plan, 0.0, 0.0);
    positives += r.outcome == Outcome::different;
  }
  return static_cast<double>(positives) / experiments;
}

TEST(Adaptive, AlphaSpendingKeepsTheFalsePositiveRateWhereNaiveLooksInflateIt) {
  AdaptiveDesign d{.alpha = 0.05, .threshold_pct = 0.0, .runs_per_block = 5, .max_runs_per_arm = 30};
  const auto plan = plan_looks(d);
  ASSERT_EQ(plan.size(), 6u);
  const int experiments = 4000;
  const double spent = false_positive_rate(plan, experiments, 42);
  const double se = std::sqrt(0.05 * 0.95 / experiments);
  EXPECT_LT(spent, 0.05 + 3 * se) << "alpha spending";
  EXPECT_GT(spent, 0.05 - 4 * se) << "and not wastefully conservative";
  auto naive = plan;
  for (auto& look : naive) look.nominal_alpha = 0.05;  // test every look at alpha
  const double inflated = false_positive_rate(naive, experiments, 42);
  EXPECT_GT(inflated, 0.09) << "six looks at 0.05 each: about 0.11 in theory";
}

}  // namespace
}  // namespace ttfb::stats
