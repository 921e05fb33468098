// Outlier rule of outliers.hpp: the documented cases (MAD = 0, the cap, tiny arms, bad input)
// and R's median / mad of the logs with the flagged indices,
// tests/data/stats/outliers_reference.csv.
#include "server/stats/outliers.hpp"

#include "server/stats/descriptive.hpp"

#include "reference_csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

TEST(Outliers, HeaderExampleRemovesTheOneSlowValueAndKeepsOrder) {
  const std::vector<double> ms = {812, 790, 845, 801, 820, 9400, 808, 799, 830, 815};
  const OutlierResult o = remove_outliers(ms);
  EXPECT_EQ(o.removed_indices, (std::vector<std::size_t>{5}));
  EXPECT_EQ(o.removed_count, 1u);
  EXPECT_EQ(o.flagged_count, 1u);
  EXPECT_EQ(o.kept, (std::vector<double>{812, 790, 845, 801, 820, 808, 799, 830, 815}));
  EXPECT_FALSE(o.cap_exceeded);
  EXPECT_FALSE(o.mad_zero);
  EXPECT_EQ(o.k, kOutlierK);
  EXPECT_EQ(o.max_fraction, kOutlierMaxFraction);
}

TEST(Outliers, MadZeroRemovesNothing) {
  const std::vector<double> ms = {5, 5, 5, 5, 5, 6, 7, 500, 4};
  const OutlierResult o = remove_outliers(ms);
  EXPECT_TRUE(o.mad_zero);
  EXPECT_EQ(o.removed_count, 0u);
  EXPECT_EQ(o.flagged_count, 0u);
  EXPECT_EQ(o.kept, ms);
}

TEST(Outliers, MoreFlaggedThanTheCapRemovesNothingAndSaysSo) {
  // 14 fast and 6 slow: with k = 1 the six slow ones are flagged, cap is 4 of 20.
  std::vector<double> ms;
  for (int i = 0; i < 14; ++i) ms.push_back(1000.0 + 5.0 * i);
  for (int i = 0; i < 6; ++i) ms.push_back(8000.0 + 10.0 * i);
  const OutlierResult o = remove_outliers(ms, 3.5);
  EXPECT_TRUE(o.cap_exceeded);
  EXPECT_EQ(o.flagged_count, 6u);
  EXPECT_EQ(o.removed_count, 0u);
  EXPECT_TRUE(o.removed_indices.empty());
  EXPECT_EQ(o.kept, ms);
}

TEST(Outliers, SmallArmsNeverLoseValuesAtTheDefaultCap) {
  const std::vector<double> ms = {100, 101, 102, 5000};
  const OutlierResult o = remove_outliers(ms);
  EXPECT_EQ(o.flagged_count, 1u);
  EXPECT_TRUE(o.cap_exceeded);
  EXPECT_EQ(o.removed_count, 0u);
  // A cap of 0.25 allows one of four.
  const OutlierResult o25 = remove_outliers(ms, kOutlierK, 0.25);
  EXPECT_EQ(o25.removed_indices, (std::vector<std::size_t>{3}));
}

TEST(Outliers, EmptyAndSingleValues) {
  const OutlierResult empty = remove_outliers(std::vector<double>{});
  EXPECT_TRUE(empty.kept.empty());
  EXPECT_EQ(empty.removed_count, 0u);
  EXPECT_TRUE(std::isnan(empty.center_log));
  const std::vector<double> one = {42.0};
  const OutlierResult o = remove_outliers(one);
  EXPECT_EQ(o.kept, one);
  EXPECT_TRUE(o.mad_zero);
  EXPECT_DOUBLE_EQ(o.center_log, std::log(42.0));
}

TEST(Outliers, BadInputThrowsNamingTheIndex) {
  const std::vector<double> ms = {1.0, 2.0, -3.0};
  expect_invalid([&] { remove_outliers(ms); }, "index 2");
  const std::vector<double> nan = {1.0, std::numeric_limits<double>::quiet_NaN()};
  expect_invalid([&] { remove_outliers(nan); }, "index 1");
  const std::vector<double> ok = {1.0, 2.0};
  expect_invalid([&] { remove_outliers(ok, 0.0); }, "k");
  expect_invalid([&] { remove_outliers(ok, std::numeric_limits<double>::infinity()); }, "k");
  expect_invalid([&] { remove_outliers(ok, 3.5, 1.0); }, "max_fraction");
  expect_invalid([&] { remove_outliers(ok, 3.5, -0.1); }, "max_fraction");
}

TEST(Outliers, ScaleFreeOnLogs) {
  const std::vector<double> ms = {812, 790, 845, 801, 820, 9400, 808, 799, 830, 815};
  std::vector<double> us = ms;
  for (double& x : us) x *= 1000.0;
  EXPECT_EQ(remove_outliers(ms).removed_indices, remove_outliers(us).removed_indices);
}

TEST(Outliers, MatchesRReference) {
  const auto table = testing::read_reference("outliers_reference.csv");
  ASSERT_GE(table.rows.size(), 10u);
  for (const auto& row : table.rows) {
    SCOPED_TRACE(row[0]);
    const std::vector<double> xs = table.numbers(row, "values");
    const OutlierResult o =
        remove_outliers(xs, table.number(row, "k"), table.number(row, "max_fraction"));
    EXPECT_TRUE(near_rel(o.center_log, table.number(row, "center_log"), 1e-14));
    EXPECT_TRUE(near_rel(o.mad_log, table.number(row, "mad_log"), 1e-12, 1e-15));
    EXPECT_EQ(o.flagged_count, static_cast<std::size_t>(table.number(row, "flagged_count")));
    std::vector<std::size_t> expected;
    for (double i : table.numbers(row, "removed_indices")) {
      expected.push_back(static_cast<std::size_t>(i));
    }
    EXPECT_EQ(o.removed_indices, expected);
    EXPECT_EQ(o.kept.size() + o.removed_count, xs.size());
  }
}

}  // namespace
}  // namespace ttfb::stats

namespace ttfb::stats {
namespace {

TEST(PooledOutliers, CenterAndMadComeFromBothArms) {
  // Baseline alone is tight around 200; with the candidate pooled the MAD is wider, so 240 is
  // kept; the 900 ms burst is removed in either arm.
  std::vector<double> b = {200, 204, 196, 208, 192, 200, 206, 194, 900, 240};
  std::vector<double> c = {220, 180, 225, 175, 210, 190, 230, 170, 200, 200};
  PooledOutliers p = remove_outliers_pooled(b, c);
  std::vector<double> logs;
  for (double x : b) logs.push_back(std::log(x));
  for (double x : c) logs.push_back(std::log(x));
  EXPECT_DOUBLE_EQ(p.center_log, median(logs));
  EXPECT_DOUBLE_EQ(p.mad_log, mad(logs, kMadNormalScale));
  EXPECT_DOUBLE_EQ(p.baseline.center_log, p.center_log) << "each arm is judged against the pooled center";
  EXPECT_EQ(p.baseline.removed_indices, std::vector<std::size_t>{8});
  EXPECT_EQ(p.candidate.removed_count, 0u);
  OutlierResult alone = remove_outliers(b);
  EXPECT_GT(alone.removed_count, p.baseline.removed_count) << "alone, the tight arm would also lose 240";
}

TEST(PooledOutliers, CapAppliesPerArmAndBadInputThrows) {
  std::vector<double> b = {100, 100, 101, 99, 100};
  std::vector<double> c = {100, 300, 320, 310, 100};  // 3 of 5 flagged: over the 20% cap
  PooledOutliers p = remove_outliers_pooled(b, c);
  EXPECT_TRUE(p.candidate.cap_exceeded);
  EXPECT_EQ(p.candidate.kept.size(), 5u);
  EXPECT_THROW(remove_outliers_pooled(std::vector<double>{1.0, -1.0}, c), std::invalid_argument);
  EXPECT_THROW(remove_outliers_pooled(b, c, 0.0), std::invalid_argument);
  PooledOutliers empty = remove_outliers_pooled({}, {});
  EXPECT_TRUE(std::isnan(empty.center_log));
  EXPECT_TRUE(empty.baseline.kept.empty());
}

}  // namespace
}  // namespace ttfb::stats
