// The full comparison of two arms, as the server's analysis and `ttfb-lab compare` both report
// it: the documented outlier rule (outliers.hpp, center and MAD of both arms pooled; removals
// counted per arm), Welch's t-test on log TTFB and the verdict on the kept values, Mann-Whitney U with the Hodges-Lehmann shift alongside
// (it does not assume log-normal noise), and TOST equivalence within the workflow's threshold.
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
  TostResult equivalence;     // margin = policy.min_effect_pct, at policy.alpha
};

Comparison compare_arms(std::span<const double> baseline_ms, std::span<const double> candidate_ms, const Policy& policy);

// n per arm (after outlier removal), outliers removed per arm, medians, means, CV, effect % with
// CI, t, df, p, alpha, threshold, verdict, reason, warnings, rank test and equivalence.
boost::json::object to_json(const Comparison& c);

}  // namespace ttfb::stats
