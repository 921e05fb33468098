#include "server/stats/adaptive.hpp"

#include "server/stats/blocked.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace ttfb::stats {
namespace {

std::string fmt(const char* f, double a, double b = 0.0, double c = 0.0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c);
  return buf;
}

std::string look_words(const LookDecision& d) {
  return "look " + std::to_string(d.look) + " of " + std::to_string(d.looks_planned) + " (" +
         std::to_string(d.runs_per_arm) + " runs per arm" + fmt(", level %.3g)", d.nominal_alpha);
}

}  // namespace

LookSummary summary_of(const WelchResult& w) {
  return LookSummary{w.valid, w.p_value, w.diff_ci_low, w.diff_ci_high, w.effect_pct, w.effect_ci_low_pct, w.effect_ci_high_pct,
                     w.se};
}

LookSummary summary_of(const PairedResult& t) {
  return LookSummary{t.valid, t.p_value, t.diff_ci_low, t.diff_ci_high, t.effect_pct, t.effect_ci_low_pct, t.effect_ci_high_pct,
                     t.se};
}

namespace {

// Significant, the CI on one side of 0, but the effect under the threshold.
bool significant_but_small(const LookSummary& w, double nominal_alpha, double threshold_pct) {
  return w.valid && w.p_value < nominal_alpha && (w.ci_low_pct > 0.0 || w.ci_high_pct < 0.0) &&
         std::fabs(w.effect_pct) < threshold_pct;
}

}  // namespace

std::string_view to_string(Outcome o) {
  switch (o) {
    case Outcome::different: return "different";
    case Outcome::same: return "same";
    case Outcome::unknown: return "unknown";
  }
  return "unknown";
}

void validate(const AdaptiveDesign& d) {
  if (!(d.alpha > 0.0 && d.alpha <= 0.5)) {
    throw std::invalid_argument(fmt("adaptive design: alpha must be in (0, 0.5], got %g", d.alpha));
  }
  if (!std::isfinite(d.threshold_pct) || d.threshold_pct < 0.0) {
    throw std::invalid_argument(fmt("adaptive design: threshold_pct must be a finite number >= 0, got %g", d.threshold_pct));
  }
  if (!std::isfinite(d.margin_pct) || d.margin_pct < 0.0) {
    throw std::invalid_argument(fmt("adaptive design: margin_pct must be a finite number >= 0, got %g", d.margin_pct));
  }
  if (d.runs_per_block < 2) {
    throw std::invalid_argument("adaptive design: runs_per_block must be at least 2, got " + std::to_string(d.runs_per_block));
  }
  if (d.max_runs_per_arm < d.runs_per_block) {
    throw std::invalid_argument("adaptive design: max_runs_per_arm (" + std::to_string(d.max_runs_per_arm) +
                                ") must be at least runs_per_block (" + std::to_string(d.runs_per_block) + ")");
  }
}

std::vector<LookPlan> plan_looks(const AdaptiveDesign& design) {
  validate(design);
  return plan_looks(design.spending, design.alpha, design.runs_per_block, design.max_runs_per_arm);
}

LookDecision decide_look(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                         const AdaptiveDesign& design, std::span<const long> baseline_jobs,
                         std::span<const long> candidate_jobs) {
  const auto plan = plan_looks(design);
  LookDecision d;
  d.looks_planned = static_cast<int>(plan.size());
  d.runs_per_arm = static_cast<int>(std::min(baseline_ms.size(), candidate_ms.size()));
  for (std::size_t j = 0; j < plan.size(); ++j) {
    if (plan[j].runs_per_arm <= d.runs_per_arm) d.look = static_cast<int>(j) + 1;
  }
  if (d.look == 0) {
    // Before the first look: validate the values anyway (bad input must not wait for more runs).
    d.comparison = compare_arms(baseline_ms, candidate_ms,
                                Policy{design.alpha, design.threshold_pct, 1.0 - design.alpha, design.margin_pct},
                                baseline_jobs, candidate_jobs);
    d.more_runs = true;
    d.reason = "fewer than the first look's " + std::to_string(plan.front().runs_per_arm) + " runs per arm";
    return d;
  }
  const LookPlan& look = plan[static_cast<std::size_t>(d.look) - 1];
  d.final = d.look == d.looks_planned;
  d.nominal_alpha = look.nominal_alpha;
  const Policy policy{d.nominal_alpha, design.threshold_pct, 1.0 - d.nominal_alpha, design.margin_pct};
  d.comparison = compare_arms(baseline_ms, candidate_ms, policy, baseline_jobs, candidate_jobs);
  const WelchResult& w = d.comparison.decision.welch;
  const RulesOutcome r = classify(summary_of(w), d.nominal_alpha, design.threshold_pct, design.margin_pct);
  d.outcome = r.outcome;
  d.verdict = r.verdict;
  d.more_runs = r.outcome == Outcome::unknown && !d.final;
  const std::string effect =
      w.valid ? fmt("%+.2f%% [%+.2f, %+.2f]", w.effect_pct, w.effect_ci_low_pct, w.effect_ci_high_pct)
              : "not enough samples: " + w.reason;
  if (r.outcome == Outcome::different) {
    d.reason = d.comparison.decision.reason + " at " + look_words(d);
  } else if (r.outcome == Outcome::same) {
    d.reason = fmt("the same within the %.3g%% equivalence margin: ", design.margin_pct) + effect + " at " + look_words(d);
  } else if (d.more_runs) {
    d.reason = effect + ": neither different nor the same yet at " + look_words(d) + "; another block";
  } else if (significant_but_small(summary_of(w), d.nominal_alpha, design.threshold_pct)) {
    d.reason = effect + fmt(": significant but below the %.3g%% detection threshold, and not within the %.3g%% "
                            "equivalence margin, after ", design.threshold_pct, design.margin_pct) +
               look_words(d) + ", the last the runs budget allows";
  } else {
    d.reason = effect + fmt(": neither different nor within the %.3g%% equivalence margin after ", design.margin_pct) +
               look_words(d) + ", the last the runs budget allows";
  }
  return d;
}

RulesOutcome classify(const LookSummary& w, double nominal_alpha, double threshold_pct, double margin_pct) {
  RulesOutcome r;
  if (w.valid && w.p_value < nominal_alpha) {
    if (w.ci_low_pct > 0.0 && w.effect_pct >= threshold_pct) {
      r.outcome = Outcome::different;
      r.verdict = Verdict::regression;
      return r;
    }
    if (w.ci_high_pct < 0.0 && w.effect_pct <= -threshold_pct) {
      r.outcome = Outcome::different;
      r.verdict = Verdict::improvement;
      return r;
    }
  }
  const double margin_log = std::log1p(margin_pct / 100.0);
  if (w.valid && margin_pct > 0.0 && w.diff_ci_low > -margin_log && w.diff_ci_high < margin_log) {
    r.outcome = Outcome::same;
    r.verdict = Verdict::no_change;
    return r;
  }
  r.outcome = Outcome::unknown;
  r.verdict = Verdict::inconclusive;
  return r;
}

std::vector<LookSummary> summarize_looks(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                                         std::span<const LookPlan> plan, std::span<const long> baseline_jobs,
                                         std::span<const long> candidate_jobs) {
  const bool labelled = !baseline_jobs.empty() || !candidate_jobs.empty();
  if (labelled && (baseline_jobs.size() != baseline_ms.size() || candidate_jobs.size() != candidate_ms.size())) {
    throw std::invalid_argument("summarize_looks: job labels do not match the values");
  }
  std::vector<LookSummary> out;
  out.reserve(plan.size());
  for (const LookPlan& look : plan) {
    const auto n = static_cast<std::size_t>(look.runs_per_arm);
    if (baseline_ms.size() < n || candidate_ms.size() < n) {
      throw std::invalid_argument("summarize_looks: the arms have " + std::to_string(baseline_ms.size()) + " and " +
                                  std::to_string(candidate_ms.size()) + " runs, a look needs " + std::to_string(n));
    }
    const PooledOutliers o = remove_outliers_pooled(baseline_ms.first(n), candidate_ms.first(n));
    if (labelled && several_jobs(baseline_jobs.first(n), candidate_jobs.first(n))) {
      // As compare_arms does it for decide_look, without the rank test and TOST nobody reads here.
      const auto bj = kept_labels(baseline_jobs.first(n), o.baseline);
      const auto cj = kept_labels(candidate_jobs.first(n), o.candidate);
      out.push_back(summary_of(blocked_log_t_test(o.baseline.kept, bj, o.candidate.kept, cj, 1.0 - look.nominal_alpha)));
      continue;
    }
    out.push_back(summary_of(welch_log_t_test(o.baseline.kept, o.candidate.kept, 1.0 - look.nominal_alpha)));
  }
  return out;
}

RulesOutcome apply_rules(std::span<const LookSummary> looks, std::span<const LookPlan> plan, double threshold_pct,
                         double margin_pct) {
  if (looks.empty() || looks.size() > plan.size()) throw std::invalid_argument("apply_rules: looks do not match the plan");
  RulesOutcome r;
  for (std::size_t j = 0; j < looks.size(); ++j) {
    r = classify(looks[j], plan[j].nominal_alpha, threshold_pct, margin_pct);
    r.look = static_cast<int>(j) + 1;
    r.runs_per_arm = plan[j].runs_per_arm;
    if (r.outcome != Outcome::unknown) break;
  }
  return r;
}

boost::json::object to_json(const LookDecision& d) {
  return boost::json::object{{"look", d.look},
                             {"looks_planned", d.looks_planned},
                             {"runs_per_arm", d.runs_per_arm},
                             {"final", d.final},
                             {"nominal_alpha", d.nominal_alpha},
                             {"outcome", to_string(d.outcome)},
                             {"more_runs", d.more_runs}};
}

}  // namespace ttfb::stats
