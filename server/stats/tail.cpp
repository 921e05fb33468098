#include "server/stats/tail.hpp"

#include "common/json_number.hpp"
#include "server/stats/descriptive.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace ttfb::stats {
namespace {

void check_values(std::span<const double> xs, const char* arm) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!(xs[i] > 0.0) || !std::isfinite(xs[i]))
      throw std::invalid_argument(std::string("compare_tails: ") + arm + " value " + std::to_string(i) +
                                  " is not a positive finite number");
  }
}

// ln of the hypergeometric pmf: x of the `drawn` candidate runs slow, with `slow` slow of `total`.
double log_hypergeometric(std::size_t x, std::size_t total, std::size_t slow, std::size_t drawn) {
  auto log_choose = [](double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); };
  return log_choose(static_cast<double>(slow), static_cast<double>(x)) +
         log_choose(static_cast<double>(total - slow), static_cast<double>(drawn - x)) -
         log_choose(static_cast<double>(total), static_cast<double>(drawn));
}

}  // namespace

ExactTail stratified_exact_test(std::span<const TailStratum> strata) {
  // The distribution of the candidate's slow count, stratum by stratum: dist[s] = P(S = s).
  std::vector<double> dist{1.0};
  std::size_t observed = 0;
  for (const auto& st : strata) {
    const std::size_t total = st.baseline + st.candidate;
    const std::size_t slow = st.slow_baseline + st.slow_candidate;
    if (st.slow_baseline > st.baseline || st.slow_candidate > st.candidate)
      throw std::invalid_argument("stratified_exact_test: more slow runs than runs in a stratum");
    observed += st.slow_candidate;
    if (total == 0 || slow == 0 || slow == total || st.baseline == 0 || st.candidate == 0) {
      // The stratum's count is fixed by its margins: it shifts S and adds no spread.
      std::vector<double> shifted(dist.size() + st.slow_candidate, 0.0);
      std::copy(dist.begin(), dist.end(), shifted.begin() + static_cast<std::ptrdiff_t>(st.slow_candidate));
      dist = std::move(shifted);
      continue;
    }
    const std::size_t lo = slow > st.baseline ? slow - st.baseline : 0;
    const std::size_t hi = std::min(slow, st.candidate);
    std::vector<double> pmf(hi + 1, 0.0);
    for (std::size_t x = lo; x <= hi; ++x) pmf[x] = std::exp(log_hypergeometric(x, total, slow, st.candidate));
    std::vector<double> next(dist.size() + hi, 0.0);
    for (std::size_t s = 0; s < dist.size(); ++s) {
      if (dist[s] == 0.0) continue;
      for (std::size_t x = lo; x <= hi; ++x) next[s + x] += dist[s] * pmf[x];
    }
    dist = std::move(next);
  }
  ExactTail out;
  double greater = 0.0, less = 0.0;
  for (std::size_t s = 0; s < dist.size(); ++s) {
    if (s >= observed) greater += dist[s];
    if (s <= observed) less += dist[s];
  }
  out.p_greater = std::min(1.0, greater);
  out.p_less = std::min(1.0, less);
  return out;
}

TailComparison compare_tails(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                             std::span<const long> baseline_jobs, std::span<const long> candidate_jobs, double k) {
  check_values(baseline_ms, "baseline");
  check_values(candidate_ms, "candidate");
  if (!(k > 0.0) || !std::isfinite(k)) throw std::invalid_argument("compare_tails: k must be a positive number");
  if ((!baseline_jobs.empty() && baseline_jobs.size() != baseline_ms.size()) ||
      (!candidate_jobs.empty() && candidate_jobs.size() != candidate_ms.size()) ||
      (baseline_jobs.empty() != candidate_jobs.empty()))
    throw std::invalid_argument("compare_tails: the job lists do not match the runs");
  TailComparison t;
  t.k = k;
  t.n_baseline = baseline_ms.size();
  t.n_candidate = candidate_ms.size();
  if (baseline_ms.empty() || candidate_ms.empty()) return t;
  auto job_b = [&](std::size_t i) { return baseline_jobs.empty() ? 0L : baseline_jobs[i]; };
  auto job_c = [&](std::size_t i) { return candidate_jobs.empty() ? 0L : candidate_jobs[i]; };

  // Centre each run on its job's median (both arms pooled).
  std::map<long, std::vector<double>> by_job;
  for (std::size_t i = 0; i < baseline_ms.size(); ++i) by_job[job_b(i)].push_back(std::log(baseline_ms[i]));
  for (std::size_t i = 0; i < candidate_ms.size(); ++i) by_job[job_c(i)].push_back(std::log(candidate_ms[i]));
  std::map<long, double> centre;
  for (const auto& [job, xs] : by_job) centre[job] = median(xs);
  std::vector<double> cb, cc, pooled;
  for (std::size_t i = 0; i < baseline_ms.size(); ++i) cb.push_back(std::log(baseline_ms[i]) - centre[job_b(i)]);
  for (std::size_t i = 0; i < candidate_ms.size(); ++i) cc.push_back(std::log(candidate_ms[i]) - centre[job_c(i)]);
  pooled = cb;
  pooled.insert(pooled.end(), cc.begin(), cc.end());
  const double m = median(pooled);
  const double spread = mad(pooled);
  t.p90_baseline_ms = quantile(baseline_ms, 0.9);
  t.p90_candidate_ms = quantile(candidate_ms, 0.9);
  t.p90_change_pct = 100.0 * std::expm1(quantile(cc, 0.9) - quantile(cb, 0.9));

  std::map<long, TailStratum> strata;
  const bool any_spread = spread > 0.0;
  for (std::size_t i = 0; i < cb.size(); ++i) {
    auto& st = strata[job_b(i)];
    ++st.baseline;
    if (any_spread && cb[i] - m > k * spread) ++st.slow_baseline;
  }
  for (std::size_t i = 0; i < cc.size(); ++i) {
    auto& st = strata[job_c(i)];
    ++st.candidate;
    if (any_spread && cc[i] - m > k * spread) ++st.slow_candidate;
  }
  std::vector<TailStratum> both;
  for (const auto& [job, st] : strata) {
    t.slow_baseline += st.slow_baseline;
    t.slow_candidate += st.slow_candidate;
    if (st.baseline > 0 && st.candidate > 0) both.push_back(st);
  }
  t.jobs = both.size();
  if (both.empty()) return t;
  t.valid = true;
  const ExactTail e = stratified_exact_test(both);
  t.p_slower = e.p_greater;
  t.p_faster = e.p_less;
  return t;
}

std::string slow_counts(const TailComparison& t) {
  return std::to_string(t.slow_candidate) + " of " + std::to_string(t.n_candidate) + " candidate runs slow against " +
         std::to_string(t.slow_baseline) + " of " + std::to_string(t.n_baseline);
}

boost::json::object to_json(const TailComparison& t) {
  return boost::json::object{{"test", "slow_outliers_exact"},
                             {"slow_baseline", t.slow_baseline},
                             {"slow_candidate", t.slow_candidate},
                             {"n_baseline", t.n_baseline},
                             {"n_candidate", t.n_candidate},
                             {"jobs", t.jobs},
                             {"p_slower", json_number(t.p_slower)},
                             {"p_faster", json_number(t.p_faster)},
                             {"p90_baseline_ms", json_number(t.p90_baseline_ms)},
                             {"p90_candidate_ms", json_number(t.p90_candidate_ms)},
                             {"p90_change_pct", json_number(t.p90_change_pct)},
                             {"k", t.k}};
}

}  // namespace ttfb::stats
