// The job-blocked t-test (blocked.hpp): R's lm(log(ms) ~ factor(job) + arm) on the cases of
// tests/data/stats/blocked_reference.csv (make_reference_blocked.R), what blocking is for (a
// level shift between jobs changes nothing), and every edge case the header names.
#include "server/stats/blocked.hpp"

#include "reference_csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

std::vector<long> labels(const testing::ReferenceTable& t, const std::vector<std::string>& row, const char* col) {
  std::vector<long> out;
  for (double x : t.numbers(row, col)) out.push_back(static_cast<long>(x));
  return out;
}

// Tolerances: estimate, se, t and CI ends 1e-9 of their scale, df exact, p 1e-8 relative.
TEST(Blocked, MatchesRLinearModel) {
  const auto table = testing::read_reference("blocked_reference.csv");
  ASSERT_GE(table.rows.size(), 10u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE("case " + table.field(row, "case"));
    const auto b = table.numbers(row, "baseline");
    const auto c = table.numbers(row, "candidate");
    const auto bj = labels(table, row, "baseline_jobs");
    const auto cj = labels(table, row, "candidate_jobs");
    const WelchResult r = blocked_log_t_test(b, bj, c, cj, table.number(row, "confidence"));
    ASSERT_TRUE(r.valid) << r.reason;
    const double scale = std::fabs(table.number(row, "estimate")) + table.number(row, "se");
    EXPECT_TRUE(near_rel(r.diff_log, table.number(row, "estimate"), 0.0, 1e-9 * scale));
    EXPECT_TRUE(near_rel(r.se, table.number(row, "se"), 1e-9));
    EXPECT_TRUE(near_rel(r.t, table.number(row, "t"), 1e-9, 1e-12));
    EXPECT_EQ(r.df, table.number(row, "df"));
    EXPECT_TRUE(near_rel(r.p_value, table.number(row, "p_value"), 1e-8));
    const double width = table.number(row, "ci_high") - table.number(row, "ci_low");
    EXPECT_TRUE(near_rel(r.diff_ci_low, table.number(row, "ci_low"), 0.0, 1e-9 * (scale + width)));
    EXPECT_TRUE(near_rel(r.diff_ci_high, table.number(row, "ci_high"), 0.0, 1e-9 * (scale + width)));
    EXPECT_EQ(r.blocks, static_cast<int>(table.number(row, "blocks")));
    EXPECT_TRUE(near_rel(r.effect_pct, 100.0 * std::expm1(r.diff_log), 1e-12));
    EXPECT_EQ(r.baseline.n, b.size());
    EXPECT_EQ(r.candidate.n, c.size());
  }
}

// Two jobs, the second 20% slower in both arms: the blocked test sees only the within-job
// difference and noise, the pooled Welch test counts the 20% between jobs as noise.
TEST(Blocked, LevelShiftBetweenJobsCostsNothing) {
  const std::vector<double> base = {200, 203, 198, 201, 199, 202};
  const std::vector<double> cand = {205, 207, 203, 206, 204, 208};
  std::vector<double> b = base, c = cand;
  for (double x : base) b.push_back(1.2 * x);
  for (double x : cand) c.push_back(1.2 * x);
  const std::vector<long> jobs = {1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2};
  const WelchResult blocked = blocked_log_t_test(b, jobs, c, jobs, 0.95);
  const WelchResult pooled = welch_log_t_test(b, c, 0.95);
  ASSERT_TRUE(blocked.valid);
  EXPECT_LT(blocked.p_value, 1e-4);
  EXPECT_GT(pooled.p_value, 0.3);
  EXPECT_LT(blocked.se * 5.0, pooled.se);
  // Shifting one job's level by any factor leaves every number of the blocked test unchanged.
  std::vector<double> b2 = b, c2 = c;
  for (std::size_t i = 6; i < b2.size(); ++i) b2[i] *= 0.7 / 1.2;
  for (std::size_t i = 6; i < c2.size(); ++i) c2[i] *= 0.7 / 1.2;
  const WelchResult shifted = blocked_log_t_test(b2, jobs, c2, jobs, 0.95);
  EXPECT_TRUE(near_rel(shifted.diff_log, blocked.diff_log, 1e-9));
  EXPECT_TRUE(near_rel(shifted.se, blocked.se, 1e-9));
  EXPECT_EQ(shifted.df, blocked.df);
}

// One job: the additive model is the pooled-variance (Student) t-test, df = n_b + n_c - 2.
TEST(Blocked, OneJobIsStudentsTTest) {
  const std::vector<double> b = {100, 104, 98, 101}, c = {106, 103, 109};
  const std::vector<long> bj(4, 3), cj(3, 3);
  const WelchResult r = blocked_log_t_test(b, bj, c, cj, 0.9);
  ASSERT_TRUE(r.valid);
  double mb = 0, mc = 0;
  for (double x : b) mb += std::log(x) / 4;
  for (double x : c) mc += std::log(x) / 3;
  double ss = 0;
  for (double x : b) ss += (std::log(x) - mb) * (std::log(x) - mb);
  for (double x : c) ss += (std::log(x) - mc) * (std::log(x) - mc);
  const double se = std::sqrt(ss / 5.0 * (1.0 / 4 + 1.0 / 3));
  EXPECT_TRUE(near_rel(r.diff_log, mc - mb, 1e-12));
  EXPECT_TRUE(near_rel(r.se, se, 1e-12));
  EXPECT_EQ(r.df, 5.0);
  EXPECT_EQ(r.blocks, 1);
}

TEST(Blocked, EdgeCases) {
  const std::vector<double> v = {100, 101, 102};
  const std::vector<long> j = {1, 1, 2};
  expect_invalid([&] { blocked_log_t_test(v, std::vector<long>{1, 1}, v, j); }, "3 values but 2 job labels");
  expect_invalid([&] { blocked_log_t_test(std::vector<double>{100, -1, 5}, j, v, j); }, "baseline value at index 1");
  expect_invalid([&] { blocked_log_t_test(v, j, v, j, 1.0); }, "confidence");
  // Too few values in an arm.
  WelchResult r = blocked_log_t_test(std::vector<double>{100}, std::vector<long>{1}, v, j);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("baseline has 1 sample"), std::string::npos) << r.reason;
  EXPECT_TRUE(std::isnan(r.p_value));
  // No job measured both arms.
  r = blocked_log_t_test(v, std::vector<long>{1, 1, 1}, v, std::vector<long>{2, 2, 2});
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("no job measured both arms"), std::string::npos) << r.reason;
  // No degree of freedom: 4 runs in 3 jobs.
  r = blocked_log_t_test(std::vector<double>{100, 101}, std::vector<long>{1, 2}, std::vector<double>{102, 103},
                         std::vector<long>{1, 3});
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("no degree of freedom"), std::string::npos) << r.reason;
  // Every residual 0: p is 0 for a difference, 1 without.
  const std::vector<long> jj = {1, 1, 2, 2};
  r = blocked_log_t_test(std::vector<double>{100, 100, 120, 120}, jj, std::vector<double>{110, 110, 132, 132}, jj);
  ASSERT_TRUE(r.valid);
  EXPECT_TRUE(r.both_arms_constant);
  EXPECT_EQ(r.p_value, 0.0);
  EXPECT_TRUE(near_rel(r.effect_pct, 10.0, 1e-9));
  r = blocked_log_t_test(std::vector<double>{100, 100, 120, 120}, jj, std::vector<double>{100, 100, 120, 120}, jj);
  EXPECT_EQ(r.p_value, 1.0);
}

}  // namespace
}  // namespace ttfb::stats
