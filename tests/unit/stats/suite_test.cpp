// The suite summary (server/stats/suite.hpp) against R (tests/data/stats/make_reference_suite.R:
// p.adjust(method = "holm"), the geometric mean and its normal interval), and its verdict rules.
#include "server/stats/suite.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "reference_csv.hpp"

namespace ttfb::stats {
namespace {

using testing::near_rel;

const char* verdict_name(double code) {
  switch (static_cast<int>(code)) {
    case 1: return "regression";
    case 2: return "improvement";
    case 3: return "inconclusive";
    default: return "no_change";
  }
}

TEST(Suite, MatchesRsHolmAndGeometricMean) {
  const auto table = testing::read_reference("suite_reference.csv");
  ASSERT_GE(table.rows.size(), 10u);
  for (const auto& row : table.rows) {
    const auto verdicts = table.numbers(row, "verdict"), effects = table.numbers(row, "effect_pct"),
               ses = table.numbers(row, "se_log"), ps = table.numbers(row, "p_value"), levels = table.numbers(row, "level"),
               holm = table.numbers(row, "holm_p");
    std::vector<SuiteMember> members;
    for (std::size_t i = 0; i < verdicts.size(); ++i)
      members.push_back({"w" + std::to_string(i), verdict_name(verdicts[i]), effects[i], ses[i], ps[i], levels[i]});
    const double alpha = table.number(row, "alpha");
    const SuiteSummary s = summarize_suite(members, alpha, 2.0);
    const std::string name = table.field(row, "name");
    ASSERT_EQ(s.holm_p.size(), holm.size()) << name;
    for (std::size_t i = 0; i < holm.size(); ++i) {
      EXPECT_TRUE(near_rel(s.holm_p[i], holm[i], 1e-12)) << name << " member " << i;
      const bool kept = holm[i] <= alpha;
      const bool listed = std::find(s.regressed.begin(), s.regressed.end(), members[i].workflow) != s.regressed.end() ||
                          std::find(s.improved.begin(), s.improved.end(), members[i].workflow) != s.improved.end();
      EXPECT_EQ(listed, kept && (verdicts[i] == 1 || verdicts[i] == 2)) << name << " member " << i;
    }
    EXPECT_TRUE(near_rel(s.geomean_effect_pct, table.number(row, "geomean_pct"), 1e-12)) << name;
    EXPECT_TRUE(near_rel(s.ci_low_pct, table.number(row, "ci_low_pct"), 1e-10)) << name;
    EXPECT_TRUE(near_rel(s.ci_high_pct, table.number(row, "ci_high_pct"), 1e-10)) << name;
    EXPECT_EQ(s.workflows, static_cast<int>(members.size()));
  }
}

// Four workflows 3-5% faster, each measured to +-1.5% (se 0.6%): the interval of their geometric
// mean is below 0 and none is slower: a certified improvement.
TEST(Suite, AnImprovementAcrossTheSuiteIsCertified) {
  std::vector<SuiteMember> m = {{"a", "improvement", -4.0, 0.006, 1e-5, 0.0024},
                                {"b", "improvement", -5.0, 0.006, 1e-6, 0.0024},
                                {"c", "inconclusive", -3.0, 0.006, 0.02, 0.0024},
                                {"d", "no_change", -3.5, 0.006, 0.03, 0.01}};
  SuiteSummary s = summarize_suite(m, 0.05, 2.0);
  EXPECT_EQ(s.verdict, "improvement");
  EXPECT_TRUE(s.certified);
  EXPECT_LT(s.ci_high_pct, 0.0);
  EXPECT_EQ(s.improved, (std::vector<std::string>{"a", "b"}));
  EXPECT_NE(s.statement.find("certified"), std::string::npos) << s.statement;
  EXPECT_NE(s.statement.find("no workflow slower"), std::string::npos) << s.statement;
  // One workflow judged slower, even one that Holm does not keep: no certification.
  m[3] = {"d", "regression", 2.5, 0.006, 0.0009, 0.0024};
  s = summarize_suite(m, 0.05, 2.0);
  EXPECT_FALSE(s.certified);
  // A workflow that failed: no certification either, and it is named.
  m[3] = {"d", "error", std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(),
          std::numeric_limits<double>::quiet_NaN(), 0.0};
  s = summarize_suite(m, 0.05, 2.0);
  EXPECT_FALSE(s.certified);
  EXPECT_EQ(s.measured, 3);
  EXPECT_EQ(s.errors, 1);
  EXPECT_NE(s.statement.find("not measured: d"), std::string::npos) << s.statement;
}

// A dependency that slows one workflow of five: the suite is a regression of that workflow,
// named, while the others stay the same.
TEST(Suite, OneWorkflowsRegressionSurvivesHolmAndIsNamed) {
  std::vector<SuiteMember> m = {{"a", "no_change", 0.1, 0.004, 0.8, 0.05},  {"b", "no_change", -0.2, 0.004, 0.6, 0.05},
                                {"c", "regression", 12.0, 0.01, 1e-8, 0.0024}, {"d", "no_change", 0.3, 0.004, 0.5, 0.05},
                                {"e", "no_change", 0.0, 0.004, 0.9, 0.05}};
  const SuiteSummary s = summarize_suite(m, 0.05, 2.0);
  EXPECT_EQ(s.verdict, "regression");
  EXPECT_EQ(s.regressed, (std::vector<std::string>{"c"}));
  EXPECT_EQ(s.regressions, 1);
  EXPECT_EQ(s.no_change, 4);
  EXPECT_NE(s.statement.find("slower after Holm's correction: c"), std::string::npos) << s.statement;
}

// A regression at its own level that the suite's multiplicity does not keep: p 0.002 at level
// 0.0024 is 0.042 on the suite's 0.05 scale; five workflows need 0.01 for the smallest.
TEST(Suite, ARegressionAtTheEdgeOfItsLevelIsNotKeptInALargeSuite) {
  std::vector<SuiteMember> m = {{"a", "regression", 2.2, 0.008, 0.002, 0.0024}, {"b", "no_change", 0.1, 0.004, 0.8, 0.05},
                                {"c", "no_change", -0.3, 0.004, 0.6, 0.05},   {"d", "no_change", 0.2, 0.004, 0.5, 0.05},
                                {"e", "no_change", 0.0, 0.004, 0.9, 0.05}};
  const SuiteSummary s = summarize_suite(m, 0.05, 2.0);
  EXPECT_TRUE(s.regressed.empty());
  EXPECT_NEAR(s.holm_p[0], 5 * 0.002 * 0.05 / 0.0024, 1e-12);
  EXPECT_EQ(s.regressions, 1) << "still counted as judged";
  EXPECT_EQ(s.verdict, "no_change") << s.statement;  // the geometric mean is within +-2%
  EXPECT_FALSE(s.certified);
}

TEST(Suite, RejectsBadSettings) {
  EXPECT_THROW(summarize_suite({}, 0.0, 2.0), std::invalid_argument);
  EXPECT_THROW(summarize_suite({}, 0.5, 2.0), std::invalid_argument);
  EXPECT_THROW(summarize_suite({}, 0.05, -1.0), std::invalid_argument);
  const SuiteSummary empty = summarize_suite({}, 0.05, 2.0);
  EXPECT_EQ(empty.verdict, "inconclusive");
  EXPECT_TRUE(std::isnan(empty.geomean_effect_pct));
}

}  // namespace
}  // namespace ttfb::stats
