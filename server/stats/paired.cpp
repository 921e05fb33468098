#include "server/stats/paired.hpp"

#include <boost/math/distributions/students_t.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::stats {
namespace {

void check(std::span<const double> xs, const char* arm) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || xs[i] <= 0.0)
      throw std::invalid_argument(std::string("paired test: ") + arm + " value " + std::to_string(i) +
                                  " is not a positive finite duration");
  }
}

}  // namespace

PairedResult paired_log_t_test(std::span<const double> parent_ms, std::span<const double> commit_ms,
                               double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0))
    throw std::invalid_argument("paired test: confidence must be inside (0, 1)");
  if (parent_ms.size() != commit_ms.size())
    throw std::invalid_argument("paired test: " + std::to_string(parent_ms.size()) + " parent runs but " +
                                std::to_string(commit_ms.size()) + " commit runs (pairs need both)");
  check(parent_ms, "parent");
  check(commit_ms, "commit");
  PairedResult r;
  r.confidence = confidence;
  r.n = parent_ms.size();
  if (r.n < 2) {
    r.reason = "a paired test needs at least 2 pairs, got " + std::to_string(r.n);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    r.diff_log = r.sd_log = r.se = r.t = r.df = r.p_value = r.diff_ci_low = r.diff_ci_high = nan;
    r.effect_pct = r.effect_ci_low_pct = r.effect_ci_high_pct = nan;
    return r;
  }
  std::vector<double> d;
  d.reserve(r.n);
  for (std::size_t i = 0; i < r.n; ++i) d.push_back(std::log(commit_ms[i]) - std::log(parent_ms[i]));
  double mean = 0.0;
  for (double x : d) mean += x;
  mean /= static_cast<double>(r.n);
  double ss = 0.0;
  for (double x : d) ss += (x - mean) * (x - mean);
  r.valid = true;
  r.diff_log = mean;
  r.df = static_cast<double>(r.n - 1);
  r.sd_log = std::sqrt(ss / r.df);
  r.se = r.sd_log / std::sqrt(static_cast<double>(r.n));
  if (r.se == 0.0) {
    r.t = mean == 0.0 ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), mean);
    r.p_value = mean == 0.0 ? 1.0 : 0.0;
    r.diff_ci_low = r.diff_ci_high = mean;
  } else {
    const boost::math::students_t dist(r.df);
    r.t = mean / r.se;
    r.p_value = 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t)));
    const double q = boost::math::quantile(boost::math::complement(dist, (1.0 - confidence) / 2.0));
    r.diff_ci_low = mean - q * r.se;
    r.diff_ci_high = mean + q * r.se;
  }
  r.effect_pct = 100.0 * std::expm1(r.diff_log);
  r.effect_ci_low_pct = 100.0 * std::expm1(r.diff_ci_low);
  r.effect_ci_high_pct = 100.0 * std::expm1(r.diff_ci_high);
  return r;
}

}  // namespace ttfb::stats
