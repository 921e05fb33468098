#include "server/scheduler/plan.hpp"

#include <algorithm>
#include <stdexcept>

namespace ttfb {
namespace json = boost::json;

json::array interleaved_schedule(int warmup_runs_per_arm, int runs_per_arm) {
  json::array out;
  int index = 0;
  auto add = [&](const char* arm, bool warmup) {
    out.push_back(json::object{{"run_index", index++}, {"arm", arm}, {"warmup", warmup}});
  };
  for (int i = 0; i < warmup_runs_per_arm; ++i) {
    add("baseline", true);
    add("candidate", true);
  }
  for (int pair = 0; pair < runs_per_arm; ++pair) {
    if (pair % 2 == 0) {
      add("baseline", false);
      add("candidate", false);
    } else {
      add("candidate", false);
      add("baseline", false);
    }
  }
  return out;
}

json::object design_snapshot(const WorkflowConfig& wf, const std::optional<CurrentCalibration>& calibration,
                             std::optional<int> fixed_runs, std::optional<int> warmup_override) {
  const WorkflowPolicy& p = wf.policy;
  double threshold = p.detection_floor_pct;
  json::value cal = nullptr;
  if (calibration) {
    threshold = std::max(p.detection_floor_pct, calibration->k * calibration->sigma_aa_pct);
    cal = json::object{{"id", calibration->id},
                       {"k", calibration->k},
                       {"sigma_aa_pct", calibration->sigma_aa_pct},
                       {"finished_at", calibration->finished_at}};
  }
  const int block = fixed_runs.value_or(p.runs_per_block);
  const int max_runs = fixed_runs.value_or(p.max_runs_per_arm);
  return json::object{{"alpha", p.alpha},
                      {"detection_floor_pct", p.detection_floor_pct},
                      {"threshold_pct", threshold},
                      {"equivalence_margin_pct", p.equivalence_margin_pct},
                      {"calibration", std::move(cal)},
                      {"runs_per_block", block},
                      {"max_runs_per_arm", max_runs},
                      {"spending", p.spending},
                      {"confirm", p.confirm && !fixed_runs},
                      {"rerun_alpha", p.rerun_alpha},
                      {"cpu_time_alpha_share", p.cpu_time_alpha_share},
                      {"tail_alpha_share", p.tail_alpha_share},
                      {"max_rerun_runs_per_arm", p.max_rerun_runs_per_arm},
                      {"fixed", fixed_runs.has_value()},
                      {"warmup_runs", warmup_override.value_or(wf.warmup_runs)}};
}

namespace {
double number(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v && v->is_double()) return v->get_double();
  if (v && v->is_int64()) return static_cast<double>(v->get_int64());
  throw std::invalid_argument(std::string("design snapshot: '") + key + "' is missing or not a number");
}
}  // namespace

stats::AdaptiveDesign design_from_snapshot(const json::object& design) {
  stats::AdaptiveDesign d;
  d.alpha = number(design, "alpha");
  d.threshold_pct = number(design, "threshold_pct");
  // Designs frozen before the margin was its own setting used the threshold for both.
  d.margin_pct = design.contains("equivalence_margin_pct") ? number(design, "equivalence_margin_pct") : d.threshold_pct;
  d.runs_per_block = static_cast<int>(number(design, "runs_per_block"));
  d.max_runs_per_arm = static_cast<int>(number(design, "max_runs_per_arm"));
  const auto* s = design.if_contains("spending");
  if (!s || !s->is_string()) throw std::invalid_argument("design snapshot: 'spending' is missing");
  auto spending = stats::spending_from_string(s->get_string());
  if (!spending) throw std::invalid_argument("design snapshot: unknown spending '" + std::string(s->get_string()) + "'");
  d.spending = *spending;
  stats::validate(d);
  return d;
}

json::object CandidateRuntime::to_json() const {
  json::object o;
  if (!env.empty()) {
    json::object e;
    for (const auto& [k, v] : env) e[k] = v ? json::value(*v) : json::value(nullptr);
    o["env"] = std::move(e);
  }
  auto strings = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
  };
  if (!command_prefix.empty()) o["command_prefix"] = strings(command_prefix);
  if (!interpreter.empty()) o["interpreter"] = strings(interpreter);
  return o;
}

ArmDependencies arm_dependencies(const ServerConfig& config, const json::object& snapshot, const DependencyChange* change) {
  ArmDependencies out;
  const auto* deps = snapshot.if_contains("dependencies");
  if (!deps || !deps->is_array()) return out;
  for (const auto& v : deps->as_array()) {
    const auto& d = v.as_object();
    DependencyRevision r;
    r.repo = std::string(d.at("repo").as_string());
    r.path = std::string(d.at("path").as_string());
    const auto* commit = d.if_contains("commit");
    if (!commit || !commit->is_string())
      throw std::invalid_argument("workflow snapshot: dependency '" + r.repo + "' has no resolved commit");
    r.commit = std::string(commit->as_string());
    const auto it = config.repos.find(r.repo);
    if (it == config.repos.end())
      throw std::invalid_argument("dependency repository '" + r.repo + "' is no longer configured");
    r.url = it->second.url;
    out.baseline.push_back(r);
    if (change && change->repo == r.repo) {
      if (!change->commit.empty()) r.commit = change->commit;
      r.diff = change->diff;
    }
    out.candidate.push_back(std::move(r));
  }
  return out;
}

namespace {
json::array dependencies_json(const std::vector<DependencyRevision>& deps) {
  json::array a;
  for (const auto& d : deps)
    a.push_back(json::object{{"repo", json::object{{"name", d.repo}, {"url", d.url}}},
                             {"commit", d.commit},
                             {"diff", d.diff},
                             {"path", d.path}});
  return a;
}
}  // namespace

json::object job_payload(const RepoConfig& repo, const WorkflowConfig& wf, const std::string& base_commit,
                         const std::string& candidate_commit, const std::string& diff, int warmup_runs, int runs_per_arm,
                         const CandidateRuntime& runtime, const ArmDependencies& dependencies) {
  json::object candidate = runtime.to_json();
  candidate["commit"] = candidate_commit;
  candidate["diff"] = diff;
  json::object baseline{{"commit", base_commit}, {"diff", ""}};
  if (!dependencies.empty()) {
    baseline["dependencies"] = dependencies_json(dependencies.baseline);
    candidate["dependencies"] = dependencies_json(dependencies.candidate);
  }
  return json::object{
      {"repo", json::object{{"name", repo.name}, {"url", repo.url}}},
      {"workflow", wf.to_job_json()},
      {"arms", json::object{{"baseline", std::move(baseline)}, {"candidate", std::move(candidate)}}},
      {"schedule", interleaved_schedule(warmup_runs, runs_per_arm)}};
}

json::object with_schedule(json::object payload, int warmup_runs, int runs_per_arm) {
  payload["schedule"] = interleaved_schedule(warmup_runs, runs_per_arm);
  return payload;
}

json::array single_arm_schedule(int warmup_runs, int runs) {
  json::array out;
  for (int i = 0; i < warmup_runs + runs; ++i)
    out.push_back(json::object{{"run_index", i}, {"arm", "baseline"}, {"warmup", i < warmup_runs}});
  return out;
}

json::object probe_payload(const RepoConfig& repo, const WorkflowConfig& wf, const std::string& commit, int warmup_runs,
                           int runs, const ArmDependencies& dependencies) {
  json::object payload = job_payload(repo, wf, commit, commit, "", warmup_runs, runs, {}, dependencies);
  payload["schedule"] = single_arm_schedule(warmup_runs, runs);
  return payload;
}

}  // namespace ttfb
