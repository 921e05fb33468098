#include "server/stats/comparison.hpp"

#include "common/json_number.hpp"
#include "server/stats/descriptive.hpp"

#include <boost/json.hpp>

#include <cmath>

namespace ttfb::stats {
namespace {
namespace json = boost::json;

json::value stat_or_null(const std::vector<double>& xs, double (*f)(std::span<const double>), std::size_t min_n) {
  return xs.size() < min_n ? json::value(nullptr) : json_number(f(xs));
}

}  // namespace

Comparison compare_arms(std::span<const double> baseline_ms, std::span<const double> candidate_ms, const Policy& policy) {
  Comparison c;
  PooledOutliers o = remove_outliers_pooled(baseline_ms, candidate_ms);
  c.baseline_outliers = std::move(o.baseline);
  c.candidate_outliers = std::move(o.candidate);
  const auto& b = c.baseline_outliers.kept;
  const auto& k = c.candidate_outliers.kept;
  c.decision = compare(b, k, policy);
  c.rank = mann_whitney_u_test(b, k);
  if (policy.min_effect_pct > 0) c.equivalence = tost_log_equivalence(b, k, policy.min_effect_pct, policy.alpha);
  return c;
}

json::object to_json(const Comparison& c) {
  const auto& b = c.baseline_outliers.kept;
  const auto& k = c.candidate_outliers.kept;
  const auto& w = c.decision.welch;
  json::array warnings;
  if (!c.decision.warning.empty()) warnings.emplace_back(c.decision.warning);
  for (const auto* o : {&c.baseline_outliers, &c.candidate_outliers}) {
    if (o->cap_exceeded) {
      warnings.emplace_back(std::string(o == &c.baseline_outliers ? "baseline" : "candidate") + ": " +
                            std::to_string(o->flagged_count) +
                            " values look like outliers, too many to remove: the arm is heavy-tailed or bimodal; "
                            "trust the rank test");
    }
  }
  json::object rank{{"test", "mann_whitney_u"}, {"method", to_string(c.rank.method)}, {"w", json_number(c.rank.w)},
                    {"p_value", json_number(c.rank.p_value)}, {"hl_shift_ms", json_number(c.rank.hl_shift)},
                    {"hl_shift_pct", json_number(c.rank.hl_shift_pct)}};
  json::value equivalence = nullptr;
  if (c.equivalence.valid) {
    equivalence = json::object{{"test", "tost_log"}, {"margin_pct", c.equivalence.margin_pct},
                               {"p_value", json_number(c.equivalence.p_value)}, {"equivalent", c.equivalence.equivalent}};
  }
  return json::object{
      {"test", "welch_log_t"},
      {"n_baseline", b.size()},
      {"n_candidate", k.size()},
      {"outliers_baseline", c.baseline_outliers.removed_count},
      {"outliers_candidate", c.candidate_outliers.removed_count},
      {"median_baseline_ms", stat_or_null(b, median, 1)},
      {"median_candidate_ms", stat_or_null(k, median, 1)},
      {"mean_baseline_ms", stat_or_null(b, mean, 1)},
      {"mean_candidate_ms", stat_or_null(k, mean, 1)},
      {"cv_baseline", stat_or_null(b, coefficient_of_variation, 2)},
      {"cv_candidate", stat_or_null(k, coefficient_of_variation, 2)},
      {"effect_pct", json_number(w.effect_pct)},
      {"ci_low_pct", json_number(w.effect_ci_low_pct)},
      {"ci_high_pct", json_number(w.effect_ci_high_pct)},
      {"confidence", c.decision.policy.confidence},
      {"t", json_number(w.t)},
      {"df", json_number(w.df)},
      {"p_value", json_number(w.p_value)},
      {"alpha", c.decision.policy.alpha},
      {"threshold_pct", c.decision.policy.min_effect_pct},
      {"verdict", std::string(to_string(c.decision.verdict))},
      {"reason", c.decision.reason},
      {"warnings", std::move(warnings)},
      {"rank_test", std::move(rank)},
      {"equivalence", std::move(equivalence)},
  };
}

}  // namespace ttfb::stats
