// The paired t-test on log TTFB (paired.hpp): R's t.test(paired = TRUE) on the cases of
// tests/data/stats/paired_reference.csv (make_reference_paired.R), what pairing is for (a level
// the two runs of a pair share costs nothing), and the edge cases the header names.
#include "server/stats/paired.hpp"

#include "reference_csv.hpp"
#include "server/stats/welch.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::near_rel;

TEST(Paired, MatchesRPairedTTest) {
  const auto table = testing::read_reference("paired_reference.csv");
  ASSERT_GE(table.rows.size(), 7u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE("case " + table.field(row, "case"));
    const auto p = table.numbers(row, "parent");
    const auto c = table.numbers(row, "commit");
    const PairedResult r = paired_log_t_test(p, c, table.number(row, "confidence"));
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
    EXPECT_TRUE(near_rel(r.effect_pct, 100.0 * std::expm1(r.diff_log), 1e-12));
    EXPECT_EQ(r.n, p.size());
  }
}

// Pairs at levels 30% apart (a busy and an idle machine), the commit 3% slower in each pair: the
// paired test sees 3% with next to no noise; Welch's two-sample test counts the levels as noise.
TEST(Paired, ALevelBothRunsOfAPairShareCostsNothing) {
  std::vector<double> parent, commit;
  for (int i = 0; i < 10; ++i) {
    const double level = i % 2 ? 1.3 : 1.0;
    const double jitter = 1.0 + 0.002 * ((i * 7) % 5 - 2);
    parent.push_back(200.0 * level * jitter);
    commit.push_back(206.0 * level / jitter);
  }
  const PairedResult r = paired_log_t_test(parent, commit, 0.99);
  ASSERT_TRUE(r.valid);
  EXPECT_NEAR(r.effect_pct, 3.0, 0.2);
  EXPECT_LT(r.p_value, 1e-6);
  EXPECT_GT(r.effect_ci_low_pct, 2.0);
  const WelchResult w = welch_log_t_test(parent, commit, 0.99);
  EXPECT_GT(w.p_value, 0.3) << "the two-sample test does not see it through the levels";
}

TEST(Paired, EdgeCases) {
  const std::vector<double> three = {100, 110, 120};
  EXPECT_THROW(paired_log_t_test(three, std::vector<double>{100, 110}, 0.95), std::invalid_argument);
  EXPECT_THROW(paired_log_t_test(three, std::vector<double>{100, 0, 120}, 0.95), std::invalid_argument);
  EXPECT_THROW(paired_log_t_test(three, std::vector<double>{100, NAN, 120}, 0.95), std::invalid_argument);
  EXPECT_THROW(paired_log_t_test(three, three, 1.0), std::invalid_argument);
  const PairedResult one = paired_log_t_test(std::vector<double>{100}, std::vector<double>{110}, 0.95);
  EXPECT_FALSE(one.valid);
  EXPECT_NE(one.reason.find("2 pairs"), std::string::npos);
  const PairedResult same = paired_log_t_test(three, three, 0.95);
  ASSERT_TRUE(same.valid);
  EXPECT_EQ(same.p_value, 1.0);
  EXPECT_EQ(same.diff_ci_low, 0.0);
  EXPECT_EQ(same.diff_ci_high, 0.0);
  const PairedResult shifted = paired_log_t_test(three, std::vector<double>{110, 121, 132}, 0.95);
  ASSERT_TRUE(shifted.valid);
  EXPECT_EQ(shifted.p_value, 0.0);
  EXPECT_TRUE(std::isinf(shifted.t) && shifted.t > 0);
  EXPECT_NEAR(shifted.effect_pct, 10.0, 1e-9);
}

}  // namespace
}  // namespace ttfb::stats
