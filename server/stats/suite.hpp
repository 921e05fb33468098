// One answer for a suite of workflows (an infra owner's experiment across every workflow a change
// touches): each workflow's verdict, the geometric-mean effect across them with its interval, the
// verdicts that survive Holm's step-down over the suite, and whether the suite certifies an
// improvement (the number for a rollout note).
//
//   std::vector<stats::SuiteMember> m = {{"train-a", "improvement", -4.1, 0.011, 0.0024, 0.01}, ...};
//   stats::SuiteSummary s = stats::summarize_suite(m, 0.05, 2.0);
//   s.geomean_effect_pct, s.ci_low_pct, s.ci_high_pct, s.verdict, s.certified, s.statement
//
// The method:
// - Each member brings its headline effect (the confirmation rerun's when there was one), the
//   standard error of its log ratio, its p-value and the level that p was judged at (a look's
//   nominal level, or the rerun's alpha). For Holm its p is put on the suite's scale,
//   p * alpha / level (a verdict at its own level maps to p < alpha), and Holm's step-down at the
//   suite's alpha keeps a regression or improvement only while p_(i) <= alpha / (K - i + 1): the
//   chance that any workflow of the suite is called changed when none is stays within alpha.
// - The geometric-mean effect is exp(mean of the log ratios) - 1, with the normal interval at
//   1 - alpha from sqrt(sum se_k^2) / K (the workflows are measured in separate jobs). A
//   member without an effect (an error) is left out of it and named.
// - The suite's verdict: `regression` when a workflow's regression survives Holm or the whole
//   interval is above 0; `improvement` (certified) when the interval is below 0, no workflow is
//   judged slower and none failed; `no_change` when the interval lies within +-margin and no
//   regression survives; otherwise `inconclusive`.
#pragma once

#include <string>
#include <vector>

namespace ttfb::stats {

struct SuiteMember {
  std::string workflow;
  std::string verdict;        // regression, improvement, no_change, inconclusive, error
  double effect_pct = 0.0;    // NaN when there is none (an error)
  double se_log = 0.0;        // standard error of the log ratio; NaN when unknown
  double p_value = 1.0;       // of its verdict's test; NaN when none
  double level = 0.0;         // the level that p was compared with (> 0)
};

struct SuiteSummary {
  int workflows = 0, measured = 0;   // members, and those with an effect
  int regressions = 0, improvements = 0, no_change = 0, inconclusive = 0, errors = 0;  // as judged
  std::vector<std::string> regressed, improved;  // surviving Holm at alpha
  std::vector<double> holm_p;        // per member (in order): its p on the suite's scale, adjusted
  double alpha = 0.05;
  double geomean_effect_pct = 0.0, ci_low_pct = 0.0, ci_high_pct = 0.0;  // NaN without members
  std::string verdict;               // regression, improvement, no_change, inconclusive
  bool certified = false;            // an improvement across the suite
  std::string statement;             // one sentence with the numbers
};

// Throws std::invalid_argument for alpha outside (0, 0.5) or a negative margin.
SuiteSummary summarize_suite(const std::vector<SuiteMember>& members, double alpha, double margin_pct);

}  // namespace ttfb::stats
