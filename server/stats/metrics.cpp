#include "server/stats/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace ttfb::stats {
namespace {

void check_share(double share, double tail_share = 0.0) {
  if (!(share >= 0.0 && share < 1.0)) {
    throw std::invalid_argument("the CPU time's share of alpha must be in [0, 1), got " + std::to_string(share));
  }
  if (!(tail_share >= 0.0 && share + tail_share < 1.0)) {
    throw std::invalid_argument("the tail's share of alpha must be >= 0 and, with CPU time's, below 1, got " +
                                std::to_string(tail_share));
  }
}

bool same_direction(Verdict cpu, double ttfb_effect_pct) {
  if (!std::isfinite(ttfb_effect_pct)) return false;
  if (cpu == Verdict::regression) return ttfb_effect_pct > 0.0;
  if (cpu == Verdict::improvement) return ttfb_effect_pct < 0.0;
  return false;
}

std::string g3(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.2f%%", x);
  return buf;
}

}  // namespace

std::string_view to_string(Metric m) { return m == Metric::ttfb ? "ttfb" : m == Metric::cpu_time ? "cpu_time" : "tail"; }

AdaptiveDesign design_for(const AdaptiveDesign& design, Metric m, double cpu_share, double tail_share) {
  check_share(cpu_share, tail_share);
  AdaptiveDesign d = design;
  d.alpha = design.alpha * (m == Metric::ttfb ? 1.0 - cpu_share - tail_share : m == Metric::cpu_time ? cpu_share : tail_share);
  return d;
}

TailLook tail_look(const TailComparison& t, double nominal_alpha, double threshold_pct) {
  TailLook l;
  l.comparison = t;
  l.nominal_alpha = nominal_alpha;
  if (!t.valid) return l;
  l.suspect = t.p_slower < kTailScreenP;
  if (t.p_slower < nominal_alpha / 2.0 && t.p90_change_pct >= threshold_pct) {
    l.outcome = Outcome::different;
    l.verdict = Verdict::regression;
  } else if (t.p_faster < nominal_alpha / 2.0 && t.p90_change_pct <= -threshold_pct) {
    l.outcome = Outcome::different;
    l.verdict = Verdict::improvement;
  }
  return l;
}

bool cpu_usable(std::span<const double> baseline, std::span<const double> candidate) {
  if (baseline.empty() || candidate.empty()) return false;
  for (auto arm : {baseline, candidate}) {
    for (double v : arm) {
      if (!(v > 0.0) || !std::isfinite(v)) return false;
    }
  }
  return true;
}

CombinedOutcome combine(const RulesOutcome& ttfb, const RulesOutcome* cpu, double ttfb_effect_pct) {
  CombinedOutcome out;
  out.rules = ttfb;
  if (ttfb.outcome != Outcome::unknown || cpu == nullptr) return out;  // rules 1 and 2
  if (cpu->outcome == Outcome::different && same_direction(cpu->verdict, ttfb_effect_pct)) {  // rule 3
    out.rules.outcome = Outcome::different;
    out.rules.verdict = cpu->verdict;
    out.decided_by = Metric::cpu_time;
  }
  return out;
}

TwoMetricLook decide_two_metrics(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                                 std::span<const double> cpu_baseline_ms, std::span<const double> cpu_candidate_ms,
                                 const AdaptiveDesign& design, double cpu_share, std::span<const long> baseline_jobs,
                                 std::span<const long> candidate_jobs, double tail_share) {
  check_share(cpu_share, tail_share);
  TwoMetricLook out;
  const bool with_cpu = cpu_share > 0.0 && cpu_usable(cpu_baseline_ms, cpu_candidate_ms);
  // Without CPU time its share is TTFB's again.
  const double used_cpu_share = with_cpu ? cpu_share : 0.0;
  if (with_cpu && (cpu_baseline_ms.size() != baseline_ms.size() || cpu_candidate_ms.size() != candidate_ms.size())) {
    throw std::invalid_argument("decide_two_metrics: the CPU times are not of the same runs as the TTFB values");
  }
  out.ttfb = decide_look(baseline_ms, candidate_ms, design_for(design, Metric::ttfb, used_cpu_share, tail_share),
                         baseline_jobs, candidate_jobs);
  out.decision = out.ttfb;
  if (with_cpu) {
    out.cpu = decide_look(cpu_baseline_ms, cpu_candidate_ms, design_for(design, Metric::cpu_time, cpu_share, tail_share),
                          baseline_jobs, candidate_jobs);
  }
  if (out.ttfb.look > 0 && tail_share > 0.0) {
    const auto plan = plan_looks(design_for(design, Metric::tail, used_cpu_share, tail_share));
    const auto j = static_cast<std::size_t>(out.ttfb.look) - 1;
    out.tail = tail_look(compare_tails(baseline_ms, candidate_ms, baseline_jobs, candidate_jobs), plan.at(j).nominal_alpha,
                         design.threshold_pct);
    const auto& t = *out.tail;
    const auto& tc = t.comparison;
    auto counts = [&] {
      return slow_counts(tc) + ", exact p " +
             g3(tc.p_slower) + ", 90th percentile " + pct(tc.p90_change_pct);
    };
    if (out.ttfb.outcome != Outcome::different && t.outcome == Outcome::different) {  // rule 1b
      out.decided_by = Metric::tail;
      out.decision.outcome = Outcome::different;
      out.decision.verdict = t.verdict;
      out.decision.more_runs = false;
      out.decision.reason = std::string(t.verdict == Verdict::regression ? "a slower tail: " : "a faster tail: ") + counts() +
                            " (level " + g3(t.nominal_alpha / 2.0) + " one-sided); TTFB " +
                            out.ttfb.reason;
      return out;
    }
    if (out.ttfb.outcome == Outcome::same && t.suspect) {  // rule 1c
      out.decision.outcome = Outcome::unknown;
      out.decision.more_runs = !out.ttfb.final;
      out.decision.verdict = Verdict::inconclusive;
      out.decision.reason = "TTFB within the margin, but not certified the same: " + counts() +
                            (out.ttfb.final ? "; no runs left: inconclusive" : "; another block");
      return out;
    }
  }
  if (!with_cpu || out.ttfb.look == 0) return out;  // before the first look: nothing to combine

  RulesOutcome t{out.ttfb.outcome, out.ttfb.verdict, out.ttfb.look, out.ttfb.runs_per_arm};
  RulesOutcome c{out.cpu->outcome, out.cpu->verdict, out.cpu->look, out.cpu->runs_per_arm};
  const auto& tw = out.ttfb.comparison.decision.welch;
  const CombinedOutcome combined = combine(t, &c, tw.valid ? tw.effect_pct : NAN);
  if (combined.decided_by != Metric::cpu_time) return out;
  out.decided_by = Metric::cpu_time;
  out.decision.outcome = combined.rules.outcome;
  out.decision.verdict = combined.rules.verdict;
  out.decision.more_runs = false;
  out.decision.reason = "CPU time to the first batch: " + out.cpu->reason + "; TTFB " + pct(tw.effect_pct) + " [" +
                        pct(tw.effect_ci_low_pct) + ", " + pct(tw.effect_ci_high_pct) + "], the same way";
  return out;
}

CombinedOutcome apply_two_metric_rules(std::span<const LookSummary> ttfb_looks, std::span<const LookSummary> cpu_looks,
                                       std::span<const LookPlan> ttfb_plan, std::span<const LookPlan> cpu_plan,
                                       double threshold_pct, double margin_pct) {
  if (ttfb_looks.empty() || ttfb_looks.size() > ttfb_plan.size())
    throw std::invalid_argument("apply_two_metric_rules: looks do not match the plan");
  const bool with_cpu = !cpu_looks.empty();
  if (with_cpu && (cpu_looks.size() != ttfb_looks.size() || cpu_plan.size() != ttfb_plan.size()))
    throw std::invalid_argument("apply_two_metric_rules: the CPU looks do not match the TTFB looks");
  CombinedOutcome out;
  for (std::size_t j = 0; j < ttfb_looks.size(); ++j) {
    RulesOutcome t = classify(ttfb_looks[j], ttfb_plan[j].nominal_alpha, threshold_pct, margin_pct);
    t.look = static_cast<int>(j) + 1;
    t.runs_per_arm = ttfb_plan[j].runs_per_arm;
    if (with_cpu) {
      RulesOutcome c = classify(cpu_looks[j], cpu_plan[j].nominal_alpha, threshold_pct, margin_pct);
      out = combine(t, &c, ttfb_looks[j].valid ? ttfb_looks[j].effect_pct : NAN);
    } else {
      out = combine(t, nullptr, 0.0);
    }
    if (out.rules.outcome != Outcome::unknown) break;
  }
  return out;
}

}  // namespace ttfb::stats
