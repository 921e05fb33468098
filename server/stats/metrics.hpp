// Three looks per verdict: TTFB; the workload's CPU time to its first batch (user + system of all
// its processes, read from the run's cgroup as the first batch arrives); and the slow tail
// (tail.hpp: the outlier rule's slow runs counted per arm). TTFB is what people wait for; CPU time
// is the work done before it, and it does not count the time a run waited for a core. On a shared
// machine the waits are most of the noise (two workers on two cores: 13.8% spread in TTFB against
// 3.4% alone), so a CPU-bound regression (an import, parsing, a repr) is seen through them in CPU
// time long before TTFB's interval clears zero. The tail sees what the outlier rule takes out of
// TTFB's test: some start-ups much slower, the rest alike.
//
//   TwoMetricLook l = decide_two_metrics(ttfb_b, ttfb_c, cpu_b, cpu_c, design, 0.15, jobs_b, jobs_c, 0.05);
//   l.decision;     // what the workflow does next (its comparison is TTFB's: the headline numbers)
//   l.decided_by;   // Metric::ttfb, Metric::cpu_time or Metric::tail
//
// The alpha split (Bonferroni): TTFB is tested at alpha (1 - cpu_share - tail_share), CPU time at
// alpha cpu_share and the tail at alpha tail_share, each with its own spending plan over the same
// looks (adaptive.hpp), so under no change the chance that any crosses is at most alpha. The rerun
// judges the metric that decided, at rerun_alpha (confirm.hpp; the tail's by its own test): the
// alert rate of all of them together is at most alpha / 2 x rerun_alpha.
//
// The rules at a look, in order (T the detection threshold, M the equivalence margin, for both):
//   1. TTFB different: TTFB decides (regression or improvement).
//   1b. The tail different (tail_share > 0; more slow runs at the tail's level and a 90th
//      percentile T slower): the tail decides, even when TTFB is the same: the outlier rule took
//      the slow runs out of TTFB's test, and a slow tail is a regression, not an outlier.
//   1c. TTFB the same but the tail suspect (exact p < kTailScreenP): not the same: another block.
//   2. TTFB the same (its CI inside the margin): no_change. What people wait for is shown not to
//      have changed by more than M, whatever CPU time did (extra work in parallel, say).
//   3. CPU time different, and TTFB's estimate points the same way (a CPU regression with TTFB
//      faster is not a start-up regression): CPU time decides, with its direction.
//   4. Otherwise unknown: another block, or inconclusive at the last look.
// Without CPU time for every run of both arms (a worker without cgroups, runs from before it was
// measured), or with cpu_share 0, CPU time's share goes back to TTFB: no alpha is spent on a
// metric that is not there.
//
// Edge cases: a share below 0, or the two together not below 1: std::invalid_argument. The CPU values must be positive (a run
// whose CPU time reads 0 gives no CPU metric for the look: it is not measurable, not a zero).
#pragma once

#include "server/stats/adaptive.hpp"
#include "server/stats/tail.hpp"

#include <optional>
#include <span>
#include <string_view>

namespace ttfb::stats {

enum class Metric { ttfb, cpu_time, tail };
std::string_view to_string(Metric m);  // "ttfb", "cpu_time", "tail"

// The design each metric is tested with: alpha x (1 - cpu_share - tail_share) for TTFB, alpha x
// cpu_share for CPU time, alpha x tail_share for the tail (tail.hpp). Shares must be >= 0 and
// together below 1.
AdaptiveDesign design_for(const AdaptiveDesign& design, Metric m, double cpu_share, double tail_share = 0.0);

// A tail whose exact p (more slow runs in the candidate) is below this is not certified "the
// same": its look asks for another block (and is inconclusive at the last). This spends no alpha:
// it can only turn a "same" into more runs. It is loose on purpose: 2 slow runs of 10 against
// none (p = 0.24) is weak evidence of a tail, and too much to certify that nothing changed.
inline constexpr double kTailScreenP = 0.25;

struct TailLook {
  TailComparison comparison;
  double nominal_alpha = 0.0;  // two-sided, at this look of the tail's plan
  Outcome outcome = Outcome::unknown;
  Verdict verdict = Verdict::inconclusive;
  bool suspect = false;        // p_slower < kTailScreenP
};
// The tail at a look: different (a regression) when the exact one-sided p is below half the
// look's nominal alpha and the 90th percentile moved by at least the threshold, the same way
// for an improvement; never "same" (the tail test has no equivalence).
TailLook tail_look(const TailComparison& t, double nominal_alpha, double threshold_pct);

// True when every value is positive and finite and both arms have them: CPU time is usable.
bool cpu_usable(std::span<const double> baseline, std::span<const double> candidate);

struct TwoMetricLook {
  LookDecision ttfb;                // at design_for(ttfb)
  std::optional<LookDecision> cpu;  // at design_for(cpu_time); empty when not usable or share 0
  std::optional<TailLook> tail;     // at design_for(tail); empty with tail_share 0 or before the first look
  Metric decided_by = Metric::ttfb;
  LookDecision decision;            // TTFB's look with the combined outcome, verdict and reason
};

// cpu_baseline / cpu_candidate: the CPU time of the same runs as the TTFB values (same order and
// sizes), or empty.
TwoMetricLook decide_two_metrics(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                                 std::span<const double> cpu_baseline_ms, std::span<const double> cpu_candidate_ms,
                                 const AdaptiveDesign& design, double cpu_share, std::span<const long> baseline_jobs = {},
                                 std::span<const long> candidate_jobs = {}, double tail_share = 0.0);

// The rules above on classified looks, for simulations: `cpu` null when CPU time is not used.
// ttfb_effect_pct is TTFB's estimate at the look (rule 3 reads its sign).
struct CombinedOutcome {
  RulesOutcome rules;
  Metric decided_by = Metric::ttfb;
};
CombinedOutcome combine(const RulesOutcome& ttfb, const RulesOutcome* cpu, double ttfb_effect_pct);

// As apply_rules (adaptive.hpp), over both metrics' looks (cpu_looks empty: TTFB alone). The
// plans are those of design_for(...) of each metric; they share the looks' runs per arm.
CombinedOutcome apply_two_metric_rules(std::span<const LookSummary> ttfb_looks, std::span<const LookSummary> cpu_looks,
                                       std::span<const LookPlan> ttfb_plan, std::span<const LookPlan> cpu_plan,
                                       double threshold_pct, double margin_pct);

}  // namespace ttfb::stats
