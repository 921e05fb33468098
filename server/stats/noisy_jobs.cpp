#include "server/stats/noisy_jobs.hpp"

#include "server/stats/descriptive.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace ttfb::stats {

std::vector<JobSpread> job_spreads(std::span<const double> baseline_ms, std::span<const long> baseline_jobs,
                                   std::span<const double> candidate_ms, std::span<const long> candidate_jobs) {
  if (baseline_ms.size() != baseline_jobs.size() || candidate_ms.size() != candidate_jobs.size())
    throw std::invalid_argument("job_spreads: job labels do not match the values");
  std::map<long, std::pair<std::vector<double>, std::vector<double>>> cells;
  for (std::size_t i = 0; i < baseline_ms.size(); ++i) cells[baseline_jobs[i]].first.push_back(std::log(baseline_ms[i]));
  for (std::size_t i = 0; i < candidate_ms.size(); ++i) cells[candidate_jobs[i]].second.push_back(std::log(candidate_ms[i]));
  std::vector<JobSpread> out;
  for (const auto& [job, arms] : cells) {
    std::vector<double> residuals;
    for (const auto* arm : {&arms.first, &arms.second}) {
      if (arm->empty()) continue;
      const double m = median(*arm);
      for (double y : *arm) residuals.push_back(std::fabs(y - m));
    }
    JobSpread s;
    s.job = job;
    s.runs = static_cast<int>(residuals.size());
    // The root mean square of the smallest 90% of the absolute residuals (at least one dropped),
    // scaled to the standard deviation for normal noise: E[z^2 | |z| < 1.645] = 0.6231.
    std::sort(residuals.begin(), residuals.end());
    const std::size_t keep = residuals.size() - std::max<std::size_t>(1, residuals.size() / 10);
    double ss = 0.0;
    for (std::size_t i = 0; i < keep; ++i) ss += residuals[i] * residuals[i];
    s.sigma = keep == 0 ? 0.0 : std::sqrt(ss / static_cast<double>(keep) / 0.6231);
    out.push_back(s);
  }
  return out;
}

std::vector<long> noisy_jobs(std::span<const double> baseline_ms, std::span<const long> baseline_jobs,
                             std::span<const double> candidate_ms, std::span<const long> candidate_jobs,
                             double usual_sigma) {
  const auto spreads = job_spreads(baseline_ms, baseline_jobs, candidate_ms, candidate_jobs);
  double usual = usual_sigma;
  if (!(usual > 0.0)) {
    std::vector<double> sigmas;
    for (const auto& s : spreads)
      if (s.runs >= kMinRunsJudged) sigmas.push_back(s.sigma);
    if (sigmas.size() < 3) return {};
    usual = median(sigmas);
  }
  std::vector<long> out;
  if (!(usual > 0.0)) return out;
  for (const auto& s : spreads)
    if (s.runs >= kMinRunsJudged && s.sigma > kNoisyJobFactor * usual) out.push_back(s.job);
  return out;
}

}  // namespace ttfb::stats
