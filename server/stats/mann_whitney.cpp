#include "server/stats/mann_whitney.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdint>
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

// The null distribution of W for sizes m (candidate) and n (baseline), no ties, as R's cwilcox:
// counts[u] = number of arrangements of the pooled order with U = u, built by where the largest
// value goes: a candidate value beats all n baseline values (u - n from the rest), a baseline
// value beats none. Only additions of non-negative counts, so no cancellation.
std::vector<double> wilcox_counts(std::size_t m, std::size_t n) {
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
  return std::move(prev[n]);
}

// Exact two-sided p of W and the smallest attainable p, from the counts above.
std::pair<double, double> exact_p(std::size_t m, std::size_t n, double w) {
  const std::vector<double> counts = wilcox_counts(m, n);
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

// True when some value occurs twice in the pooled sample (the exact method is then not used).
bool pooled_ties(std::span<const double> a, std::span<const double> b) {
  std::vector<double> pooled(a.begin(), a.end());
  pooled.insert(pooled.end(), b.begin(), b.end());
  std::sort(pooled.begin(), pooled.end());
  return std::adjacent_find(pooled.begin(), pooled.end()) != pooled.end();
}

// R's W(d) inside wilcox.test's normal-method conf.int: the continuity-corrected, tie-corrected
// z of the rank sum of candidate - d against the baseline. NaN when every value is tied.
double shifted_z(std::span<const double> baseline, std::span<const double> candidate, double d) {
  const std::size_t m = candidate.size();
  const std::size_t total = m + baseline.size();
  std::vector<std::pair<double, bool>> pooled;  // value, is_candidate
  pooled.reserve(total);
  for (double x : candidate) pooled.emplace_back(x - d, true);
  for (double y : baseline) pooled.emplace_back(y, false);
  std::sort(pooled.begin(), pooled.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0.0;
  double tie_term = 0.0;
  for (std::size_t i = 0; i < total;) {
    std::size_t j = i + 1;
    while (j < total && pooled[j].first == pooled[i].first) ++j;
    const double t = static_cast<double>(j - i);
    const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;
    for (std::size_t k = i; k < j; ++k) {
      if (pooled[k].second) rank_sum += mid_rank;
    }
    tie_term += t * t * t - t;
    i = j;
  }
  const double md = static_cast<double>(m);
  const double nd = static_cast<double>(baseline.size());
  const double nn = static_cast<double>(total);
  const double dz = rank_sum - md * (md + 1.0) / 2.0 - md * nd / 2.0;
  const double correction = dz > 0.0 ? 0.5 : (dz < 0.0 ? -0.5 : 0.0);
  const double sigma = std::sqrt(md * nd / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0))));
  return sigma > 0.0 ? (dz - correction) / sigma : kNaN;
}

// The end of the normal-method interval where shifted_z(d) - zq changes sign: R's root(zq).
// `diffs` are the distinct pairwise differences, sorted, at least two. Between two neighbouring
// differences no candidate value ties a baseline value, so the statistic is constant there and
// non-increasing in d: bisect on the midpoints for the first interval where it is <= zq; the
// jump, and so the end, is the difference on its left.
double normal_ci_end(std::span<const double> baseline, std::span<const double> candidate,
                     const std::vector<double>& diffs, double zq) {
  if (shifted_z(baseline, candidate, diffs.front()) - zq <= 0.0) return diffs.front();
  if (shifted_z(baseline, candidate, diffs.back()) - zq >= 0.0) return diffs.back();
  std::size_t lo = 0, hi = diffs.size() - 1;  // first interval k in [lo, hi) with f <= 0, else hi
  while (lo < hi) {
    const std::size_t k = lo + (hi - lo) / 2;
    const double mid = diffs[k] + (diffs[k + 1] - diffs[k]) / 2.0;
    if (shifted_z(baseline, candidate, mid) - zq <= 0.0) {
      hi = k;
    } else {
      lo = k + 1;
    }
  }
  return diffs[lo];
}

// ---- The same order statistics from the two sorted arms, without materialising the pairs ----

// Doubles mapped to unsigned integers in the same order (-inf lowest, +inf highest), so that a
// bisection over them halves the number of representable values left and ends within 64 steps.
std::uint64_t ordered_bits(double x) {
  const auto u = std::bit_cast<std::uint64_t>(x);
  return (u >> 63) != 0 ? ~u : u | (std::uint64_t{1} << 63);
}

double from_ordered_bits(std::uint64_t o) {
  return std::bit_cast<double>((o >> 63) != 0 ? o & ~(std::uint64_t{1} << 63) : ~o);
}

// A value in [a, b) halving the representable values between them; a < b.
double ordered_midpoint(double a, double b) {
  const std::uint64_t oa = ordered_bits(a);
  return from_ordered_bits(oa + (ordered_bits(b) - oa) / 2);
}

// The values sorted ascending: the same sequence as std::sort (NaN excluded; -0 before +0, which
// std::sort leaves in either order). Above a few thousand values an LSD radix sort on the
// order-preserving bits, 8 bits a pass, passes on a byte every value shares skipped (the sign and
// most of the exponent, for durations): O(N), and at 500,000 values about 5x faster than
// std::sort, which would otherwise be most of the test's time.
std::vector<double> sorted_copy(std::span<const double> xs) {
  constexpr std::size_t kRadixMinN = 4096;  // below, std::sort is as fast and needs no buffers
  std::vector<double> out(xs.begin(), xs.end());
  const std::size_t n = out.size();
  if (n < kRadixMinN) {
    std::sort(out.begin(), out.end());
    return out;
  }
  constexpr int kBits = 8;
  constexpr int kPasses = 64 / kBits;
  constexpr std::size_t kBuckets = std::size_t{1} << kBits;
  std::vector<std::uint64_t> keys(n), spare(n);
  std::vector<std::size_t> counts(kPasses * kBuckets, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t k = ordered_bits(out[i]);
    keys[i] = k;
    for (int p = 0; p < kPasses; ++p) {
      ++counts[p * kBuckets + ((k >> (p * kBits)) & (kBuckets - 1))];
    }
  }
  for (int p = 0; p < kPasses; ++p) {
    std::size_t* start = &counts[p * kBuckets];
    if (*std::max_element(start, start + kBuckets) == n) continue;  // one byte for all: in order
    std::size_t sum = 0;
    for (std::size_t bucket = 0; bucket < kBuckets; ++bucket) {
      sum += std::exchange(start[bucket], sum);  // counts become each bucket's first position
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t k = keys[i];
      spare[start[(k >> (p * kBits)) & (kBuckets - 1)]++] = k;
    }
    keys.swap(spare);
  }
  for (std::size_t i = 0; i < n; ++i) out[i] = from_ordered_bits(keys[i]);
  return out;
}

// ln of each value of a sorted arm, sorted. std::log is monotone in practice but the standard
// does not promise it, and the counting below relies on sorted input: checked, not assumed.
std::vector<double> sorted_logs(const std::vector<double>& sorted) {
  std::vector<double> v(sorted.size());
  std::transform(sorted.begin(), sorted.end(), v.begin(), natural_log);
  if (!std::is_sorted(v.begin(), v.end())) std::sort(v.begin(), v.end());
  return v;
}

// The first index j' >= j at which past(v[j']) is false, or n; `past` must hold for a prefix of
// v. Used where a pointer walks a sorted arm once per value of the other arm: it moves about
// n / m places each time, unpredictably, so a plain loop mispredicts its exit almost every time;
// testing four at a time without branching, looping only when all four are past, is ~3x faster.
template <typename Past>
[[gnu::always_inline]] inline std::size_t skip_while(const double* v, std::size_t n, std::size_t j,
                                                     Past past) {
  while (j + 4 <= n) {
    const std::size_t k =
        static_cast<std::size_t>(past(v[j])) + static_cast<std::size_t>(past(v[j + 1])) +
        static_cast<std::size_t>(past(v[j + 2])) + static_cast<std::size_t>(past(v[j + 3]));
    j += k;
    if (k < 4) return j;
  }
  while (j < n && past(v[j])) ++j;
  return j;
}

// Runs of equal values (two or more) in a sorted arm, in order.
struct TieGroup {
  double value;
  std::size_t size;
};

std::vector<TieGroup> tie_groups(std::span<const double> sorted) {
  std::vector<TieGroup> groups;
  for (std::size_t i = 0; i + 1 < sorted.size();) {
    if (sorted[i + 1] != sorted[i]) {
      ++i;
      continue;
    }
    std::size_t j = i + 2;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    groups.push_back({sorted[i], j - i});
    i = j;
  }
  return groups;
}

// Mid-ranks of the pooled sample {c_i - shift} with {b_j}, both arms sorted ascending (c_i - shift
// stays sorted because rounding is monotone); b_ties = tie_groups(b). The same numbers as sorting
// the pooled values and walking their tie groups (shifted_z, and this test before it scaled),
// bit for bit: the rank sum is a sum of half-integers, exact in double while it stays below 2^52
// (N below 9e7), so it is summed exactly in integers; the tie term can round, so its terms are
// added in the same order, ascending by value. O(n_b + n_c) instead of a sort.
struct PooledRanks {
  double rank_sum = 0.0;  // of the candidate values
  double tie_term = 0.0;  // sum over tie groups of t^3 - t
  bool ties = false;      // some group has more than one value
};

PooledRanks pooled_ranks(std::span<const double> b, const std::vector<TieGroup>& b_ties,
                         std::span<const double> c, double shift) {
  PooledRanks r;
  auto add_group = [&r](std::size_t size) {
    if (size < 2) return;
    r.ties = true;
    const double t = static_cast<double>(size);
    r.tie_term += t * t * t - t;
  };
  const std::size_t m = c.size();
  const std::size_t n = b.size();
  std::uint64_t twice_rank_sum = 0;
  std::size_t i = 0, j = 0, g = 0;
  while (i < m) {
    const double x = c[i] - shift;
    j = skip_while(b.data(), n, j, [x](double y) { return y < x; });
    while (g < b_ties.size() && b_ties[g].value < x) add_group(b_ties[g++].size);  // baseline only
    std::size_t i_end = i + 1;
    while (i_end < m && c[i_end] - shift == x) ++i_end;
    std::size_t j_end = j;
    while (j_end < n && b[j_end] == x) ++j_end;
    if (g < b_ties.size() && b_ties[g].value == x) ++g;  // counted in this group
    // The group holds pooled positions start + 1 .. start + t; its mid-rank is start + (t + 1) / 2.
    const std::uint64_t in_candidate = i_end - i;
    const std::uint64_t size = in_candidate + (j_end - j);
    twice_rank_sum += in_candidate * (2 * (i + j) + size + 1);
    add_group(size);
    i = i_end;
    j = j_end;
  }
  while (g < b_ties.size()) add_group(b_ties[g++].size);
  r.rank_sum = static_cast<double>(twice_rank_sum) / 2.0;
  return r;
}

// shifted_z on sorted arms, O(n_b + n_c) instead of a sort: the same value, bit for bit.
double shifted_z_sorted(std::span<const double> b, const std::vector<TieGroup>& b_ties,
                        std::span<const double> c, double d) {
  const PooledRanks pr = pooled_ranks(b, b_ties, c, d);
  const double md = static_cast<double>(c.size());
  const double nd = static_cast<double>(b.size());
  const double nn = md + nd;
  const double dz = pr.rank_sum - md * (md + 1.0) / 2.0 - md * nd / 2.0;
  const double correction = dz > 0.0 ? 0.5 : (dz < 0.0 ? -0.5 : 0.0);
  const double sigma = std::sqrt(md * nd / 12.0 * ((nn + 1.0) - pr.tie_term / (nn * (nn - 1.0))));
  return sigma > 0.0 ? (dz - correction) / sigma : kNaN;
}

// splitmix64: a fixed-seed generator for the first probe, so results and timings repeat.
std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The n_b n_c differences c_i - b_j (as computed in double, exactly the values the all-pairs path
// materialises) of two sorted arms, never stored. The computed difference is non-decreasing in i
// and non-increasing in j, because rounding is monotone; so in row i the pairs with difference
// <= d are a suffix j >= s_i of the baseline, and s_i never decreases with i: one pass with a
// pointer counts them, and finds the neighbouring differences on each side of d.
class PairDifferences {
 public:
  // See select(): interpolated probes keep this many times the line's last error to each side,
  // and when that is more than kSampledSlack of the bracket, sampled probes do better.
  static constexpr double kInterpolationSlack = 4.0;
  static constexpr double kSampledSlack = 1.0 / 32.0;

  PairDifferences(std::span<const double> baseline_sorted,
                  std::span<const double> candidate_sorted)
      : b_(baseline_sorted),
        c_(candidate_sorted),
        pairs_(static_cast<std::uint64_t>(b_.size()) * c_.size()),
        // Copying out and selecting among the last differences costs about what a pass costs
        // per value, so another pass does not pay below a quarter of the values.
        extract_budget_(std::max<std::uint64_t>(1024, (b_.size() + c_.size()) / 4)) {}

  std::uint64_t pairs() const { return pairs_; }
  double min() const { return c_.front() - b_.back(); }
  double max() const { return c_.back() - b_.front(); }

  // For a probe d: how many differences are <= d, the largest of those (meaningful when
  // at_most > 0) and the smallest difference > d (meaningful when at_most < pairs()).
  struct Split {
    std::uint64_t at_most = 0;
    double below = -std::numeric_limits<double>::infinity();
    double above = std::numeric_limits<double>::infinity();
  };

  // Differences copied out during a pass, up to a capacity; `complete` until it would overflow.
  struct Collector {
    std::vector<double> values;
    std::size_t capacity = 0;
    bool complete = true;
  };

  // Both probes in one pass; d1 <= d2. With `between`, also copies out the differences in
  // (d1, d2] while they fit.
  std::array<Split, 2> split(double d1, double d2, Collector* between = nullptr) const {
    std::array<Split, 2> s;
    const std::size_t m = c_.size();
    const std::size_t n = b_.size();
    const double* b = b_.data();
    std::size_t j1 = 0, j2 = 0;  // first baseline index with c_i - b_j <= d (j2 <= j1)
    for (std::size_t i = 0; i < m; ++i) {
      const double ci = c_[i];
      j2 = first_at_most(b, n, j2, ci, d2);
      if (j2 == n) {
        // This row and every later one lie above both probes; its smallest is the smallest left.
        const double smallest = ci - b[n - 1];
        s[0].above = std::min(s[0].above, smallest);
        s[1].above = std::min(s[1].above, smallest);
        break;
      }
      s[1].at_most += n - j2;
      s[1].below = std::max(s[1].below, ci - b[j2]);
      if (j2 > 0) s[1].above = std::min(s[1].above, ci - b[j2 - 1]);
      // j1 >= j2 by itself (d1 <= d2); walking it from its own last place, not from j2, keeps
      // the two pointers independent, so the processor runs both walks at once.
      j1 = first_at_most(b, n, j1, ci, d1);
      if (j1 < n) {
        s[0].at_most += n - j1;
        s[0].below = std::max(s[0].below, ci - b[j1]);
      }
      if (j1 > 0) s[0].above = std::min(s[0].above, ci - b[j1 - 1]);
      if (between != nullptr && j1 > j2) {
        if (between->values.size() + (j1 - j2) > between->capacity) {
          between->complete = false;
          between = nullptr;
        } else {
          for (std::size_t j = j2; j < j1; ++j) between->values.push_back(ci - b[j]);
        }
      }
    }
    return s;
  }

  // The k1-th and k2-th smallest differences (1-based, k1 <= k2 <= k1 + 1 <= pairs()), exact.
  // Narrows a bracket of ranks, two probes a pass, until few enough differences lie in it to
  // copy out and select among as hl_median does. The first probes are quantiles of a sample of
  // pairs. Later ones interpolate linearly between the bracket's ends, keeping
  // kInterpolationSlack times the line's last error to each side: the differences' distribution
  // is smooth where it is dense, so that error is around 1e-4 of the bracket and each pass
  // shrinks it a thousandfold (500,000 per arm: three passes, the last one copying out the
  // differences between its probes as it counts them). Where the line fits badly (the rank in a
  // valley between modes) the probes come from a sample of the bracket instead. Two passes in a
  // row that fail to halve the bracket (ties, gaps) switch to bisection over the representable
  // doubles, which ends within 64 passes whatever the data; a bracket down to a single value
  // (ties) ends at once.
  std::pair<double, double> select(std::uint64_t k1, std::uint64_t k2) const {
    assert(1 <= k1 && k1 <= k2 && k2 <= k1 + 1 && k2 <= pairs_);
    // Invariant: lo_count < k1 <= k2 <= hi_count; exactly lo_count differences are below
    // lo_above (the smallest difference above the last low probe) and exactly hi_count are
    // <= hi, itself a difference.
    std::uint64_t lo_count = 0;
    std::uint64_t hi_count = pairs_;
    double lo_above = min();
    double hi = max();
    bool first = true;
    // How far, as a fraction of the bracket, the last interpolation's counts fell from the line.
    // The first guess is for the bracket the sample leaves, ~7% of the pairs, where curvature
    // dominates: 2.5e-4 was measured on log-normal TTFB; a miss costs one more pass.
    double error = 1.0 / 2048.0;
    int stalls = 0;
    std::uint64_t state = 0x2545F4914F6CDD1DULL ^ (b_.size() * 31 + c_.size());  // fixed seed
    for (;;) {
      if (!(lo_above < hi)) return {hi, hi};  // a single value left, ties included
      const std::uint64_t width = hi_count - lo_count;
      if (width <= extract_budget_) return extract(k1, k2, lo_count, hi_count, lo_above, hi);
      double p1, p2;
      const double first_rank = static_cast<double>(lo_count + 1);
      const double ranks = static_cast<double>(width - 1);
      auto rank_at = [&](double p) {  // where the line through the bracket puts value p
        return first_rank + (p - lo_above) / (hi - lo_above) * ranks;
      };
      const bool bisect = stalls >= 2;
      const bool sample = !bisect && (first || kInterpolationSlack * error > kSampledSlack);
      double expected_between = static_cast<double>(width);
      if (bisect) {
        p1 = p2 = ordered_midpoint(lo_above, hi);
      } else if (sample) {
        const Probes probes = sampled_probes(k1, k2, lo_count, hi_count, lo_above, hi, state);
        p1 = probes.low;
        p2 = probes.high;
        expected_between = probes.expected_between;
      } else {
        const double slack =
            std::max(static_cast<double>(extract_budget_) / 8.0,
                     static_cast<double>(width) *
                         std::clamp(kInterpolationSlack * error, 1.0 / 8192.0, 1.0 / 4.0));
        auto value_at = [&](double rank) {
          const double t = std::clamp((rank - first_rank) / ranks, 0.0, 1.0);
          return lo_above + (hi - lo_above) * t;
        };
        p1 = value_at(static_cast<double>(k1) - slack);
        p2 = value_at(static_cast<double>(k2) + slack);
        expected_between = rank_at(p2) - rank_at(p1);
      }
      if (!(std::isfinite(p1) && std::isfinite(p2) && p1 <= p2)) {
        p1 = p2 = ordered_midpoint(lo_above, hi);  // overflowing differences: bisect instead
      }
      p1 = std::clamp(p1, lo_above, hi);
      p2 = std::clamp(p2, lo_above, hi);
      // A pass that expects few enough differences between its probes copies them out as it
      // goes, saving the extraction pass when the ranks land between them.
      Collector between;
      between.capacity = static_cast<std::size_t>(2 * extract_budget_);
      const bool collect =
          !bisect && p1 < p2 && expected_between <= static_cast<double>(extract_budget_);
      const std::array<Split, 2> s = split(p1, p2, collect ? &between : nullptr);
      if (!bisect && !first) {  // the line's error over the whole first bracket says nothing
        error = std::max(std::fabs(static_cast<double>(s[0].at_most) - rank_at(p1)),
                         std::fabs(static_cast<double>(s[1].at_most) - rank_at(p2))) /
                static_cast<double>(width);
      }
      for (const Split& probe : s) {
        if (probe.at_most >= k2) {
          if (probe.at_most < hi_count) {
            hi_count = probe.at_most;
            hi = probe.below;
          }
        } else if (probe.at_most < k1) {
          if (probe.at_most > lo_count) {
            lo_count = probe.at_most;
            lo_above = probe.above;
          }
        } else {
          return {probe.below, probe.above};  // exactly k1 <= probe: k2 = k1 + 1 is just above
        }
      }
      if (collect && between.complete && lo_count == s[0].at_most && hi_count == s[1].at_most) {
        return pick(std::move(between.values), k1 - lo_count, k2 - lo_count);
      }
      stalls = hi_count - lo_count > width / 2 ? stalls + 1 : 0;
      first = false;
    }
  }

 private:
  // The first index j' >= j with ci - b[j'] <= d, or n.
  [[gnu::always_inline]] static std::size_t first_at_most(const double* b, std::size_t n,
                                                         std::size_t j, double ci, double d) {
    return skip_while(b, n, j, [ci, d](double bj) { return ci - bj > d; });
  }

  // Two probes and how many differences they are expected to hold between them.
  struct Probes {
    double low = 0.0;
    double high = 0.0;
    double expected_between = 0.0;
  };

  // Probes around ranks k1 and k2 from a sample of the bracket's differences, those in
  // [lo_above, hi] (at the start every difference): up to 4096 rows at random, in each a random
  // difference of the row's share of the bracket, weighted by the share's size, so that the
  // weighted sample is an unbiased picture of the bracket. The probes sit 4 standard errors of
  // the weighted quantile to each side of the ranks: both ranks lie between them unless the
  // sample is unlucky (about 3e-5 per side; a miss costs a pass). Model-free, so it shrinks the
  // bracket some 16x a pass whatever the distribution's shape, where interpolation gains a
  // thousandfold while the distribution is smooth but little where it bends (several modes).
  // Costs two binary searches per sampled row, a small fraction of a pass.
  Probes sampled_probes(std::uint64_t k1, std::uint64_t k2, std::uint64_t lo_count,
                        std::uint64_t hi_count, double lo_above, double hi,
                        std::uint64_t& state) const {
    // Draws cost ~50 ns each against a few per value for a pass: 4096 are a tenth of a pass at
    // 500,000 per arm, but would be most of the time for small arms, which get fewer.
    const std::size_t samples =
        std::clamp<std::size_t>((b_.size() + c_.size()) / 64, 256, 4096);
    const std::size_t m = c_.size();
    const std::size_t n = b_.size();
    const double* b = b_.data();
    const bool everything = lo_count == 0 && hi_count == pairs_;
    struct Drawn {
      double value;
      double weight;
    };
    std::vector<Drawn> sample;
    sample.reserve(samples);
    double total = 0.0, total_squares = 0.0;
    for (std::size_t t = 0; t < samples; ++t) {
      const double ci = c_[splitmix64(state) % m];
      std::size_t from = 0, to = n;  // the row's share: c_i - b_j in [lo_above, hi]
      if (!everything) {
        from = static_cast<std::size_t>(
            std::partition_point(b, b + n, [ci, hi](double bj) { return ci - bj > hi; }) - b);
        to = static_cast<std::size_t>(
            std::partition_point(b + from, b + n,
                                 [ci, lo_above](double bj) { return ci - bj >= lo_above; }) -
            b);
      }
      if (to == from) continue;
      const double weight = static_cast<double>(to - from);
      sample.push_back({ci - b[from + splitmix64(state) % (to - from)], weight});
      total += weight;
      total_squares += weight * weight;
    }
    if (sample.empty()) {  // the bracket lives in a few rows the sample missed: bisect
      const double mid = ordered_midpoint(lo_above, hi);
      return {mid, mid, static_cast<double>(hi_count - lo_count)};
    }
    std::sort(sample.begin(), sample.end(),
              [](const Drawn& x, const Drawn& y) { return x.value < y.value; });
    const double effective = total * total / total_squares;  // the weights' effective sample size
    const double width = static_cast<double>(hi_count - lo_count);
    double margin_sum = 0.0;
    // The value below which the weighted sample puts `fraction` of the bracket, moved out by the
    // margin in `direction`; the bracket's end when that leaves it.
    auto quantile = [&](double fraction, double direction, double end) {
      const double spread = std::max(fraction * (1.0 - fraction), 1.0 / effective);
      const double se = std::sqrt(spread / effective);
      const double margin = 4.0 * se + 1.0 / effective;
      margin_sum += margin;
      const double target = (fraction + direction * margin) * total;
      if (target <= 0.0 || target >= total) return end;
      double cumulative = 0.0;
      for (const Drawn& d : sample) {
        cumulative += d.weight;
        if (cumulative >= target) return d.value;
      }
      return end;
    };
    const double low = quantile(static_cast<double>(k1 - 1 - lo_count) / width, -1.0, lo_above);
    const double high = quantile(static_cast<double>(k2 - lo_count) / width, +1.0, hi);
    const double expected = (static_cast<double>(k2 - k1) / width + margin_sum) * width;
    return {low, std::max(low, high), expected};
  }

  // The differences in [lo_above, hi] copied out (exactly hi_count - lo_count of them), then
  // the ranks selected among them as the all-pairs path does.
  std::pair<double, double> extract(std::uint64_t k1, std::uint64_t k2, std::uint64_t lo_count,
                                    std::uint64_t hi_count, double lo_above, double hi) const {
    std::vector<double> v;
    const std::size_t m = c_.size();
    const std::size_t n = b_.size();
    v.reserve(static_cast<std::size_t>(hi_count - lo_count));
    const double* b = b_.data();
    std::size_t j_hi = 0;  // first j with c_i - b_j <= hi
    std::size_t j_lo = 0;  // first j with c_i - b_j < lo_above
    for (std::size_t i = 0; i < m; ++i) {
      const double ci = c_[i];
      j_hi = first_at_most(b, n, j_hi, ci, hi);
      j_lo = skip_while(b, n, j_lo,
                        [ci, lo_above](double bj) { return ci - bj >= lo_above; });
      for (std::size_t j = j_hi; j < j_lo; ++j) v.push_back(ci - b[j]);
    }
    assert(v.size() == hi_count - lo_count);
    return pick(std::move(v), k1 - lo_count, k2 - lo_count);
  }

  // The k1-th and k2-th smallest of v (1-based, k2 <= k1 + 1), as hl_median takes them.
  static std::pair<double, double> pick(std::vector<double> v, std::uint64_t k1,
                                        std::uint64_t k2) {
    const auto at = v.begin() + static_cast<std::ptrdiff_t>(k1 - 1);
    std::nth_element(v.begin(), at, v.end());
    const double first = *at;
    return {first, k2 == k1 ? first : *std::min_element(at + 1, v.end())};
  }

  std::span<const double> b_;
  std::span<const double> c_;
  std::uint64_t pairs_;
  std::uint64_t extract_budget_;
};

// hl_median on sorted arms (already transformed): the same value, selected instead of stored.
double hl_median_sorted(std::span<const double> b, std::span<const double> c) {
  const PairDifferences diffs(b, c);
  const std::uint64_t half = diffs.pairs() / 2;
  if (diffs.pairs() % 2 == 1) return diffs.select(half + 1, half + 1).first;
  const auto [lower, upper] = diffs.select(half, half + 1);
  return (lower + upper) / 2.0;  // R's median: mean of the two middle values, as hl_median
}

// What both ends of the normal-method interval share: the sorted arms, the statistic at the
// smallest and largest difference, and sigma between differences, where only the ties within
// each arm count.
struct NormalCiArms {
  std::span<const double> b;
  std::vector<TieGroup> b_ties;
  std::span<const double> c;
  const PairDifferences& diffs;
  double z_at_min = 0.0;
  double z_at_max = 0.0;
  double sigma_between = 0.0;

  NormalCiArms(std::span<const double> baseline, std::span<const double> candidate,
               const PairDifferences& pairs)
      : b(baseline), b_ties(tie_groups(baseline)), c(candidate), diffs(pairs) {
    z_at_min = z(diffs.min());
    z_at_max = z(diffs.max());
    double tie_term = 0.0;
    auto add = [&tie_term](const std::vector<TieGroup>& groups) {
      for (const TieGroup& g : groups) {
        const double t = static_cast<double>(g.size);
        tie_term += t * t * t - t;
      }
    };
    add(b_ties);
    add(tie_groups(c));
    const double md = static_cast<double>(c.size());
    const double nd = static_cast<double>(b.size());
    const double nn = md + nd;
    sigma_between = std::sqrt(md * nd / 12.0 * ((nn + 1.0) - tie_term / (nn * (nn - 1.0))));
  }

  double z(double d) const { return shifted_z_sorted(b, b_ties, c, d); }
};

// normal_ci_end without the sorted list of distinct differences. There the end is D_k for the
// first k with shifted_z(mid_k) <= zq, mid_k the midpoint of D_k and the next distinct
// difference. At a midpoint no candidate value ties a baseline value, so W(mid_k) is the number
// of pairs with difference > D_k and sigma only sees the ties within each arm: the condition
// holds exactly when at least r of the differences are <= D_k, for an r computed from the
// normal quantile. So D_k is the r-th smallest difference. The rank is computed in closed form,
// then the statistic itself is checked on both neighbouring midpoints (shifted_z, bit for bit
// the same as the all-pairs path) and the end stepped to the next distinct difference while it
// fails: in exact arithmetic it never does, rounding can move it by a difference or two.
double normal_ci_end_sorted(const NormalCiArms& arms, double zq) {
  const PairDifferences& diffs = arms.diffs;
  if (arms.z_at_min - zq <= 0.0) return diffs.min();
  if (arms.z_at_max - zq >= 0.0) return diffs.max();
  const std::uint64_t pairs = diffs.pairs();
  const double centre = static_cast<double>(pairs) / 2.0;
  auto above_quantile = [&](std::uint64_t w) {  // the statistic with W = w is > zq
    const double dz = static_cast<double>(w) - centre;
    const double correction = dz > 0.0 ? 0.5 : (dz < 0.0 ? -0.5 : 0.0);
    return (dz - correction) / arms.sigma_between - zq > 0.0;
  };
  // The largest W for which the statistic is <= zq.
  const double guess =
      std::clamp(std::floor(centre + zq * arms.sigma_between), 0.0, static_cast<double>(pairs));
  auto w = static_cast<std::uint64_t>(guess);
  while (w < pairs && !above_quantile(w + 1)) ++w;
  while (w > 0 && above_quantile(w)) --w;
  const std::uint64_t rank = std::clamp<std::uint64_t>(pairs - w, 1, pairs);
  double d = diffs.select(rank, rank).first;
  auto midpoint = [](double x, double y) { return x + (y - x) / 2.0; };  // as normal_ci_end
  for (int step = 0; step < 64; ++step) {
    const std::array<PairDifferences::Split, 2> s =
        diffs.split(std::nextafter(d, -std::numeric_limits<double>::infinity()), d);
    if (s[1].at_most < pairs && arms.z(midpoint(d, s[1].above)) - zq > 0.0) {
      d = s[1].above;  // the statistic is still above the quantile after d: the end is later
      continue;
    }
    if (s[0].at_most > 0 && arms.z(midpoint(s[0].below, d)) - zq <= 0.0) {
      d = s[0].below;  // already below it before d: the end is earlier
      continue;
    }
    break;
  }
  return d;
}

bool use_selection(HodgesLehmannAlgorithm algorithm, std::size_t n_b, std::size_t n_c) {
  switch (algorithm) {
    case HodgesLehmannAlgorithm::kAllPairs:
      return false;
    case HodgesLehmannAlgorithm::kSortedSelection:
      return true;
    case HodgesLehmannAlgorithm::kAuto:
      break;
  }
  return static_cast<std::uint64_t>(n_b) * n_c > kHodgesLehmannMaxMaterializedPairs;
}

}  // namespace

const char* to_string(MannWhitneyMethod m) {
  return m == MannWhitneyMethod::kExact ? "exact" : "normal";
}

double hodges_lehmann_shift(std::span<const double> baseline, std::span<const double> candidate,
                            HodgesLehmannAlgorithm algorithm) {
  require_values(baseline, "hodges_lehmann_shift", "baseline", false);
  require_values(candidate, "hodges_lehmann_shift", "candidate", false);
  if (!use_selection(algorithm, baseline.size(), candidate.size())) {
    return hl_median(baseline, candidate, identity);
  }
  return hl_median_sorted(sorted_copy(baseline), sorted_copy(candidate));
}

double hodges_lehmann_shift_pct(std::span<const double> baseline_ms,
                                std::span<const double> candidate_ms,
                                HodgesLehmannAlgorithm algorithm) {
  require_values(baseline_ms, "hodges_lehmann_shift_pct", "baseline", true);
  require_values(candidate_ms, "hodges_lehmann_shift_pct", "candidate", true);
  if (!use_selection(algorithm, baseline_ms.size(), candidate_ms.size())) {
    return 100.0 * std::expm1(hl_median(baseline_ms, candidate_ms, natural_log));
  }
  return 100.0 * std::expm1(hl_median_sorted(sorted_logs(sorted_copy(baseline_ms)),
                                             sorted_logs(sorted_copy(candidate_ms))));
}

HodgesLehmannInterval hodges_lehmann_ci(std::span<const double> baseline,
                                        std::span<const double> candidate, double confidence,
                                        HodgesLehmannAlgorithm algorithm) {
  require_values(baseline, "hodges_lehmann_ci", "baseline", false);
  require_values(candidate, "hodges_lehmann_ci", "candidate", false);
  if (!(confidence > 0.0 && confidence < 1.0)) {
    throw std::invalid_argument("ttfb::stats::hodges_lehmann_ci: confidence must be inside (0, 1), got " +
                                std::to_string(confidence));
  }
  const bool select = use_selection(algorithm, baseline.size(), candidate.size());
  // All-pairs: every difference, sorted. Selection: the sorted arms and their differences' ranks.
  std::vector<double> diffs;
  std::vector<double> sorted_b, sorted_c;
  if (select) {
    sorted_b = sorted_copy(baseline);
    sorted_c = sorted_copy(candidate);
  } else {
    diffs.reserve(baseline.size() * candidate.size());
    for (double x : candidate) {
      for (double y : baseline) diffs.push_back(x - y);
    }
    std::sort(diffs.begin(), diffs.end());
  }
  const PairDifferences pairs(sorted_b, sorted_c);  // unused (and empty) on the all-pairs path
  const double alpha = 1.0 - confidence;
  HodgesLehmannInterval ci;
  const std::size_t m = candidate.size();
  const std::size_t n = baseline.size();
  if (m < kMannWhitneyExactMaxN && n < kMannWhitneyExactMaxN && !pooled_ties(baseline, candidate)) {
    ci.method = MannWhitneyMethod::kExact;
    const std::vector<double> counts = wilcox_counts(m, n);
    double total = 0.0;
    for (double c : counts) total += c;
    // R's qwilcox(alpha / 2): the smallest q with P(W <= q) >= alpha / 2, with its 10 eps fuzz.
    const double target = alpha / 2.0 - 10.0 * std::numeric_limits<double>::epsilon();
    std::size_t q = 0;
    double p = 0.0;
    for (;; ++q) {
      p += counts[q] / total;
      if (p >= target || q + 1 == counts.size()) break;
    }
    if (q == 0) q = 1;  // R: the widest interval, [min D, max D], whatever its level
    double below = 0.0;  // P(W <= q - 1)
    for (std::size_t u = 0; u < q; ++u) below += counts[u];
    if (select) {
      ci.low = pairs.select(q, q).first;
      ci.high = pairs.select(m * n + 1 - q, m * n + 1 - q).first;
    } else {
      ci.low = diffs[q - 1];
      ci.high = diffs[m * n - q];
    }
    ci.confidence = 1.0 - 2.0 * below / total;
    return ci;
  }
  ci.method = MannWhitneyMethod::kNormal;
  ci.confidence = confidence;
  const boost::math::normal std_normal;
  const double z = boost::math::quantile(boost::math::complement(std_normal, alpha / 2.0));
  if (select) {
    if (pairs.min() == pairs.max()) {  // both arms constant: the shift is known exactly
      ci.low = ci.high = pairs.min();
      return ci;
    }
    const NormalCiArms arms(sorted_b, sorted_c, pairs);
    ci.low = normal_ci_end_sorted(arms, z);
    ci.high = normal_ci_end_sorted(arms, -z);
    return ci;
  }
  diffs.erase(std::unique(diffs.begin(), diffs.end()), diffs.end());
  if (diffs.size() == 1) {  // both arms constant: the shift is known exactly
    ci.low = ci.high = diffs.front();
    return ci;
  }
  ci.low = normal_ci_end(baseline, candidate, diffs, z);
  ci.high = normal_ci_end(baseline, candidate, diffs, -z);
  return ci;
}

MannWhitneyResult mann_whitney_u_test(std::span<const double> baseline_ms,
                                      std::span<const double> candidate_ms,
                                      HodgesLehmannAlgorithm algorithm) {
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

  // Pooled mid-ranks, tie groups and both Hodges-Lehmann medians, all from one sort per arm.
  const std::size_t m = r.n_candidate;
  const std::size_t n = r.n_baseline;
  const std::vector<double> sorted_b = sorted_copy(baseline_ms);
  const std::vector<double> sorted_c = sorted_copy(candidate_ms);
  // Shift 0: c - 0 is c exactly, so these are the ranks of the values themselves.
  const PooledRanks ranks = pooled_ranks(sorted_b, tie_groups(sorted_b), sorted_c, 0.0);
  const double rank_sum = ranks.rank_sum;
  const double tie_term = ranks.tie_term;
  const bool ties = ranks.ties;
  const double md = static_cast<double>(m);
  const double nd = static_cast<double>(n);
  const double nn = static_cast<double>(m + n);
  r.w = rank_sum - md * (md + 1.0) / 2.0;

  if (use_selection(algorithm, n, m)) {
    r.hl_shift = hl_median_sorted(sorted_b, sorted_c);
    r.hl_shift_pct =
        100.0 * std::expm1(hl_median_sorted(sorted_logs(sorted_b), sorted_logs(sorted_c)));
  } else {
    r.hl_shift = hl_median(sorted_b, sorted_c, identity);
    r.hl_shift_pct = 100.0 * std::expm1(hl_median(sorted_b, sorted_c, natural_log));
  }

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
