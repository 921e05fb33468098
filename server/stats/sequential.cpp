#include "server/stats/sequential.hpp"

#include <boost/math/distributions/normal.hpp>
#include <boost/math/tools/roots.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <stdexcept>
#include <string>

namespace ttfb::stats {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// 1 - Phi(x) and its inverse, by Boost (complements, so tails keep their digits). The
// integration loops call erfc directly instead: std::erfc, the same function to a few ulp, is
// ~ 3 times faster than Boost's there, and it is most of the cost of the root finding.
double upper_tail(double x) {
  const boost::math::normal_distribution<double> n01;
  return boost::math::cdf(boost::math::complement(n01, x));
}

// z with 1 - Phi(z) = p, p in (0, 1).
double upper_quantile(double p) {
  const boost::math::normal_distribution<double> n01;
  return boost::math::quantile(boost::math::complement(n01, p));
}

void require_alpha(const char* fn, double alpha) {
  if (!(alpha > 0.0 && alpha < 1.0)) {
    throw std::invalid_argument(std::string("ttfb::stats::") + fn + ": alpha " +
                                std::to_string(alpha) + " must be strictly between 0 and 1");
  }
}

void require_fractions(const char* fn, std::span<const double> t) {
  const std::string where = std::string("ttfb::stats::") + fn + ": ";
  if (t.empty()) throw std::invalid_argument(where + "no looks (t is empty)");
  if (t.size() > kMaxLooks) {
    throw std::invalid_argument(where + std::to_string(t.size()) + " looks, more than kMaxLooks (" +
                                std::to_string(kMaxLooks) + ")");
  }
  for (std::size_t i = 0; i < t.size(); ++i) {
    const std::string at = "information fraction t[" + std::to_string(i) + "] = " +
                           std::to_string(t[i]);
    if (std::isnan(t[i])) throw std::invalid_argument(where + at + " is NaN");
    if (!(t[i] > 0.0 && t[i] <= 1.0)) {
      throw std::invalid_argument(where + at + " must be in (0, 1]");
    }
    if (i > 0 && !(t[i] > t[i - 1])) {
      throw std::invalid_argument(where + at + " must be greater than t[" +
                                  std::to_string(i - 1) + "] = " + std::to_string(t[i - 1]) +
                                  " (strictly increasing)");
    }
    if (i > 0 && t[i] - t[i - 1] < kMinRelativeIncrement * t[i - 1]) {
      throw std::invalid_argument(where + at + " is too close to t[" + std::to_string(i - 1) +
                                  "] = " + std::to_string(t[i - 1]) +
                                  ": each look must add at least kMinRelativeIncrement times the "
                                  "information already seen");
    }
  }
}

// ---- The grid ------------------------------------------------------------------------------
// Simpson points and weights for integrating a function of Z_j over the continuation region
// (-c, c). Jennison & Turnbull (2000, section 19.2.1) use 6r - 1 points, uniform with step 3 / (2r)
// on [-3, 3] and logarithmically wider beyond. That is fine for the density but too coarse where
// it matters most when c > 3 (alpha = 0.01, many looks): the crossing at look j + 1 comes from z
// near c_j, and there J&T's step is ~ 2.7 times the central one. So we keep their idea (fine
// where the mass is, coarse where it is not) with a different split:
// - uniform intervals of width <= h on [-min(c, kUniformTo), min(c, kUniformTo)]: the
//   sub-density of Z_j under H0 is below the N(0, 1) density, so beyond kUniformTo = 6 lies
//   less than 2e-9 of probability;
// - beyond, steps growing by kTailGrowth (5% each) up to min(c, kTruncateAt): phi(38.5)
//   underflows, so nothing past it is representable anyway (only a first-look c_1 can be that
//   large). The tail adds little to any probability but is where early obrien_fleming looks,
//   which spend 1e-20 or less, cross; 5% growth keeps their bounds within 1e-7 of a uniform
//   grid's (20% moved them by 1e-6), for ~ 60 points per side.
// Simpson's rule on every interval adds its midpoint (weights d/6, 4d/6, d/6).
constexpr double kStep = 0.06;          // J&T's 3 / (2r) at r = 25
constexpr double kUniformTo = 6.0;
constexpr double kTailGrowth = 1.05;
constexpr double kTruncateAt = 38.5;

struct Grid {
  std::vector<double> z;
  std::vector<double> w;
};

// Exactly symmetric about 0 (the positive half is built and mirrored), which lets the update
// below compute half the points: under H0 with symmetric bounds every sub-density is even.
Grid make_grid(double c, double h) {
  const double u = std::min(c, kUniformTo);
  const double end = std::min(c, kTruncateAt);
  std::vector<double> half;  // knots in [0, end], increasing
  const auto n_uniform = static_cast<std::size_t>(std::ceil(u / h));
  for (std::size_t i = 0; i < n_uniform; ++i) {
    half.push_back(u * static_cast<double>(i) / static_cast<double>(n_uniform));
  }
  half.push_back(u);
  for (double step = h * kTailGrowth, x = u + step; u < end; step *= kTailGrowth, x += step) {
    if (x >= end) {
      half.push_back(end);
      break;
    }
    half.push_back(x);
  }
  std::vector<double> x;
  x.reserve(2 * half.size() - 1);
  for (auto it = half.rbegin(); it + 1 != half.rend(); ++it) x.push_back(-*it);
  for (double v : half) x.push_back(v);

  Grid g;
  const std::size_t n = x.size();
  g.z.assign(2 * n - 1, 0.0);
  g.w.assign(2 * n - 1, 0.0);
  for (std::size_t i = 0; i < n; ++i) g.z[2 * i] = x[i];
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double d = x[i + 1] - x[i];
    g.z[2 * i + 1] = 0.5 * (x[i] + x[i + 1]);
    g.w[2 * i] += d / 6.0;
    g.w[2 * i + 1] += 4.0 * d / 6.0;
    g.w[2 * i + 2] += d / 6.0;
  }
  return g;
}

// The grid of look j must resolve both increments that touch it, whose normal densities vary on
// the scale of sd sigma on the z scale of look j:
// - the next one, integrated against the sub-density (the transition to look j + 1 and the
//   crossing probability there): sigma = sqrt((t_{j+1} - t_j) / t_j);
// - the previous one, which smooths the sub-density's cliff at the previous bound (f_j falls
//   from f_{j-1}(c_{j-1}) to ~0 across c_{j-1} sqrt(t_{j-1} / t_j) over a width of that
//   increment's sd): sigma = sqrt((t_j - t_{j-1}) / t_j).
// Simpson's error is ~ (step / sigma)^4; the step is kept at most sigma / kStepsPerSigma, so
// close looks get finer grids. kMinRelativeIncrement bounds sigma below (~ 1e-2), so the step
// never goes below ~ 4e-3 (~ 2 500 points for c = 2.5).
constexpr double kStepsPerSigma = 2.5;

double grid_step_at(std::span<const double> t, std::size_t j) {
  double sigma = kInf;
  if (j > 0) sigma = std::sqrt((t[j] - t[j - 1]) / t[j]);
  if (j + 1 < t.size()) sigma = std::min(sigma, std::sqrt((t[j + 1] - t[j]) / t[j]));
  return std::min(sigma / kStepsPerSigma, kStep);
}

// The H0 sub-density of Z_j on its continuation region, as weights w_i f(z_i) on a grid, so that
// integrals against it are plain sums.
struct SubDensity {
  std::vector<double> z;
  std::vector<double> wf;  // Simpson weight times density
  double t = 0.0;          // information fraction of the look
};

SubDensity first_density(double c1, double t1, double h) {
  const Grid g = make_grid(c1, h);
  SubDensity d;
  d.t = t1;
  d.z = g.z;
  d.wf.resize(g.z.size());
  constexpr double kInvSqrt2Pi = 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;
  for (std::size_t i = 0; i < g.z.size(); ++i) {
    d.wf[i] = g.w[i] * kInvSqrt2Pi * std::exp(-0.5 * g.z[i] * g.z[i]);
  }
  return d;
}

// P(continued to the previous look, then |Z_j| >= c at information t): the probability of
// crossing first at this look. Given z_prev, S_j = z_prev sqrt(t_prev) + N(0, t - t_prev), so
// the crossing is P(S_j >= c sqrt(t)) + P(S_j <= -c sqrt(t)); the sub-density being even, that is
// twice the upper crossing. The terms shrink as z_prev goes down, so the sum runs from the top
// and stops where erfc underflows to 0: nothing is cut that double precision could hold, which
// keeps tiny crossings (early obrien_fleming looks spend 1e-20 and less) relatively accurate.
double first_crossing(const SubDensity& prev, double c, double t) {
  if (std::isinf(c)) return 0.0;
  const double s = std::sqrt(2.0 * (t - prev.t));
  const double hi = c * std::sqrt(t);
  const double sp = std::sqrt(prev.t);
  double sum = 0.0;
  for (std::size_t i = prev.z.size(); i-- > 0;) {
    const double e = std::erfc((hi - prev.z[i] * sp) / s);
    if (e == 0.0) break;
    sum += prev.wf[i] * e;
  }
  return sum;  // 2 x (1/2 erfc) per side
}

// The sub-density of Z_j on (-c, c) from the previous look's: f_j(z) = sum_i w_i f(z_i)
// sqrt(t / dt) phi((z sqrt(t) - z_i sqrt(t_prev)) / sqrt(dt)).
// Only prev points within kKernelCut sds of the increment contribute (exp(-40.5) ~ 3e-18 is
// what the rest would add, relative); with many looks the increments are narrow and this skips
// most of the grid.
constexpr double kKernelCut = 9.0;

SubDensity next_density(const SubDensity& prev, double c, double t, double h) {
  const Grid g = make_grid(c, h);
  const double dt = t - prev.t;
  const double scale = std::sqrt(t / dt) * 0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2;
  const double st = std::sqrt(t);
  const double sp = std::sqrt(prev.t);
  const double k = -0.5 / dt;
  const double reach = kKernelCut * std::sqrt(dt);
  std::vector<double> mp(prev.z.size());  // previous points on the score scale, increasing
  for (std::size_t i = 0; i < prev.z.size(); ++i) mp[i] = prev.z[i] * sp;

  SubDensity d;
  d.t = t;
  d.z = g.z;
  d.wf.resize(g.z.size());
  const std::size_t n = g.z.size();  // odd; g.z[n / 2] = 0, g.z[n - 1 - j] = -g.z[j]
  for (std::size_t j = n / 2; j < n; ++j) {
    const double s = g.z[j] * st;
    double f = 0.0;
    auto i = static_cast<std::size_t>(std::lower_bound(mp.begin(), mp.end(), s - reach) - mp.begin());
    for (; i < mp.size() && mp[i] <= s + reach; ++i) {
      const double u = s - mp[i];
      f += prev.wf[i] * std::exp(k * u * u);
    }
    d.wf[j] = g.w[j] * scale * f;
    d.wf[n - 1 - j] = d.wf[j];
  }
  return d;
}

// c with first_crossing(prev, c, t) = target > 0. first_crossing decreases in c. Bracket:
//   c_hi = z_{1 - target/2}: crossing <= P(|Z_j| >= c_hi) = target;
//   c_lo = z_{1 - spent_j/2} (spent_j = spent before + target): crossing >= P(|Z_j| >= c_lo) -
//   P(crossed before) = target.
// Both hold exactly; should the integration's own error move the crossing across one of them,
// the fallbacks always bracket: at c = 0 the crossing is all the mass still running
// (1 - spent before > target), at kTruncateAt it underflows to 0.
double solve_bound(const SubDensity& prev, double t, double target, double spent_total) {
  const auto g = [&](double c) { return first_crossing(prev, c, t) - target; };
  double lo = upper_quantile(0.5 * spent_total);
  double g_lo = g(lo);
  if (g_lo < 0.0) {
    lo = 0.0;
    g_lo = g(lo);
  }
  double hi = upper_quantile(0.5 * target);
  double g_hi = g(hi);
  if (g_hi > 0.0) {
    hi = kTruncateAt;
    g_hi = g(hi);
  }
  if (g_lo < 0.0 || g_hi > 0.0) {
    throw std::logic_error("ttfb::stats::group_sequential_bounds: cannot bracket the bound");
  }
  if (g_lo == 0.0) return lo;
  if (g_hi == 0.0) return hi;
  // 45 bits: c to ~ 3e-14 relative, far below the integration error.
  std::uintmax_t max_iter = 100;
  const auto [a, b] = boost::math::tools::toms748_solve(
      g, lo, hi, g_lo, g_hi, boost::math::tools::eps_tolerance<double>(45), max_iter);
  return 0.5 * (a + b);
}

}  // namespace

std::string_view to_string(Spending s) {
  switch (s) {
    case Spending::pocock: return "pocock";
    case Spending::obrien_fleming: return "obrien_fleming";
  }
  return "unknown";
}

std::optional<Spending> spending_from_string(std::string_view s) {
  if (s == "pocock") return Spending::pocock;
  if (s == "obrien_fleming") return Spending::obrien_fleming;
  return std::nullopt;
}

double spent_alpha(Spending s, double alpha, double t) {
  require_alpha("spent_alpha", alpha);
  if (!(t >= 0.0 && t <= 1.0)) {
    throw std::invalid_argument("ttfb::stats::spent_alpha: information fraction t = " +
                                std::to_string(t) + " must be in [0, 1]");
  }
  if (t == 0.0) return 0.0;
  if (t == 1.0) return alpha;  // exactly, whatever ln(e) or Phi(Phi^-1) round to
  switch (s) {
    case Spending::pocock:
      return alpha * std::log1p((std::numbers::e - 1.0) * t);
    case Spending::obrien_fleming:
      // Each side spends Lan-DeMets' one-sided 2 - 2 Phi(z_{1-a/2} / sqrt(t)) with a = alpha / 2
      // (see the header); 1 - Phi as an upper tail keeps tiny t's digits (down to ~ 1e-308).
      return 4.0 * upper_tail(upper_quantile(0.25 * alpha) / std::sqrt(t));
  }
  throw std::invalid_argument("ttfb::stats::spent_alpha: unknown spending function");
}

std::vector<double> group_sequential_bounds(Spending s, double alpha, std::span<const double> t) {
  require_alpha("group_sequential_bounds", alpha);
  require_fractions("group_sequential_bounds", t);

  std::vector<double> c(t.size());
  double spent_before = 0.0;
  // The first look has no history: c_1 = z_{1 - alpha(t_1)/2} in closed form.
  const double spent1 = spent_alpha(s, alpha, t[0]);
  c[0] = spent1 > 0.0 ? upper_quantile(0.5 * spent1) : kInf;
  spent_before = spent1;
  if (t.size() == 1) return c;

  SubDensity density = first_density(c[0], t[0], grid_step_at(t, 0));
  for (std::size_t j = 1; j < t.size(); ++j) {
    const double spent = spent_alpha(s, alpha, t[j]);
    const double target = spent - spent_before;
    c[j] = target > 0.0 ? solve_bound(density, t[j], target, spent) : kInf;
    spent_before = spent;
    if (j + 1 < t.size()) density = next_density(density, c[j], t[j], grid_step_at(t, j));
  }
  return c;
}

std::vector<double> nominal_alphas(Spending s, double alpha, std::span<const double> t) {
  std::vector<double> a = group_sequential_bounds(s, alpha, t);
  for (double& x : a) x = std::isinf(x) ? 0.0 : 2.0 * upper_tail(x);
  return a;
}

std::vector<double> cumulative_crossing(std::span<const double> bounds, std::span<const double> t) {
  require_fractions("cumulative_crossing", t);
  if (bounds.size() != t.size()) {
    throw std::invalid_argument("ttfb::stats::cumulative_crossing: " +
                                std::to_string(bounds.size()) + " bounds for " +
                                std::to_string(t.size()) + " looks");
  }
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!(bounds[i] > 0.0)) {
      throw std::invalid_argument("ttfb::stats::cumulative_crossing: bound[" + std::to_string(i) +
                                  "] = " + std::to_string(bounds[i]) + " must be > 0");
    }
  }
  std::vector<double> out(t.size());
  out[0] = std::isinf(bounds[0]) ? 0.0 : 2.0 * upper_tail(bounds[0]);
  if (t.size() == 1) return out;
  SubDensity density = first_density(bounds[0], t[0], grid_step_at(t, 0));
  for (std::size_t j = 1; j < t.size(); ++j) {
    out[j] = out[j - 1] + first_crossing(density, bounds[j], t[j]);
    if (j + 1 < t.size()) density = next_density(density, bounds[j], t[j], grid_step_at(t, j));
  }
  return out;
}

std::vector<LookPlan> plan_looks(Spending s, double alpha, int runs_per_block, int max_runs_per_arm) {
  require_alpha("plan_looks", alpha);
  if (runs_per_block < 1) {
    throw std::invalid_argument("ttfb::stats::plan_looks: runs_per_block " +
                                std::to_string(runs_per_block) + " must be at least 1");
  }
  if (max_runs_per_arm < runs_per_block) {
    throw std::invalid_argument("ttfb::stats::plan_looks: max_runs_per_arm " +
                                std::to_string(max_runs_per_arm) + " is below runs_per_block " +
                                std::to_string(runs_per_block));
  }
  const long long looks =
      (static_cast<long long>(max_runs_per_arm) + runs_per_block - 1) / runs_per_block;
  if (looks > static_cast<long long>(kMaxLooks)) {
    throw std::invalid_argument("ttfb::stats::plan_looks: " + std::to_string(looks) +
                                " looks (blocks of " + std::to_string(runs_per_block) + " up to " +
                                std::to_string(max_runs_per_arm) + "), more than kMaxLooks (" +
                                std::to_string(kMaxLooks) + ")");
  }
  std::vector<int> n;
  n.reserve(static_cast<std::size_t>(looks));
  for (long long k = 1; k <= looks; ++k) {
    n.push_back(static_cast<int>(std::min<long long>(k * runs_per_block, max_runs_per_arm)));
  }
  std::vector<double> t(n.size());
  for (std::size_t j = 0; j < n.size(); ++j) {
    t[j] = static_cast<double>(n[j]) / static_cast<double>(max_runs_per_arm);
  }
  const std::vector<double> c = group_sequential_bounds(s, alpha, t);
  std::vector<LookPlan> plan(n.size());
  for (std::size_t j = 0; j < n.size(); ++j) {
    plan[j] = LookPlan{n[j], t[j], c[j], std::isinf(c[j]) ? 0.0 : 2.0 * upper_tail(c[j])};
  }
  return plan;
}

}  // namespace ttfb::stats
