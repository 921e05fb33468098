// Tail changes: a change that makes some start-ups much slower and leaves the rest alone. The
// outlier rule (outliers.hpp) may remove up to 20% of an arm before the t-test, so a change that
// makes 15% of start-ups 50% slower would leave the test's values untouched and be certified
// "no change". This compares what the rule sets aside: how many runs of each arm are *slow*
// outliers, and the arms' 90th percentiles.
//
//   TailComparison t = compare_tails(baseline_ms, candidate_ms, baseline_jobs, candidate_jobs);
//   t.slow_baseline, t.slow_candidate;   // runs flagged slow in each arm
//   t.p_slower;                          // exact one-sided p: more slow runs in the candidate
//   t.p90_change_pct;                    // the candidate's 90th percentile against the baseline's
//
// Method. Each run's ln(ms) is centred on the median of its job (both arms pooled), so a level
// shift between jobs is not a tail; the centred values of both arms pooled give one median and
// MAD (scaled by 1.4826), and a run is *slow* when it lies more than k = 3.5 MADs above that
// median (the outlier rule's cut, its slow side, without its cap). Within a job the arms are
// exchangeable under "no change" and the set of slow runs does not depend on which arm a run
// came from, so given each job's number of slow runs the candidate's count in that job is
// hypergeometric; the test's p is the exact tail of the sum over jobs (the convolution of the
// jobs' hypergeometric distributions: the exact conditional test of a common odds ratio of 1, as
// R's mantelhaen.test(exact = TRUE), with fisher.test for one job). It holds at any sample size
// and for any distribution of TTFB; it is discrete, so its level is at most the nominal one.
// The 90th percentiles (R's type 7) are of the centred values, their change
// 100 (exp(q90_candidate - q90_baseline) - 1) %, and, for people, of the raw ms.
//
// Edge cases: a value <= 0 or not finite: std::invalid_argument naming it. Job lists must be
// empty (one job) or as long as their arm. An arm without runs, or no job with runs of both
// arms: valid = false, p = 1. MAD = 0: nothing is slow (p = 1), as in outliers.hpp. Jobs with
// runs of one arm only carry no information and are left out of the test.
#pragma once

#include "server/stats/outliers.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace ttfb::stats {

struct TailComparison {
  bool valid = false;
  std::size_t n_baseline = 0, n_candidate = 0;
  std::size_t slow_baseline = 0, slow_candidate = 0;
  std::size_t jobs = 0;              // jobs with runs of both arms (the test's strata)
  double p_slower = 1.0;             // P(candidate slow count >= observed | each job's slow total)
  double p_faster = 1.0;             // P(<= observed | ...)
  double p90_baseline_ms = 0.0, p90_candidate_ms = 0.0;  // raw ms, type 7
  double p90_change_pct = 0.0;       // of the job-centred values
  double k = kOutlierK;
};

TailComparison compare_tails(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                             std::span<const long> baseline_jobs = {}, std::span<const long> candidate_jobs = {},
                             double k = kOutlierK);

// One job's 2x2 table for the exact test: its runs of each arm and how many of them were slow.
struct TailStratum {
  std::size_t baseline = 0, candidate = 0;            // runs
  std::size_t slow_baseline = 0, slow_candidate = 0;  // of them slow
};
// P(S >= s) and P(S <= s), S the candidate's slow runs summed over strata given each stratum's
// margins, s the observed sum. Exposed for tests (R's mantelhaen.test(exact = TRUE)).
struct ExactTail {
  double p_greater = 1.0, p_less = 1.0;
};
ExactTail stratified_exact_test(std::span<const TailStratum> strata);

// "12 of 60 candidate runs slow against 0 of 60": the counts, as reasons say them.
std::string slow_counts(const TailComparison& t);

// The fields a result shows under "tail".
boost::json::object to_json(const TailComparison& t);

}  // namespace ttfb::stats
