#include "server/stats/outliers.hpp"

#include "server/stats/descriptive.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace ttfb::stats {
namespace {

void require_parameters(double k, double max_fraction) {
  if (!(std::isfinite(k) && k > 0.0)) {
    throw std::invalid_argument("ttfb::stats::remove_outliers: k " + std::to_string(k) +
                                " must be finite and > 0");
  }
  if (!(max_fraction >= 0.0 && max_fraction < 1.0)) {
    throw std::invalid_argument("ttfb::stats::remove_outliers: max_fraction " +
                                std::to_string(max_fraction) + " must be in [0, 1)");
  }
}

std::vector<double> logs_of(std::span<const double> ttfb_ms) {
  std::vector<double> logs(ttfb_ms.size());
  for (std::size_t i = 0; i < ttfb_ms.size(); ++i) {
    if (!std::isfinite(ttfb_ms[i]) || ttfb_ms[i] <= 0.0) {
      throw std::invalid_argument("ttfb::stats::remove_outliers: value at index " +
                                  std::to_string(i) + " is " + std::to_string(ttfb_ms[i]) +
                                  "; durations must be finite and > 0");
    }
    logs[i] = std::log(ttfb_ms[i]);
  }
  return logs;
}

// Flags one arm's values against a given center and MAD (of that arm, or of both arms pooled).
OutlierResult apply_rule(std::span<const double> ttfb_ms, const std::vector<double>& logs, double center_log,
                         double mad_log, double k, double max_fraction) {
  OutlierResult r;
  r.k = k;
  r.max_fraction = max_fraction;
  r.kept.assign(ttfb_ms.begin(), ttfb_ms.end());
  r.center_log = center_log;
  r.mad_log = mad_log;
  if (ttfb_ms.empty() || std::isnan(mad_log)) return r;
  if (r.mad_log == 0.0) {
    r.mad_zero = true;
    return r;
  }
  const double limit = k * r.mad_log;
  std::vector<std::size_t> flagged;
  for (std::size_t i = 0; i < logs.size(); ++i) {
    if (std::fabs(logs[i] - r.center_log) > limit) flagged.push_back(i);
  }
  r.flagged_count = flagged.size();
  const auto cap = static_cast<std::size_t>(
      std::floor(max_fraction * static_cast<double>(ttfb_ms.size())));
  if (flagged.size() > cap) {
    r.cap_exceeded = true;
    return r;
  }
  r.removed_indices = std::move(flagged);
  r.removed_count = r.removed_indices.size();
  r.kept.clear();
  std::size_t next = 0;
  for (std::size_t i = 0; i < ttfb_ms.size(); ++i) {
    if (next < r.removed_indices.size() && r.removed_indices[next] == i) {
      ++next;
    } else {
      r.kept.push_back(ttfb_ms[i]);
    }
  }
  return r;
}

}  // namespace

OutlierResult remove_outliers(std::span<const double> ttfb_ms, double k, double max_fraction) {
  require_parameters(k, max_fraction);
  const std::vector<double> logs = logs_of(ttfb_ms);
  if (logs.empty()) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    return apply_rule(ttfb_ms, logs, nan, nan, k, max_fraction);
  }
  return apply_rule(ttfb_ms, logs, median(logs), mad(logs, kMadNormalScale), k, max_fraction);
}

PooledOutliers remove_outliers_pooled(std::span<const double> baseline_ms, std::span<const double> candidate_ms, double k,
                                      double max_fraction) {
  require_parameters(k, max_fraction);
  const std::vector<double> b = logs_of(baseline_ms), c = logs_of(candidate_ms);
  std::vector<double> all(b);
  all.insert(all.end(), c.begin(), c.end());
  PooledOutliers out;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  out.center_log = all.empty() ? nan : median(all);
  out.mad_log = all.empty() ? nan : mad(all, kMadNormalScale);
  out.baseline = apply_rule(baseline_ms, b, out.center_log, out.mad_log, k, max_fraction);
  out.candidate = apply_rule(candidate_ms, c, out.center_log, out.mad_log, k, max_fraction);
  return out;
}

}  // namespace ttfb::stats
