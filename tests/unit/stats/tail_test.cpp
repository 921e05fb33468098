// The tail test (tail.hpp) against R (tests/data/stats/tail_reference.csv, make_reference_tail.R:
// centring, the slow cut, mantelhaen.test(exact = TRUE) / fisher.test and the 90th percentiles,
// all computed there independently), its level by simulation under no change with job shifts and
// bursts, and what it is for: a tail the outlier rule hides from the t-test.
#include "server/stats/tail.hpp"

#include "reference_csv.hpp"
#include "server/stats/comparison.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

TEST(Tail, MatchesR) {
  const auto table = testing::read_reference("tail_reference.csv");
  ASSERT_GE(table.rows.size(), 6u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE(table.field(row, "case"));
    const auto b = table.numbers(row, "baseline"), c = table.numbers(row, "candidate");
    std::vector<long> bj, cj;
    for (double j : table.numbers(row, "baseline_jobs")) bj.push_back(static_cast<long>(j));
    for (double j : table.numbers(row, "candidate_jobs")) cj.push_back(static_cast<long>(j));
    const TailComparison t = compare_tails(b, c, bj, cj);
    ASSERT_TRUE(t.valid);
    EXPECT_EQ(t.slow_baseline, static_cast<std::size_t>(table.number(row, "slow_baseline")));
    EXPECT_EQ(t.slow_candidate, static_cast<std::size_t>(table.number(row, "slow_candidate")));
    EXPECT_EQ(t.jobs, static_cast<std::size_t>(table.number(row, "jobs")));
    EXPECT_NEAR(t.p_slower, table.number(row, "p_greater"), 1e-9);
    EXPECT_NEAR(t.p_faster, table.number(row, "p_less"), 1e-9);
    EXPECT_NEAR(t.p90_change_pct, table.number(row, "p90_change_pct"), 1e-9);
  }
}

TEST(Tail, TheExactTestOnHandCountedTables) {
  // One stratum, 5 + 5 runs, all 3 slow runs in the candidate: C(5,3) / C(10,3) = 10 / 120.
  const std::vector<TailStratum> one{{5, 5, 0, 3}};
  EXPECT_NEAR(stratified_exact_test(one).p_greater, 10.0 / 120.0, 1e-12);
  EXPECT_NEAR(stratified_exact_test(one).p_less, 1.0, 1e-12);
  // Two such strata: S = X1 + X2, P(S = 6) = (10/120)^2.
  const std::vector<TailStratum> two{{5, 5, 0, 3}, {5, 5, 0, 3}};
  EXPECT_NEAR(stratified_exact_test(two).p_greater, (10.0 / 120.0) * (10.0 / 120.0), 1e-12);
  // A stratum without slow runs changes nothing.
  const std::vector<TailStratum> with_quiet{{5, 5, 0, 3}, {10, 10, 0, 0}};
  EXPECT_NEAR(stratified_exact_test(with_quiet).p_greater, 10.0 / 120.0, 1e-12);
  EXPECT_THROW(stratified_exact_test(std::vector<TailStratum>{{2, 2, 3, 0}}), std::invalid_argument);
}

struct Arms {
  std::vector<double> b, c;
  std::vector<long> bj, cj;
};

// Jobs of n runs per arm: a job level, 3% noise, 3% of runs in bursts x1.2-2.0 (both arms), and
// in the candidate a share `tail` of runs `factor` times slower.
Arms draw(std::mt19937_64& rng, int jobs, int n, double tail, double factor) {
  std::normal_distribution<double> z(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Arms a;
  for (int j = 0; j < jobs; ++j) {
    const double level = 0.015 * z(rng);
    for (int i = 0; i < n; ++i) {
      double xb = 200.0 * std::exp(level + 0.03 * z(rng)), xc = 200.0 * std::exp(level + 0.03 * z(rng));
      if (u(rng) < 0.03) xb *= 1.2 + 0.8 * u(rng);
      if (u(rng) < 0.03) xc *= 1.2 + 0.8 * u(rng);
      if (u(rng) < tail) xc *= factor;
      a.b.push_back(xb), a.c.push_back(xc), a.bj.push_back(j), a.cj.push_back(j);
    }
  }
  return a;
}

TEST(Tail, UnderNoChangeItsLevelIsAtMostNominal) {
  std::mt19937_64 rng(31);
  const int n = 4000;
  int slower = 0, faster = 0;
  for (int e = 0; e < n; ++e) {
    const Arms a = draw(rng, 6, 10, 0.0, 1.0);
    const TailComparison t = compare_tails(a.b, a.c, a.bj, a.cj);
    slower += t.p_slower < 0.05;
    faster += t.p_faster < 0.05;
  }
  // Exact and discrete: at most 5%, three standard errors of slack for the simulation.
  const double se = std::sqrt(0.05 * 0.95 / n);
  EXPECT_LE(slower / double(n), 0.05 + 3 * se);
  EXPECT_LE(faster / double(n), 0.05 + 3 * se);
}

TEST(Tail, ASlowTailTheOutlierRuleHidesFromTheTTestIsFound) {
  // 15% of the candidate's start-ups 50% slower, 60 runs per arm: the outlier rule removes them
  // and the t-test on what is left sees little; the slow-outlier count sees them.
  std::mt19937_64 rng(41);
  int found = 0, t_test_found = 0;
  const int n = 300;
  for (int e = 0; e < n; ++e) {
    const Arms a = draw(rng, 6, 10, 0.15, 1.5);
    const TailComparison t = compare_tails(a.b, a.c, a.bj, a.cj);
    found += t.p_slower < 0.05;
    const Comparison cmp = compare_arms(a.b, a.c, Policy{.alpha = 0.05, .min_effect_pct = 1.0, .confidence = 0.95});
    t_test_found += cmp.decision.welch.valid && cmp.decision.welch.p_value < 0.05 && cmp.decision.welch.effect_pct > 0;
  }
  EXPECT_GT(found / double(n), 0.7) << "t-test " << t_test_found / double(n);
  EXPECT_GT(found, t_test_found + n / 5) << "the t-test after the outlier rule: " << t_test_found / double(n);
}

TEST(Tail, EdgeCases) {
  const std::vector<double> xs = {200, 201, 202, 199, 198}, none = {};
  EXPECT_FALSE(compare_tails(xs, none).valid);
  EXPECT_EQ(compare_tails(xs, none).p_slower, 1.0);
  EXPECT_THROW(compare_tails(xs, std::vector<double>{200, 0}), std::invalid_argument);
  EXPECT_THROW(compare_tails(xs, std::vector<double>{200, NAN}), std::invalid_argument);
  EXPECT_THROW(compare_tails(xs, xs, std::vector<long>{1, 1}, std::vector<long>{1, 1, 1, 1, 1}), std::invalid_argument);
  EXPECT_THROW(compare_tails(xs, xs, {}, std::vector<long>{1, 1, 1, 1, 1}), std::invalid_argument);
  // No spread: nothing is slow.
  const std::vector<double> flat(10, 200.0);
  const TailComparison t = compare_tails(flat, std::vector<double>{200, 200, 200, 200, 200, 200, 200, 200, 200, 900});
  EXPECT_EQ(t.slow_candidate, 0u);
  EXPECT_EQ(t.p_slower, 1.0);
  // Arms in different jobs only: no stratum has both, nothing to test.
  EXPECT_FALSE(compare_tails(xs, xs, std::vector<long>(5, 1), std::vector<long>(5, 2)).valid);
}

}  // namespace
}  // namespace ttfb::stats
