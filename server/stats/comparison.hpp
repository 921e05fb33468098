// The full comparison of two arms, as the server's analysis and `ttfb-lab compare` both report
// it: the documented outlier rule (outliers.hpp, center and MAD of both arms pooled; removals
// counted per arm), Welch's t-test on log TTFB and the verdict on the kept values, Mann-Whitney U with the Hodges-Lehmann shift alongside
// (it does not assume log-normal noise), and TOST equivalence within the equivalence margin.
// Given the job (block) of every value, and values from at least two jobs, the primary test is
// the job-blocked t-test of blocked.hpp instead of Welch's (its result fills the same fields;
// "test" says which): a level shift between jobs is then not counted as noise.
//
//   auto c = ttfb::stats::compare_arms(baseline_ms, candidate_ms, policy);
//   boost::json::object j = ttfb::stats::to_json(c);   // the fields the REST API returns
//
// Edge cases are those of the parts: invalid values throw std::invalid_argument; too few values
// give an inconclusive verdict and invalid sub-results (their numbers are null in JSON).
#pragma once

#include "server/stats/mann_whitney.hpp"
#include "server/stats/outliers.hpp"
#include "server/stats/tost.hpp"
#include "server/stats/verdict.hpp"

#include <boost/json/object.hpp>

#include <span>

namespace ttfb::stats {

struct Comparison {
  OutlierResult baseline_outliers;
  OutlierResult candidate_outliers;
  Decision decision;          // Welch on the kept values + the verdict rules
  MannWhitneyResult rank;     // on the kept values
  TostResult equivalence;     // margin = policy.equivalence_margin_pct, at policy.alpha
};

// baseline_jobs / candidate_jobs: empty, or the job of each value (same sizes; otherwise
// std::invalid_argument). Outliers are removed first, on the values alone.
Comparison compare_arms(std::span<const double> baseline_ms, std::span<const double> candidate_ms, const Policy& policy,
                        std::span<const long> baseline_jobs = {}, std::span<const long> candidate_jobs = {});

// The labels (jobs) of the values an outlier rule kept, in order: labels has the size of the
// rule's input.
std::vector<long> kept_labels(std::span<const long> labels, const OutlierResult& o);

// True when the labels of both arms together name at least two different jobs.
bool several_jobs(std::span<const long> baseline_jobs, std::span<const long> candidate_jobs);

// n per arm (after outlier removal), outliers removed per arm, medians, means, CV, effect % with
// CI, t, df, p, alpha, threshold, verdict, reason, warnings, rank test and equivalence.
boost::json::object to_json(const Comparison& c);

}  // namespace ttfb::stats
