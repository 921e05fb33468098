// Group-sequential boundaries with Lan-DeMets alpha spending: the arithmetic behind the adaptive
// design (adaptive.hpp), which looks at the data after every block of runs and must not inflate
// the false-positive rate by looking repeatedly. Testing at alpha at every look and stopping at
// the first p < alpha rejects a true "no change" far more often than alpha; here look j tests at
// a smaller nominal level, chosen so that the chance of EVER crossing a boundary is alpha.
//
//   std::vector<ttfb::stats::LookPlan> plan =
//       ttfb::stats::plan_looks(ttfb::stats::Spending::obrien_fleming, 0.05, 10, 50);
//   // 5 looks at 10, 20, ..., 50 runs per arm, info_fraction 0.2, 0.4, ..., 1;
//   // z_bound        4.877    3.357    2.680    2.290   2.031
//   // nominal_alpha  1.1e-6   7.9e-4   7.4e-3   0.022   0.042
//   // Look j rejects "no change" when |Z_j| >= z_bound, i.e. its two-sided p < nominal_alpha.
//
// The model (Jennison & Turnbull 2000, ch. 2, 7). Z_j is the standardised statistic at look j
// and t_j in (0, 1] the information fraction (runs so far / the maximum). Under H0 the score
// S_j = Z_j sqrt(t_j) is a standard Brownian motion observed at t_j: independent normal
// increments of variance t_j - t_{j-1}. The two-sided boundaries c_1..c_K satisfy, for every j,
//     P(|Z_1| >= c_1 or ... or |Z_j| >= c_j) = spent_alpha(s, alpha, t_j),
// i.e. look j spends exactly spent_alpha(t_j) - spent_alpha(t_{j-1}).
//
// Spending functions (Lan & DeMets 1983), alpha two-sided and split equally between the sides:
//     pocock          alpha ln(1 + (e - 1) t)
//     obrien_fleming  2 (2 - 2 Phi(z_{1-alpha/4} / sqrt(t)))
// Lan & DeMets' O'Brien-Fleming-type function is one-sided, 2 - 2 Phi(z_{1-a/2} / sqrt(t)) at
// level a; a two-sided test at alpha spends it on each side at a = alpha / 2. That is the
// convention of the published tables and of R's ldbounds and gsDesign (K = 5 at 0.05: 4.877,
// 3.357, 2.680, 2.290, 2.031). Plugging the two-sided alpha into the one-sided formula instead
// (2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) in total) would spend more early: 4.383, ..., 2.064. The
// Pocock-type function is linear in alpha, so both readings agree for it.
// "pocock" is Lan-DeMets' Pocock-TYPE spending, not Pocock's (1977) constant boundary: for K = 5
// equally spaced looks at 0.05 it gives 2.438, 2.427, 2.410, 2.397, 2.386, where Pocock's
// constant is 2.413 at every look (and "obrien_fleming" is not O'Brien & Fleming's 1979 boundary
// 2.040 sqrt(5 / j) either). cumulative_crossing evaluates such classical boundaries.
//
// How: exact recursive numerical integration (Armitage, McPherson & Rowe 1969; Jennison &
// Turnbull 2000, ch. 19). The H0 sub-density of Z_j on the continuation region (-c_j, c_j) is
// carried on a composite-Simpson grid (step 0.06, finer when two looks are close, growing beyond
// |z| = 6 where the density is negligible), and each c_j is found by a root finder (TOMS 748) on
// the probability of first crossing at look j, a one-dimensional integral against the previous
// sub-density; c_1 is closed-form. Accuracy: the crossing probabilities of the bounds are within
// 1e-6 absolute of the spent alpha (against the same recursion on a 12 times finer grid:
// <= 4e-7 up to 200 looks, ~ 1e-8 for 12). The tests hold the bounds to R's integrate() (K <= 3)
// and to an independent R Simpson recursion on a 15 times finer grid (K <= 20) within 1e-6, and
// a Monte Carlo of 1e7 Brownian paths within 4 standard errors
// (tests/data/stats/make_reference_sequential.R).
// Cost grows about linearly in K: ~ 1 ms for 12 looks, ~ 2 ms for 20, ~ 5 ms for 50.
//
// Edge cases (all defined):
// - alpha not strictly in (0, 1), or NaN: std::invalid_argument (every function taking alpha).
// - t: empty, NaN, t_1 <= 0, t_K > 1, not strictly increasing, two looks closer than
//   kMinRelativeIncrement, or more than kMaxLooks looks: std::invalid_argument naming the index.
// - t_K < 1: the last look spends only spent_alpha(t_K) (the total false-positive rate is then
//   below alpha); pass t_K = 1 to spend everything at the final look.
// - One look at t = 1: c_1 = z_{1-alpha/2} exactly (the fixed design). In general
//   c_1 = z_{1 - spent_alpha(t_1)/2}; only later looks need the integration.
// - A look whose increment of spent alpha underflows to 0 (obrien_fleming at tiny t, e.g.
//   t_1 = 1e-3: 4 Phi(-70) is below the smallest double) gets c_j = +infinity and nominal alpha
//   0: it can never reject.
// - spent_alpha: t NaN or outside [0, 1] throws; it is 0 at t = 0 and exactly alpha at t = 1.
// - plan_looks: runs_per_block < 1, max_runs_per_arm < runs_per_block, or more than kMaxLooks
//   looks: std::invalid_argument. When runs_per_block does not divide max_runs_per_arm the last
//   block is shorter (blocks of 10 up to 25: looks at 10, 20, 25). The last look is at t = 1.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace ttfb::stats {

// Two looks closer than this (t_j - t_{j-1} < kMinRelativeIncrement t_{j-1}) are refused: the
// second adds next to no information (a look one run after another at 10 000 runs), and the
// integration grid would need ever finer steps to resolve so small an increment (see
// sequential.cpp). plan_looks only meets it beyond 10 000 runs per arm.
inline constexpr double kMinRelativeIncrement = 1e-4;

// More looks than this is a misuse (a look after every run of a 10 000-run budget), not a design:
// refused so that a bad workflow cannot make the server integrate for seconds (1000 equally
// spaced looks take ~ 0.15 s, 1000 looks as close as kMinRelativeIncrement allows ~ 0.4 s).
inline constexpr std::size_t kMaxLooks = 1000;

enum class Spending { pocock, obrien_fleming };

std::string_view to_string(Spending s);  // "pocock", "obrien_fleming"
// Inverse of to_string (exact, case-sensitive); nullopt for anything else.
std::optional<Spending> spending_from_string(std::string_view s);

// Cumulative two-sided alpha spent by information fraction t in [0, 1] (formulas above).
// Non-decreasing in t, 0 at t = 0, alpha at t = 1 (exactly).
double spent_alpha(Spending s, double alpha, double t);

// Two-sided z boundaries c_1..c_K for looks at cumulative information fractions
// 0 < t_1 < ... < t_K <= 1 (see above). c_j = +infinity only where spending underflows.
std::vector<double> group_sequential_bounds(Spending s, double alpha, std::span<const double> t);

// The nominal two-sided significance level of each look, 2 (1 - Phi(c_j)): look j rejects when
// its ordinary two-sided p-value is below this. nominal_j = P(|Z_j| >= c_j) <= spent_alpha(t_j)
// <= alpha (equal to alpha only for one look at t = 1), and they sum to at least the alpha spent
// by the last look (union bound): looking repeatedly costs each look some of its level.
std::vector<double> nominal_alphas(Spending s, double alpha, std::span<const double> t);

// For ANY two-sided boundaries (not only spending ones, e.g. Pocock's constant 2.413 at each of 5
// looks): the cumulative H0 probabilities P(|Z_i| >= c_i for some i <= j), j = 1..K, by the same
// integration. bounds.size() must equal t.size(); bounds must be > 0 (+infinity allowed, a look
// that never rejects), else std::invalid_argument; t as for group_sequential_bounds.
std::vector<double> cumulative_crossing(std::span<const double> bounds, std::span<const double> t);

// Convenience for equally sized blocks: looks after b, 2b, ... runs per arm, the last one at
// max_runs_per_arm (that block may be shorter), t_j = n_j / max_runs_per_arm.
struct LookPlan {
  int runs_per_arm;       // n_j, runs per arm at look j
  double info_fraction;   // t_j = n_j / max_runs_per_arm
  double z_bound;         // c_j: reject at look j when |Z_j| >= z_bound
  double nominal_alpha;   // 2 (1 - Phi(c_j)): reject when the look's two-sided p < this
};
std::vector<LookPlan> plan_looks(Spending s, double alpha, int runs_per_block, int max_runs_per_arm);

}  // namespace ttfb::stats
