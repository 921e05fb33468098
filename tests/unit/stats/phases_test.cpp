// Phase attribution: hand-built arms where a known phase moves by a known amount (the others keep
// the same values, reordered), two phases moving in opposite directions, nothing moving, the Holm
// adjustment, missing and repeated phases, bad input, and JSON. Shifts, intervals and p-values
// are checked against R 4.2.2's wilcox.test(candidate, baseline, conf.int = TRUE); the snippets
// and their output are beside the tests.
#include "server/stats/phases.hpp"

#include "reference_csv.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ttfb::stats {
namespace {

using testing::expect_invalid;
using testing::near_rel;

using Column = std::pair<std::string, std::vector<double>>;

// Runs from per-phase columns: run i reports (name, column[i]) for every column, in column order.
PhaseRuns runs_of(const std::vector<Column>& columns) {
  PhaseRuns out;
  out.runs.resize(columns.front().second.size());
  for (std::size_t i = 0; i < out.runs.size(); ++i) {
    for (const auto& [name, values] : columns) out.runs[i].emplace_back(name, values.at(i));
  }
  return out;
}

std::vector<double> reversed(std::vector<double> xs) { return {xs.rbegin(), xs.rend()}; }

std::vector<double> rotated(const std::vector<double>& xs, std::size_t k) {
  std::vector<double> out(xs.begin() + static_cast<std::ptrdiff_t>(k), xs.end());
  out.insert(out.end(), xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(k));
  return out;
}

const PhaseEffect& phase(const PhaseAttribution& a, const std::string& name) {
  for (const auto& e : a.phases) {
    if (e.name == name) return e;
  }
  throw std::runtime_error("no phase " + name);
}

// 12 runs per arm. imports: baseline 50 + jitter, candidate the same + 38 ms. The other four
// phases have the same values in both arms, in another run order (so their shift is 0 and p = 1).
// TTFB = 5 ms of unattributed overhead (+ jitter) + the phases, and the candidate's overhead is
// 2 ms more: the total moves by about 40, imports explains about 95% of it.
const std::vector<double> kImportsB = {50.3, 49.3, 51.1, 49.8, 50.5, 48.7, 50.9, 49.6, 50.0, 50.8, 49.1, 50.6};
const std::vector<double> kImportsC = {88.3, 87.3, 89.1, 87.8, 88.5, 86.7, 88.9, 87.6, 88.0, 88.8, 87.1, 88.6};
const std::vector<double> kConfigB = {12.1, 11.4, 12.9, 11.8, 12.4, 11.1, 12.6, 11.9, 12.2, 11.6, 12.0, 12.7};
const std::vector<double> kDataB = {140.2, 138.9, 141.5, 139.6, 140.8, 138.2, 141.1, 139.3, 140.0, 140.5, 139.0, 141.8};
const std::vector<double> kModelB = {301.2, 298.7, 303.4, 299.9, 300.6, 297.8, 302.5, 300.1, 299.4, 301.8, 298.3, 302.0};
const std::vector<double> kFirstBatchB = {85.4, 84.1, 86.9, 85.0, 85.7, 83.8, 86.2, 84.6, 85.2, 86.5, 84.3, 85.9};
// R: ob <- c(5.0, 5.3, 4.8, 5.1, 4.9, 5.4, 5.2, 4.7, 5.05, 4.95, 5.15, 4.85)
//    tb <- round(ob + ib + cb + db + mb + fb, 2); tc <- round(ob + 2 + ic + rev(cb) +
//    c(db[6:12], db[1:5]) + rev(mb) + c(fb[4:12], fb[1:3]), 2)
const std::vector<double> kTtfbB = {594.2, 587.7, 600.6, 591.2, 594.9, 585, 598.5, 590.2, 591.85, 596.15, 587.85, 597.85};
const std::vector<double> kTtfbC = {633.2, 631.7, 632.4, 632.7, 632.5, 633.4, 633.3, 631.8, 631.55, 638.95, 628.05, 636.45};

// R 4.2.2 (options(digits = 17)):
//   w <- wilcox.test(tc, tb, conf.int = TRUE)   # exact: no ties, 12 vs 12
//   w$estimate   # 40.324999999999989
//   w$conf.int   # 36.199999999999932 43.949999999999932
//   w <- wilcox.test(ic, ib, conf.int = TRUE)
//   w$estimate   # 38
//   w$conf.int   # 37.299999999999997 38.699999999999996
//   w$p.value    # 7.39602301050679e-07
TEST(PhaseAttribution, OnePhaseMovesByAKnownAmount) {
  const PhaseRuns b = runs_of({{"imports", kImportsB}, {"config", kConfigB}, {"data", kDataB},
                               {"model", kModelB}, {"first_batch", kFirstBatchB}});
  const PhaseRuns c = runs_of({{"imports", kImportsC}, {"config", reversed(kConfigB)}, {"data", rotated(kDataB, 5)},
                               {"model", reversed(kModelB)}, {"first_batch", rotated(kFirstBatchB, 3)}});
  const PhaseAttribution a = attribute_phases(kTtfbB, kTtfbC, b, c, 0.05);
  EXPECT_TRUE(near_rel(a.total_delta_ms, 40.324999999999989, 1e-13));
  ASSERT_EQ(a.phases.size(), 5u);
  EXPECT_EQ(a.phases[0].name, "imports");
  EXPECT_EQ(a.phases[4].name, "first_batch");

  const PhaseEffect& imports = a.phases[0];
  EXPECT_EQ(imports.n_baseline, 12u);
  EXPECT_EQ(imports.n_candidate, 12u);
  EXPECT_TRUE(near_rel(imports.median_baseline_ms, 50.15, 1e-14));
  EXPECT_TRUE(near_rel(imports.median_candidate_ms, 88.15, 1e-14));
  EXPECT_TRUE(near_rel(imports.delta_ms, 38.0, 1e-13));
  EXPECT_TRUE(near_rel(imports.delta_ci_low_ms, 37.299999999999997, 1e-13));
  EXPECT_TRUE(near_rel(imports.delta_ci_high_ms, 38.699999999999996, 1e-13));
  EXPECT_GE(imports.delta_ci_confidence, 0.95);
  EXPECT_TRUE(near_rel(imports.p_value, 7.39602301050679e-07, 1e-12));
  EXPECT_TRUE(near_rel(imports.p_value_holm, 5 * 7.39602301050679e-07, 1e-12));
  EXPECT_TRUE(near_rel(imports.effect_pct, 100.0 * 38.0 / 50.15, 1e-12));
  EXPECT_TRUE(near_rel(imports.share_of_effect, 38.0 / 40.325, 1e-12));
  EXPECT_TRUE(imports.significant);

  for (std::size_t i = 1; i < a.phases.size(); ++i) {
    SCOPED_TRACE(a.phases[i].name);
    EXPECT_EQ(a.phases[i].delta_ms, 0.0);
    EXPECT_EQ(a.phases[i].p_value, 1.0);
    EXPECT_EQ(a.phases[i].share_of_effect, 0.0);
    EXPECT_FALSE(a.phases[i].significant);
    EXPECT_LE(a.phases[i].delta_ci_low_ms, 0.0);
    EXPECT_GE(a.phases[i].delta_ci_high_ms, 0.0);
  }
  EXPECT_EQ(a.summary, "imports +38.0 ms (94% of the change); other phases within noise");
}

// 8 runs: imports +40 ms, data -15 ms, config and model the same in every run. TTFB is the sum of
// the phases, so the total moves by 25 and the shares are 160% and -60%.
TEST(PhaseAttribution, TwoPhasesMovingInOppositeDirections) {
  const std::vector<double> imports_b = {50.3, 49.3, 51.1, 49.8, 50.5, 48.7, 50.9, 49.6};
  const std::vector<double> imports_c = {90.3, 89.3, 91.1, 89.8, 90.5, 88.7, 90.9, 89.6};
  const std::vector<double> data_b = {140.2, 138.9, 141.5, 139.6, 140.8, 138.2, 141.1, 139.3};
  const std::vector<double> data_c = {125.2, 123.9, 126.5, 124.6, 125.8, 123.2, 126.1, 124.3};
  const std::vector<double> config = {12.1, 11.4, 12.9, 11.8, 12.4, 11.1, 12.6, 11.9};
  const std::vector<double> model = {301.2, 298.7, 303.4, 299.9, 300.6, 297.8, 302.5, 300.1};
  std::vector<double> ttfb_b, ttfb_c;
  for (std::size_t i = 0; i < 8; ++i) {
    ttfb_b.push_back(config[i] + imports_b[i] + data_b[i] + model[i]);
    ttfb_c.push_back(config[i] + imports_c[i] + data_c[i] + model[i]);
  }
  const PhaseRuns b = runs_of({{"config", config}, {"imports", imports_b}, {"data", data_b}, {"model", model}});
  const PhaseRuns c = runs_of({{"config", config}, {"imports", imports_c}, {"data", data_c}, {"model", model}});
  const PhaseAttribution a = attribute_phases(ttfb_b, ttfb_c, b, c, 0.05);
  EXPECT_TRUE(near_rel(a.total_delta_ms, 25.0, 1e-12));
  const PhaseEffect& imports = phase(a, "imports");
  const PhaseEffect& data = phase(a, "data");
  EXPECT_TRUE(near_rel(imports.delta_ms, 40.0, 1e-12));
  EXPECT_TRUE(near_rel(data.delta_ms, -15.0, 1e-12));
  EXPECT_TRUE(near_rel(imports.share_of_effect, 1.6, 1e-12));
  EXPECT_TRUE(near_rel(data.share_of_effect, -0.6, 1e-12));
  // Complete separation, 8 vs 8: exact p = 2 / C(16, 8); Holm over 4 tested phases.
  EXPECT_TRUE(near_rel(imports.p_value, 2.0 / 12870.0, 1e-12));
  EXPECT_TRUE(near_rel(data.p_value, 2.0 / 12870.0, 1e-12));
  EXPECT_TRUE(near_rel(imports.p_value_holm, 4 * 2.0 / 12870.0, 1e-12));
  EXPECT_TRUE(near_rel(data.p_value_holm, 4 * 2.0 / 12870.0, 1e-12));
  EXPECT_TRUE(imports.significant);
  EXPECT_TRUE(data.significant);
  EXPECT_LT(data.delta_ci_high_ms, 0.0);
  EXPECT_FALSE(phase(a, "config").significant);
  EXPECT_EQ(phase(a, "config").p_value, 1.0);  // every value tied across arms: W = n^2 / 2
  EXPECT_EQ(a.phases[0].name, "config");       // order of first appearance
  EXPECT_EQ(a.summary,
            "imports +40.0 ms (160% of the change), data -15.0 ms (-60% of the change); "
            "other phases within noise");
}

// The candidate is the baseline's runs in reverse order: nothing moved, the total is exactly 0
// and so every share is undefined.
TEST(PhaseAttribution, NoPhaseMovesAndAZeroTotalHasNoShares) {
  const PhaseRuns b = runs_of({{"imports", kImportsB}, {"data", kDataB}, {"model", kModelB}});
  PhaseRuns c = b;
  c.runs = {b.runs.rbegin(), b.runs.rend()};
  const PhaseAttribution a = attribute_phases(kTtfbB, reversed(kTtfbB), b, c, 0.05);
  EXPECT_EQ(a.total_delta_ms, 0.0);
  ASSERT_EQ(a.phases.size(), 3u);
  for (const auto& e : a.phases) {
    SCOPED_TRACE(e.name);
    EXPECT_EQ(e.delta_ms, 0.0);
    EXPECT_EQ(e.p_value, 1.0);
    EXPECT_EQ(e.p_value_holm, 1.0);
    EXPECT_TRUE(std::isnan(e.share_of_effect));
    EXPECT_EQ(e.effect_pct, 0.0);
    EXPECT_FALSE(e.significant);
  }
  EXPECT_EQ(a.summary, "no phase moved significantly");
}

// 5 runs per arm. imports: complete separation, exact p = 2/252; data: the candidate wins 23 of
// 25 pairs, p = 8/252 < 0.05 on its own but not after Holm over the 5 phases:
//   p.adjust(c(2/252, 8/252, 1, 1, 1), "holm")   # 0.03968253968253968 0.12698412698412698 1 1 1
//   wilcox.test(dc, db, conf.int = TRUE)          # W = 23, p 0.031746031746031744, estimate 2,
//                                                 # conf.int 0.30000000000001137 3.5
//   wilcox.test(ib + 38, ib, conf.int = TRUE)     # p 0.0079365079365079361, estimate 38,
//                                                 # conf.int 36.799999999999997 39.200000000000003
TEST(PhaseAttribution, HolmKeepsABorderlinePhaseFromBeingBlamed) {
  const std::vector<double> ib = {50.3, 49.3, 51.1, 49.8, 50.5};
  const std::vector<double> ic = {88.3, 87.3, 89.1, 87.8, 88.5};
  const std::vector<double> db = {140.2, 138.9, 141.5, 139.6, 140.8};
  const std::vector<double> dc = {140.5, 142.0, 142.3, 143.1, 142.8};
  const std::vector<double> cfg = {12.1, 11.4, 12.9, 11.8, 12.4};
  const std::vector<double> model = {301.2, 298.7, 303.4, 299.9, 300.6};
  const std::vector<double> fb = {85.4, 84.1, 86.9, 85.0, 85.7};
  const PhaseRuns b = runs_of({{"imports", ib}, {"config", cfg}, {"data", db}, {"model", model}, {"first_batch", fb}});
  const PhaseRuns c = runs_of({{"imports", ic}, {"config", reversed(cfg)}, {"data", dc}, {"model", reversed(model)},
                               {"first_batch", reversed(fb)}});
  const std::vector<double> tb = {600.0, 601.0, 602.0, 603.0, 604.0};
  const std::vector<double> tc = {640.0, 641.0, 642.0, 643.0, 644.0};
  const PhaseAttribution a = attribute_phases(tb, tc, b, c, 0.05);
  EXPECT_EQ(a.total_delta_ms, 40.0);
  const PhaseEffect& imports = phase(a, "imports");
  const PhaseEffect& data = phase(a, "data");
  EXPECT_TRUE(near_rel(imports.p_value, 0.0079365079365079361, 1e-12));
  EXPECT_TRUE(near_rel(imports.p_value_holm, 0.03968253968253968, 1e-12));
  EXPECT_TRUE(near_rel(imports.delta_ms, 38.0, 1e-13));
  EXPECT_TRUE(near_rel(imports.delta_ci_low_ms, 36.799999999999997, 1e-13));
  EXPECT_TRUE(near_rel(imports.delta_ci_high_ms, 39.200000000000003, 1e-13));
  EXPECT_TRUE(imports.significant);
  EXPECT_TRUE(near_rel(data.p_value, 0.031746031746031744, 1e-12));
  EXPECT_TRUE(near_rel(data.p_value_holm, 0.12698412698412698, 1e-12));
  EXPECT_TRUE(near_rel(data.delta_ms, 2.0, 1e-13));
  EXPECT_TRUE(near_rel(data.delta_ci_low_ms, 0.30000000000001137, 1e-12));
  EXPECT_TRUE(near_rel(data.delta_ci_high_ms, 3.5, 1e-13));
  EXPECT_FALSE(data.significant);  // its own interval excludes 0: the CI is per phase
  EXPECT_EQ(phase(a, "model").p_value_holm, 1.0);
  EXPECT_EQ(a.summary, "imports +38.0 ms (95% of the change); other phases within noise");
}

// A second R check, unequal arms with independent jitter, and a phase that is often 0 ms (ties:
// the normal method; zeros are fine for phases):
//   b <- c(50.3, 49.3, 51.1, 49.8, 50.5, 48.7, 50.9, 49.6, 50.0, 50.8)
//   c <- c(87.9, 89.4, 86.2, 88.7, 90.3, 87.1, 88.2, 91.0)
//   w <- wilcox.test(c, b, conf.int = TRUE)
//   w$estimate   # 38.400000000000006
//   w$conf.int   # 37.100000000000001 40.000000000000000
//   w$p.value    # 4.5705928058869233e-05
//   wilcox.test(c, b, conf.int = TRUE, conf.level = 0.99)$conf.int   # 36.6 40.5
//   zb <- c(0, 0, 0.4, 0, 1.2, 0, 0.3, 0); zc <- c(0, 2.1, 0, 1.8, 0, 2.4, 0.9, 1.5)
//   w <- wilcox.test(zc, zb, conf.int = TRUE)
//   w$estimate   # 0.89998068728493386 (uniroot; the median of the differences is 0.9)
//   w$conf.int   # -4.1452603724225311e-06 1.8000398660518844 (uniroot, tol 1e-4)
//   w$p.value    # 0.11630085464202837
TEST(PhaseAttribution, MatchesRWilcoxTestForUnequalArmsAndZeroMsPhases) {
  const std::vector<double> ib = {50.3, 49.3, 51.1, 49.8, 50.5, 48.7, 50.9, 49.6, 50.0, 50.8};
  const std::vector<double> ic = {87.9, 89.4, 86.2, 88.7, 90.3, 87.1, 88.2, 91.0};
  const std::vector<double> zb = {0, 0, 0.4, 0, 1.2, 0, 0.3, 0, 0.1, 0};
  const std::vector<double> zc = {0, 2.1, 0, 1.8, 0, 2.4, 0.9, 1.5};
  PhaseRuns b = runs_of({{"imports", ib}, {"cache_check", zb}});
  PhaseRuns c = runs_of({{"imports", ic}, {"cache_check", zc}});
  // cache_check: only the first 8 baseline runs report it.
  b.runs[8].pop_back();
  b.runs[9].pop_back();
  const std::vector<double> tb = {600.0, 601.0};
  const std::vector<double> tc = {640.0, 641.0};
  PhaseAttribution a = attribute_phases(tb, tc, b, c, 0.05);
  const PhaseEffect& imports = phase(a, "imports");
  EXPECT_TRUE(near_rel(imports.delta_ms, 38.400000000000006, 1e-13));
  EXPECT_TRUE(near_rel(imports.delta_ci_low_ms, 37.100000000000001, 1e-13));
  EXPECT_TRUE(near_rel(imports.delta_ci_high_ms, 40.0, 1e-13));
  EXPECT_TRUE(near_rel(imports.p_value, 4.5705928058869233e-05, 1e-12));
  const PhaseEffect& cache = phase(a, "cache_check");
  EXPECT_EQ(cache.n_baseline, 8u);
  EXPECT_EQ(cache.n_candidate, 8u);
  EXPECT_EQ(cache.median_baseline_ms, 0.0);
  EXPECT_TRUE(std::isnan(cache.effect_pct));  // relative to a 0 ms median: undefined
  EXPECT_TRUE(near_rel(cache.delta_ms, 0.9, 1e-13));
  EXPECT_NEAR(cache.delta_ci_low_ms, -4.1452603724225311e-06, 2e-4);
  EXPECT_NEAR(cache.delta_ci_high_ms, 1.8000398660518844, 2e-4);
  EXPECT_TRUE(near_rel(cache.p_value, 0.11630085464202837, 1e-9));
  EXPECT_FALSE(cache.significant);
  EXPECT_EQ(a.summary, "imports +38.4 ms (96% of the change); other phases within noise");

  a = attribute_phases(tb, tc, b, c, 0.01);  // the interval follows alpha
  EXPECT_TRUE(near_rel(phase(a, "imports").delta_ci_low_ms, 36.6, 1e-13));
  EXPECT_TRUE(near_rel(phase(a, "imports").delta_ci_high_ms, 40.5, 1e-13));
}

TEST(PhaseAttribution, MissingAndRepeatedPhases) {
  PhaseRuns b, c;
  b.runs = {
      {{"imports", 30.0}, {"warmup", 5.0}, {"model", 300.0}, {"imports", 20.0}},  // imports 50
      {{"imports", 51.0}, {"warmup", 6.0}, {"model", 301.0}},
      {{"imports", 49.0}, {"gc", 3.0}, {"warmup", 4.0}, {"model", 299.0}},
      {{"imports", 52.0}, {"model", 302.0}},
  };
  c.runs = {
      {{"compile", 80.0}, {"imports", 50.5}, {"model", 300.5}},
      {{"compile", 81.0}, {"imports", 51.5}, {"warmup", 5.5}, {"model", 301.5}},
      {{"compile", 79.0}, {"imports", 49.5}, {"model", 299.5}},
      {{"compile", 82.0}, {"imports", 52.5}, {"warmup", 4.5}, {"model", 302.5}},
  };
  const std::vector<double> tb = {355.0, 358.0, 355.0, 354.0};
  const std::vector<double> tc = {430.0, 438.0, 428.0, 437.0};
  const PhaseAttribution a = attribute_phases(tb, tc, b, c, 0.05);
  ASSERT_EQ(a.phases.size(), 5u);
  EXPECT_EQ(a.phases[0].name, "imports");
  EXPECT_EQ(a.phases[1].name, "warmup");
  EXPECT_EQ(a.phases[2].name, "model");
  EXPECT_EQ(a.phases[3].name, "gc");
  EXPECT_EQ(a.phases[4].name, "compile");  // candidate-only phases come last

  const PhaseEffect& imports = a.phases[0];
  EXPECT_EQ(imports.n_baseline, 4u);   // the repeat is one run's value, not a fifth
  EXPECT_EQ(imports.median_baseline_ms, 50.5);  // {50, 51, 49, 52}
  EXPECT_EQ(imports.delta_ms, 0.5);

  const PhaseEffect& warmup = a.phases[1];
  EXPECT_EQ(warmup.n_baseline, 3u);
  EXPECT_EQ(warmup.n_candidate, 2u);
  EXPECT_EQ(warmup.median_baseline_ms, 5.0);
  EXPECT_EQ(warmup.median_candidate_ms, 5.0);
  EXPECT_FALSE(std::isnan(warmup.p_value));

  const PhaseEffect& gc = a.phases[3];
  EXPECT_EQ(gc.n_baseline, 1u);
  EXPECT_EQ(gc.n_candidate, 0u);
  EXPECT_EQ(gc.median_baseline_ms, 3.0);
  EXPECT_TRUE(std::isnan(gc.median_candidate_ms));
  for (const PhaseEffect* e : {&gc, &a.phases[4]}) {
    SCOPED_TRACE(e->name);
    EXPECT_TRUE(std::isnan(e->delta_ms));
    EXPECT_TRUE(std::isnan(e->delta_ci_low_ms));
    EXPECT_TRUE(std::isnan(e->delta_ci_high_ms));
    EXPECT_TRUE(std::isnan(e->p_value));
    EXPECT_TRUE(std::isnan(e->p_value_holm));
    EXPECT_TRUE(std::isnan(e->effect_pct));
    EXPECT_TRUE(std::isnan(e->share_of_effect));
    EXPECT_FALSE(e->significant);
  }
  EXPECT_EQ(a.phases[4].n_candidate, 4u);
  EXPECT_EQ(a.phases[4].median_candidate_ms, 80.5);
  // Holm counts only the 3 tested phases: the smallest p is multiplied by 3.
  double p_min = 1.0, holm_min = 1.0;
  for (const PhaseEffect* e : {&imports, &warmup, &a.phases[2]}) {
    if (e->p_value < p_min) {
      p_min = e->p_value;
      holm_min = e->p_value_holm;
    }
  }
  EXPECT_DOUBLE_EQ(holm_min, std::min(1.0, 3.0 * p_min));
  EXPECT_EQ(a.summary, "no phase moved significantly; too few runs to test: gc, compile");
}

TEST(PhaseAttribution, NoPhasesGiveEmptyPhasesAndSummary) {
  const std::vector<double> tb = {600.0, 601.0, 602.0}, tc = {610.0, 611.0, 612.0};
  PhaseAttribution a = attribute_phases(tb, tc, PhaseRuns{}, PhaseRuns{}, 0.05);
  EXPECT_TRUE(a.phases.empty());
  EXPECT_EQ(a.summary, "");
  EXPECT_EQ(a.total_delta_ms, 10.0);
  PhaseRuns empty_runs;
  empty_runs.runs.resize(3);
  a = attribute_phases(tb, tc, empty_runs, empty_runs, 0.05);
  EXPECT_TRUE(a.phases.empty());
  EXPECT_EQ(a.summary, "");
  EXPECT_TRUE(to_json(a).at("phases").as_array().empty());
  // Fewer than 2 TTFB values in an arm: no total, so no shares.
  const PhaseRuns b = runs_of({{"imports", {50.0, 51.0}}});
  const PhaseRuns c = runs_of({{"imports", {60.0, 61.0}}});
  a = attribute_phases(std::vector<double>{600.0}, tc, b, c, 0.05);
  EXPECT_TRUE(std::isnan(a.total_delta_ms));
  EXPECT_TRUE(std::isnan(a.phases[0].share_of_effect));
  EXPECT_EQ(a.phases[0].delta_ms, 10.0);
}

TEST(PhaseAttribution, InvalidInputThrowsNamingArmRunAndPhase) {
  const std::vector<double> tb = {600.0, 601.0}, tc = {610.0, 611.0};
  const PhaseRuns ok = runs_of({{"imports", {50.0, 51.0, 52.0}}, {"data", {10.0, 11.0, 12.0}}});
  PhaseRuns negative = ok;
  negative.runs[2][1].second = -1.0;
  expect_invalid([&] { attribute_phases(tb, tc, negative, ok, 0.05); }, "baseline run 2 phase 'data' is -1.0");
  PhaseRuns not_finite = ok;
  not_finite.runs[1][0].second = std::numeric_limits<double>::quiet_NaN();
  expect_invalid([&] { attribute_phases(tb, tc, ok, not_finite, 0.05); }, "candidate run 1 phase 'imports'");
  not_finite.runs[1][0].second = std::numeric_limits<double>::infinity();
  expect_invalid([&] { attribute_phases(tb, tc, ok, not_finite, 0.05); }, "candidate run 1 phase 'imports'");
  PhaseRuns unnamed = ok;
  unnamed.runs[0][0].first = "";
  expect_invalid([&] { attribute_phases(tb, tc, unnamed, ok, 0.05); }, "baseline run 0 has a phase with an empty name");
  expect_invalid([&] { attribute_phases(tb, std::vector<double>{610.0, 0.0}, ok, ok, 0.05); },
                 "candidate TTFB at index 1");
  expect_invalid([&] { attribute_phases(std::vector<double>{-5.0}, tc, ok, ok, 0.05); }, "baseline TTFB at index 0");
  for (double alpha : {0.0, 1.0, -0.1, std::numeric_limits<double>::quiet_NaN()}) {
    expect_invalid([&] { attribute_phases(tb, tc, ok, ok, alpha); }, "alpha must be inside (0, 1)");
  }
  // A zero-ms phase is data, not an error.
  PhaseRuns zero = ok;
  zero.runs[0][1].second = 0.0;
  EXPECT_NO_THROW(attribute_phases(tb, tc, zero, ok, 0.05));
}

// A phase that is 0 ms in every run of both arms: every value tied, p = 1, a known shift of 0.
TEST(PhaseAttribution, AllZeroPhaseIsTiedNotAnError) {
  const PhaseRuns zeros = runs_of({{"cache_check", {0.0, 0.0, 0.0}}, {"imports", {50.0, 51.0, 52.0}}});
  const std::vector<double> tb = {600.0, 601.0, 602.0}, tc = {600.5, 601.5, 602.5};
  const PhaseAttribution a = attribute_phases(tb, tc, zeros, zeros, 0.05);
  const PhaseEffect& e = phase(a, "cache_check");
  EXPECT_EQ(e.p_value, 1.0);
  EXPECT_EQ(e.delta_ms, 0.0);
  EXPECT_EQ(e.delta_ci_low_ms, 0.0);
  EXPECT_EQ(e.delta_ci_high_ms, 0.0);
  EXPECT_TRUE(std::isnan(e.effect_pct));
  EXPECT_EQ(e.share_of_effect, 0.0);
  EXPECT_FALSE(e.significant);
}

TEST(PhaseAttribution, JsonHasEveryFieldAndNullForNaN) {
  const PhaseRuns b = runs_of({{"imports", kImportsB}, {"data", kDataB}});
  PhaseRuns c = b;
  c.runs = {b.runs.rbegin(), b.runs.rend()};
  c.runs[0].emplace_back("compile", 80.0);  // one candidate run only: untested
  const boost::json::object j = to_json(attribute_phases(kTtfbB, reversed(kTtfbB), b, c, 0.05));
  EXPECT_EQ(j.at("total_delta_ms").as_double(), 0.0);
  EXPECT_EQ(j.at("alpha").as_double(), 0.05);
  EXPECT_EQ(j.at("correction").as_string(), "holm");
  EXPECT_EQ(j.at("summary").as_string(), "no phase moved significantly; too few runs to test: compile");
  const auto& phases = j.at("phases").as_array();
  ASSERT_EQ(phases.size(), 3u);
  const auto& imports = phases[0].as_object();
  EXPECT_EQ(imports.at("name").as_string(), "imports");
  EXPECT_EQ(imports.at("n_baseline").to_number<std::size_t>(), 12u);
  EXPECT_EQ(imports.at("p_value").as_double(), 1.0);
  EXPECT_TRUE(imports.at("share_of_effect").is_null());  // total 0: no share
  EXPECT_EQ(imports.at("significant").as_bool(), false);
  for (const char* key : {"n_candidate", "median_baseline_ms", "median_candidate_ms", "delta_ms", "delta_ci_low_ms",
                          "delta_ci_high_ms", "delta_ci_confidence", "p_value_holm", "effect_pct"}) {
    EXPECT_TRUE(imports.at(key).is_number()) << key;
  }
  const auto& compile = phases[2].as_object();
  EXPECT_EQ(compile.at("n_baseline").to_number<std::size_t>(), 0u);
  EXPECT_EQ(compile.at("median_candidate_ms").as_double(), 80.0);
  for (const char* key : {"median_baseline_ms", "delta_ms", "delta_ci_low_ms", "delta_ci_high_ms",
                          "delta_ci_confidence", "p_value", "p_value_holm", "effect_pct", "share_of_effect"}) {
    EXPECT_TRUE(compile.at(key).is_null()) << key;
  }
  EXPECT_EQ(compile.size(), imports.size());
}

}  // namespace
}  // namespace ttfb::stats
