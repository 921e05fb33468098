#include "server/stats/welch.hpp"

#include "server/stats/descriptive.hpp"

#include <boost/math/distributions/students_t.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void require_durations(std::span<const double> xs, const char* arm) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    if (!std::isfinite(x) || x <= 0.0) {
      throw std::invalid_argument(std::string("ttfb::stats::welch_log_t_test: ") + arm +
                                  " value at index " + std::to_string(i) + " is " +
                                  std::to_string(x) +
                                  "; durations must be finite and > 0 to take their log");
    }
  }
}

// What the test needs from one arm, plus whether every value is the same.
struct ArmMoments {
  ArmSummary summary;
  double var_log = kNaN;
  bool constant = false;
};

ArmMoments summarize(std::span<const double> xs_ms, std::vector<double>& scratch) {
  ArmMoments m;
  m.summary.n = xs_ms.size();
  m.summary.mean_log = kNaN;
  m.summary.sd_log = kNaN;
  m.summary.median_ms = kNaN;
  if (xs_ms.empty()) return m;

  m.summary.median_ms = median(xs_ms);
  scratch.assign(xs_ms.begin(), xs_ms.end());
  for (double& x : scratch) x = std::log(x);
  m.summary.mean_log = mean(scratch);
  if (xs_ms.size() >= 2) {
    m.constant = std::all_of(xs_ms.begin(), xs_ms.end(),
                             [first = xs_ms.front()](double x) { return x == first; });
    m.var_log = m.constant ? 0.0 : variance(scratch);
    m.summary.sd_log = std::sqrt(m.var_log);
  }
  return m;
}

std::string too_few(const char* arm, std::size_t n) {
  return std::string(arm) + " has " + std::to_string(n) + " sample(s); the t-test needs at least " +
         std::to_string(kMinSamplesPerArm) + " per arm";
}

double pct(double diff_log) { return 100.0 * std::expm1(diff_log); }

}  // namespace

WelchResult welch_log_t_test(std::span<const double> baseline_ms,
                             std::span<const double> candidate_ms, double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw std::invalid_argument("ttfb::stats::welch_log_t_test: confidence " +
                                std::to_string(confidence) + " must be strictly between 0 and 1");
  }
  require_durations(baseline_ms, "baseline");
  require_durations(candidate_ms, "candidate");

  WelchResult r;
  r.confidence = confidence;
  std::vector<double> scratch;
  scratch.reserve(std::max(baseline_ms.size(), candidate_ms.size()));
  const ArmMoments b = summarize(baseline_ms, scratch);
  const ArmMoments c = summarize(candidate_ms, scratch);
  r.baseline = b.summary;
  r.candidate = c.summary;

  if (b.summary.n < kMinSamplesPerArm || c.summary.n < kMinSamplesPerArm) {
    r.valid = false;
    r.reason = b.summary.n < kMinSamplesPerArm ? too_few("baseline", b.summary.n)
                                                : too_few("candidate", c.summary.n);
    if (b.summary.n < kMinSamplesPerArm && c.summary.n < kMinSamplesPerArm) {
      r.reason += "; " + too_few("candidate", c.summary.n);
    }
    r.diff_log = r.se = r.t = r.df = r.p_value = kNaN;
    r.diff_ci_low = r.diff_ci_high = kNaN;
    r.effect_pct = r.effect_ci_low_pct = r.effect_ci_high_pct = kNaN;
    return r;
  }

  r.valid = true;
  const double nb = static_cast<double>(b.summary.n);
  const double nc = static_cast<double>(c.summary.n);
  r.diff_log = c.summary.mean_log - b.summary.mean_log;
  r.effect_pct = pct(r.diff_log);

  if (b.constant && c.constant) {
    // No variance anywhere: the data decide with certainty, see the header.
    r.both_arms_constant = true;
    r.se = 0.0;
    r.df = nb + nc - 2.0;
    if (r.diff_log == 0.0) {
      r.t = 0.0;
      r.p_value = 1.0;
    } else {
      r.t = std::copysign(std::numeric_limits<double>::infinity(), r.diff_log);
      r.p_value = 0.0;
    }
    r.diff_ci_low = r.diff_ci_high = r.diff_log;
    r.effect_ci_low_pct = r.effect_ci_high_pct = r.effect_pct;
    return r;
  }

  // Welch: each arm's squared standard error, and the Satterthwaite approximation of the df.
  const double vb = b.var_log / nb;
  const double vc = c.var_log / nc;
  r.se = std::sqrt(vb + vc);
  r.t = r.diff_log / r.se;
  r.df = (vb + vc) * (vb + vc) / (vb * vb / (nb - 1.0) + vc * vc / (nc - 1.0));

  const boost::math::students_t dist(r.df);
  // The upper tail via complement() keeps tiny p-values accurate (no 1 - cdf cancellation).
  r.p_value = std::min(1.0, 2.0 * boost::math::cdf(boost::math::complement(dist, std::fabs(r.t))));
  const double q = boost::math::quantile(boost::math::complement(dist, (1.0 - confidence) / 2.0));
  r.diff_ci_low = r.diff_log - q * r.se;
  r.diff_ci_high = r.diff_log + q * r.se;
  r.effect_ci_low_pct = pct(r.diff_ci_low);
  r.effect_ci_high_pct = pct(r.diff_ci_high);
  return r;
}

}  // namespace ttfb::stats
