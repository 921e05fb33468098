// Phase attribution: which start-up phase (imports, config, data, model, first_batch, ...) moved
// between the baseline and the candidate, and how much of the TTFB change it explains, e.g.
// "imports +38.2 ms (92% of the change)". Each phase gets the same rank machinery as the total
// (mann_whitney.hpp): Mann-Whitney two-sided p, Hodges-Lehmann shift and its distribution-free
// interval. Not the log t-test of welch.hpp: a phase can take 0 ms, and phases are small enough
// that additive milliseconds are what a reader wants.
//
//   ttfb::stats::PhaseRuns base, cand;   // per run: (phase, ms) in the order the worker reported
//   base.runs = {{{"imports", 50.1}, {"model", 300.2}}, {{"imports", 49.8}, {"model", 301.0}}, ...};
//   cand.runs = {{{"imports", 88.0}, {"model", 300.9}}, ...};
//   auto a = ttfb::stats::attribute_phases(baseline_ttfb_ms, candidate_ttfb_ms, base, cand, 0.05);
//   // a.total_delta_ms = 38.4; a.phases[0]: imports, delta_ms = 38.0, share_of_effect = 0.99,
//   // significant; a.summary = "imports +38.0 ms (99% of the change); other phases within noise"
//   boost::json::object j = ttfb::stats::to_json(a);
//
// Definitions:
// - total_delta_ms: hodges_lehmann_shift(baseline_ttfb_ms, candidate_ttfb_ms), candidate minus
//   baseline (positive = slower), the same estimate the comparison reports as hl_shift_ms. The
//   TTFB spans and the phase runs are separate samples: pass the TTFB values the verdict was
//   made on (e.g. after outlier removal) and the phases of whichever runs reported them; the sum
//   of the phase shifts is therefore only roughly the total (medians of sums are not sums of
//   medians either).
// - Per phase, using only the runs that reported it (n_baseline / n_candidate of them):
//   median_*_ms: median of those runs (NaN with no run); delta_ms: Hodges-Lehmann shift;
//   delta_ci_*_ms: hodges_lehmann_ci at confidence 1 - alpha (R's wilcox.test conf.int), with
//   the level it achieves in delta_ci_confidence (below 1 - alpha only for tiny arms, e.g. 0.9
//   for 3 vs 3 runs); p_value: mann_whitney_u_test's two-sided p (exact or normal by its rule;
//   the test is run on the pooled dense ranks of the values, which leaves W and p unchanged and
//   admits 0 ms); effect_pct: 100 delta_ms / median_baseline_ms; share_of_effect: delta_ms /
//   total_delta_ms as a fraction (negative: the phase moved against the total; > 1: other
//   phases moved back).
// - Multiple testing: with ~5 phases tested at alpha each, about one null experiment in four
//   (1 - 0.95^5 = 23%) would name a phase that did not move, and the summary would blame it. So
//   `significant` is p_value_holm < alpha: Holm's step-down adjustment (R's p.adjust(p,
//   "holm")) over the phases that could be tested, which holds the chance of naming any unmoved
//   phase at alpha whatever the correlation between phases, and is never less powerful than
//   Bonferroni. The price: the smallest p must be below alpha / (number of phases), so with 5
//   phases at alpha 0.05 each arm needs 5 runs (exact minimum p 2/252 = 0.0079 < 0.01). The raw
//   p_value and the interval are per phase, not adjusted: a CI can exclude 0 while the phase is
//   not flagged.
// - Order of phases: as they first appear, scanning the baseline runs in order, then the
//   candidate runs (so phases only the candidate reports come last).
// - summary: the significant phases, largest |delta_ms| first (ties keep phase order), as
//   "<name> <+delta> ms (<share>% of the change)", joined by ", " (the share part left out when
//   it is NaN); then "; other phases within noise" when some tested phase is not significant.
//   With no significant phase: "no phase moved significantly". Phases that could not be tested
//   are then named: "; too few runs to test: <name>, <name>". Empty when there are no phases.
//
// Edge cases (all defined):
// - A phase missing from some runs: the runs that have it are used. Fewer than
//   kMannWhitneyMinSamplesPerArm (2) runs with it in either arm (e.g. a phase only the candidate
//   reports): delta, CI, p, adjusted p, effect_pct and share are NaN, not significant, and it
//   does not count towards the Holm adjustment; the medians are still given for an arm with at
//   least one run.
// - A phase name repeated within one run: its durations are summed into one value for that run
//   (a phase entered twice, e.g. two import bursts); the phase's position is its first
//   appearance.
// - A phase duration that is negative, NaN or infinite, or an empty phase name: throws
//   std::invalid_argument naming the arm, run index and phase. A TTFB value that is <= 0, NaN or
//   infinite: throws naming the arm and index. Checked first, whatever the sizes.
// - alpha not strictly inside (0, 1) (NaN included): throws std::invalid_argument.
// - Fewer than 2 TTFB values in an arm: total_delta_ms is NaN, and so is every share.
// - |total_delta_ms| < kPhaseShareMinTotalMs (zero up to rounding): share_of_effect is NaN (a
//   share of nothing); the summary then leaves out the share.
// - median_baseline_ms of a phase exactly 0: effect_pct is NaN.
// - A phase with every value identical in both arms (e.g. all 0 ms): p = 1, delta 0, CI [0, 0].
// - No phases at all (every run's list empty, or no runs): phases is empty, summary is "".
// In JSON every NaN is null.
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace ttfb::stats {

// A total shift below this (ms) is zero up to rounding: 1 ns is far below the resolution of any
// start-up timing, so a share of it would only be a ratio of rounding errors.
inline constexpr double kPhaseShareMinTotalMs = 1e-6;

// One arm's phase durations, per run: (phase name, ms) in the order the run reported them.
struct PhaseRuns {
  std::vector<std::vector<std::pair<std::string, double>>> runs;
};

struct PhaseEffect {
  std::string name;
  std::size_t n_baseline = 0;   // runs of the arm that reported this phase
  std::size_t n_candidate = 0;
  double median_baseline_ms = 0.0;
  double median_candidate_ms = 0.0;
  double delta_ms = 0.0;          // Hodges-Lehmann shift, candidate - baseline
  double delta_ci_low_ms = 0.0;   // hodges_lehmann_ci at 1 - alpha
  double delta_ci_high_ms = 0.0;
  double delta_ci_confidence = 0.0;  // level the interval achieves (see the header comment)
  double p_value = 1.0;           // Mann-Whitney two-sided, unadjusted
  double p_value_holm = 1.0;      // Holm-adjusted over the tested phases
  double effect_pct = 0.0;        // 100 delta_ms / median_baseline_ms
  double share_of_effect = 0.0;   // delta_ms / total_delta_ms, a fraction
  bool significant = false;       // p_value_holm < alpha
};

struct PhaseAttribution {
  double alpha = 0.05;            // as passed in
  double total_delta_ms = 0.0;    // Hodges-Lehmann shift of the TTFB, candidate - baseline
  std::vector<PhaseEffect> phases;  // in order of first appearance, baseline first
  std::string summary;
};

// The attribution of the header comment.
PhaseAttribution attribute_phases(std::span<const double> baseline_ttfb_ms,
                                  std::span<const double> candidate_ttfb_ms,
                                  const PhaseRuns& baseline, const PhaseRuns& candidate,
                                  double alpha);

// {"total_delta_ms", "alpha", "correction": "holm", "summary", "phases": [{"name", "n_baseline",
// "n_candidate", "median_baseline_ms", "median_candidate_ms", "delta_ms", "delta_ci_low_ms",
// "delta_ci_high_ms", "delta_ci_confidence", "p_value", "p_value_holm", "effect_pct",
// "share_of_effect", "significant"}]}, NaN as null.
boost::json::object to_json(const PhaseAttribution& a);

}  // namespace ttfb::stats
