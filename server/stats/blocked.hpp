// The job-blocked t-test on log TTFB: the arm difference estimated within each job (block) and
// its standard error from what varies inside jobs only, so a level shift between jobs (another
// worker, a busier hour, a different worktree) costs the test nothing.
//
//   // Runs of two jobs; job 8 ran on a machine 12% slower than job 7.
//   std::vector<double> b = {200, 203, 198, 224, 227, 222};   std::vector<long> bj = {7, 7, 7, 8, 8, 8};
//   std::vector<double> c = {205, 207, 203, 229, 232, 228};   std::vector<long> cj = {7, 7, 7, 8, 8, 8};
//   ttfb::stats::WelchResult r = ttfb::stats::blocked_log_t_test(b, bj, c, cj, 0.95);
//   r.effect_pct;   // about +2.2: the shift between jobs is not in it, nor in r.se
//   r.blocks;       // 2
//
// The model is the additive two-way one, fitted by least squares on y = ln(ms):
//   y = job level + delta [candidate] + e,   e ~ N(0, sigma^2) independent,
// exactly what R fits with lm(log(ms) ~ factor(job) + arm) (tests/data/stats/
// make_reference_blocked.R checks it to 1e-9). In closed form, with d_j the difference of the
// candidate's and the baseline's mean log in job j and w_j = n_bj n_cj / (n_bj + n_cj):
//   delta = sum_j w_j d_j / W,  W = sum_j w_j     (a job with one arm only has w_j = 0)
//   RSS   = within-(job, arm) sum of squares + sum_j w_j (d_j - delta)^2
//   df    = N - J - 1,  sigma^2 = RSS / df,  se = sigma / sqrt(W)
// and the t, p (two-sided) and CI of delta as for any t statistic. A job-to-job difference in the
// effect itself (interaction) stays in the residual, so it widens the interval instead of being
// ignored. Why not a mixed model: with 2-10 jobs the between-job variance is barely estimable, and
// the fixed-effects estimate is what the interleaved schedule makes unbiased anyway (each job
// measures both arms, alternating); why not Welch on everything pooled: it counts the between-job
// variance as noise, which on a shared 2-core machine is most of it (issue 14's logs: 0.5-1.7%
// shifts normally, 10-15% when two workers overlap).
//
// The result is a WelchResult (welch.hpp) so the verdict rules read it unchanged: diff_log = delta,
// se, t, df, p_value, diff_ci_*, effect_* as documented there; baseline/candidate are the arms'
// summaries over all their values (so mean_log(candidate) - mean_log(baseline) need not equal
// delta); blocks = J, the number of jobs with at least one value.
//
// Edge cases: the job labels must have the sizes of their values (std::invalid_argument
// otherwise); values must be finite and > 0 (std::invalid_argument naming the arm and index, as
// Welch). Not valid (reason set, numbers NaN): fewer than 2 values in an arm, no job that
// measured both arms, or no degree of freedom left (N <= J + 1). Every residual exactly 0: se = 0
// and p is 0 or 1, as Welch's both_arms_constant.
#pragma once

#include "server/stats/welch.hpp"

#include <span>

namespace ttfb::stats {

WelchResult blocked_log_t_test(std::span<const double> baseline_ms, std::span<const long> baseline_jobs,
                               std::span<const double> candidate_ms, std::span<const long> candidate_jobs,
                               double confidence = 0.95);

}  // namespace ttfb::stats
