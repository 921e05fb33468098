#include "server/stats/tost.hpp"

#include "server/stats/welch.hpp"

#include <boost/math/distributions/students_t.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace ttfb::stats {
namespace {

void require_durations(std::span<const double> xs, const char* arm) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || xs[i] <= 0.0) {
      throw std::invalid_argument(std::string("ttfb::stats::tost_log_equivalence: ") + arm +
                                  " value at index " + std::to_string(i) + " is " +
                                  std::to_string(xs[i]) + "; durations must be finite and > 0");
    }
  }
}

}  // namespace

TostResult tost_log_equivalence(std::span<const double> baseline_ms,
                                std::span<const double> candidate_ms, double margin_pct,
                                double alpha) {
  if (!(std::isfinite(margin_pct) && margin_pct > 0.0)) {
    throw std::invalid_argument("ttfb::stats::tost_log_equivalence: margin_pct " +
                                std::to_string(margin_pct) + " must be finite and > 0");
  }
  if (!(alpha > 0.0 && alpha < 0.5)) {
    throw std::invalid_argument("ttfb::stats::tost_log_equivalence: alpha " +
                                std::to_string(alpha) + " must be strictly between 0 and 0.5");
  }
  require_durations(baseline_ms, "baseline");
  require_durations(candidate_ms, "candidate");

  TostResult r;
  r.n_baseline = baseline_ms.size();
  r.n_candidate = candidate_ms.size();
  r.margin_pct = margin_pct;
  r.alpha = alpha;
  r.upper_bound_log = std::log1p(margin_pct / 100.0);
  r.lower_bound_log = -r.upper_bound_log;

  // Welch at confidence 1 - 2 alpha gives d, se, df and exactly the TOST interval.
  const WelchResult w = welch_log_t_test(baseline_ms, candidate_ms, 1.0 - 2.0 * alpha);
  if (!w.valid) {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    r.valid = false;
    r.reason = w.reason;
    r.diff_log = r.se = r.df = r.t_lower = r.t_upper = kNaN;
    r.p_lower = r.p_upper = r.p_value = kNaN;
    r.effect_pct = r.ci_low_pct = r.ci_high_pct = kNaN;
    return r;
  }
  r.valid = true;
  r.diff_log = w.diff_log;
  r.se = w.se;
  r.df = w.df;
  r.effect_pct = w.effect_pct;
  r.ci_low_pct = w.effect_ci_low_pct;
  r.ci_high_pct = w.effect_ci_high_pct;

  if (w.both_arms_constant) {
    constexpr double kInf = std::numeric_limits<double>::infinity();
    r.t_lower = r.diff_log > r.lower_bound_log ? kInf : -kInf;
    r.t_upper = r.diff_log < r.upper_bound_log ? -kInf : kInf;
    r.p_lower = r.diff_log > r.lower_bound_log ? 0.0 : 1.0;
    r.p_upper = r.diff_log < r.upper_bound_log ? 0.0 : 1.0;
  } else {
    const boost::math::students_t dist(r.df);
    r.t_lower = (r.diff_log - r.lower_bound_log) / r.se;
    r.t_upper = (r.diff_log - r.upper_bound_log) / r.se;
    r.p_lower = boost::math::cdf(boost::math::complement(dist, r.t_lower));
    r.p_upper = boost::math::cdf(dist, r.t_upper);
  }
  r.p_value = std::fmax(r.p_lower, r.p_upper);
  r.equivalent = r.p_value < alpha;
  return r;
}

}  // namespace ttfb::stats
