#include "server/stats/comparison.hpp"

#include "common/json_number.hpp"
#include "server/stats/blocked.hpp"
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

// The job labels of the values an outlier rule kept.
std::vector<long> kept_labels(std::span<const long> jobs, const OutlierResult& o) {
  std::vector<long> out;
  out.reserve(jobs.size() - o.removed_count);
  std::size_t r = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (r < o.removed_indices.size() && o.removed_indices[r] == i) {
      ++r;
      continue;
    }
    out.push_back(jobs[i]);
  }
  return out;
}

bool several_jobs(std::span<const long> a, std::span<const long> b) {
  if (a.empty() && b.empty()) return false;
  const long first = a.empty() ? b.front() : a.front();
  for (long j : a) if (j != first) return true;
  for (long j : b) if (j != first) return true;
  return false;
}

Comparison compare_arms(std::span<const double> baseline_ms, std::span<const double> candidate_ms, const Policy& policy,
                        std::span<const long> baseline_jobs, std::span<const long> candidate_jobs) {
  const bool labelled = !baseline_jobs.empty() || !candidate_jobs.empty();
  if (labelled && (baseline_jobs.size() != baseline_ms.size() || candidate_jobs.size() != candidate_ms.size())) {
    throw std::invalid_argument("compare_arms: " + std::to_string(baseline_jobs.size()) + " and " +
                                std::to_string(candidate_jobs.size()) + " job labels for " +
                                std::to_string(baseline_ms.size()) + " and " + std::to_string(candidate_ms.size()) +
                                " values");
  }
  Comparison c;
  PooledOutliers o = remove_outliers_pooled(baseline_ms, candidate_ms);
  c.baseline_outliers = std::move(o.baseline);
  c.candidate_outliers = std::move(o.candidate);
  const auto& b = c.baseline_outliers.kept;
  const auto& k = c.candidate_outliers.kept;
  if (labelled && several_jobs(baseline_jobs, candidate_jobs)) {
    const auto bj = kept_labels(baseline_jobs, c.baseline_outliers);
    const auto kj = kept_labels(candidate_jobs, c.candidate_outliers);
    c.decision = decide(blocked_log_t_test(b, bj, k, kj, policy.confidence), policy);
  } else {
    c.decision = compare(b, k, policy);
  }
  c.rank = mann_whitney_u_test(b, k);
  if (policy.equivalence_margin_pct > 0)
    c.equivalence = tost_log_equivalence(b, k, policy.equivalence_margin_pct, policy.alpha);
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
      {"test", w.blocks > 0 ? "blocked_log_t" : "welch_log_t"},
      {"blocks", w.blocks},
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
      {"equivalence_margin_pct", c.decision.policy.equivalence_margin_pct},
      {"verdict", std::string(to_string(c.decision.verdict))},
      {"reason", c.decision.reason},
      {"warnings", std::move(warnings)},
      {"rank_test", std::move(rank)},
      {"equivalence", std::move(equivalence)},
  };
}

}  // namespace ttfb::stats
