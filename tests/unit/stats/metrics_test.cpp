// Two metrics per verdict (metrics.hpp): the alpha split between TTFB and CPU time, the rules that
// combine their looks, and by simulation what the split is for: under no change the two metrics
// together still end "different" at most alpha of the time, and a CPU-bound +2% that TTFB's
// scheduling noise hides is found through CPU time.
#include "server/stats/metrics.hpp"

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

TEST(Metrics, AlphaIsSplitBetweenTheTwoMetrics) {
  EXPECT_DOUBLE_EQ(design_for(design(), Metric::ttfb, 0.3).alpha, 0.07);
  EXPECT_DOUBLE_EQ(design_for(design(), Metric::cpu_time, 0.3).alpha, 0.03);
  EXPECT_DOUBLE_EQ(design_for(design(), Metric::ttfb, 0.0).alpha, 0.1);
  // Everything but alpha is the design's.
  const AdaptiveDesign d = design_for(design(), Metric::cpu_time, 0.3);
  EXPECT_EQ(d.threshold_pct, 1.0);
  EXPECT_EQ(d.margin_pct, 2.0);
  EXPECT_EQ(d.max_runs_per_arm, 60);
  EXPECT_THROW(design_for(design(), Metric::ttfb, 1.0), std::invalid_argument);
  EXPECT_THROW(design_for(design(), Metric::ttfb, -0.1), std::invalid_argument);
  EXPECT_THROW(design_for(design(), Metric::ttfb, NAN), std::invalid_argument);
  EXPECT_EQ(to_string(Metric::cpu_time), "cpu_time");
}

TEST(Metrics, CpuTimeIsUsableOnlyWhenEveryRunHasIt) {
  const std::vector<double> ok = {10, 11, 12}, none = {};
  EXPECT_TRUE(cpu_usable(ok, ok));
  EXPECT_FALSE(cpu_usable(ok, none));
  EXPECT_FALSE(cpu_usable(ok, std::vector<double>{10, NAN, 12}));
  EXPECT_FALSE(cpu_usable(ok, std::vector<double>{10, 0, 12}));  // unmeasurable, not zero work
  EXPECT_FALSE(cpu_usable(ok, std::vector<double>{10, INFINITY}));
}

RulesOutcome rules(Outcome o, Verdict v) { return RulesOutcome{o, v, 2, 20}; }

TEST(Metrics, TtfbDifferentDecidesWhateverCpuTimeSays) {
  const auto cpu = rules(Outcome::different, Verdict::improvement);
  const auto c = combine(rules(Outcome::different, Verdict::regression), &cpu, 4.0);
  EXPECT_EQ(c.rules.verdict, Verdict::regression);
  EXPECT_EQ(c.decided_by, Metric::ttfb);
}

TEST(Metrics, TtfbShownTheSameIsNoChangeEvenWhenCpuTimeGrew) {
  // Extra work done in parallel: more CPU, no longer wait. People wait for TTFB.
  const auto cpu = rules(Outcome::different, Verdict::regression);
  const auto c = combine(rules(Outcome::same, Verdict::no_change), &cpu, 0.2);
  EXPECT_EQ(c.rules.outcome, Outcome::same);
  EXPECT_EQ(c.rules.verdict, Verdict::no_change);
  EXPECT_EQ(c.decided_by, Metric::ttfb);
}

TEST(Metrics, CpuTimeDecidesWhenTtfbIsUndecidedAndPointsTheSameWay) {
  const auto cpu = rules(Outcome::different, Verdict::regression);
  const auto c = combine(rules(Outcome::unknown, Verdict::inconclusive), &cpu, 1.5);
  EXPECT_EQ(c.rules.outcome, Outcome::different);
  EXPECT_EQ(c.rules.verdict, Verdict::regression);
  EXPECT_EQ(c.decided_by, Metric::cpu_time);
  const auto faster = rules(Outcome::different, Verdict::improvement);
  EXPECT_EQ(combine(rules(Outcome::unknown, Verdict::inconclusive), &faster, -0.7).rules.verdict, Verdict::improvement);
}

TEST(Metrics, CpuTimeAgainstTtfbsDirectionDecidesNothing) {
  // More CPU but TTFB's estimate faster: not a start-up regression.
  const auto cpu = rules(Outcome::different, Verdict::regression);
  const auto c = combine(rules(Outcome::unknown, Verdict::inconclusive), &cpu, -1.0);
  EXPECT_EQ(c.rules.outcome, Outcome::unknown);
  EXPECT_EQ(c.decided_by, Metric::ttfb);
  EXPECT_EQ(combine(rules(Outcome::unknown, Verdict::inconclusive), &cpu, NAN).rules.outcome, Outcome::unknown);
  // CPU time the same adds nothing either: TTFB's look stands.
  const auto same = rules(Outcome::same, Verdict::no_change);
  EXPECT_EQ(combine(rules(Outcome::unknown, Verdict::inconclusive), &same, 1.0).rules.outcome, Outcome::unknown);
  EXPECT_EQ(combine(rules(Outcome::unknown, Verdict::inconclusive), nullptr, 1.0).rules.outcome, Outcome::unknown);
}

// One experiment's runs: CPU time per run with little noise, and TTFB = CPU time + a wait for a
// core (the scheduling noise of a busy machine), each block (job) with its own level shift.
struct Runs {
  std::vector<double> ttfb_b, ttfb_c, cpu_b, cpu_c;
  std::vector<long> jobs_b, jobs_c;
};

Runs simulate(std::mt19937_64& rng, int runs_per_arm, int block, double cpu_effect, double cpu_sigma, double wait_ms,
              double wait_sigma) {
  std::normal_distribution<double> z(0.0, 1.0);
  std::exponential_distribution<double> wait(1.0);
  Runs r;
  for (int i = 0; i < runs_per_arm; ++i) {
    const long job = i / block;
    for (int arm = 0; arm < 2; ++arm) {
      const double cpu = 1000.0 * (arm == 1 ? 1.0 + cpu_effect : 1.0) * std::exp(cpu_sigma * z(rng));
      const double ttfb = cpu * 1.05 + wait_ms * wait(rng) * std::exp(wait_sigma * z(rng));
      (arm == 0 ? r.cpu_b : r.cpu_c).push_back(cpu);
      (arm == 0 ? r.ttfb_b : r.ttfb_c).push_back(ttfb);
      (arm == 0 ? r.jobs_b : r.jobs_c).push_back(job);
    }
  }
  return r;
}

TEST(Metrics, ACpuBoundRegressionIsFoundThroughTtfbsSchedulingNoise) {
  std::mt19937_64 rng(20261203);
  // +5% of CPU time at 1% noise; TTFB waits about 150 ms more, at random: its noise is ~15%.
  const Runs r = simulate(rng, 30, 10, 0.05, 0.01, 150.0, 0.5);
  const TwoMetricLook l = decide_two_metrics(r.ttfb_b, r.ttfb_c, r.cpu_b, r.cpu_c, design(), 0.3, r.jobs_b, r.jobs_c);
  ASSERT_TRUE(l.cpu.has_value());
  EXPECT_EQ(l.cpu->outcome, Outcome::different);
  if (l.ttfb.outcome == Outcome::unknown && l.ttfb.comparison.decision.welch.effect_pct > 0) {
    EXPECT_EQ(l.decided_by, Metric::cpu_time);
    EXPECT_EQ(l.decision.outcome, Outcome::different);
    EXPECT_EQ(l.decision.verdict, Verdict::regression);
    EXPECT_FALSE(l.decision.more_runs);
    EXPECT_NE(l.decision.reason.find("CPU time"), std::string::npos) << l.decision.reason;
  } else {
    ADD_FAILURE() << "the draw should leave TTFB undecided and pointing up: " << l.ttfb.reason;
  }
  // Each metric was tested at its share of alpha: the CPU look's level is below TTFB's.
  EXPECT_LT(l.cpu->nominal_alpha, l.ttfb.nominal_alpha);
}

TEST(Metrics, WithoutCpuTimeTtfbAloneDecidesAtTheWholeAlpha) {
  std::mt19937_64 rng(7);
  const Runs r = simulate(rng, 20, 10, 0.0, 0.01, 50.0, 0.3);
  const LookDecision alone = decide_look(r.ttfb_b, r.ttfb_c, design(), r.jobs_b, r.jobs_c);
  for (const auto& l : {decide_two_metrics(r.ttfb_b, r.ttfb_c, {}, {}, design(), 0.3, r.jobs_b, r.jobs_c),
                        decide_two_metrics(r.ttfb_b, r.ttfb_c, r.cpu_b, r.cpu_c, design(), 0.0, r.jobs_b, r.jobs_c)}) {
    EXPECT_FALSE(l.cpu.has_value());
    EXPECT_EQ(l.decided_by, Metric::ttfb);
    EXPECT_DOUBLE_EQ(l.ttfb.nominal_alpha, alone.nominal_alpha);
    EXPECT_EQ(l.decision.outcome, alone.outcome);
  }
  std::vector<double> short_cpu(r.cpu_b.begin(), r.cpu_b.end() - 1);
  EXPECT_THROW(decide_two_metrics(r.ttfb_b, r.ttfb_c, short_cpu, r.cpu_c, design(), 0.3, r.jobs_b, r.jobs_c),
               std::invalid_argument);
}

// Runs alike in both arms but for a slow tail in the candidate: in each job of 10, runs 3 and 7
// are 50% slower. The outlier rule removes them (12 of 60 is its 20% cap), so TTFB's test sees
// two arms alike.
struct TailRuns {
  std::vector<double> b, c;
  std::vector<long> jobs;
};
TailRuns tail_runs(int jobs) {
  TailRuns r;
  for (int j = 0; j < jobs; ++j) {
    for (int i = 0; i < 10; ++i) {
      const double x = 200.0 * (1.0 + 0.002 * ((i * 7) % 10 - 4.5));
      r.b.push_back(x);
      r.c.push_back(i == 3 || i == 7 ? 1.5 * x : x);
      r.jobs.push_back(j);
    }
  }
  return r;
}

TEST(Metrics, ASlowTailIsNotCertifiedTheSameAndAtTheBudgetIsARegression) {
  const TailRuns early = tail_runs(1);
  const std::vector<double> none;
  // Without the tail test (share 0) TTFB alone certifies "no change" at the first look.
  const auto blind = decide_two_metrics(early.b, early.c, none, none, design(), 0.0, early.jobs, early.jobs, 0.0);
  ASSERT_EQ(blind.decision.outcome, Outcome::same) << blind.decision.reason;
  const auto look1 = decide_two_metrics(early.b, early.c, none, none, design(), 0.15, early.jobs, early.jobs, 0.05);
  ASSERT_TRUE(look1.tail.has_value());
  EXPECT_TRUE(look1.tail->suspect);
  EXPECT_EQ(look1.decision.outcome, Outcome::unknown);
  EXPECT_TRUE(look1.decision.more_runs);
  EXPECT_NE(look1.decision.reason.find("not certified the same"), std::string::npos) << look1.decision.reason;
  EXPECT_NE(look1.decision.reason.find("2 of 10 candidate runs slow against 0 of 10"), std::string::npos)
      << look1.decision.reason;
  // CPU time is still looked at (and reported) when the tail's screen holds TTFB's "same" back.
  const std::vector<double> cpu(early.b.size(), 150.0);
  EXPECT_TRUE(decide_two_metrics(early.b, early.c, cpu, cpu, design(), 0.15, early.jobs, early.jobs, 0.05).cpu.has_value());

  const TailRuns full = tail_runs(6);
  const auto last = decide_two_metrics(full.b, full.c, none, none, design(), 0.15, full.jobs, full.jobs, 0.05);
  ASSERT_TRUE(last.tail.has_value());
  EXPECT_EQ(last.ttfb.outcome, Outcome::same) << "TTFB's test, after the outlier rule, sees no change: " << last.ttfb.reason;
  EXPECT_EQ(last.decided_by, Metric::tail);
  EXPECT_EQ(last.decision.outcome, Outcome::different);
  EXPECT_EQ(last.decision.verdict, Verdict::regression);
  EXPECT_EQ(last.tail->comparison.slow_candidate, 12u);
  EXPECT_GT(last.tail->comparison.p90_change_pct, 40.0);
  EXPECT_NE(last.decision.reason.find("a slower tail"), std::string::npos) << last.decision.reason;
  // The tail's level is its share of alpha: alpha x 0.05 over the plan.
  EXPECT_LT(last.tail->nominal_alpha, 0.1 * 0.05);
  EXPECT_DOUBLE_EQ(design_for(design(), Metric::ttfb, 0.15, 0.05).alpha, 0.08);
  EXPECT_DOUBLE_EQ(design_for(design(), Metric::tail, 0.15, 0.05).alpha, 0.005);
  EXPECT_THROW(design_for(design(), Metric::ttfb, 0.6, 0.4), std::invalid_argument);
}

struct Rates {
  double different = 0.0, regression = 0.0;
};

// Over many experiments of the whole adaptive design (looks after each block of 10, up to 60 runs
// per arm): how often the two metrics together end different, and how often as a regression.
Rates rates(double cpu_effect, double wait_ms, double share, int experiments, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto d = design();
  const auto ttfb_plan = plan_looks(design_for(d, Metric::ttfb, share));
  const auto cpu_plan = share > 0 ? plan_looks(design_for(d, Metric::cpu_time, share)) : std::vector<LookPlan>{};
  Rates out;
  for (int e = 0; e < experiments; ++e) {
    const Runs r = simulate(rng, d.max_runs_per_arm, d.runs_per_block, cpu_effect, 0.01, wait_ms, 0.5);
    const auto tl = summarize_looks(r.ttfb_b, r.ttfb_c, ttfb_plan, r.jobs_b, r.jobs_c);
    const auto cl = share > 0 ? summarize_looks(r.cpu_b, r.cpu_c, cpu_plan, r.jobs_b, r.jobs_c) : std::vector<LookSummary>{};
    const CombinedOutcome c = apply_two_metric_rules(tl, cl, ttfb_plan, share > 0 ? cpu_plan : ttfb_plan, d.threshold_pct,
                                                     d.margin_pct);
    if (c.rules.outcome == Outcome::different) out.different += 1.0 / experiments;
    if (c.rules.verdict == Verdict::regression) out.regression += 1.0 / experiments;
  }
  return out;
}

TEST(Metrics, UnderNoChangeBothMetricsTogetherStayWithinAlpha) {
  // CPU time and TTFB are strongly correlated here (TTFB is CPU time plus waits), the case where
  // a split could double count least and a union bound is loosest; it must hold regardless.
  const int n = 3000;
  const Rates null = rates(0.0, 150.0, 0.3, n, 11);
  const double se = std::sqrt(0.1 * 0.9 / n);
  EXPECT_LE(null.different, 0.1 + 3 * se) << "both metrics together";
  EXPECT_LE(null.regression, 0.05 + 3 * se) << "one-sided, regressions only";
}

TEST(Metrics, TheCpuChannelBuysPowerOnCpuBoundRegressions) {
  // A CPU-bound +2% (an import, say) under heavy scheduling noise: TTFB alone at the whole alpha
  // against TTFB and CPU time with alpha split 70/30.
  const int n = 600;
  const Rates alone = rates(0.02, 150.0, 0.0, n, 21);
  const Rates split = rates(0.02, 150.0, 0.3, n, 21);
  EXPECT_GT(split.regression, 0.9);
  EXPECT_GT(split.regression, alone.regression + 0.3) << "TTFB alone " << alone.regression;
}

}  // namespace
}  // namespace ttfb::stats
