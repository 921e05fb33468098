// A/A calibration: how noisy is a workflow, and how large must a change be before we call it,
// so that false alarms stay within the workflow's budget (DESIGN.md §5, after Meta's AI Lab:
// "a threshold based on the standard deviation of the test and a tuned ROC").
//
//   std::vector<ttfb::stats::AaExperiment> pool = ...;   // A/A runs: the same commit in both arms
//   ttfb::stats::CalibrationSettings s;                   // design, budget, effects, seed
//   ttfb::stats::Calibration c = ttfb::stats::calibrate(pool, s);
//   c.threshold_pct;   // max(detection_floor_pct, k * sigma_aa_pct)
//
// Method (all of it seeded, so the same pool and settings give the same answer):
// 1. Null experiments, built as real ones are: max_runs_per_arm runs per arm in blocks of
//    runs_per_block, each block one simulated job drawn from one real A/A batch of the pool
//    chosen at random for it (both arms from that batch's runs together: they ran the same
//    commit), then the adaptive design (adaptive.hpp) look by look, with the looks' test blocked
//    by job as the server's. Repeated null_experiments times. Drawing within one batch per block
//    keeps its noise (its worker, its hour); choosing the batch per block gives blocks that differ
//    as jobs do, which the blocked test is there to absorb. (Drawing each arm from its own arm
//    would instead replay a batch's chance difference between its arms as if it were real, with
//    more runs than the batch had: false positives far above alpha on pure noise.)
// 2. Injected experiments: the same draws with every candidate value multiplied by
//    (1 + e / 100), for each injected effect e (default 1, 2, 5, 10 %).
// 3. sigma_aa_pct: the standard deviation, over the null experiments, of the effect (percent)
//    measured at the first look (one block of runs_per_block runs per arm): the A/A noise of one
//    block's comparison. k is therefore in units of "block standard errors".
// 4. For each k of the grid (0, 0.1, ... 4 by default) the threshold is
//    max(detection_floor_pct, k sigma_aa_pct), with the design's equivalence margin. What the
//    budget counts is alerts: a regression of the first stage that the confirmation rerun
//    (confirm.hpp) reproduces. The rerun of each simulated regression is planned as the server
//    plans it (plan_rerun on the stopping look), and its chance of reproducing is modelled from
//    its planned size and the noise the first stage measured: under no change
//    1 - Phi(max(z_{1 - rerun_alpha}, T / se_r)) (at most rerun_alpha), under a change of e
//    Phi((ln(1 + e) - max(z_{1 - rerun_alpha} se_r, T)) / se_r), T the threshold on the log
//    scale and se_r = sigma sqrt(2 / n_rerun). So a point's alert rate (`fpr`) is the mean over
//    the null experiments of [first stage regression] x that chance, and its power (`tpr`) the
//    mean over injected ones of [first stage regression] x the other. Improvements never alert
//    and do not count. `first_stage_fpr` is the share of null experiments whose first stage
//    ended different either way (what an alert rate without a rerun would be).
// 5. The target is fp_budget_per_week / tests_per_week, where tests_per_week counts
//    workflow-tests (a gate over W workflows is W of them: each can alert). k is the smallest
//    grid value whose alert rate, times a safety factor of 2 for what the model does not see
//    (kSafetyFactor), is at most the target; if none is, the largest, with budget_met = false.
// The experiments are simulated with common random numbers: every k sees the same draws, so the
// ROC curve is monotone (see adaptive.hpp: a larger threshold never adds a false positive).
//
// 6. extra_alert_rate is added to every point's alert rate (and its interval): the budget is
//    shared with the metrics the pool does not simulate.
//
// Edge cases: rerun_alpha not in (0, 0.5), extra_alert_rate negative or not finite, a negative rerun cap, an empty pool, an A/A experiment with fewer than 2 runs in an arm, a value <= 0
// or not finite, fp_budget_per_week or tests_per_week <= 0, null_experiments < 100, an
// empty or unsorted k grid, an injected effect <= -100 or not finite: std::invalid_argument
// naming the problem.
#pragma once

#include "server/stats/adaptive.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace ttfb::stats {

struct AaExperiment {
  std::vector<double> baseline, candidate;  // ms, measured runs (no warm-ups)
};

struct CalibrationSettings {
  AdaptiveDesign design;            // alpha, margin, blocks, budget of runs, spending; threshold_pct unused
  double detection_floor_pct = 1.0;  // the floor of the threshold
  double rerun_alpha = 0.05;        // one-sided level of the confirmation rerun
  int max_rerun_runs_per_arm = 0;   // the rerun's cap; 0: the design's max_runs_per_arm
  // A bound on the alert rate of what the A/A pool does not simulate, added to every point's rate:
  // the CPU-time metric's alerts (metrics.hpp), at most its alpha / 2 x rerun_alpha. 0: none.
  double extra_alert_rate = 0.0;
  int bootstrap_resamples = 20;     // of the A/A batches, for the alert rate's interval (0: none)
  double fp_budget_per_week = 1.0;
  double tests_per_week = 200.0;
  std::vector<double> injected_effects_pct = {1.0, 2.0, 5.0, 10.0};
  std::vector<double> k_grid;       // empty: 0, 0.1, ..., 4.0
  int null_experiments = 4000;      // per effect (and for the null)
  std::uint64_t seed = 20261123;
};

// The modelled alert rate must be this many times under the target (model error: job structure,
// worktrees and serial correlation the A/A pool may not show).
inline constexpr double kSafetyFactor = 2.0;

struct RocPoint {
  double k = 0.0;
  double threshold_pct = 0.0;
  double fpr = 0.0;                 // modelled alert rate under no change, per workflow-test (extra included)
  double first_stage_fpr = 0.0;     // first stage different, either way, under no change
  std::vector<double> tpr;          // per injected effect, in the settings' order
};

struct EffectPower {
  double effect_pct = 0.0;
  double power = 0.0;               // modelled share of injected experiments ending as a confirmed regression
  double mean_runs_per_arm = 0.0;   // runs the adaptive design used on them
};

struct Calibration {
  std::size_t aa_experiments = 0, samples = 0;
  double sigma_aa_pct = 0.0;
  double k = 0.0;
  double threshold_pct = 0.0;
  double target_fpr = 0.0;
  double achieved_fpr = 0.0;        // the modelled alert rate at k
  // 95% interval of the alert rate: with two A/A batches or more, the 2.5% and 97.5% quantiles of
  // the rate over bootstrap resamples of whole batches (each null_experiments / 10, at least 200,
  // experiments); with one, the Wilson interval of the first-stage regression rate times
  // rerun_alpha. Either way it contains achieved_fpr.
  double achieved_fpr_ci_low = 0.0, achieved_fpr_ci_high = 0.0;
  std::string achieved_fpr_ci_method = "binomial, one A/A batch";
  double first_stage_fpr = 0.0;     // at k
  bool budget_met = false;
  double null_mean_runs_per_arm = 0.0;   // runs the design used on null experiments at k
  std::vector<EffectPower> power;        // at the chosen k
  double smallest_effect_90_pct = -1.0;  // smallest injected effect with power >= 0.9; -1: none
  std::vector<RocPoint> roc;
  CalibrationSettings settings;
};

Calibration calibrate(std::span<const AaExperiment> pool, const CalibrationSettings& settings);

// The fields GET /api/v1/workflows/{name} shows under "calibration" (settings included).
boost::json::object to_json(const Calibration& c);

// Wilson score interval of a binomial proportion (successes of n) at 95%: {low, high}.
std::pair<double, double> wilson_interval(std::size_t successes, std::size_t n);

}  // namespace ttfb::stats
