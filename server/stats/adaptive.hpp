// The adaptive design: measure a block of runs per arm, look, and decide different / same /
// unknown; unknown schedules another block until the workflow's maximum runs per arm. Used by the
// server for every pre-submit, release and bisection experiment, and simulated by bench/.
//
//   ttfb::stats::AdaptiveDesign design{.alpha = 0.01, .threshold_pct = 1.0, .margin_pct = 2.0,
//                                      .runs_per_block = 10, .max_runs_per_arm = 60};
//   ttfb::stats::LookDecision d = ttfb::stats::decide_look(baseline_ms, candidate_ms, design);
//   if (d.more_runs) { /* schedule another block of design.runs_per_block runs per arm */ }
//   else             { /* d.verdict is final: regression, improvement, no_change, inconclusive */ }
//
// Why repeated looks need care: testing at alpha after every block and stopping at the first
// p < alpha raises the false-positive rate well above alpha (with 6 looks at 0.01, about 0.03;
// bench/ shows it). We use a group-sequential design with Lan-DeMets alpha spending
// (sequential.hpp): looks are planned after runs_per_block, 2 runs_per_block, ... up to
// max_runs_per_arm runs per arm (information fraction t_j = n_j / max_runs_per_arm), look j tests
// at the nominal level alpha_j of the exact boundaries, and the chance of ever crossing a
// boundary under "no change" is alpha in total. Why this and not a sequential probability ratio
// test or an always-valid (mixture SPRT) p-value: our looks come in blocks anyway (a job is a
// block of interleaved runs on one worker), boundaries for a known look schedule are exact and
// tighter than always-valid ones, the per-look test stays the familiar Welch t-test on log TTFB
// with its CI (the number people read), and the spending function adapts to looks that come
// late or early. The default spending is Pocock-type: it spends alpha evenly, so large effects
// and clear "same" answers stop at the first looks (fewer runs on average); O'Brien-Fleming-type
// keeps nearly all alpha for the last look (more power at the very end, later stops) and is
// available per workflow.
//
// The rules at look j (nominal level a = alpha_j, CI = the (1 - a) interval of the percent change
// from the look's test, on the values kept after the outlier rule; threshold T =
// design.threshold_pct, the detection threshold in force; margin M = design.margin_pct, the
// equivalence margin). Two settings, not one: T is the smallest change the design may call, M is
// how close "the same" must be shown to be, and a change between them is neither.
//   different  p < a, the CI on one side of 0 and |effect| >= T: regression (slower) or
//              improvement (faster). Stops.
//   same       the CI lies strictly inside (-M', +M) with M' = 100 (1 - 1 / (1 + M/100)) (the
//              log-symmetric margin of tost.hpp): an equivalence test at level a / 2 per side.
//              Verdict no_change. Stops. (Needs M > 0: with M = 0 nothing is ever "same".)
//   unknown    anything else. Another block if the plan has one (more_runs), else the verdict is
//              inconclusive ("runs budget spent"). A significant change smaller than T at the
//              last look is inconclusive too, and its reason says "significant but below the
//              threshold": no_change is only ever an equivalence result.
// Stopping for "same" only lowers the chance of a false "different" (the boundaries are
// non-binding for it), and the chance of a false "same" (true effect at M) is at most about
// alpha / 2 by the same boundaries.
//
// The look's test: given the job of every run (the server's looks; a block is one job) and runs
// from two jobs or more, the job-blocked t-test of blocked.hpp, so level shifts between jobs and
// workers are not noise; otherwise (one job, or no labels) Welch's test of welch.hpp.
//
// Which look: the plan's look j is the last planned look whose runs_per_arm is at most
// n = min(baseline.size(), candidate.size()) (the raw counts, before outlier removal; removal can
// only make the test more conservative). n below the first look gives unknown with more_runs.
// n at or above max_runs_per_arm is the final look.
//
// Edge cases: alpha not in (0, 0.5], threshold or margin negative or not finite, runs_per_block < 2,
// max_runs_per_arm < runs_per_block: std::invalid_argument. Invalid samples (<= 0, NaN, inf)
// throw as welch.hpp does. Fewer than 2 kept values in an arm: unknown (more runs if any are
// left, inconclusive if not).
#pragma once

#include "server/stats/comparison.hpp"
#include "server/stats/paired.hpp"
#include "server/stats/sequential.hpp"

#include <boost/json/object.hpp>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ttfb::stats {

enum class Outcome { different, same, unknown };
std::string_view to_string(Outcome o);  // "different", "same", "unknown"

struct AdaptiveDesign {
  double alpha = 0.01;          // total two-sided false-positive rate over all looks
  double threshold_pct = 1.0;   // detection threshold: smallest change called (max of the workflow's
                                // detection floor and its calibrated threshold)
  double margin_pct = 2.0;      // equivalence margin: "same" means the CI lies inside +/- this
  int runs_per_block = 10;      // runs per arm added by each block
  int max_runs_per_arm = 60;    // budget: no block beyond this
  Spending spending = Spending::pocock;
};

// Throws std::invalid_argument with what is wrong (see the edge cases above).
void validate(const AdaptiveDesign& design);

// The plan of looks of a design (sequential.hpp's plan_looks with its parameters).
std::vector<LookPlan> plan_looks(const AdaptiveDesign& design);

struct LookDecision {
  int look = 0;            // 1-based index in the plan; 0 when n is below the first look
  int looks_planned = 0;
  int runs_per_arm = 0;    // n used to place the look: min of the two arms' raw counts
  bool final = false;      // no further look is planned
  double nominal_alpha = 0.0;  // the level this look tests at (0 when look = 0)
  Outcome outcome = Outcome::unknown;
  Verdict verdict = Verdict::inconclusive;  // inconclusive while more_runs
  bool more_runs = false;  // schedule another block
  std::string reason;      // one sentence with the numbers and the look
  Comparison comparison;   // the look's comparison (Welch at 1 - nominal_alpha, rank test, ...)
};

// baseline_jobs / candidate_jobs: empty, or the job of each run (see "The look's test").
LookDecision decide_look(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                         const AdaptiveDesign& design, std::span<const long> baseline_jobs = {},
                         std::span<const long> candidate_jobs = {});

// ---- The rules without the words, for simulations (calibration.hpp, bench/) ----------------
// A look reduced to what the rules read: Welch's result at the look's level on the values kept
// by the outlier rule. Computing it is the costly part; applying the rules for many thresholds
// to the same looks is cheap, and is exactly what decide_look does.
struct LookSummary {
  bool valid = false;
  double p_value = 1.0;
  double diff_ci_low = 0.0, diff_ci_high = 0.0;   // log scale
  double effect_pct = 0.0, ci_low_pct = 0.0, ci_high_pct = 0.0;
  double se = 0.0;                                 // of the log difference
};
// What the rules read of a test's result.
LookSummary summary_of(const WelchResult& w);
LookSummary summary_of(const PairedResult& t);
// Summarises the looks of one simulated experiment whose runs arrive in the given order: look j
// uses the first plan[j].runs_per_arm values of each arm. Both arms need at least the last
// look's runs. With job labels (the sizes of the values), each look uses the blocked test as
// decide_look does.
std::vector<LookSummary> summarize_looks(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                                         std::span<const LookPlan> plan, std::span<const long> baseline_jobs = {},
                                         std::span<const long> candidate_jobs = {});
struct RulesOutcome {
  Outcome outcome = Outcome::unknown;
  Verdict verdict = Verdict::inconclusive;
  int look = 0;           // the look that decided (the last one when none did)
  int runs_per_arm = 0;   // runs per arm the experiment used
};
// Walks the looks in order and stops at the first that is different or same, as decide_look.
RulesOutcome apply_rules(std::span<const LookSummary> looks, std::span<const LookPlan> plan, double threshold_pct,
                         double margin_pct);
// One look's outcome and verdict under the rules above (unknown is always inconclusive: whether
// another block follows is the plan's business).
RulesOutcome classify(const LookSummary& look, double nominal_alpha, double threshold_pct, double margin_pct);

// The design's side of a look: {"look", "looks_planned", "runs_per_arm", "final", "nominal_alpha",
// "outcome", "more_runs"}; the comparison is reported by to_json(Comparison).
boost::json::object to_json(const LookDecision& d);

}  // namespace ttfb::stats
