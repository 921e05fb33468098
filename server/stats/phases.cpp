#include "server/stats/phases.hpp"

#include "common/json_number.hpp"
#include "server/stats/descriptive.hpp"
#include "server/stats/mann_whitney.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ttfb::stats {
namespace {
namespace json = boost::json;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr const char* kFn = "ttfb::stats::attribute_phases: ";

void require_ttfb(std::span<const double> xs, const char* arm) {
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (!std::isfinite(xs[i]) || xs[i] <= 0.0) {
      throw std::invalid_argument(std::string(kFn) + arm + " TTFB at index " + std::to_string(i) +
                                  " is " + std::to_string(xs[i]) +
                                  "; durations must be finite and > 0");
    }
  }
}

// Per phase, one arm's values: one per run that reported it (repeats within a run summed).
using PhaseValues = std::map<std::string, std::vector<double>>;

PhaseValues collect(const PhaseRuns& arm, const char* arm_name, std::vector<std::string>& order) {
  PhaseValues out;
  for (std::size_t r = 0; r < arm.runs.size(); ++r) {
    std::vector<std::pair<std::string, double>> run;  // this run's phases, repeats summed
    for (const auto& [name, ms] : arm.runs[r]) {
      if (name.empty()) {
        throw std::invalid_argument(std::string(kFn) + arm_name + " run " + std::to_string(r) +
                                    " has a phase with an empty name");
      }
      if (!std::isfinite(ms) || ms < 0.0) {
        throw std::invalid_argument(std::string(kFn) + arm_name + " run " + std::to_string(r) +
                                    " phase '" + name + "' is " + std::to_string(ms) +
                                    " ms; phase durations must be finite and >= 0");
      }
      auto it = std::find_if(run.begin(), run.end(), [&](const auto& p) { return p.first == name; });
      if (it == run.end()) {
        run.emplace_back(name, ms);
      } else {
        it->second += ms;
      }
    }
    for (const auto& [name, ms] : run) {
      if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
      out[name].push_back(ms);
    }
  }
  return out;
}

// Both arms mapped to their pooled dense ranks (1, 2, ...; equal values equal ranks): a strictly
// increasing map, so the rank test sees the same order and ties, but every value is > 0 as
// mann_whitney_u_test requires of durations.
std::pair<std::vector<double>, std::vector<double>> dense_ranks(const std::vector<double>& b,
                                                                const std::vector<double>& c) {
  std::vector<double> levels(b);
  levels.insert(levels.end(), c.begin(), c.end());
  std::sort(levels.begin(), levels.end());
  levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
  auto rank = [&](const std::vector<double>& xs) {
    std::vector<double> out;
    out.reserve(xs.size());
    for (double x : xs) {
      out.push_back(static_cast<double>(std::lower_bound(levels.begin(), levels.end(), x) - levels.begin() + 1));
    }
    return out;
  };
  return {rank(b), rank(c)};
}

PhaseEffect test_phase(const std::string& name, const std::vector<double>& b, const std::vector<double>& c,
                       double total_delta_ms, double alpha) {
  PhaseEffect e;
  e.name = name;
  e.n_baseline = b.size();
  e.n_candidate = c.size();
  e.median_baseline_ms = b.empty() ? kNaN : median(b);
  e.median_candidate_ms = c.empty() ? kNaN : median(c);
  if (b.size() < kMannWhitneyMinSamplesPerArm || c.size() < kMannWhitneyMinSamplesPerArm) {
    e.delta_ms = e.delta_ci_low_ms = e.delta_ci_high_ms = e.delta_ci_confidence = kNaN;
    e.p_value = e.p_value_holm = e.effect_pct = e.share_of_effect = kNaN;
    return e;
  }
  const auto [rb, rc] = dense_ranks(b, c);
  e.p_value = mann_whitney_u_test(rb, rc).p_value;
  e.delta_ms = hodges_lehmann_shift(b, c);
  const HodgesLehmannInterval ci = hodges_lehmann_ci(b, c, 1.0 - alpha);
  e.delta_ci_low_ms = ci.low;
  e.delta_ci_high_ms = ci.high;
  e.delta_ci_confidence = ci.confidence;
  e.effect_pct = e.median_baseline_ms > 0.0 ? 100.0 * e.delta_ms / e.median_baseline_ms : kNaN;
  e.share_of_effect = std::fabs(total_delta_ms) >= kPhaseShareMinTotalMs ? e.delta_ms / total_delta_ms : kNaN;
  return e;
}

// Holm's step-down adjustment over the phases with a p-value, as R's p.adjust(p, "holm"):
// sorted ascending, p_(i) -> max over j <= i of min(1, (m - j + 1) p_(j)).
void holm(std::vector<PhaseEffect>& phases) {
  std::vector<std::size_t> tested;
  for (std::size_t i = 0; i < phases.size(); ++i) {
    if (!std::isnan(phases[i].p_value)) tested.push_back(i);
  }
  std::stable_sort(tested.begin(), tested.end(),
                   [&](std::size_t a, std::size_t b) { return phases[a].p_value < phases[b].p_value; });
  const auto m = static_cast<double>(tested.size());
  double running = 0.0;
  for (std::size_t j = 0; j < tested.size(); ++j) {
    PhaseEffect& e = phases[tested[j]];
    running = std::max(running, std::min(1.0, (m - static_cast<double>(j)) * e.p_value));
    e.p_value_holm = running;
  }
}

std::string format(const char* fmt, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

std::string summarize(const std::vector<PhaseEffect>& phases) {
  if (phases.empty()) return "";
  std::vector<const PhaseEffect*> moved;
  std::vector<std::string> untested;
  bool within_noise = false;
  for (const auto& e : phases) {
    if (e.significant) {
      moved.push_back(&e);
    } else if (std::isnan(e.p_value)) {
      untested.push_back(e.name);
    } else {
      within_noise = true;
    }
  }
  std::stable_sort(moved.begin(), moved.end(),
                   [](const PhaseEffect* a, const PhaseEffect* b) { return std::fabs(a->delta_ms) > std::fabs(b->delta_ms); });
  std::string s;
  for (const PhaseEffect* e : moved) {
    if (!s.empty()) s += ", ";
    s += e->name + " " + format("%+.1f", e->delta_ms) + " ms";
    if (std::isfinite(e->share_of_effect)) {
      const double pct = std::round(100.0 * e->share_of_effect);
      s += " (" + format("%.0f", pct == 0.0 ? 0.0 : pct) + "% of the change)";  // no "-0%"
    }
  }
  if (moved.empty()) {
    s = "no phase moved significantly";
  } else if (within_noise) {
    s += "; other phases within noise";
  }
  if (!untested.empty()) {
    s += "; too few runs to test: ";
    for (std::size_t i = 0; i < untested.size(); ++i) s += (i ? ", " : "") + untested[i];
  }
  return s;
}

}  // namespace

PhaseAttribution attribute_phases(std::span<const double> baseline_ttfb_ms, std::span<const double> candidate_ttfb_ms,
                                  const PhaseRuns& baseline, const PhaseRuns& candidate, double alpha) {
  if (!(alpha > 0.0 && alpha < 1.0)) {
    throw std::invalid_argument(std::string(kFn) + "alpha must be inside (0, 1), got " + std::to_string(alpha));
  }
  require_ttfb(baseline_ttfb_ms, "baseline");
  require_ttfb(candidate_ttfb_ms, "candidate");
  std::vector<std::string> order;
  const PhaseValues base = collect(baseline, "baseline", order);
  const PhaseValues cand = collect(candidate, "candidate", order);

  PhaseAttribution a;
  a.alpha = alpha;
  a.total_delta_ms = baseline_ttfb_ms.size() < kMannWhitneyMinSamplesPerArm ||
                             candidate_ttfb_ms.size() < kMannWhitneyMinSamplesPerArm
                         ? kNaN
                         : hodges_lehmann_shift(baseline_ttfb_ms, candidate_ttfb_ms);
  static const std::vector<double> kNone;
  for (const auto& name : order) {
    const auto b = base.find(name);
    const auto c = cand.find(name);
    a.phases.push_back(test_phase(name, b == base.end() ? kNone : b->second, c == cand.end() ? kNone : c->second,
                                  a.total_delta_ms, alpha));
  }
  holm(a.phases);
  for (auto& e : a.phases) e.significant = e.p_value_holm < alpha;  // false for NaN
  a.summary = summarize(a.phases);
  return a;
}

json::object to_json(const PhaseAttribution& a) {
  json::array phases;
  for (const auto& e : a.phases) {
    phases.push_back(json::object{
        {"name", e.name},
        {"n_baseline", e.n_baseline},
        {"n_candidate", e.n_candidate},
        {"median_baseline_ms", json_number(e.median_baseline_ms)},
        {"median_candidate_ms", json_number(e.median_candidate_ms)},
        {"delta_ms", json_number(e.delta_ms)},
        {"delta_ci_low_ms", json_number(e.delta_ci_low_ms)},
        {"delta_ci_high_ms", json_number(e.delta_ci_high_ms)},
        {"delta_ci_confidence", json_number(e.delta_ci_confidence)},
        {"p_value", json_number(e.p_value)},
        {"p_value_holm", json_number(e.p_value_holm)},
        {"effect_pct", json_number(e.effect_pct)},
        {"share_of_effect", json_number(e.share_of_effect)},
        {"significant", e.significant},
    });
  }
  return json::object{
      {"total_delta_ms", json_number(a.total_delta_ms)},
      {"alpha", a.alpha},
      {"correction", "holm"},
      {"summary", a.summary},
      {"phases", std::move(phases)},
  };
}

}  // namespace ttfb::stats
