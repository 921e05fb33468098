// Descriptive statistics over a sample of doubles: mean, median, sample standard deviation,
// MAD, coefficient of variation and quantiles. Pure functions, no state; the building blocks of
// the comparisons in welch.hpp and of the per-arm summaries the API reports.
//
//   std::vector<double> ttfb_ms = {812.0, 790.5, 845.2, 801.7};
//   double m   = ttfb::stats::median(ttfb_ms);               // 806.85
//   double cv  = ttfb::stats::coefficient_of_variation(ttfb_ms);
//   double p90 = ttfb::stats::quantile(ttfb_ms, 0.90);       // R's quantile(x, 0.9), type 7
//
// Conventions, shared by every function here:
// - Input is a std::span<const double>; it is never modified. Functions that need order
//   (median, mad, quantile) sort a private copy: one allocation per call.
// - Every value must be finite. A NaN or an infinity throws std::invalid_argument naming the
//   function and the position of the first bad value: a NaN in a timing is a bug upstream, and
//   silently dropping it would hide that.
// - Empty input throws std::invalid_argument (no statistic of nothing is honest).
// - The results match R (4.2) to the last few ulps: sums accumulate in long double and the mean
//   gets R's second correction pass, so the reference tests can be tight.
#pragma once

#include <span>
#include <vector>

namespace ttfb::stats {

// R's default scale for mad(): makes the MAD a consistent estimator of the standard deviation
// for normal data (1 / Phi^-1(3/4) = 1.4826...; R uses exactly 1.4826).
inline constexpr double kMadNormalScale = 1.4826;

// Arithmetic mean. n = 1: the value itself. Empty or non-finite: throws.
double mean(std::span<const double> xs);

// Sample variance, divisor n - 1 (R's var). Needs n >= 2, else throws (the sample variance of
// one value is undefined, not 0). Identical values: exactly 0.
double variance(std::span<const double> xs);

// Sample standard deviation, sqrt(variance) (R's sd). Needs n >= 2, else throws.
double stddev(std::span<const double> xs);

// Median; for even n the mean of the two middle values (R's median). n = 1: the value.
double median(std::span<const double> xs);

// Median absolute deviation from the median, times `scale` (R's mad(x, constant = scale)).
// Pass scale = 1 for the raw MAD. n = 1: 0. scale must be finite and >= 0, else throws.
double mad(std::span<const double> xs, double scale = kMadNormalScale);

// Coefficient of variation as a fraction (not percent): stddev / |mean|. Needs n >= 2; throws
// when the mean is exactly 0 (the ratio is undefined). Meant for positive data such as TTFB.
double coefficient_of_variation(std::span<const double> xs);

// Quantile at probability p in [0, 1], R's type 7 (its default): with the sorted values
// x[0..n-1], h = (n - 1) p, result = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h]).
// p = 0: the minimum; p = 1: the maximum; n = 1: the value for every p. p outside [0, 1] or
// NaN throws.
double quantile(std::span<const double> xs, double p);

// Several quantiles of the same sample with one sort; same rules as quantile(), result in the
// order of `ps`. An empty `ps` gives an empty result (the sample is still validated).
std::vector<double> quantiles(std::span<const double> xs, std::span<const double> ps);

}  // namespace ttfb::stats
