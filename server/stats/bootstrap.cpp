#include "server/stats/bootstrap.hpp"

#include "server/stats/descriptive.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

void require_durations(std::span<const double> xs, const char* arm) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || xs[i] <= 0.0) {
      throw std::invalid_argument(std::string("ttfb::stats::bootstrap_median_ratio_ci: ") + arm +
                                  " value at index " + std::to_string(i) + " is " +
                                  std::to_string(xs[i]) + "; durations must be finite and > 0");
    }
  }
}

// Median of `buf` (reordered in place), R's definition.
double median_in_place(std::vector<double>& buf) {
  const std::size_t half = buf.size() / 2;
  std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(half), buf.end());
  const double upper = buf[half];
  if (buf.size() % 2 == 1) return upper;
  const double lower =
      *std::max_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(half));
  return (lower + upper) / 2.0;
}

double resampled_median(std::span<const double> xs, std::mt19937_64& engine,
                        std::vector<double>& buf) {
  buf.resize(xs.size());
  for (double& v : buf) v = xs[bootstrap_draw_index(engine, xs.size())];
  return median_in_place(buf);
}

double ratio_pct(double median_candidate, double median_baseline) {
  return 100.0 * (median_candidate / median_baseline - 1.0);
}

}  // namespace

std::size_t bootstrap_draw_index(std::mt19937_64& engine, std::size_t n) {
  if (n == 0) throw std::invalid_argument("ttfb::stats::bootstrap_draw_index: n must be >= 1");
  const auto un = static_cast<std::uint64_t>(n);
  const std::uint64_t threshold = (0 - un) % un;  // 2^64 mod n
  std::uint64_t r = engine();
  while (r < threshold) r = engine();
  return static_cast<std::size_t>(r % un);
}

BootstrapResult bootstrap_median_ratio_ci(std::span<const double> baseline_ms,
                                          std::span<const double> candidate_ms,
                                          double confidence, std::size_t resamples,
                                          std::uint64_t seed) {
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw std::invalid_argument("ttfb::stats::bootstrap_median_ratio_ci: confidence " +
                                std::to_string(confidence) + " must be strictly between 0 and 1");
  }
  if (resamples < kBootstrapMinResamples) {
    throw std::invalid_argument("ttfb::stats::bootstrap_median_ratio_ci: resamples " +
                                std::to_string(resamples) + " is below the minimum " +
                                std::to_string(kBootstrapMinResamples));
  }
  require_durations(baseline_ms, "baseline");
  require_durations(candidate_ms, "candidate");

  BootstrapResult r;
  r.n_baseline = baseline_ms.size();
  r.n_candidate = candidate_ms.size();
  r.resamples = resamples;
  r.seed = seed;
  r.confidence = confidence;
  if (r.n_baseline < kBootstrapMinSamplesPerArm || r.n_candidate < kBootstrapMinSamplesPerArm) {
    auto too_few = [](const char* arm, std::size_t n) {
      return std::string(arm) + " has " + std::to_string(n) +
             " sample(s); the bootstrap needs at least " +
             std::to_string(kBootstrapMinSamplesPerArm) + " per arm";
    };
    if (r.n_baseline < kBootstrapMinSamplesPerArm) r.reason = too_few("baseline", r.n_baseline);
    if (r.n_candidate < kBootstrapMinSamplesPerArm) {
      r.reason += (r.reason.empty() ? "" : "; ") + too_few("candidate", r.n_candidate);
    }
    r.estimate_pct = r.ci_low_pct = r.ci_high_pct = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  r.valid = true;
  r.estimate_pct = ratio_pct(median(candidate_ms), median(baseline_ms));

  std::mt19937_64 engine(seed);
  std::vector<double> buf;
  buf.reserve(std::max(r.n_baseline, r.n_candidate));
  std::vector<double> stats(resamples);
  for (double& s : stats) {
    const double mb = resampled_median(baseline_ms, engine, buf);  // baseline first, always
    const double mc = resampled_median(candidate_ms, engine, buf);
    s = ratio_pct(mc, mb);
  }
  const double tail = (1.0 - confidence) / 2.0;
  const double ps[2] = {tail, 1.0 - tail};
  const std::vector<double> q = quantiles(stats, ps);
  r.ci_low_pct = q[0];
  r.ci_high_pct = q[1];
  return r;
}

}  // namespace ttfb::stats
