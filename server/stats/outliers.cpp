#include "server/stats/outliers.hpp"

#include "server/stats/descriptive.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace ttfb::stats {

OutlierResult remove_outliers(std::span<const double> ttfb_ms, double k, double max_fraction) {
  if (!(std::isfinite(k) && k > 0.0)) {
    throw std::invalid_argument("ttfb::stats::remove_outliers: k " + std::to_string(k) +
                                " must be finite and > 0");
  }
  if (!(max_fraction >= 0.0 && max_fraction < 1.0)) {
    throw std::invalid_argument("ttfb::stats::remove_outliers: max_fraction " +
                                std::to_string(max_fraction) + " must be in [0, 1)");
  }
  std::vector<double> logs(ttfb_ms.size());
  for (std::size_t i = 0; i < ttfb_ms.size(); ++i) {
    if (!std::isfinite(ttfb_ms[i]) || ttfb_ms[i] <= 0.0) {
      throw std::invalid_argument("ttfb::stats::remove_outliers: value at index " +
                                  std::to_string(i) + " is " + std::to_string(ttfb_ms[i]) +
                                  "; durations must be finite and > 0");
    }
    logs[i] = std::log(ttfb_ms[i]);
  }

  OutlierResult r;
  r.k = k;
  r.max_fraction = max_fraction;
  r.kept.assign(ttfb_ms.begin(), ttfb_ms.end());
  if (ttfb_ms.empty()) {
    r.center_log = r.mad_log = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  r.center_log = median(logs);
  r.mad_log = mad(logs, kMadNormalScale);
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

}  // namespace ttfb::stats
