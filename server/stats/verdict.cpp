#include "server/stats/verdict.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <utility>

namespace ttfb::stats {
namespace {

constexpr std::array<std::pair<Verdict, std::string_view>, 5> kVerdictNames = {{
    {Verdict::regression, "regression"},
    {Verdict::improvement, "improvement"},
    {Verdict::no_change, "no_change"},
    {Verdict::inconclusive, "inconclusive"},
    {Verdict::error, "error"},
}};

void require_policy(const Policy& p) {
  auto fail = [](const char* what, double v) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "ttfb::stats::decide: policy %s = %g is invalid", what, v);
    return std::invalid_argument(buf);
  };
  if (!(p.alpha > 0.0 && p.alpha < 1.0)) throw fail("alpha (must be in (0, 1))", p.alpha);
  if (!(p.confidence > 0.0 && p.confidence < 1.0)) {
    throw fail("confidence (must be in (0, 1))", p.confidence);
  }
  if (!(std::isfinite(p.min_effect_pct) && p.min_effect_pct >= 0.0)) {
    throw fail("min_effect_pct (must be finite and >= 0)", p.min_effect_pct);
  }
  if (!(std::isfinite(p.equivalence_margin_pct) && p.equivalence_margin_pct >= 0.0)) {
    throw fail("equivalence_margin_pct (must be finite and >= 0)", p.equivalence_margin_pct);
  }
}

// "+7.9% [+4.1%, +11.8%] at 95%, p = 0.00012"
std::string describe_effect(const WelchResult& w) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%+.2f%% [%+.2f%%, %+.2f%%] at %.4g%%, p = %.3g", w.effect_pct,
                w.effect_ci_low_pct, w.effect_ci_high_pct, 100.0 * w.confidence, w.p_value);
  return buf;
}

std::string format(const char* fmt, double a, double b = 0.0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, fmt, a, b);
  return buf;
}

std::string sample_warning(const WelchResult& w) {
  std::string warning;
  const std::size_t nb = w.baseline.n;
  const std::size_t nc = w.candidate.n;
  if (nb < kRecommendedSamplesPerArm || nc < kRecommendedSamplesPerArm) {
    warning = "only " + std::to_string(nb) + " baseline and " + std::to_string(nc) +
              " candidate samples; at least " + std::to_string(kRecommendedSamplesPerArm) +
              " per arm are recommended";
  }
  if (w.both_arms_constant) {
    if (!warning.empty()) warning += "; ";
    warning += "every sample of each arm is identical: no noise estimate, p is 0 or 1 by definition";
  }
  return warning;
}

}  // namespace

std::string_view to_string(Verdict v) {
  for (const auto& [verdict, name] : kVerdictNames) {
    if (verdict == v) return name;
  }
  return "unknown";  // only for a value cast from outside the enum
}

std::optional<Verdict> verdict_from_string(std::string_view s) {
  for (const auto& [verdict, name] : kVerdictNames) {
    if (name == s) return verdict;
  }
  return std::nullopt;
}

Decision decide(const WelchResult& welch, const Policy& policy) {
  require_policy(policy);
  if (welch.confidence != policy.confidence) {
    throw std::invalid_argument(format(
        "ttfb::stats::decide: the Welch result has %g%% intervals but the policy asks for %g%%",
        100.0 * welch.confidence, 100.0 * policy.confidence));
  }

  Decision d;
  d.policy = policy;
  d.welch = welch;
  d.warning = sample_warning(welch);

  if (!welch.valid) {
    d.verdict = Verdict::inconclusive;
    d.reason = "not enough samples: " + welch.reason;
    return d;
  }

  const bool significant = welch.p_value < policy.alpha;
  const bool slower = welch.effect_ci_low_pct > 0.0;
  const bool faster = welch.effect_ci_high_pct < 0.0;
  const std::string effect = describe_effect(welch);

  if (significant && slower && welch.effect_pct >= policy.min_effect_pct) {
    d.verdict = Verdict::regression;
    d.reason = "slower by " + effect + format(", at least the %.3g%% threshold", policy.min_effect_pct);
  } else if (significant && faster && welch.effect_pct <= -policy.min_effect_pct) {
    d.verdict = Verdict::improvement;
    d.reason = "faster by " + effect + format(", at least the %.3g%% threshold", policy.min_effect_pct);
  } else {
    d.verdict = Verdict::no_change;
    if (!significant) {
      d.reason = effect + format(": not significant (alpha = %g)", policy.alpha);
    } else if (!slower && !faster) {
      d.reason = effect + ": significant, but the interval includes 0";
    } else {
      d.reason = effect + format(": significant, but smaller than the %.3g%% threshold",
                                 policy.min_effect_pct);
    }
  }
  return d;
}

Decision compare(std::span<const double> baseline_ms, std::span<const double> candidate_ms,
                 const Policy& policy) {
  require_policy(policy);
  return decide(welch_log_t_test(baseline_ms, candidate_ms, policy.confidence), policy);
}

}  // namespace ttfb::stats
