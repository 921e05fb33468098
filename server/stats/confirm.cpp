#include "server/stats/confirm.hpp"

#include "common/json_number.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ttfb::stats {
namespace {

void require_levels(double rerun_alpha, double target_power) {
  if (!(rerun_alpha > 0.0 && rerun_alpha < 0.5))
    throw std::invalid_argument("confirmation rerun: rerun_alpha must be in (0, 0.5), got " + std::to_string(rerun_alpha));
  if (!(target_power > 0.5 && target_power < 1.0))
    throw std::invalid_argument("confirmation rerun: target power must be in (0.5, 1), got " + std::to_string(target_power));
}

}  // namespace

RerunPlan plan_rerun(const LookSummary& look, int runs_per_arm, const AdaptiveDesign& design, double rerun_alpha,
                     int max_runs_per_arm, double target_power) {
  validate(design);
  require_levels(rerun_alpha, target_power);
  const boost::math::normal z;
  const double z_alpha = boost::math::quantile(boost::math::complement(z, rerun_alpha));
  const double z_power = boost::math::quantile(z, target_power);
  const int block = design.runs_per_block;
  if (max_runs_per_arm < 0) throw std::invalid_argument("confirmation rerun: the cap must be >= 0");
  const int cap = max_runs_per_arm > 0 ? std::max(max_runs_per_arm, block) : design.max_runs_per_arm;
  RerunPlan p;
  const double threshold_log = std::log1p(design.threshold_pct / 100.0);
  // The end of the first stage's interval nearer 0, as a size (0 when it crosses 0).
  const double near_end = look.valid ? std::max(0.0, std::min(std::fabs(look.diff_ci_low), std::fabs(look.diff_ci_high))) : 0.0;
  const bool same_sign = look.valid && look.diff_ci_low * look.diff_ci_high > 0.0;
  const double delta = std::max(threshold_log, same_sign ? near_end : 0.0);
  p.sized_for_pct = 100.0 * std::expm1(delta);
  const double sigma = look.valid && runs_per_arm > 0 ? look.se * std::sqrt(runs_per_arm / 2.0) : 0.0;
  p.sigma_pct = 100.0 * sigma;
  if (!(sigma > 0.0) || !(delta > 0.0) || !std::isfinite(sigma)) {
    p.runs_per_arm = std::min(block, cap);
  } else {
    const double n = 2.0 * sigma * sigma * (z_alpha + z_power) * (z_alpha + z_power) / (delta * delta);
    const double jobs = std::max(1.0, std::ceil(n / block));
    const double wanted = jobs * block;
    p.capped = wanted > cap;
    p.runs_per_arm = p.capped ? cap : static_cast<int>(wanted);
  }
  p.jobs = (p.runs_per_arm + block - 1) / block;
  p.power = sigma > 0.0 && delta > 0.0 ? boost::math::cdf(z, delta / (sigma * std::sqrt(2.0 / p.runs_per_arm)) - z_alpha) : 1.0;
  return p;
}

RerunResult judge_rerun(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                        std::span<const long> baseline_jobs, std::span<const long> candidate_jobs,
                        const AdaptiveDesign& design, double rerun_alpha, bool slower) {
  validate(design);
  require_levels(rerun_alpha, 0.9);
  RerunResult r;
  const Policy policy{2.0 * rerun_alpha, design.threshold_pct, 1.0 - 2.0 * rerun_alpha, design.margin_pct};
  r.comparison = compare_arms(baseline_ms, candidate_ms, policy, baseline_jobs, candidate_jobs);
  const WelchResult& w = r.comparison.decision.welch;
  if (!w.valid) return r;
  const bool right_way = slower ? w.diff_log > 0.0 : w.diff_log < 0.0;
  r.one_sided_p = right_way ? w.p_value / 2.0 : 1.0 - w.p_value / 2.0;
  const bool big_enough = slower ? w.effect_pct >= design.threshold_pct : w.effect_pct <= -design.threshold_pct;
  r.reproduced = r.one_sided_p < rerun_alpha && big_enough;
  return r;
}

boost::json::object to_json(const RerunPlan& p) {
  return boost::json::object{{"runs_per_arm", p.runs_per_arm},   {"jobs", p.jobs},
                             {"sized_for_pct", json_number(p.sized_for_pct)}, {"sigma_pct", json_number(p.sigma_pct)},
                             {"power", json_number(p.power)},    {"capped", p.capped}};
}

}  // namespace ttfb::stats
