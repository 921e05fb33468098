// Seeded percentile bootstrap of the ratio of medians, candidate vs baseline, as a percent change:
// a distribution-free interval for the effect that complements welch.hpp (geometric means) and
// the Hodges-Lehmann shift of mann_whitney.hpp. Deterministic: the same input, seed and B give
// the same interval on every platform and standard library.
//
//   std::vector<double> baseline  = {812.0, 790.5, 845.2, 801.7, 820.3};   // ms
//   std::vector<double> candidate = {861.9, 840.2, 899.0, 850.4, 872.8};
//   ttfb::stats::BootstrapResult r =
//       ttfb::stats::bootstrap_median_ratio_ci(baseline, candidate, 0.95, 2000, 42);
//   // r.estimate_pct = 100 (861.9 / 812.0 - 1) = +6.15%, r.ci_low_pct .. r.ci_high_pct
//
// Procedure, fully specified so results do not depend on <random>'s distributions (whose
// algorithms the standard leaves open):
// - Engine: std::mt19937_64 seeded with `seed` (its output sequence is fixed by the standard).
// - For replicate 1..B: draw n_baseline indices into the baseline, then n_candidate indices into
//   the candidate (stratified: each arm resampled on its own, with replacement). One index in
//   [0, n) is drawn by rejection: take the next engine output r, reject it while
//   r < (2^64 mod n) (computed as (0 - n) % n in uint64), then the index is r % n. Unbiased;
//   rejection is rare (probability < n / 2^64).
// - Statistic of a replicate: 100 (median(candidate*) / median(baseline*) - 1), the median as
//   R's (mean of the two middle values for even n).
// - CI: R's type-7 quantiles of the B statistics at (1 - confidence) / 2 and
//   (1 + confidence) / 2 (the plain percentile interval: no bias correction, so with very
//   small arms it can be too narrow -- the median of 2 to 5 values takes few distinct values;
//   a report should prefer the Welch CI there).
// - estimate_pct is the statistic of the original samples, not of the replicates.
//
// Edge cases (all defined):
// - A value <= 0, NaN or infinite: throws std::invalid_argument naming the arm and index.
// - confidence not strictly in (0, 1), or resamples < kBootstrapMinResamples: throws
//   std::invalid_argument.
// - Fewer than kBootstrapMinSamplesPerArm values in an arm: valid = false, `reason` says which;
//   numbers NaN. Never throws for this.
// - Constant arms: every replicate gives the same statistic; the CI is degenerate at the
//   estimate (ci_low_pct = ci_high_pct = estimate_pct). Not an error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>

namespace ttfb::stats {

inline constexpr std::size_t kBootstrapDefaultResamples = 2000;
// Below a few hundred resamples the 2.5% / 97.5% quantiles rest on a handful of values.
inline constexpr std::size_t kBootstrapMinResamples = 100;
// With one value an arm's resamples are all identical: the interval would ignore its noise.
inline constexpr std::size_t kBootstrapMinSamplesPerArm = 2;
inline constexpr std::uint64_t kBootstrapDefaultSeed = 0x7474'6662'6c61'6221ULL;  // "ttfblab!"

struct BootstrapResult {
  bool valid = false;
  std::string reason;          // empty when valid
  std::size_t n_baseline = 0;
  std::size_t n_candidate = 0;
  std::size_t resamples = 0;   // B, as passed
  std::uint64_t seed = 0;      // as passed
  double confidence = 0.95;    // as passed
  double estimate_pct = 0.0;   // 100 (median(candidate) / median(baseline) - 1)
  double ci_low_pct = 0.0;     // percentile interval of the replicate statistics
  double ci_high_pct = 0.0;
};

BootstrapResult bootstrap_median_ratio_ci(std::span<const double> baseline_ms,
                                          std::span<const double> candidate_ms,
                                          double confidence = 0.95,
                                          std::size_t resamples = kBootstrapDefaultResamples,
                                          std::uint64_t seed = kBootstrapDefaultSeed);

// The index draw described above, exposed so tests (and anything that must reproduce a
// resample) use the same definition. n must be >= 1 (n = 0 throws std::invalid_argument).
std::size_t bootstrap_draw_index(std::mt19937_64& engine, std::size_t n);

}  // namespace ttfb::stats
