#include "server/scheduler/analysis.hpp"

#include "server/stats/comparison.hpp"
#include "server/stats/descriptive.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <map>

namespace ttfb {
namespace {
namespace json = boost::json;

double num(const json::object& o, const char* key, double fallback) {
  const auto* v = o.if_contains(key);
  if (!v) return fallback;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  return fallback;
}

json::value finite_or_null(double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); }

// Per-phase medians of both arms, in the order phases first appear: which phase moved.
json::array phase_medians(const ArmSamples& s) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> base, cand;
  auto collect = [&](const std::vector<json::array>& runs, std::map<std::string, std::vector<double>>& into) {
    for (const auto& phases : runs) {
      for (const auto& p : phases) {
        if (!p.is_object()) continue;
        const auto& po = p.as_object();
        const auto* name = po.if_contains("name");
        if (!name || !name->is_string()) continue;
        std::string n(name->as_string());
        if (!base.count(n) && !cand.count(n)) order.push_back(n);
        into[n].push_back(num(po, "ms", 0.0));
      }
    }
  };
  collect(s.baseline_phases, base);
  collect(s.candidate_phases, cand);
  json::array out;
  for (const auto& n : order) {
    double mb = base[n].empty() ? NAN : stats::median(base[n]);
    double mc = cand[n].empty() ? NAN : stats::median(cand[n]);
    out.push_back(json::object{{"name", n},
                               {"median_baseline_ms", finite_or_null(mb)},
                               {"median_candidate_ms", finite_or_null(mc)},
                               {"delta_ms", finite_or_null(mc - mb)}});
  }
  return out;
}

}  // namespace

WorkflowResult analyse_workflow(const WorkflowToAnalyse& w) {
  WorkflowResult out;
  out.workflow = w.workflow;
  if (w.job_state != "done") {
    out.verdict = "error";
    json::object err = w.job_error.is_object() ? w.job_error.as_object() : json::object{};
    if (!err.contains("code")) err["code"] = w.job_state == "cancelled" ? "cancelled" : "job_failed";
    if (!err.contains("message")) err["message"] = "the job was " + w.job_state;
    out.result = json::object{{"error", std::move(err)}};
    return out;
  }
  stats::Policy policy;
  if (const auto* p = w.config.if_contains("policy"); p && p->is_object()) {
    policy.alpha = num(p->as_object(), "alpha", policy.alpha);
    policy.min_effect_pct = num(p->as_object(), "min_effect_pct", policy.min_effect_pct);
    policy.confidence = num(p->as_object(), "confidence", policy.confidence);
  }
  const auto& s = w.samples;
  stats::Comparison c = stats::compare_arms(s.baseline, s.candidate, policy);
  out.verdict = std::string(stats::to_string(c.decision.verdict));
  out.result = stats::to_json(c);
  out.result["confirmed"] = false;  // confirmation reruns come with the full engine (issue 3)
  out.result["phases"] = phase_medians(s);
  return out;
}

std::string analyse_experiment(Database& db, long experiment_id) {
  auto workflows = load_for_analysis(db, experiment_id);
  std::vector<WorkflowResult> results;
  json::value error = nullptr;
  bool any_error = false, any_regression = false, any_inconclusive = false, any_improvement = false;
  bool cancelled = false;
  for (const auto& w : workflows) {
    WorkflowResult r;
    try {
      r = analyse_workflow(w);
    } catch (const std::exception& e) {
      // Bad samples (they are validated on entry, so this is a bug): say so, do not crash the loop.
      spdlog::error("experiment {} workflow {}: analysis failed: {}", experiment_id, w.workflow, e.what());
      r.workflow = w.workflow;
      r.verdict = "error";
      r.result = json::object{{"error", json::object{{"code", "internal"}, {"message", std::string("analysis failed: ") + e.what()}}}};
    }
    if (w.job_state == "cancelled") cancelled = true;
    if (r.verdict == "error") {
      any_error = true;
      if (error.is_null()) {
        json::object e = r.result.at("error").as_object();
        e["workflow"] = w.workflow;
        error = std::move(e);
      }
    }
    any_regression |= r.verdict == "regression";
    any_inconclusive |= r.verdict == "inconclusive";
    any_improvement |= r.verdict == "improvement";
    results.push_back(std::move(r));
  }
  std::string verdict = any_error ? "error"
                        : any_regression ? "regression"
                        : any_inconclusive ? "inconclusive"
                        : any_improvement ? "improvement"
                                          : "no_change";
  std::string status = cancelled ? "cancelled" : any_error ? "error" : "done";
  store_analysis(db, experiment_id, results, status, verdict, error);
  spdlog::info("experiment {}: {} ({})", experiment_id, verdict, status);
  return verdict;
}

}  // namespace ttfb
