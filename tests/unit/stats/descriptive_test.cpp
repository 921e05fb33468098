// Descriptive statistics: hand-computed values and every edge case the header defines, then R's
// values for the cases in tests/data/stats/descriptive_reference.csv.
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

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Expects fn() to throw std::invalid_argument whose message contains `needle`.
TEST(Descriptive, HandComputedValues) {
  const std::vector<double> xs = {2, 4, 4, 4, 5, 5, 7, 9};  // sum 40, squares about 5: 32
  EXPECT_DOUBLE_EQ(mean(xs), 5.0);
  EXPECT_DOUBLE_EQ(variance(xs), 32.0 / 7.0);
  EXPECT_DOUBLE_EQ(stddev(xs), std::sqrt(32.0 / 7.0));
  EXPECT_DOUBLE_EQ(coefficient_of_variation(xs), std::sqrt(32.0 / 7.0) / 5.0);
  EXPECT_DOUBLE_EQ(median(xs), 4.5);  // mean of the 4th and 5th sorted values
  // |x - 4.5| = {2.5, .5, .5, .5, .5, .5, 2.5, 4.5}: median 0.5.
  EXPECT_DOUBLE_EQ(mad(xs, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(mad(xs), 0.5 * kMadNormalScale);
}

TEST(Descriptive, MedianOfOddAndEvenCountsIgnoresInputOrder) {
  EXPECT_DOUBLE_EQ(median(std::vector<double>{9, 1, 5}), 5.0);
  EXPECT_DOUBLE_EQ(median(std::vector<double>{9, 1, 5, 3}), 4.0);
}

TEST(Descriptive, QuantileIsRType7) {
  // Sorted {1, 2, 3, 4}: h = 3p, linear between neighbours.
  const std::vector<double> xs = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(quantile(xs, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile(xs, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile(xs, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile(xs, 0.9), 3.7);
  EXPECT_DOUBLE_EQ(quantile(xs, 1.0), 4.0);
  const std::vector<double> ps = {1.0, 0.25, 0.0};
  EXPECT_EQ(quantiles(xs, ps), (std::vector<double>{4.0, 1.75, 1.0}));
  EXPECT_TRUE(quantiles(xs, std::vector<double>{}).empty());
}

TEST(Descriptive, InputIsNotModified) {
  const std::vector<double> original = {5, 3, 9, 1, 7};
  std::vector<double> xs = original;
  median(xs);
  mad(xs);
  quantile(xs, 0.3);
  quantiles(xs, std::vector<double>{0.1, 0.9});
  EXPECT_EQ(xs, original);
}

TEST(Descriptive, EmptyInputThrowsEverywhere) {
  const std::vector<double> none;
  expect_invalid([&] { mean(none); }, "at least 1");
  expect_invalid([&] { median(none); }, "at least 1");
  expect_invalid([&] { mad(none); }, "at least 1");
  expect_invalid([&] { quantile(none, 0.5); }, "at least 1");
  expect_invalid([&] { quantiles(none, std::vector<double>{0.5}); }, "at least 1");
  expect_invalid([&] { variance(none); }, "at least 2");
  expect_invalid([&] { stddev(none); }, "at least 2");
  expect_invalid([&] { coefficient_of_variation(none); }, "at least 2");
}

TEST(Descriptive, SingleValueHasLocationButNoSpread) {
  const std::vector<double> one = {42.5};
  EXPECT_EQ(mean(one), 42.5);
  EXPECT_EQ(median(one), 42.5);
  EXPECT_EQ(mad(one), 0.0);
  EXPECT_EQ(quantile(one, 0.0), 42.5);
  EXPECT_EQ(quantile(one, 0.37), 42.5);
  EXPECT_EQ(quantile(one, 1.0), 42.5);
  expect_invalid([&] { variance(one); }, "at least 2");
  expect_invalid([&] { stddev(one); }, "at least 2");
  expect_invalid([&] { coefficient_of_variation(one); }, "at least 2");
}

TEST(Descriptive, NonFiniteValuesThrowNamingTheIndex) {
  const std::vector<double> with_nan = {1.0, 2.0, kNaN};
  const std::vector<double> with_inf = {1.0, -kInf, 3.0};
  expect_invalid([&] { mean(with_nan); }, "index 2");
  expect_invalid([&] { variance(with_nan); }, "index 2");
  expect_invalid([&] { stddev(with_nan); }, "index 2");
  expect_invalid([&] { median(with_nan); }, "index 2");
  expect_invalid([&] { mad(with_nan); }, "index 2");
  expect_invalid([&] { coefficient_of_variation(with_nan); }, "index 2");
  expect_invalid([&] { quantile(with_nan, 0.5); }, "index 2");
  expect_invalid([&] { mean(with_inf); }, "index 1");
  expect_invalid([&] { quantiles(with_inf, std::vector<double>{}); }, "index 1");
}

TEST(Descriptive, ProbabilityOutsideUnitIntervalThrows) {
  const std::vector<double> xs = {1, 2, 3};
  expect_invalid([&] { quantile(xs, -0.01); }, "outside [0, 1]");
  expect_invalid([&] { quantile(xs, 1.01); }, "outside [0, 1]");
  expect_invalid([&] { quantile(xs, kNaN); }, "outside [0, 1]");
  expect_invalid([&] { quantiles(xs, std::vector<double>{0.5, 2.0}); }, "outside [0, 1]");
}

TEST(Descriptive, BadMadScaleThrows) {
  const std::vector<double> xs = {1, 2, 3};
  expect_invalid([&] { mad(xs, -1.0); }, "scale");
  expect_invalid([&] { mad(xs, kNaN); }, "scale");
}

TEST(Descriptive, CoefficientOfVariationOfZeroMeanThrows) {
  expect_invalid([] { coefficient_of_variation(std::vector<double>{-1.0, 1.0}); }, "mean is 0");
  // A negative mean is fine: the CV divides by |mean|.
  EXPECT_DOUBLE_EQ(coefficient_of_variation(std::vector<double>{-1.0, -3.0}),
                   std::sqrt(2.0) / 2.0);
}

TEST(Descriptive, IdenticalValuesHaveExactlyZeroSpread) {
  const std::vector<double> xs(7, 1234.5678);
  EXPECT_EQ(mean(xs), 1234.5678);
  EXPECT_EQ(variance(xs), 0.0);
  EXPECT_EQ(stddev(xs), 0.0);
  EXPECT_EQ(mad(xs), 0.0);
  EXPECT_EQ(coefficient_of_variation(xs), 0.0);
  EXPECT_EQ(quantile(xs, 0.42), 1234.5678);
}

TEST(Descriptive, LargeOffsetDoesNotLosePrecision) {
  // Naive sum-of-squares formulas lose everything here; the two-pass long double one does not.
  const std::vector<double> xs = {1e9 + 1, 1e9 + 2, 1e9 + 3};
  EXPECT_EQ(mean(xs), 1e9 + 2);
  EXPECT_EQ(variance(xs), 1.0);
}

// Every case of descriptive_reference.csv, against R's mean, median, sd, mad, sd/|mean| and
// quantile(type = 7). Tolerance 1e-12 relative: both sides accumulate in long double, so only
// the last ulps may differ.
TEST(Descriptive, MatchesRReference) {
  const auto table = testing::read_reference("descriptive_reference.csv");
  ASSERT_GE(table.rows.size(), 10u);
  constexpr double kRel = 1e-12;
  for (const auto& row : table.rows) {
    const std::string name = table.field(row, "case");
    SCOPED_TRACE("case " + name);
    const std::vector<double> xs = table.numbers(row, "values");
    ASSERT_FALSE(xs.empty());
    EXPECT_TRUE(near_rel(mean(xs), table.number(row, "mean"), kRel));
    EXPECT_TRUE(near_rel(median(xs), table.number(row, "median"), kRel));
    EXPECT_TRUE(near_rel(mad(xs), table.number(row, "mad"), kRel));
    const double sd = table.number(row, "sd");
    if (std::isnan(sd)) {  // R says NA for n = 1; we throw
      EXPECT_EQ(xs.size(), 1u);
      EXPECT_THROW(stddev(xs), std::invalid_argument);
      EXPECT_THROW(coefficient_of_variation(xs), std::invalid_argument);
    } else {
      EXPECT_TRUE(near_rel(stddev(xs), sd, kRel));
      EXPECT_TRUE(near_rel(coefficient_of_variation(xs), table.number(row, "cv"), kRel));
    }
    std::vector<double> ps;
    std::vector<double> expected;
    for (const std::string& column : table.header) {
      if (column.size() < 2 || column[0] != 'q') continue;
      const double p = testing::parse_number(column.substr(1));
      ps.push_back(p);
      expected.push_back(table.number(row, column));
      EXPECT_TRUE(near_rel(quantile(xs, p), expected.back(), kRel)) << "p = " << p;
    }
    ASSERT_GE(ps.size(), 10u);
    const std::vector<double> all = quantiles(xs, ps);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      EXPECT_TRUE(near_rel(all[i], expected[i], kRel)) << "p = " << ps[i];
    }
  }
}

}  // namespace
}  // namespace ttfb::stats
