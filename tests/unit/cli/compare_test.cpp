#include "cli/compare.hpp"

#include <gtest/gtest.h>

namespace ttfb::cli {
namespace {

TEST(Compare, ReadsTextWithCommentsAndBlankLines) {
  auto v = parse_samples("# base\n100\n\n 102.5 \n98\r\n", "a.txt");
  EXPECT_EQ(v, (std::vector<double>{100, 102.5, 98}));
}

TEST(Compare, ReadsTheApisSamplesJsonDroppingWarmupsAndFilteringByArm) {
  const char* json = R"({"experiment_id": 1, "samples": [
    {"arm": "baseline", "warmup": true, "ttfb_ms": 500},
    {"arm": "baseline", "warmup": false, "ttfb_ms": 100},
    {"arm": "candidate", "warmup": false, "ttfb_ms": 120},
    {"arm": "baseline", "warmup": false, "ttfb_ms": 101}]})";
  EXPECT_EQ(parse_samples(json, "s.json", "baseline"), (std::vector<double>{100, 101}));
  EXPECT_EQ(parse_samples(json, "s.json", "candidate"), (std::vector<double>{120}));
  EXPECT_EQ(parse_samples(json, "s.json").size(), 3u);
  EXPECT_EQ(parse_samples("[1, 2.5, 3]", "x.json"), (std::vector<double>{1, 2.5, 3}));
}

void expect_error(const std::string& text, const std::string& message) {
  try {
    parse_samples(text, "f.txt");
    FAIL() << "accepted: " << text;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
  }
}

TEST(Compare, BadInputNamesTheLine) {
  expect_error("1\n2\nabc\n", "f.txt:3: 'abc' is not a number");
  expect_error("1\n12ms\n", "f.txt:2");
  expect_error("1\n-5\n", "f.txt:2: a TTFB must be a positive number");
  expect_error("[1, \"x\"]", "element 1");
  expect_error("{\"samples\": 3}", "must be an array");
  expect_error("[1, 2", "not valid JSON");
}

TEST(Compare, MatchesRsWelchTestOnLogs) {
  // R: a <- c(100,102,98,101,99,100.5); b <- c(110,112,109,111,113,110.5)
  //    t <- t.test(log(b), log(a)); t$p.value = 1.435561e-07; 100*(exp(t$conf.int)-1) = 8.900976 12.785232
  std::vector<double> a{100, 102, 98, 101, 99, 100.5}, b{110, 112, 109, 111, 113, 110.5};
  auto c = compare_samples(a, b, stats::Policy{});
  EXPECT_NEAR(c.at("p_value").as_double(), 1.435561e-07, 1e-12);
  EXPECT_NEAR(c.at("ci_low_pct").as_double(), 8.900976, 1e-5);
  EXPECT_NEAR(c.at("ci_high_pct").as_double(), 12.785232, 1e-5);
  EXPECT_EQ(c.at("verdict").as_string(), "regression");
  std::string table = format_comparison(c, "a.txt", "b.txt");
  EXPECT_NE(table.find("+10.83%"), std::string::npos) << table;
  EXPECT_NE(table.find("verdict: regression"), std::string::npos) << table;
}

TEST(Compare, ReportsTheRankTestAndRemovesCountedOutliers) {
  // R: wilcox.test(b, a) with complete separation, 6 vs 6, exact: p = 2 / choose(12, 6) = 0.002164502
  std::vector<double> a{100, 102, 98, 101, 99, 100.5}, b{110, 112, 109, 111, 113, 110.5};
  auto c = compare_samples(a, b, stats::Policy{});
  const auto& rank = c.at("rank_test").as_object();
  EXPECT_NEAR(rank.at("p_value").as_double(), 2.0 / 924.0, 1e-12);
  EXPECT_EQ(rank.at("method").as_string(), "exact");

  // One wild value among ten is removed by the MAD rule on logs, counted, and the test runs on the rest.
  std::vector<double> noisy{812, 790, 845, 801, 820, 9400, 808, 799, 830, 815};
  std::vector<double> same{811, 795, 840, 805, 818, 809, 802, 826, 813, 800};
  auto d = compare_samples(noisy, same, stats::Policy{.equivalence_margin_pct = 3.0});  // within 3%
  EXPECT_EQ(d.at("outliers_baseline").as_uint64(), 1u);
  EXPECT_EQ(d.at("n_baseline").as_uint64(), 9u);
  EXPECT_EQ(d.at("outliers_candidate").as_uint64(), 0u);
  EXPECT_EQ(d.at("verdict").as_string(), "no_change");
  EXPECT_TRUE(d.at("equivalence").as_object().at("equivalent").as_bool()) << boost::json::serialize(d);
}

}  // namespace
}  // namespace ttfb::cli
