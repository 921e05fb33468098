// Jobs far noisier than usual (as pyperf warns about an unstable benchmark): a job whose runs
// spread several times more than the workflow's usual is not fed into the test; the analysis
// measures another block instead (server/scheduler/analysis.cpp), so a job that overlapped
// another worker's on a shared machine (the lab's logs: 13.8% raw spread against 3.4% alone)
// costs runs, not a verdict.
//
//   std::vector<long> noisy = ttfb::stats::noisy_jobs(b, b_jobs, c, c_jobs, /*usual_sigma=*/0.035);
//
// A job's spread is the standard deviation of its log values around their (job, arm) means,
// pooled over both arms (what the blocked test calls noise, blocked.hpp; each arm around its
// median), trimmed: the root mean square of the smallest 90% of the absolute residuals, scaled to
// a standard deviation for normal noise, so a job's one or two slowdown bursts do not count as
// its spread (the median absolute deviation would do that too, but from 10 runs per arm it is
// too noisy itself: half the true spread is common). The usual
// spread is usual_sigma when given (> 0: e.g. from the workflow's calibration), else the median
// of the jobs' spreads (needs three jobs). A job is noisy when its spread is more than
// kNoisyJobFactor (2.5) times the usual. Jobs with fewer than kMinRunsJudged runs (both arms
// together) are never flagged nor counted in the median: from fewer, a spread is too noisy
// itself (with 4 runs per arm, one block in a few dozen would look 2.5 times noisier by chance).
// Returns the noisy jobs' labels, ascending. Sizes of values and labels must match
// (std::invalid_argument otherwise).
#pragma once

#include <span>
#include <vector>

namespace ttfb::stats {

inline constexpr double kNoisyJobFactor = 2.5;
inline constexpr int kMinRunsJudged = 16;

struct JobSpread {
  long job = 0;
  int runs = 0;
  double sigma = 0.0;  // robust, log scale
};

// Every job's spread, by label.
std::vector<JobSpread> job_spreads(std::span<const double> baseline_ms, std::span<const long> baseline_jobs,
                                   std::span<const double> candidate_ms, std::span<const long> candidate_jobs);

std::vector<long> noisy_jobs(std::span<const double> baseline_ms, std::span<const long> baseline_jobs,
                             std::span<const double> candidate_ms, std::span<const long> candidate_jobs,
                             double usual_sigma = 0.0);

}  // namespace ttfb::stats
