#include "server/stats/blocked.hpp"

#include "server/stats/descriptive.hpp"

#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void require(std::span<const double> xs, std::span<const long> jobs, const char* arm) {
  if (xs.size() != jobs.size()) {
    throw std::invalid_argument(std::string("ttfb::stats::blocked_log_t_test: ") + arm + " has " +
                                std::to_string(xs.size()) + " values but " + std::to_string(jobs.size()) + " job labels");
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || xs[i] <= 0.0) {
      throw std::invalid_argument(std::string("ttfb::stats::blocked_log_t_test: ") + arm + " value at index " +
                                  std::to_string(i) + " is " + std::to_string(xs[i]) +
                                  "; durations must be finite and > 0 to take their log");
    }
  }
}

ArmSummary summarize(std::span<const double> xs) {
  ArmSummary s;
  s.n = xs.size();
  s.mean_log = s.sd_log = s.median_ms = kNaN;
  if (xs.empty()) return s;
  std::vector<double> logs(xs.begin(), xs.end());
  for (double& x : logs) x = std::log(x);
  s.median_ms = median(xs);
  s.mean_log = mean(logs);
  if (logs.size() >= 2) s.sd_log = std::sqrt(variance(logs));
  return s;
}

// One (job, arm) cell: count, mean of the logs and the sum of squares around it (two passes over
// the cell's logs, so the sum of squares does not lose digits to cancellation).
struct Cell {
  std::vector<double> logs;
  double n = 0.0, mean = 0.0, ss = 0.0;
  void finish() {
    n = static_cast<double>(logs.size());
    if (logs.empty()) return;
    double sum = 0.0;
    for (double y : logs) sum += y;
    mean = sum / n;
    for (double y : logs) ss += (y - mean) * (y - mean);
  }
};

WelchResult invalid(WelchResult r, std::string reason) {
  r.valid = false;
  r.reason = std::move(reason);
  r.diff_log = r.se = r.t = r.df = r.p_value = kNaN;
  r.diff_ci_low = r.diff_ci_high = kNaN;
  r.effect_pct = r.effect_ci_low_pct = r.effect_ci_high_pct = kNaN;
  return r;
}

double pct(double diff_log) { return 100.0 * std::expm1(diff_log); }

}  // namespace

WelchResult blocked_log_t_test(std::span<const double> baseline_ms, std::span<const long> baseline_jobs,
                               std::span<const double> candidate_ms, std::span<const long> candidate_jobs,
                               double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw std::invalid_argument("ttfb::stats::blocked_log_t_test: confidence " + std::to_string(confidence) +
                                " must be strictly between 0 and 1");
  }
  require(baseline_ms, baseline_jobs, "baseline");
  require(candidate_ms, candidate_jobs, "candidate");

  WelchResult r;
  r.confidence = confidence;
  r.baseline = summarize(baseline_ms);
  r.candidate = summarize(candidate_ms);

  std::map<long, std::pair<Cell, Cell>> jobs;  // job -> (baseline cell, candidate cell)
  for (std::size_t i = 0; i < baseline_ms.size(); ++i) jobs[baseline_jobs[i]].first.logs.push_back(std::log(baseline_ms[i]));
  for (std::size_t i = 0; i < candidate_ms.size(); ++i) jobs[candidate_jobs[i]].second.logs.push_back(std::log(candidate_ms[i]));
  r.blocks = static_cast<int>(jobs.size());

  if (baseline_ms.size() < kMinSamplesPerArm || candidate_ms.size() < kMinSamplesPerArm) {
    const bool b_short = baseline_ms.size() < kMinSamplesPerArm;
    return invalid(r, std::string(b_short ? "baseline" : "candidate") + " has " +
                          std::to_string(b_short ? baseline_ms.size() : candidate_ms.size()) +
                          " sample(s); the t-test needs at least " + std::to_string(kMinSamplesPerArm) + " per arm");
  }
  const double total = static_cast<double>(baseline_ms.size() + candidate_ms.size());
  const double df = total - static_cast<double>(jobs.size()) - 1.0;

  double weight = 0.0, weighted_diff = 0.0, within = 0.0;
  for (auto& [job, cells] : jobs) {
    cells.first.finish();
    cells.second.finish();
    within += cells.first.ss + cells.second.ss;
    if (cells.first.n > 0 && cells.second.n > 0) {
      const double w = cells.first.n * cells.second.n / (cells.first.n + cells.second.n);
      weight += w;
      weighted_diff += w * (cells.second.mean - cells.first.mean);
    }
  }
  if (weight == 0.0) return invalid(r, "no job measured both arms, so no difference can be taken within a job");
  if (df < 1.0) {
    return invalid(r, std::to_string(static_cast<long>(total)) + " runs in " + std::to_string(jobs.size()) +
                          " jobs leave no degree of freedom for the noise (at least jobs + 2 runs are needed)");
  }
  r.valid = true;
  r.diff_log = weighted_diff / weight;
  double interaction = 0.0;
  for (const auto& [job, cells] : jobs) {
    if (cells.first.n > 0 && cells.second.n > 0) {
      const double w = cells.first.n * cells.second.n / (cells.first.n + cells.second.n);
      const double d = cells.second.mean - cells.first.mean - r.diff_log;
      interaction += w * d * d;
    }
  }
  r.df = df;
  r.effect_pct = pct(r.diff_log);
  const double rss = within + interaction;
  if (rss == 0.0) {
    r.both_arms_constant = true;
    r.se = 0.0;
    r.t = r.diff_log == 0.0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), r.diff_log);
    r.p_value = r.diff_log == 0.0 ? 1.0 : 0.0;
    r.diff_ci_low = r.diff_ci_high = r.diff_log;
    r.effect_ci_low_pct = r.effect_ci_high_pct = r.effect_pct;
    return r;
  }
  r.se = std::sqrt(rss / df / weight);
  r.t = r.diff_log / r.se;
  const boost::math::students_t dist(df);
  r.p_value = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t))));
  const double q = boost::math::quantile(boost::math::complement(dist, (1.0 - confidence) / 2.0));
  r.diff_ci_low = r.diff_log - q * r.se;
  r.diff_ci_high = r.diff_log + q * r.se;
  r.effect_ci_low_pct = pct(r.diff_ci_low);
  r.effect_ci_high_pct = pct(r.diff_ci_high);
  return r;
}

}  // namespace ttfb::stats
