// Percentile bootstrap of the ratio of medians, bootstrap.hpp: determinism (pinned values for a
// fixed seed, so a change of the draw or of the engine shows up), the index draw, coverage on a
// known simulated case, and the edge cases of the header.
#include "server/stats/bootstrap.hpp"

#include "reference_csv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

const std::vector<double> kBaseline = {812.0, 790.5, 845.2, 801.7, 820.3, 803.0, 811.1, 799.9};
const std::vector<double> kCandidate = {861.9, 840.2, 899.0, 850.4, 872.8, 805.5, 866.0};

// Lognormal sample from our own engine and an explicit Box-Muller transform, so the test data
// do not depend on the standard library's normal_distribution either.
std::vector<double> lognormal(std::mt19937_64& engine, std::size_t n, double median_ms,
                              double sigma) {
  const double two_pi = 6.283185307179586;
  std::vector<double> out;
  while (out.size() < n) {
    const double u1 = (static_cast<double>(engine() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(engine() >> 11) * 0x1.0p-53;          // [0, 1)
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2);
    out.push_back(median_ms * std::exp(sigma * z));
  }
  return out;
}

TEST(Bootstrap, EngineIsTheStandardOne) {
  // [rand.predef]: the 10000th output of a default-constructed mt19937_64.
  std::mt19937_64 engine;
  engine.discard(9999);
  EXPECT_EQ(engine(), 9981545732273789042ULL);
}

TEST(Bootstrap, IndexDrawIsInRangeAndUsesTheSpecifiedRule) {
  std::mt19937_64 a(7), b(7);
  for (std::size_t n : {1u, 2u, 3u, 7u, 10u, 1000u}) {
    for (int i = 0; i < 100; ++i) {
      const std::size_t idx = bootstrap_draw_index(a, n);
      ASSERT_LT(idx, n);
      // For small n the threshold 2^64 mod n is tiny: in practice r % n of the next output.
      EXPECT_EQ(idx, static_cast<std::size_t>(b() % n));
    }
  }
  expect_invalid([&] { bootstrap_draw_index(a, 0); }, "n must be >= 1");
}

TEST(Bootstrap, SameSeedSameIntervalOtherSeedOtherInterval) {
  const BootstrapResult r1 = bootstrap_median_ratio_ci(kBaseline, kCandidate, 0.95, 2000, 42);
  const BootstrapResult r2 = bootstrap_median_ratio_ci(kBaseline, kCandidate, 0.95, 2000, 42);
  const BootstrapResult r3 = bootstrap_median_ratio_ci(kBaseline, kCandidate, 0.95, 2000, 43);
  ASSERT_TRUE(r1.valid);
  EXPECT_EQ(r1.ci_low_pct, r2.ci_low_pct);
  EXPECT_EQ(r1.ci_high_pct, r2.ci_high_pct);
  // The median of 7 or 8 values takes few distinct values, so with B = 2000 two seeds can
  // well give the same interval ends here; a larger sample and a small B make the ends (type-7
  // interpolations between replicates) differ with any other stream.
  std::mt19937_64 data_engine(5);
  const auto b = lognormal(data_engine, 40, 1000.0, 0.1);
  const auto c = lognormal(data_engine, 41, 1000.0, 0.1);
  const BootstrapResult s42 = bootstrap_median_ratio_ci(b, c, 0.95, 200, 42);
  const BootstrapResult s43 = bootstrap_median_ratio_ci(b, c, 0.95, 200, 43);
  EXPECT_EQ(s42.ci_low_pct, bootstrap_median_ratio_ci(b, c, 0.95, 200, 42).ci_low_pct);
  EXPECT_TRUE(s42.ci_low_pct != s43.ci_low_pct || s42.ci_high_pct != s43.ci_high_pct);
  EXPECT_EQ(r1.seed, 42u);
  EXPECT_EQ(r1.resamples, 2000u);
  EXPECT_EQ(r1.n_baseline, kBaseline.size());
  EXPECT_EQ(r1.n_candidate, kCandidate.size());
}

// Pinned output for seed 42: fails if the engine, the draw, the draw order or the quantile rule
// changes -- any of which would silently change stored results.
TEST(Bootstrap, PinnedValuesForAFixedSeed) {
  const BootstrapResult r = bootstrap_median_ratio_ci(kBaseline, kCandidate, 0.95, 2000, 42);
  // Medians 807.05 (baseline) and 861.9 (candidate).
  EXPECT_TRUE(near_rel(r.estimate_pct, 100.0 * (861.9 / 807.05 - 1.0), 1e-15));
  EXPECT_EQ(r.ci_low_pct, 3.4729064039408897);
  EXPECT_EQ(r.ci_high_pct, 8.8686541100162053);
  EXPECT_LE(r.ci_low_pct, r.estimate_pct);
  EXPECT_GE(r.ci_high_pct, r.estimate_pct);
}

TEST(Bootstrap, DefaultArgumentsAreTheDocumentedOnes) {
  const BootstrapResult r = bootstrap_median_ratio_ci(kBaseline, kCandidate);
  EXPECT_EQ(r.resamples, kBootstrapDefaultResamples);
  EXPECT_EQ(r.seed, kBootstrapDefaultSeed);
  EXPECT_EQ(r.confidence, 0.95);
}

// Known case: both arms lognormal (sigma 0.1, n = 30), true median ratio 1.10. Over 200
// simulated experiments the nominal 90% interval should cover +10% about 90% of the time (184
// of 200 with these seeds). The band is wide -- the binomial sd at 200 runs is ~2 points and the
// percentile interval of a median is only approximately at its level for n = 30 -- but an
// interval that is shifted, far too narrow or far too wide fails it.
TEST(Bootstrap, CoversTheTrueRatioOnAKnownCase) {
  std::mt19937_64 data_engine(2026);
  int covered = 0;
  const int experiments = 200;
  for (int e = 0; e < experiments; ++e) {
    const auto b = lognormal(data_engine, 30, 1000.0, 0.1);
    const auto c = lognormal(data_engine, 30, 1100.0, 0.1);
    const BootstrapResult r =
        bootstrap_median_ratio_ci(b, c, 0.90, 500, static_cast<std::uint64_t>(e));
    if (r.ci_low_pct <= 10.0 && 10.0 <= r.ci_high_pct) ++covered;
  }
  EXPECT_GE(covered, 160);  // >= 80%
  EXPECT_LE(covered, 196);  // <= 98%
}

TEST(Bootstrap, NullCaseIntervalContainsZeroAndBigShiftExcludesIt) {
  std::mt19937_64 data_engine(99);
  const auto b = lognormal(data_engine, 40, 1000.0, 0.05);
  const auto same = lognormal(data_engine, 40, 1000.0, 0.05);
  const auto slow = lognormal(data_engine, 40, 1500.0, 0.05);
  const BootstrapResult r0 = bootstrap_median_ratio_ci(b, same);
  EXPECT_LE(r0.ci_low_pct, 0.0);
  EXPECT_GE(r0.ci_high_pct, 0.0);
  const BootstrapResult r1 = bootstrap_median_ratio_ci(b, slow);
  EXPECT_GT(r1.ci_low_pct, 30.0);
  EXPECT_LT(r1.ci_high_pct, 70.0);
}

TEST(Bootstrap, ConstantArmsGiveADegenerateInterval) {
  const std::vector<double> b = {100, 100, 100}, c = {110, 110};
  const BootstrapResult r = bootstrap_median_ratio_ci(b, c);
  ASSERT_TRUE(r.valid);
  EXPECT_TRUE(near_rel(r.estimate_pct, 10.0, 1e-13));
  EXPECT_EQ(r.ci_low_pct, r.estimate_pct);
  EXPECT_EQ(r.ci_high_pct, r.estimate_pct);
}

TEST(Bootstrap, TooFewSamplesIsInvalidNotAnError) {
  const std::vector<double> one = {5.0}, two = {5.0, 6.0}, none;
  BootstrapResult r = bootstrap_median_ratio_ci(two, one);
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.reason.find("candidate has 1"), std::string::npos) << r.reason;
  EXPECT_TRUE(std::isnan(r.ci_low_pct));
  r = bootstrap_median_ratio_ci(none, none);
  EXPECT_NE(r.reason.find("baseline has 0"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("candidate has 0"), std::string::npos) << r.reason;
}

TEST(Bootstrap, BadInputThrows) {
  const std::vector<double> ok = {1.0, 2.0, 3.0};
  const std::vector<double> bad = {1.0, std::numeric_limits<double>::infinity()};
  expect_invalid([&] { bootstrap_median_ratio_ci(bad, ok); }, "baseline value at index 1");
  const std::vector<double> negative = {-1.0, 2.0};
  expect_invalid([&] { bootstrap_median_ratio_ci(ok, negative); }, "candidate value at index 0");
  expect_invalid([&] { bootstrap_median_ratio_ci(ok, ok, 1.0); }, "confidence");
  expect_invalid([&] { bootstrap_median_ratio_ci(ok, ok, 0.95, 99); }, "resamples");
}

}  // namespace
}  // namespace ttfb::stats
