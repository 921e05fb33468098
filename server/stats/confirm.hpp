// The confirmation rerun: after the adaptive first stage (adaptive.hpp) calls a change, an
// independent batch of runs must show it again before anyone is alerted. How many runs that batch
// gets, and when it counts as reproducing the change.
//
//   RerunPlan plan = plan_rerun(stopping_look, 30, design, 0.05);   // plan.runs_per_arm, .jobs
//   ... measure plan.jobs jobs of design.runs_per_block runs per arm (the last may be shorter) ...
//   RerunResult r = judge_rerun(b, c, b_jobs, c_jobs, design, 0.05, /*slower=*/true);
//   r.reproduced;   // the alert goes out only then; r.comparison holds the headline effect
//
// The size, by power (not by the stopping look, which gave a lucky early stop an under-powered
// rerun): enough runs per arm for probability `target_power` (0.9) of reproducing a change of
// size delta, where delta = max(threshold, the end of the first stage's interval nearer 0): the
// smallest change the first stage's data still allow, and never below what counts. With sigma the
// per-run noise the first stage measured (se sqrt(n / 2), log scale) and z the normal quantiles,
//   n = 2 sigma^2 (z_{1 - rerun_alpha} + z_{target_power})^2 / delta^2,
// rounded up to whole jobs of runs_per_block, at least one job, at most the cap (then
// `capped`; `power` says what the cap leaves, by the same normal approximation).
//
// The judgement: the rerun alone (its runs were planned before any of them was seen, so its
// effect is unbiased: this is the headline effect, the first stage's estimate is biased upwards
// by stopping early), its test blocked by job when it has two jobs or more (blocked.hpp), else
// Welch's, after the outlier rule. Reproduced when, in the direction the first stage found,
//   one-sided p < rerun_alpha   and   |effect| >= threshold.
// Under no change the chance of a reproduction is at most rerun_alpha, whatever the first stage
// did (the rerun's runs are new), so the alert false-positive rate of the two stages together is
// at most (first stage's one-sided rate) x rerun_alpha: alpha / 2 x rerun_alpha for the design's
// two-sided alpha. The interval reported is the two-sided (1 - 2 rerun_alpha) one, whose end
// nearer 0 is the one-sided bound the test uses.
//
// Edge cases: rerun_alpha not in (0, 0.5) or target_power not in (0.5, 1): std::invalid_argument.
// A stopping look with no noise estimate (not valid, or se 0) plans one job. Too few values in
// the rerun: not reproduced, the comparison says why.
#pragma once

#include "server/stats/adaptive.hpp"
#include "server/stats/comparison.hpp"

#include <boost/json/object.hpp>

#include <span>

namespace ttfb::stats {

struct RerunPlan {
  int runs_per_arm = 0;
  int jobs = 0;                 // ceil(runs_per_arm / runs_per_block)
  double sized_for_pct = 0.0;   // delta above, in percent
  double sigma_pct = 0.0;       // the per-run noise used, percent (log scale x 100)
  double power = 0.0;           // planned probability of reproducing a change of sized_for_pct
  bool capped = false;          // max_runs_per_arm bound the size
};

// max_runs_per_arm: the rerun's cap; 0 means the design's max_runs_per_arm.
RerunPlan plan_rerun(const LookSummary& stopping_look, int runs_per_arm, const AdaptiveDesign& design, double rerun_alpha,
                     int max_runs_per_arm = 0, double target_power = 0.9);

struct RerunResult {
  bool reproduced = false;
  double one_sided_p = 1.0;     // in the direction the first stage found
  Comparison comparison;        // at confidence 1 - 2 rerun_alpha
};

RerunResult judge_rerun(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                        std::span<const long> baseline_jobs, std::span<const long> candidate_jobs,
                        const AdaptiveDesign& design, double rerun_alpha, bool slower);

// {"runs_per_arm", "jobs", "sized_for_pct", "sigma_pct", "power", "capped"}
boost::json::object to_json(const RerunPlan& p);

}  // namespace ttfb::stats
