#include "server/stats/mann_whitney.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace ttfb::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void require_values(std::span<const double> xs, const char* fn, const char* arm, bool positive,
                    bool allow_empty = false) {
  if (xs.empty() && !allow_empty) {
    throw std::invalid_argument(std::string("ttfb::stats::") + fn + ": " + arm + " is empty");
  }
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || (positive && xs[i] <= 0.0)) {
      throw std::invalid_argument(std::string("ttfb::stats::") + fn + ": " + arm +
                                  " value at index " + std::to_string(i) + " is " +
                                  std::to_string(xs[i]) +
                                  (positive ? "; durations must be finite and > 0"
                                            : "; values must be finite"));
    }
  }
}

// Median of all candidate_i - baseline_j, after `f` is applied to every value.
template <typename F>
double hl_median(std::span<const double> b, std::span<const double> c, F f) {
  std::vector<double> fb(b.size());
  std::transform(b.begin(), b.end(), fb.begin(), f);
  std::vector<double> d;
  d.reserve(b.size() * c.size());
  for (double ci : c) {
    const double fc = f(ci);
    for (double bj : fb) d.push_back(fc - bj);
  }
  const std::size_t half = d.size() / 2;
  std::nth_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(half), d.end());
  const double upper = d[half];
  if (d.size() % 2 == 1) return upper;
  const double lower = *std::max_element(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(half));
  return (lower + upper) / 2.0;  // R's median: mean of the two middle values
}

double identity(double x) { return x; }
double natural_log(double x) { return std::log(x); }

// Exact two-sided p of W for sizes m (candidate) and n (baseline), no ties, as R's pwilcox:
// counts[u] = number of arrangements of the pooled order with U = u, built by where the largest
// value goes: a candidate value beats all n baseline values (u - n from the rest), a baseline
// value beats none. Only additions of non-negative counts, so no cancellation.
std::pair<double, double> exact_p(std::size_t m, std::size_t n, double w) {
  std::vector<std::vector<double>> prev(n + 1, std::vector<double>(1, 1.0));  // i = 0
  for (std::size_t i = 1; i <= m; ++i) {
    std::vector<std::vector<double>> cur(n + 1);
    cur[0] = std::vector<double>(1, 1.0);
    for (std::size_t j = 1; j <= n; ++j) {
      std::vector<double> f(i * j + 1, 0.0);
      const std::vector<double>& left = prev[j];   // (i - 1, j), support 0..(i-1) j
      const std::vector<double>& down = cur[j - 1];  // (i, j - 1), support 0..i (j-1)
      for (std::size_t u = 0; u < left.size(); ++u) f[u + j] += left[u];
      for (std::size_t u = 0; u < down.size(); ++u) f[u] += down[u];
      cur[j] = std::move(f);
    }
    prev = std::move(cur);
  }
  const std::vector<double>& counts = prev[n];
  double total = 0.0;
  for (double c : counts) total += c;
  const double mean = static_cast<double>(m) * static_cast<double>(n) / 2.0;
  const auto wi = static_cast<std::size_t>(w);
  double tail = 0.0;
  if (w > mean) {
    for (std::size_t u = wi; u < counts.size(); ++u) tail += counts[u];  // P(W' >= w)
  } else {
    for (std::size_t u = 0; u <= wi; ++u) tail += counts[u];  // P(W' <= w)
  }
  return {std::min(1.0, 2.0 * tail / total), std::min(1.0, 2.0 / total)};
}

}  // namespace

const char* to_string(MannWhitneyMethod m) {
  return m == MannWhitneyMethod::kExact ? "exact" : "normal";
}

double hodges_lehmann_shift(std::span<const double> baseline, std::span<const double> candidate) {
  require_values(baseline, "hodges_lehmann_shift", "baseline", false);
  require_values(candidate, "hodges_lehmann_shift", "candidate", false);
  return hl_median(baseline, candidate, identity);
}

double hodges_lehmann_shift_pct(std::span<const double> baseline_ms,
                                std::span<const double> candidate_ms) {
  require_values(baseline_ms, "hodges_lehmann_shift_pct", "baseline", true);
  require_values(candidate_ms, "hodges_lehmann_shift_pct", "candidate", true);
  return 100.0 * std::expm1(hl_median(baseline_ms, candidate_ms, natural_log));
}

MannWhitneyResult mann_whitney_u_test(std::span<const double> baseline_ms,
                                      std::span<const double> candidate_ms) {
  // Too-small arms are a result (valid = false), bad values an error, checked first.
  require_values(baseline_ms, "mann_whitney_u_test", "baseline", true, true);
  require_values(candidate_ms, "mann_whitney_u_test", "candidate", true, true);

  MannWhitneyResult r;
  r.n_baseline = baseline_ms.size();
  r.n_candidate = candidate_ms.size();
  if (r.n_baseline < kMannWhitneyMinSamplesPerArm || r.n_candidate < kMannWhitneyMinSamplesPerArm) {
    r.valid = false;
    auto too_few = [](const char* arm, std::size_t n) {
      return std::string(arm) + " has " + std::to_string(n) +
             " sample(s); the rank test needs at least " +
             std::to_string(kMannWhitneyMinSamplesPerArm) + " per arm";
    };
    if (r.n_baseline < kMannWhitneyMinSamplesPerArm) r.reason = too_few("baseline", r.n_baseline);
    if (r.n_candidate < kMannWhitneyMinSamplesPerArm) {
      r.reason += (r.reason.empty() ? "" : "; ") + too_few("candidate", r.n_candidate);
    }
    r.w = r.p_value = r.z = r.min_p_attainable = r.hl_shift = r.hl_shift_pct = kNaN;
    return r;
  }
  r.valid = true;

  // Pooled mid-ranks: candidate values first (R's x), then baseline (R's y).
  const std::size_t m = r.n_candidate;
  const std::size_t n = r.n_baseline;
  const std::size_t total = m + n;
  std::vector<std::pair<double, bool>> pooled;  // value, is_candidate
  pooled.reserve(total);
  for (double x : candidate_ms) pooled.emplace_back(x, true);
  for (double y : baseline_ms) pooled.emplace_back(y, false);
  std::sort(pooled.begin(), pooled.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0.0;
  double tie_term = 0.0;  // sum over tie groups of t^3 - t
  bool ties = false;
  for (std::size_t i = 0; i < total;) {
    std::size_t j = i + 1;
    while (j < total && pooled[j].first == pooled[i].first) ++j;
    const double t = static_cast<double>(j - i);
    const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (std::size_t k = i; k < j; ++k) {
      if (pooled[k].second) rank_sum += mid_rank;
    }
    if (j - i > 1) {
      ties = true;
      tie_term += t * t * t - t;
    }
    i = j;
  }
  const double md = static_cast<double>(m);
  const double nd = static_cast<double>(n);
  const double nn = static_cast<double>(total);
  r.w = rank_sum - md * (md + 1.0) / 2.0;

  r.hl_shift = hl_median(baseline_ms, candidate_ms, identity);
  r.hl_shift_pct = 100.0 * std::expm1(hl_median(baseline_ms, candidate_ms, natural_log));

  if (!ties && m < kMannWhitneyExactMaxN && n < kMannWhitneyExactMaxN) {
    r.method = MannWhitneyMethod::kExact;
    r.z = kNaN;
    std::tie(r.p_value, r.min_p_attainable) = exact_p(m, n, r.w);
    return r;
  }

  r.method = MannWhitneyMethod::kNormal;
  r.min_p_attainable = kNaN;
  const double sigma =
      std::sqrt(md * nd / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0))));
  if (!(sigma > 0.0)) {
    // Every value identical: see the header (R gives NaN).
    r.all_tied = true;
    r.z = 0.0;
    r.p_value = 1.0;
    return r;
  }
  const double dz = r.w - md * nd / 2.0;
  const double correction = dz > 0.0 ? 0.5 : (dz < 0.0 ? -0.5 : 0.0);
  r.z = (dz - correction) / sigma;
  const boost::math::normal std_normal;
  const double lower = boost::math::cdf(std_normal, r.z);
  const double upper = boost::math::cdf(boost::math::complement(std_normal, r.z));
  r.p_value = std::min(1.0, 2.0 * std::min(lower, upper));
  return r;
}

}  // namespace ttfb::stats
