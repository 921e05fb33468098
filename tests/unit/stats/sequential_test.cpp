// Group-sequential boundaries, sequential.hpp: the published Lan-DeMets bounds, the classical
// Pocock and O'Brien-Fleming constants (which are NOT the spending bounds), the edge cases of the
// header, the properties every spending design has, and three independent computations by R
// (integrate(), a fine Simpson grid, a Monte Carlo of 1e7 Brownian paths),
// tests/data/stats/sequential_reference.csv from make_reference_sequential.R.
#include "server/stats/sequential.hpp"

#include "reference_csv.hpp"

#include <boost/math/distributions/normal.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// z_{1-p}, the fixed design's critical value at two-sided level 2p.
double upper_quantile(double p) {
  return boost::math::quantile(boost::math::complement(boost::math::normal_distribution<>(), p));
}

std::vector<double> equally_spaced(int k) {
  std::vector<double> t;
  for (int j = 1; j <= k; ++j) t.push_back(static_cast<double>(j) / k);
  return t;
}

Spending spending_of(const std::string& s) {
  const auto v = spending_from_string(s);
  if (!v) throw std::runtime_error("unknown spending in reference table: " + s);
  return *v;
}

// ---- names ------------------------------------------------------------------------------------

TEST(SequentialSpending, NamesRoundTrip) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    EXPECT_EQ(spending_from_string(to_string(s)), s);
  }
  EXPECT_EQ(to_string(Spending::pocock), "pocock");
  EXPECT_EQ(to_string(Spending::obrien_fleming), "obrien_fleming");
  EXPECT_FALSE(spending_from_string("Pocock").has_value());
  EXPECT_FALSE(spending_from_string("obrien-fleming").has_value());
  EXPECT_FALSE(spending_from_string("").has_value());
}

// ---- the spending functions -------------------------------------------------------------------

TEST(SequentialSpending, EndsAreZeroAndExactlyAlpha) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    for (double alpha : {0.001, 0.01, 0.05, 0.2, 0.9}) {
      EXPECT_EQ(spent_alpha(s, alpha, 0.0), 0.0);
      EXPECT_EQ(spent_alpha(s, alpha, 1.0), alpha) << to_string(s) << " " << alpha;
    }
  }
}

TEST(SequentialSpending, Formulas) {
  const double e = std::exp(1.0);
  EXPECT_TRUE(near_rel(spent_alpha(Spending::pocock, 0.05, 0.5),
                       0.05 * std::log(1.0 + (e - 1.0) * 0.5), 1e-15));
  // Each side spends the one-sided 2 - 2 Phi(z_{1-a/2} / sqrt(t)) at a = alpha / 2:
  // in total 4 (1 - Phi(z_{1-alpha/4} / sqrt(t))) = 2 erfc(z_{1-alpha/4} / sqrt(2 t)).
  const double z = upper_quantile(0.05 / 4.0);
  EXPECT_TRUE(near_rel(spent_alpha(Spending::obrien_fleming, 0.05, 0.3),
                       2.0 * std::erfc(z / std::sqrt(2.0 * 0.3)), 1e-13));
  // Tiny t keeps its digits instead of rounding 2 - 2 Phi(x) to 0 (4 (1 - Phi(22.4)) ~ 4e-111).
  const double tiny = spent_alpha(Spending::obrien_fleming, 0.05, 0.01);
  EXPECT_GT(tiny, 0.0);
  EXPECT_TRUE(near_rel(tiny, 2.0 * std::erfc(z / std::sqrt(2.0 * 0.01)), 1e-10));
}

TEST(SequentialSpending, IncreasesWithInformation) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    double before = 0.0;
    for (int i = 1; i <= 100; ++i) {
      const double a = spent_alpha(s, 0.05, i / 100.0);
      EXPECT_GT(a, before) << to_string(s) << " t=" << i / 100.0;
      EXPECT_LE(a, 0.05);
      before = a;
    }
  }
  // Pocock-type spends early, O'Brien-Fleming-type late.
  EXPECT_GT(spent_alpha(Spending::pocock, 0.05, 0.2), 0.014);
  EXPECT_LT(spent_alpha(Spending::obrien_fleming, 0.05, 0.2), 2e-6);
}

TEST(SequentialSpending, BadInputThrows) {
  for (double alpha : {0.0, 1.0, -0.1, 1.5, kNaN}) {
    expect_invalid([&] { spent_alpha(Spending::pocock, alpha, 0.5); }, "alpha");
  }
  for (double t : {-0.01, 1.01, kNaN, kInf}) {
    expect_invalid([&] { spent_alpha(Spending::obrien_fleming, 0.05, t); }, "information fraction");
  }
}

// ---- published values -------------------------------------------------------------------------

// Lan-DeMets O'Brien-Fleming-type spending, two-sided alpha = 0.05 (0.025 per side), K = 5
// equally spaced looks: 4.877, 3.357, 2.680, 2.290, 2.031, the standard example of the Lan-DeMets
// program (Reboussin, DeMets, Kim & Lan 2000, Controlled Clinical Trials 21:190-207) as R's
// ldbounds::ldBounds(t = 5) and gsDesign::gsDesign(k = 5, test.type = 2, sfu = sfLDOF) report
// it. Tolerance: half a unit in the last published digit.
TEST(SequentialBounds, PublishedObrienFlemingTypeK5) {
  const std::vector<double> published = {4.877, 3.357, 2.680, 2.290, 2.031};
  const std::vector<double> c = group_sequential_bounds(Spending::obrien_fleming, 0.05,
                                                        equally_spaced(5));
  ASSERT_EQ(c.size(), published.size());
  for (std::size_t j = 0; j < c.size(); ++j) EXPECT_NEAR(c[j], published[j], 5e-4) << "look " << j + 1;
}

// Lan-DeMets Pocock-type spending, same design: 2.438, 2.427, 2.410, 2.397, 2.386 (ldbounds
// ldBounds(t = 5, iuse = 2); derived independently in the R reference below, which holds them to
// 1e-6). Not Pocock's constant boundary: see the next test.
TEST(SequentialBounds, PocockTypeK5) {
  const std::vector<double> expected = {2.438, 2.427, 2.410, 2.397, 2.386};
  const std::vector<double> c = group_sequential_bounds(Spending::pocock, 0.05, equally_spaced(5));
  ASSERT_EQ(c.size(), expected.size());
  for (std::size_t j = 0; j < c.size(); ++j) EXPECT_NEAR(c[j], expected[j], 5e-4) << "look " << j + 1;
}

// The classical boundaries (Jennison & Turnbull 2000, Tables 2.1 and 2.3; K = 5, two-sided 0.05):
// Pocock's constant C_P = 2.413 at every look, O'Brien & Fleming's C_B sqrt(K / j) with
// C_B = 2.040. Each has total crossing probability 0.05 (to the rounding of the constant), which
// checks cumulative_crossing against published numbers; and neither is what the spending
// functions give.
TEST(SequentialBounds, ClassicalConstantsAreNotTheSpendingBounds) {
  const std::vector<double> t = equally_spaced(5);
  const std::vector<double> pocock(5, 2.413);
  std::vector<double> obf;
  for (int j = 1; j <= 5; ++j) obf.push_back(2.040 * std::sqrt(5.0 / j));
  EXPECT_NEAR(cumulative_crossing(pocock, t).back(), 0.05, 1e-4);
  EXPECT_NEAR(cumulative_crossing(obf, t).back(), 0.05, 1e-4);

  const std::vector<double> pocock_type = group_sequential_bounds(Spending::pocock, 0.05, t);
  EXPECT_GT(pocock_type.front() - 2.413, 0.02);  // spends less than Pocock's first look
  EXPECT_LT(pocock_type.back() - 2.413, -0.02);  // and more at the last
  const std::vector<double> obf_type = group_sequential_bounds(Spending::obrien_fleming, 0.05, t);
  EXPECT_GT(obf_type.front() - obf.front(), 0.3);
}

// ---- fixed design and properties --------------------------------------------------------------

TEST(SequentialBounds, OneLookAtTheEndIsTheFixedDesign) {
  const std::vector<double> t = {1.0};
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    for (double alpha : {0.001, 0.01, 0.05, 0.1, 0.5}) {
      const std::vector<double> c = group_sequential_bounds(s, alpha, t);
      ASSERT_EQ(c.size(), 1u);
      EXPECT_EQ(c[0], upper_quantile(alpha / 2.0)) << to_string(s) << " " << alpha;
      EXPECT_TRUE(near_rel(nominal_alphas(s, alpha, t)[0], alpha, 1e-13));
    }
  }
  EXPECT_NEAR(group_sequential_bounds(Spending::pocock, 0.05, t)[0], 1.959964, 1e-6);
}

TEST(SequentialBounds, FirstLookIsClosedForm) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    const std::vector<double> t = {0.3, 0.7, 1.0};
    EXPECT_EQ(group_sequential_bounds(s, 0.05, t)[0], upper_quantile(spent_alpha(s, 0.05, 0.3) / 2));
  }
}

// The defining property, by the library's own integration: look j spends exactly what the
// spending function allots it.
TEST(SequentialBounds, CrossingProbabilitiesEqualTheSpentAlpha) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    for (double alpha : {0.01, 0.05}) {
      for (const std::vector<double>& t :
           {equally_spaced(2), equally_spaced(7), equally_spaced(30),
            std::vector<double>{0.1, 0.15, 0.5, 0.55, 0.9}, std::vector<double>{0.4, 0.6}}) {
        const std::vector<double> c = group_sequential_bounds(s, alpha, t);
        const std::vector<double> p = cumulative_crossing(c, t);
        for (std::size_t j = 0; j < t.size(); ++j) {
          EXPECT_NEAR(p[j], spent_alpha(s, alpha, t[j]), 1e-12)
              << to_string(s) << " alpha " << alpha << " K " << t.size() << " look " << j + 1;
        }
      }
    }
  }
}

TEST(SequentialBounds, ObrienFlemingBoundsDecreaseOverLooks) {
  for (double alpha : {0.01, 0.05, 0.1}) {
    for (int k : {2, 3, 5, 10, 20, 50}) {
      const std::vector<double> c =
          group_sequential_bounds(Spending::obrien_fleming, alpha, equally_spaced(k));
      for (std::size_t j = 1; j < c.size(); ++j) {
        EXPECT_LT(c[j], c[j - 1]) << "alpha " << alpha << " K " << k << " look " << j + 1;
      }
    }
  }
}

TEST(SequentialBounds, NominalLevelsBelowAlphaSumAboveIt) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    for (double alpha : {0.01, 0.05}) {
      for (int k : {2, 3, 5, 10, 20}) {
        SCOPED_TRACE(std::string(to_string(s)) + " alpha " + std::to_string(alpha) + " K " +
                     std::to_string(k));
        const std::vector<double> t = equally_spaced(k);
        const std::vector<double> a = nominal_alphas(s, alpha, t);
        const std::vector<double> c = group_sequential_bounds(s, alpha, t);
        for (std::size_t j = 0; j < a.size(); ++j) {
          EXPECT_LT(a[j], alpha);
          EXPECT_LE(a[j], spent_alpha(s, alpha, t[j]) * (1 + 1e-9));
          EXPECT_TRUE(near_rel(a[j], std::erfc(c[j] / std::sqrt(2.0)), 1e-13));
        }
        EXPECT_GE(std::accumulate(a.begin(), a.end(), 0.0), alpha);  // union bound
        EXPECT_GT(c.back(), upper_quantile(alpha / 2.0));  // the price of looking early
      }
    }
  }
}

// The spending approach: a look's bound depends only on the looks so far, not on later ones, so
// a design with t_K < 1 is a prefix of any longer one.
TEST(SequentialBounds, LastLookBeforeTheEndSpendsOnlyItsShare) {
  const std::vector<double> full = {0.25, 0.5, 0.75, 1.0};
  const std::vector<double> partial = {0.25, 0.5, 0.75};
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    const std::vector<double> cf = group_sequential_bounds(s, 0.05, full);
    const std::vector<double> cp = group_sequential_bounds(s, 0.05, partial);
    for (std::size_t j = 0; j < cp.size(); ++j) EXPECT_NEAR(cp[j], cf[j], 1e-7);
    const double total = cumulative_crossing(cp, partial).back();
    EXPECT_NEAR(total, spent_alpha(s, 0.05, 0.75), 1e-12);
    EXPECT_LT(total, 0.05);
  }
}

// Spending that underflows (4 (1 - Phi(z / sqrt(1e-3))) with z = 2.24 is ~ 1e-1090) gives a look
// that can never reject; the next look then sees the whole N(0, 1) and spends as a first look.
TEST(SequentialBounds, UnderflowingSpendingGivesAnInfiniteBound) {
  const std::vector<double> t = {1e-3, 1.0};
  const std::vector<double> c = group_sequential_bounds(Spending::obrien_fleming, 0.05, t);
  EXPECT_EQ(c[0], kInf);
  EXPECT_NEAR(c[1], upper_quantile(0.025), 1e-7);
  EXPECT_EQ(nominal_alphas(Spending::obrien_fleming, 0.05, t)[0], 0.0);
  EXPECT_EQ(cumulative_crossing(c, t)[0], 0.0);
}

TEST(SequentialBounds, CloseLooksAreResolved) {
  // A look adding 0.02% of the information: the bound after it must be that of the design
  // without it (it spends ~ 1e-5 of alpha and nearly always agrees with its neighbour).
  const std::vector<double> with = {0.5, 0.5001, 1.0};
  const std::vector<double> without = {0.5, 1.0};
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    const std::vector<double> c = group_sequential_bounds(s, 0.05, with);
    const std::vector<double> p = cumulative_crossing(c, with);
    EXPECT_NEAR(p.back(), 0.05, 1e-12);
    EXPECT_NEAR(c.back(), group_sequential_bounds(s, 0.05, without).back(), 2e-4) << to_string(s);
  }
}

TEST(SequentialBounds, BadInputThrows) {
  const std::vector<double> ok = {0.5, 1.0};
  for (double alpha : {0.0, 1.0, -0.05, kNaN}) {
    expect_invalid([&] { group_sequential_bounds(Spending::pocock, alpha, ok); }, "alpha");
    expect_invalid([&] { nominal_alphas(Spending::pocock, alpha, ok); }, "alpha");
    expect_invalid([&] { plan_looks(Spending::pocock, alpha, 10, 50); }, "alpha");
  }
  const auto bounds = [](std::vector<double> t) {
    return [t] { group_sequential_bounds(Spending::obrien_fleming, 0.05, t); };
  };
  expect_invalid(bounds({}), "no looks");
  expect_invalid(bounds({0.5, kNaN, 1.0}), "is NaN");
  expect_invalid(bounds({0.0, 1.0}), "t[0] = 0.000000 must be in (0, 1]");
  expect_invalid(bounds({-0.5, 1.0}), "t[0]");
  expect_invalid(bounds({0.5, 1.5}), "t[1] = 1.500000 must be in (0, 1]");
  expect_invalid(bounds({0.5, 0.5, 1.0}), "strictly increasing");
  expect_invalid(bounds({0.6, 0.5, 1.0}), "strictly increasing");
  expect_invalid(bounds({0.5, 0.50001, 1.0}), "too close");
  expect_invalid(bounds(std::vector<double>(kMaxLooks + 1, 0.5)), "kMaxLooks");
  expect_invalid(bounds({0.5, kInf}), "t[1]");
}

TEST(SequentialCrossing, BadInputThrows) {
  const std::vector<double> t = {0.5, 1.0};
  const std::vector<double> one = {2.0};
  expect_invalid([&] { cumulative_crossing(one, t); }, "1 bounds for 2 looks");
  for (double bad : {0.0, -1.0, kNaN}) {
    const std::vector<double> b = {2.0, bad};
    expect_invalid([&] { cumulative_crossing(b, t); }, "bound[1]");
  }
  const std::vector<double> b = {kInf, 2.0};
  EXPECT_NO_THROW(cumulative_crossing(b, t));
}

// ---- plan_looks -------------------------------------------------------------------------------

TEST(SequentialPlan, EqualBlocks) {
  const std::vector<LookPlan> plan = plan_looks(Spending::obrien_fleming, 0.05, 10, 50);
  ASSERT_EQ(plan.size(), 5u);
  const std::vector<double> c =
      group_sequential_bounds(Spending::obrien_fleming, 0.05, equally_spaced(5));
  for (std::size_t j = 0; j < plan.size(); ++j) {
    EXPECT_EQ(plan[j].runs_per_arm, 10 * static_cast<int>(j + 1));
    EXPECT_EQ(plan[j].info_fraction, (10.0 * static_cast<double>(j + 1)) / 50.0);
    EXPECT_NEAR(plan[j].z_bound, c[j], 1e-12);
    EXPECT_TRUE(near_rel(plan[j].nominal_alpha, std::erfc(plan[j].z_bound / std::sqrt(2.0)), 1e-13));
  }
  EXPECT_EQ(plan.back().info_fraction, 1.0);
  EXPECT_NEAR(plan[0].nominal_alpha, 1.08e-6, 0.01e-6);  // the header's example
  EXPECT_NEAR(plan[4].nominal_alpha, 0.0423, 0.0001);
}

TEST(SequentialPlan, ShortLastBlock) {
  const std::vector<LookPlan> plan = plan_looks(Spending::pocock, 0.01, 10, 25);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].runs_per_arm, 10);
  EXPECT_EQ(plan[1].runs_per_arm, 20);
  EXPECT_EQ(plan[2].runs_per_arm, 25);
  EXPECT_EQ(plan[0].info_fraction, 0.4);
  EXPECT_EQ(plan[1].info_fraction, 0.8);
  EXPECT_EQ(plan[2].info_fraction, 1.0);
  const std::vector<double> t = {0.4, 0.8, 1.0};
  const std::vector<double> c = group_sequential_bounds(Spending::pocock, 0.01, t);
  for (std::size_t j = 0; j < 3; ++j) EXPECT_NEAR(plan[j].z_bound, c[j], 1e-12);
}

TEST(SequentialPlan, OneBlockIsTheFixedDesign) {
  const std::vector<LookPlan> plan = plan_looks(Spending::obrien_fleming, 0.05, 30, 30);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].runs_per_arm, 30);
  EXPECT_EQ(plan[0].info_fraction, 1.0);
  EXPECT_EQ(plan[0].z_bound, upper_quantile(0.025));
}

TEST(SequentialPlan, BadInputThrows) {
  expect_invalid([] { plan_looks(Spending::pocock, 0.05, 0, 50); }, "runs_per_block 0");
  expect_invalid([] { plan_looks(Spending::pocock, 0.05, -3, 50); }, "runs_per_block -3");
  expect_invalid([] { plan_looks(Spending::pocock, 0.05, 10, 9); }, "max_runs_per_arm 9");
  expect_invalid([] { plan_looks(Spending::pocock, 0.05, 1, 1001); }, "kMaxLooks");
  EXPECT_EQ(plan_looks(Spending::pocock, 0.05, 1, 1000).size(), 1000u);
}

// Many looks work: 50 looks of one run each, every look spending its share. (Speed is not
// asserted here: shared machines are noisy; a 20-look plan takes about 2 ms in a Release build.)
TEST(SequentialPlan, ManyLooksAreExact) {
  for (Spending s : {Spending::pocock, Spending::obrien_fleming}) {
    const std::vector<LookPlan> plan = plan_looks(s, 0.05, 1, 50);
    ASSERT_EQ(plan.size(), 50u);
    std::vector<double> t, c;
    for (const LookPlan& l : plan) {
      t.push_back(l.info_fraction);
      c.push_back(l.z_bound);
    }
    const std::vector<double> p = cumulative_crossing(c, t);
    for (std::size_t j = 0; j < t.size(); ++j) {
      EXPECT_NEAR(p[j], spent_alpha(s, 0.05, t[j]), 1e-12);
    }
  }
}

// ---- R reference ------------------------------------------------------------------------------

TEST(SequentialReference, MatchesR) {
  const auto table = testing::read_reference("sequential_reference.csv");
  ASSERT_GE(table.rows.size(), 30u);
  int exact_rows = 0;
  for (const auto& row : table.rows) {
    SCOPED_TRACE(row[0]);
    const Spending s = spending_of(table.field(row, "spending"));
    const double alpha = table.number(row, "alpha");
    const std::vector<double> t = table.numbers(row, "t");
    const std::vector<double> spent = table.numbers(row, "spent");
    const std::vector<double> r_integrate = table.numbers(row, "bounds_integrate");
    const std::vector<double> r_grid = table.numbers(row, "bounds_grid");
    const std::vector<double> mc = table.numbers(row, "cumulative_crossing_mc");
    const double paths = table.number(row, "mc_paths");
    ASSERT_EQ(spent.size(), t.size());
    ASSERT_EQ(r_integrate.size(), t.size());
    ASSERT_EQ(r_grid.size(), t.size());
    ASSERT_EQ(mc.size(), t.size());

    const std::vector<double> c = group_sequential_bounds(s, alpha, t);
    // Our integration of R's bounds: what they spend by our arithmetic.
    const std::vector<double> p_of_r = cumulative_crossing(r_grid, t);
    for (std::size_t j = 0; j < t.size(); ++j) {
      SCOPED_TRACE("look " + std::to_string(j + 1));
      EXPECT_TRUE(near_rel(spent_alpha(s, alpha, t[j]), spent[j], 1e-13));
      // R's integrate(): exact to ~ 1e-10 where it exists (K <= 3).
      if (!std::isnan(r_integrate[j])) {
        EXPECT_NEAR(c[j], r_integrate[j], 1e-6);
        ++exact_rows;
      }
      // R's fine Simpson grid (every design, K up to 20).
      EXPECT_NEAR(c[j], r_grid[j], 1e-6);
      EXPECT_NEAR(p_of_r[j], spent[j], 1e-7);
      // Monte Carlo of R's bounds: within 4 binomial standard errors of the probability our
      // integration gives them, and of the spent alpha. The SE is that of the expected p, so a
      // look that spends ~ 0 (and whose MC count is 0) is compared with an SE of ~ 0 too.
      const double se = std::sqrt(spent[j] * (1.0 - spent[j]) / paths);
      EXPECT_LE(std::fabs(mc[j] - p_of_r[j]), 4.0 * se + 1e-12)
          << "MC " << mc[j] << " vs " << p_of_r[j] << ", se " << se;
      EXPECT_LE(std::fabs(mc[j] - spent[j]), 4.0 * se + 1e-12);
    }
  }
  EXPECT_GE(exact_rows, 20);
}

}  // namespace
}  // namespace ttfb::stats
