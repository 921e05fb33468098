#include "server/stats/descriptive.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ttfb::stats {
namespace {

// Throws unless xs holds at least `min_n` values, all finite.
void require_sample(std::span<const double> xs, std::size_t min_n, const char* fn) {
  if (xs.size() < min_n) {
    throw std::invalid_argument(std::string("ttfb::stats::") + fn + ": needs at least " +
                                std::to_string(min_n) + " value(s), got " +
                                std::to_string(xs.size()));
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i])) {
      throw std::invalid_argument(std::string("ttfb::stats::") + fn + ": value at index " +
                                  std::to_string(i) + " is " + std::to_string(xs[i]) +
                                  "; every value must be finite");
    }
  }
}

// R's mean.default: a long double sum, then one correction pass for the rounding of the first
// (x - mean sums to the residual error). Keeps the reference comparisons within an ulp or two.
double accurate_mean(std::span<const double> xs) {
  long double sum = 0.0L;
  for (double x : xs) sum += x;
  long double m = sum / static_cast<long double>(xs.size());
  long double residual = 0.0L;
  for (double x : xs) residual += static_cast<long double>(x) - m;
  m += residual / static_cast<long double>(xs.size());
  return static_cast<double>(m);
}

// The values of 0-based ranks r and r + 1 (r + 1 < size) of a scratch buffer that may be
// reordered; with `one`, rank r twice. Exact, whatever the path: nth_element at the end, as
// before. From kBucketSelectMinN values on, the buffer is first narrowed by bucketing: 4096
// equal-width buckets between the minimum and maximum, one pass counting, one copying out the
// buckets that hold the ranks (about a thousand values for TTFB-like data, on log scale and for
// absolute deviations too), repeated while that still shrinks them. The bucket index is a
// monotone function of the value, so every value in a lower bucket is <= every value in a
// higher one and the ranks carry over. Three cheap passes instead of nth_element over
// everything: ~3x faster at 10^6 values, and one comparison (compare_arms) takes several
// medians and MADs of 500,000 to 10^6 values.
std::pair<double, double> adjacent_order_statistics(std::vector<double>& v, std::size_t r,
                                                    bool one) {
  constexpr std::size_t kBucketSelectMinN = 16384;  // below, nth_element is as fast
  constexpr std::int64_t kBuckets = 4096;
  std::span<double> live(v);
  std::vector<double> narrowed, spare;
  for (int round = 0; round < 4 && live.size() >= kBucketSelectMinN; ++round) {
    // Four running minima and maxima: one would make every step wait for the last.
    std::array<double, 4> lows, highs;
    lows.fill(live.front());
    highs.fill(live.front());
    const std::size_t n = live.size();
    for (std::size_t i = 0; i + 4 <= n; i += 4) {
      for (std::size_t k = 0; k < 4; ++k) {
        lows[k] = std::min(lows[k], live[i + k]);
        highs[k] = std::max(highs[k], live[i + k]);
      }
    }
    for (std::size_t i = n - n % 4; i < n; ++i) {
      lows[0] = std::min(lows[0], live[i]);
      highs[0] = std::max(highs[0], live[i]);
    }
    const double lo = *std::min_element(lows.begin(), lows.end());
    const double hi = *std::max_element(highs.begin(), highs.end());
    if (lo == hi) return {lo, lo};  // everything left is one value, both ranks included
    const double scale = static_cast<double>(kBuckets) / (hi - lo);
    if (!(std::isfinite(scale) && scale > 0.0)) break;  // a range beyond DBL_MAX
    auto bucket = [lo, scale](double x) {  // in [0, kBuckets); signed conversion is the cheap one
      return std::min<std::int64_t>(kBuckets - 1, static_cast<std::int64_t>((x - lo) * scale));
    };
    std::array<std::size_t, kBuckets> counts{};
    for (double x : live) ++counts[static_cast<std::size_t>(bucket(x))];
    const std::size_t last = one ? r : r + 1;
    std::size_t first_bucket = 0, below = 0;
    while (below + counts[first_bucket] <= r) below += counts[first_bucket++];
    std::size_t last_bucket = first_bucket, through = below + counts[first_bucket];
    while (through <= last) through += counts[++last_bucket];
    if (through - below == n) break;  // no narrower: the range is all one bucket
    spare.clear();
    spare.reserve(through - below);
    const auto from = static_cast<std::int64_t>(first_bucket);
    const auto width = static_cast<std::uint64_t>(last_bucket - first_bucket);
    for (double x : live) {
      // One unsigned comparison: `k >= from && k <= to` as two would be a coin toss per value.
      if (static_cast<std::uint64_t>(bucket(x) - from) <= width) spare.push_back(x);
    }
    narrowed.swap(spare);
    live = std::span<double>(narrowed);
    r -= below;
  }
  const auto at = live.begin() + static_cast<std::ptrdiff_t>(r);
  std::nth_element(live.begin(), at, live.end());
  const double first = *at;
  return {first, one ? first : *std::min_element(at + 1, live.end())};
}

// Median of a scratch buffer that may be reordered. Precondition: !v.empty().
double median_in_place(std::vector<double>& v) {
  const std::size_t n = v.size();
  const std::size_t half = n / 2;
  if (n % 2 == 1) return adjacent_order_statistics(v, half, true).first;
  const auto [lower, upper] = adjacent_order_statistics(v, half - 1, false);
  // R's median averages the two with mean(): long double, no overflow for huge values.
  return static_cast<double>((static_cast<long double>(lower) + upper) / 2.0L);
}

void require_probability(double p, const char* fn) {
  if (!(p >= 0.0 && p <= 1.0)) {  // also rejects NaN
    throw std::invalid_argument(std::string("ttfb::stats::") + fn + ": probability " +
                                std::to_string(p) + " is outside [0, 1]");
  }
}

// Type 7 on sorted values, written as R's quantile.default computes it (1-based index, then
// (1 - h) lo + h hi, skipped when both neighbours are equal) so results agree to the ulp.
double quantile_of_sorted(std::span<const double> sorted, double p) {
  const double index = 1.0 + static_cast<double>(sorted.size() - 1) * p;
  const double lo = std::floor(index);
  const double hi = std::ceil(index);
  const double x_lo = sorted[static_cast<std::size_t>(lo) - 1];
  const double x_hi = sorted[static_cast<std::size_t>(hi) - 1];
  if (!(index > lo) || x_hi == x_lo) return x_lo;
  const double h = index - lo;
  return (1.0 - h) * x_lo + h * x_hi;
}

}  // namespace

double mean(std::span<const double> xs) {
  require_sample(xs, 1, "mean");
  return accurate_mean(xs);
}

double variance(std::span<const double> xs) {
  require_sample(xs, 2, "variance");
  const long double m = accurate_mean(xs);  // R's var also centres on the corrected mean
  long double ss = 0.0L;
  for (double x : xs) {
    const long double d = static_cast<long double>(x) - m;
    ss += d * d;
  }
  return static_cast<double>(ss / static_cast<long double>(xs.size() - 1));
}

double stddev(std::span<const double> xs) {
  require_sample(xs, 2, "stddev");
  return std::sqrt(variance(xs));
}

double median(std::span<const double> xs) {
  require_sample(xs, 1, "median");
  std::vector<double> scratch(xs.begin(), xs.end());
  return median_in_place(scratch);
}

double mad(std::span<const double> xs, double scale) {
  require_sample(xs, 1, "mad");
  if (!(std::isfinite(scale) && scale >= 0.0)) {
    throw std::invalid_argument("ttfb::stats::mad: scale " + std::to_string(scale) +
                                " must be finite and >= 0");
  }
  std::vector<double> scratch(xs.begin(), xs.end());
  const double center = median_in_place(scratch);
  for (double& x : scratch) x = std::fabs(x - center);
  return scale * median_in_place(scratch);
}

double coefficient_of_variation(std::span<const double> xs) {
  require_sample(xs, 2, "coefficient_of_variation");
  const double m = accurate_mean(xs);
  if (m == 0.0) {
    throw std::invalid_argument(
        "ttfb::stats::coefficient_of_variation: the mean is 0, the ratio is undefined");
  }
  return std::sqrt(variance(xs)) / std::fabs(m);
}

double quantile(std::span<const double> xs, double p) {
  require_sample(xs, 1, "quantile");
  require_probability(p, "quantile");
  std::vector<double> sorted(xs.begin(), xs.end());
  std::sort(sorted.begin(), sorted.end());
  return quantile_of_sorted(sorted, p);
}

std::vector<double> quantiles(std::span<const double> xs, std::span<const double> ps) {
  require_sample(xs, 1, "quantiles");
  for (double p : ps) require_probability(p, "quantiles");
  std::vector<double> sorted(xs.begin(), xs.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> out;
  out.reserve(ps.size());
  for (double p : ps) out.push_back(quantile_of_sorted(sorted, p));
  return out;
}

}  // namespace ttfb::stats
