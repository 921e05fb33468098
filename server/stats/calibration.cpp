#include "server/stats/calibration.hpp"

#include "common/json_number.hpp"
#include "server/stats/bootstrap.hpp"
#include "server/stats/confirm.hpp"
#include "server/stats/descriptive.hpp"

#include <boost/json.hpp>
#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace ttfb::stats {
namespace {
namespace json = boost::json;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("calibration: " + what);
}

void validate(std::span<const AaExperiment> pool, const CalibrationSettings& s) {
  require(!pool.empty(), "no A/A experiments to calibrate from");
  for (std::size_t i = 0; i < pool.size(); ++i) {
    for (const auto* arm : {&pool[i].baseline, &pool[i].candidate}) {
      const char* name = arm == &pool[i].baseline ? "baseline" : "candidate";
      require(arm->size() >= 2, "A/A experiment " + std::to_string(i) + " has " + std::to_string(arm->size()) + " " +
                                    name + " runs; at least 2 are needed");
      for (std::size_t j = 0; j < arm->size(); ++j) {
        const double x = (*arm)[j];
        require(std::isfinite(x) && x > 0.0, "A/A experiment " + std::to_string(i) + " " + name + " value " +
                                                 std::to_string(j) + " is not a positive finite number");
      }
    }
  }
  validate(s.design);
  require(std::isfinite(s.detection_floor_pct) && s.detection_floor_pct >= 0.0, "detection_floor_pct must be finite and >= 0");
  require(std::isfinite(s.extra_alert_rate) && s.extra_alert_rate >= 0.0, "extra_alert_rate must be >= 0");
  require(std::isfinite(s.fp_budget_per_week) && s.fp_budget_per_week > 0.0, "fp_budget_per_week must be > 0");
  require(std::isfinite(s.tests_per_week) && s.tests_per_week > 0.0, "tests_per_week must be > 0");
  require(s.null_experiments >= 100, "null_experiments must be at least 100");
  require(s.rerun_alpha > 0.0 && s.rerun_alpha < 0.5, "rerun_alpha must be in (0, 0.5)");
  require(s.max_rerun_runs_per_arm >= 0, "max_rerun_runs_per_arm must be >= 0");
  require(s.bootstrap_resamples >= 0 && s.bootstrap_resamples <= 1000, "bootstrap_resamples must be in 0..1000");
  for (double e : s.injected_effects_pct) {
    require(std::isfinite(e) && e > -100.0, "injected effects must be finite and above -100%");
  }
  for (std::size_t i = 0; i < s.k_grid.size(); ++i) {
    require(std::isfinite(s.k_grid[i]) && s.k_grid[i] >= 0.0, "k grid values must be finite and >= 0");
    require(i == 0 || s.k_grid[i] > s.k_grid[i - 1], "the k grid must be strictly increasing");
  }
}

// Every simulated experiment of one effect, as its looks: computed once, judged for every k.
std::vector<std::vector<LookSummary>> simulate(std::span<const AaExperiment> pool, const CalibrationSettings& s,
                                               std::span<const LookPlan> plan, double effect_pct, std::uint64_t seed) {
  std::mt19937_64 engine(seed);
  const auto n = static_cast<std::size_t>(plan.back().runs_per_arm);
  const double factor = 1.0 + effect_pct / 100.0;
  // Both arms of an A/A batch ran the same commit: their runs are one sample. Drawing both arms
  // from it keeps what differs between batches (a slower worker, a busier hour) out of the arm
  // difference, as it is in real experiments whose arms are interleaved on one worker. Drawing
  // each arm from its own arm would instead replay that batch's chance difference between its
  // arms as if it were systematic, with more runs than the batch had: false positives well
  // above alpha on pure noise.
  std::vector<std::vector<double>> pooled;
  for (const auto& aa : pool) {
    pooled.emplace_back(aa.baseline);
    pooled.back().insert(pooled.back().end(), aa.candidate.begin(), aa.candidate.end());
  }
  // Runs come in blocks, as in real experiments: each block of runs_per_block runs per arm is one
  // job, drawn from one A/A batch chosen at random for it (so blocks differ as jobs do), and the
  // looks use the job-blocked test the server uses (blocked.hpp).
  const auto block = static_cast<std::size_t>(s.design.runs_per_block);
  std::vector<double> b(n), c(n);
  std::vector<long> jobs(n);
  for (std::size_t i = 0; i < n; ++i) jobs[i] = static_cast<long>(i / block);
  std::vector<std::vector<LookSummary>> out;
  out.reserve(static_cast<std::size_t>(s.null_experiments));
  for (int e = 0; e < s.null_experiments; ++e) {
    const std::vector<double>* runs = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % block == 0) runs = &pooled[bootstrap_draw_index(engine, pooled.size())];
      b[i] = (*runs)[bootstrap_draw_index(engine, runs->size())];
      c[i] = factor * (*runs)[bootstrap_draw_index(engine, runs->size())];
    }
    out.push_back(summarize_looks(b, c, plan, jobs, jobs));
  }
  return out;
}

// The chance that the confirmation rerun of a first-stage regression reproduces it, if the true
// change is `effect_log` (see the header, step 4).
double reproduction_chance(const LookSummary& stop, const LookPlan& look, const CalibrationSettings& s, double threshold_pct,
                           double effect_log) {
  AdaptiveDesign d = s.design;
  d.threshold_pct = threshold_pct;
  const RerunPlan plan = plan_rerun(stop, look.runs_per_arm, d, s.rerun_alpha, s.max_rerun_runs_per_arm);
  const double sigma = plan.sigma_pct / 100.0;
  const double t_log = std::log1p(threshold_pct / 100.0);
  const boost::math::normal z;
  const double z_alpha = boost::math::quantile(boost::math::complement(z, s.rerun_alpha));
  if (!(sigma > 0.0)) return effect_log >= t_log ? 1.0 : 0.0;
  const double se = sigma * std::sqrt(2.0 / plan.runs_per_arm);
  return boost::math::cdf(z, (effect_log - std::max(z_alpha * se, t_log)) / se);
}

// The modelled alert rate of null experiments at a threshold, and what it is made of.
struct AlertRate {
  double rate = 0.0;
  std::size_t regressions = 0, different = 0;
  double runs = 0.0;  // runs per arm, summed
};

AlertRate alert_rate(const std::vector<std::vector<LookSummary>>& nulls, std::span<const LookPlan> plan,
                     const CalibrationSettings& s, double threshold_pct) {
  AlertRate a;
  double alerts = 0.0;
  for (const auto& looks : nulls) {
    const RulesOutcome r = apply_rules(looks, plan, threshold_pct, s.design.margin_pct);
    a.runs += r.runs_per_arm;
    if (r.outcome == Outcome::different) ++a.different;
    if (r.verdict != Verdict::regression) continue;
    ++a.regressions;
    const auto j = static_cast<std::size_t>(r.look) - 1;
    alerts += reproduction_chance(looks[j], plan[j], s, threshold_pct, 0.0);
  }
  a.rate = nulls.empty() ? 0.0 : alerts / static_cast<double>(nulls.size());
  return a;
}

}  // namespace

std::pair<double, double> wilson_interval(std::size_t successes, std::size_t n) {
  if (n == 0) return {0.0, 1.0};
  const double z = 1.959963984540054;
  const double p = static_cast<double>(successes) / static_cast<double>(n);
  const double nn = static_cast<double>(n);
  const double denom = 1.0 + z * z / nn;
  const double centre = (p + z * z / (2.0 * nn)) / denom;
  const double half = z * std::sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

Calibration calibrate(std::span<const AaExperiment> pool, const CalibrationSettings& settings) {
  validate(pool, settings);
  Calibration out;
  out.settings = settings;
  if (out.settings.k_grid.empty()) {
    for (int i = 0; i <= 40; ++i) out.settings.k_grid.push_back(i / 10.0);
  }
  const CalibrationSettings& s = out.settings;
  out.aa_experiments = pool.size();
  for (const auto& aa : pool) out.samples += aa.baseline.size() + aa.candidate.size();
  out.target_fpr = s.fp_budget_per_week / s.tests_per_week;

  const auto plan = plan_looks(s.design);
  // Each effect gets its own stream (seed + index) so adding an effect does not change the others.
  const auto nulls = simulate(pool, s, plan, 0.0, s.seed);
  std::vector<std::vector<std::vector<LookSummary>>> injected;
  for (std::size_t i = 0; i < s.injected_effects_pct.size(); ++i) {
    injected.push_back(simulate(pool, s, plan, s.injected_effects_pct[i], s.seed + 1 + i));
  }

  std::vector<double> first_look_effects;
  for (const auto& looks : nulls) {
    if (looks.front().valid) first_look_effects.push_back(looks.front().effect_pct);
  }
  out.sigma_aa_pct = first_look_effects.size() >= 2 ? stddev(first_look_effects) : 0.0;

  const auto total = static_cast<double>(s.null_experiments);
  bool chosen = false;
  for (double k : s.k_grid) {
    RocPoint point;
    point.k = k;
    point.threshold_pct = std::max(s.detection_floor_pct, k * out.sigma_aa_pct);
    const AlertRate null = alert_rate(nulls, plan, s, point.threshold_pct);
    point.fpr = null.rate + s.extra_alert_rate;
    point.first_stage_fpr = static_cast<double>(null.different) / total;
    std::vector<EffectPower> power;
    for (std::size_t i = 0; i < injected.size(); ++i) {
      double confirmed = 0.0, runs = 0.0;
      const double effect_log = std::log1p(s.injected_effects_pct[i] / 100.0);
      for (const auto& looks : injected[i]) {
        const RulesOutcome r = apply_rules(looks, plan, point.threshold_pct, s.design.margin_pct);
        runs += r.runs_per_arm;
        if (r.verdict != Verdict::regression) continue;
        const auto j = static_cast<std::size_t>(r.look) - 1;
        confirmed += reproduction_chance(looks[j], plan[j], s, point.threshold_pct, effect_log);
      }
      point.tpr.push_back(confirmed / total);
      power.push_back(EffectPower{s.injected_effects_pct[i], point.tpr.back(), runs / total});
    }
    const bool last = k == s.k_grid.back();
    const bool within = point.fpr * kSafetyFactor <= out.target_fpr;
    if (!chosen && (within || last)) {
      chosen = true;
      out.k = k;
      out.threshold_pct = point.threshold_pct;
      out.achieved_fpr = point.fpr;
      out.first_stage_fpr = point.first_stage_fpr;
      const auto [lo, hi] = wilson_interval(null.regressions, nulls.size());
      out.achieved_fpr_ci_low = std::min(lo * s.rerun_alpha + s.extra_alert_rate, point.fpr);
      out.achieved_fpr_ci_high = std::max(hi * s.rerun_alpha + s.extra_alert_rate, point.fpr);
      out.budget_met = within;
      out.null_mean_runs_per_arm = null.runs / total;
      out.power = power;
    }
    out.roc.push_back(std::move(point));
  }
  // The rate's uncertainty comes mostly from which A/A batches the pool happens to hold, not from
  // the number of simulated experiments: resample whole batches (jobs), simulate again, and take
  // the 2.5% and 97.5% quantiles of the rates at the chosen threshold.
  if (pool.size() >= 2 && s.bootstrap_resamples > 0) {
    std::mt19937_64 engine(s.seed ^ 0x9e3779b97f4a7c15ULL);
    CalibrationSettings each = s;
    each.null_experiments = std::max(200, s.null_experiments / 10);
    std::vector<double> rates;
    std::vector<AaExperiment> resampled(pool.size());
    for (int b = 0; b < s.bootstrap_resamples; ++b) {
      for (auto& aa : resampled) aa = pool[bootstrap_draw_index(engine, pool.size())];
      const auto draws = simulate(resampled, each, plan, 0.0, s.seed + 1000 + static_cast<std::uint64_t>(b));
      rates.push_back(alert_rate(draws, plan, each, out.threshold_pct).rate + s.extra_alert_rate);
    }
    out.achieved_fpr_ci_low = std::min(quantile(rates, 0.025), out.achieved_fpr);
    out.achieved_fpr_ci_high = std::max(quantile(rates, 0.975), out.achieved_fpr);
    out.achieved_fpr_ci_method = "bootstrap of the A/A batches";
  }
  for (const auto& p : out.power) {
    if (p.power >= 0.9 && (out.smallest_effect_90_pct < 0.0 || p.effect_pct < out.smallest_effect_90_pct)) {
      out.smallest_effect_90_pct = p.effect_pct;
    }
  }
  return out;
}

json::object to_json(const Calibration& c) {
  const auto& s = c.settings;
  json::array power, roc, effects;
  for (const auto& p : c.power) {
    power.push_back(json::object{{"effect_pct", p.effect_pct}, {"power", p.power}, {"mean_runs_per_arm", p.mean_runs_per_arm}});
  }
  for (double e : s.injected_effects_pct) effects.push_back(e);
  for (const auto& p : c.roc) {
    json::array tpr;
    for (double t : p.tpr) tpr.push_back(t);
    roc.push_back(json::object{{"k", p.k}, {"threshold_pct", p.threshold_pct}, {"fpr", p.fpr},
                               {"first_stage_fpr", p.first_stage_fpr}, {"tpr", std::move(tpr)}});
  }
  return json::object{
      {"aa_experiments", c.aa_experiments},
      {"samples", c.samples},
      {"sigma_aa_pct", json_number(c.sigma_aa_pct)},
      {"k", c.k},
      {"threshold_pct", json_number(c.threshold_pct)},
      {"detection_floor_pct", s.detection_floor_pct},
      {"equivalence_margin_pct", s.design.margin_pct},
      {"target_fpr", c.target_fpr},
      {"achieved_fpr", c.achieved_fpr},
      {"achieved_fpr_ci", json::array{c.achieved_fpr_ci_low, c.achieved_fpr_ci_high}},
      {"fpr_counts", "alerts: a first-stage regression a rerun reproduces, per workflow-test"},
      {"achieved_fpr_ci_method", c.achieved_fpr_ci_method},
      {"first_stage_fpr", c.first_stage_fpr},
      {"safety_factor", kSafetyFactor},
      {"other_metrics_alert_bound", s.extra_alert_rate},
      {"rerun_alpha", s.rerun_alpha},
      {"budget_met", c.budget_met},
      {"fp_budget_per_week", s.fp_budget_per_week},
      {"tests_per_week", s.tests_per_week},
      {"null_experiments", s.null_experiments},
      {"null_mean_runs_per_arm", c.null_mean_runs_per_arm},
      {"power", std::move(power)},
      {"smallest_effect_90_pct", c.smallest_effect_90_pct < 0 ? json::value(nullptr) : json::value(c.smallest_effect_90_pct)},
      {"injected_effects_pct", std::move(effects)},
      {"roc", std::move(roc)},
      {"design", json::object{{"alpha", s.design.alpha},
                              {"runs_per_block", s.design.runs_per_block},
                              {"max_runs_per_arm", s.design.max_runs_per_arm},
                              {"spending", to_string(s.design.spending)}}},
      {"seed", s.seed},
  };
}

}  // namespace ttfb::stats
