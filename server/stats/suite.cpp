#include "server/stats/suite.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace ttfb::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

SuiteSummary summarize_suite(const std::vector<SuiteMember>& members, double alpha, double margin_pct) {
  if (!(alpha > 0.0 && alpha < 0.5)) throw std::invalid_argument("suite: alpha must be in (0, 0.5)");
  if (!(margin_pct >= 0.0)) throw std::invalid_argument("suite: margin_pct must be >= 0");
  SuiteSummary s;
  s.alpha = alpha;
  s.workflows = static_cast<int>(members.size());
  const std::size_t k = members.size();

  // Holm's step-down over every member: a changed verdict's p on the suite's scale, the others 1.
  std::vector<double> p(k, 1.0);
  for (std::size_t i = 0; i < k; ++i) {
    const auto& m = members[i];
    s.regressions += m.verdict == "regression";
    s.improvements += m.verdict == "improvement";
    s.no_change += m.verdict == "no_change";
    s.inconclusive += m.verdict == "inconclusive";
    s.errors += m.verdict == "error";
    const bool changed = m.verdict == "regression" || m.verdict == "improvement";
    if (changed && std::isfinite(m.p_value) && m.level > 0.0) p[i] = std::min(1.0, m.p_value * alpha / m.level);
  }
  std::vector<std::size_t> order(k);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  s.holm_p.assign(k, 1.0);
  double running = 0.0;
  for (std::size_t r = 0; r < k; ++r) {
    running = std::max(running, std::min(1.0, static_cast<double>(k - r) * p[order[r]]));
    s.holm_p[order[r]] = running;
  }
  for (std::size_t i = 0; i < k; ++i) {
    if (s.holm_p[i] > alpha) continue;
    if (members[i].verdict == "regression") s.regressed.push_back(members[i].workflow);
    if (members[i].verdict == "improvement") s.improved.push_back(members[i].workflow);
  }

  // The geometric mean of the effects, and its interval.
  double sum = 0.0, var = 0.0;
  bool se_known = true;
  std::vector<std::string> left_out;
  for (const auto& m : members) {
    if (!std::isfinite(m.effect_pct) || m.effect_pct <= -100.0) {
      left_out.push_back(m.workflow);
      continue;
    }
    ++s.measured;
    sum += std::log1p(m.effect_pct / 100.0);
    if (std::isfinite(m.se_log) && m.se_log >= 0.0) var += m.se_log * m.se_log;
    else se_known = false;
  }
  s.geomean_effect_pct = s.ci_low_pct = s.ci_high_pct = kNaN;
  if (s.measured > 0) {
    const double n = s.measured, mean = sum / n;
    s.geomean_effect_pct = 100.0 * std::expm1(mean);
    if (se_known) {
      const double z = boost::math::quantile(boost::math::complement(boost::math::normal(), alpha / 2.0));
      const double se = std::sqrt(var) / n;
      s.ci_low_pct = 100.0 * std::expm1(mean - z * se);
      s.ci_high_pct = 100.0 * std::expm1(mean + z * se);
    }
  }

  const double margin = margin_pct;
  const bool interval = std::isfinite(s.ci_low_pct) && std::isfinite(s.ci_high_pct);
  const std::string numbers =
      s.measured == 0 ? std::string("no workflow was measured")
                      : fmt("%+.2f%%", s.geomean_effect_pct) +
                            (interval ? " [" + fmt("%+.2f%%", s.ci_low_pct) + ", " + fmt("%+.2f%%", s.ci_high_pct) +
                                            "] (" + fmt("%.4g", 100.0 * (1.0 - alpha)) + "%)"
                                      : std::string(" (no interval: a workflow's standard error is unknown)")) +
                            ", the geometric mean over " + std::to_string(s.measured) + " of " +
                            std::to_string(s.workflows) + " workflows";
  const std::string missing = left_out.empty() ? "" : "; not measured: " + names(left_out);
  if (!s.regressed.empty() || (interval && s.ci_low_pct > 0.0)) {
    s.verdict = "regression";
    s.statement = "slower across the suite: " + numbers +
                  (s.regressed.empty() ? "" : "; slower after Holm's correction: " + names(s.regressed)) + missing;
  } else if (interval && s.ci_high_pct < 0.0 && s.regressions == 0 && s.errors == 0) {
    s.verdict = "improvement";
    s.certified = true;
    s.statement = "faster across the suite, certified: " + numbers + "; no workflow slower" +
                  (s.improved.empty() ? "" : "; faster after Holm's correction: " + names(s.improved));
  } else if (interval && margin > 0.0 && s.ci_low_pct > -margin && s.ci_high_pct < margin) {
    s.verdict = "no_change";
    s.statement = "the same within " + fmt("%.3g%%", margin) + " across the suite: " + numbers + missing;
  } else {
    s.verdict = "inconclusive";
    s.statement = "not decided across the suite: " + numbers + missing;
  }
  return s;
}

}  // namespace ttfb::stats
