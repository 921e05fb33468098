#include "server/scheduler/submit.hpp"

#include "common/errors.hpp"
#include "server/scheduler/plan.hpp"
#include "server/store/calibrations.hpp"

#include <set>

namespace ttfb {

std::string join_names(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "(none)" : out;
}

std::vector<std::string> select_workflows(const ServerConfig& config, const std::string& repo,
                                          const std::vector<std::string>& names) {
  std::vector<std::string> of_repo;
  for (const auto& [n, wf] : config.workflows)
    if (wf.repo == repo) of_repo.push_back(n);
  if (names.empty()) {
    if (of_repo.empty()) throw ApiError(ErrorCode::invalid_argument, "repository '" + repo + "' has no workflows configured");
    return of_repo;
  }
  std::set<std::string> seen;
  for (const auto& n : names) {
    auto it = config.workflows.find(n);
    if (it == config.workflows.end() || it->second.repo != repo)
      throw ApiError(ErrorCode::invalid_argument,
                     "unknown workflow '" + n + "' for repository '" + repo + "'; known: " + join_names(of_repo));
    if (!seen.insert(n).second) throw ApiError(ErrorCode::invalid_argument, "workflow '" + n + "' is listed twice");
  }
  return names;
}

void resolve_dependencies(const ServerConfig& config, RepoMirrors& mirrors, boost::json::object& snapshot,
                          const DependencyChange* change) {
  auto* deps = snapshot.if_contains("dependencies");
  if (!deps || !deps->is_array()) return;
  for (auto& v : deps->as_array()) {
    auto& d = v.as_object();
    const std::string repo(d.at("repo").as_string());
    std::string ref(d.at("ref").as_string());
    if (change && change->repo == repo && change->base_ref) ref = *change->base_ref;
    if (ref.empty()) ref = config.repos.at(repo).default_branch;
    d["ref"] = ref;
    d["commit"] = mirrors.resolve(repo, ref);
  }
}

std::vector<std::string> select_dependents(const ServerConfig& config, const std::string& repo, const std::string& dependency,
                                           const std::vector<std::string>& names) {
  std::vector<std::string> users;
  for (const auto& [n, wf] : config.workflows)
    if (wf.repo == repo && wf.dependency(dependency)) users.push_back(n);
  if (names.empty()) {
    if (users.empty())
      throw ApiError(ErrorCode::invalid_argument, "no workflow of repository '" + repo + "' declares dependency '" + dependency +
                                                      "' ([[dependencies]] repo = \"" + dependency + "\" in its file)");
    return users;
  }
  for (const auto& n : select_workflows(config, repo, names))
    if (!config.workflows.at(n).dependency(dependency))
      throw ApiError(ErrorCode::invalid_argument, "workflow '" + n + "' does not declare dependency '" + dependency +
                                                      "'; the workflows of '" + repo + "' that do: " + join_names(users));
  return names;
}

std::vector<NewJob> first_blocks(const ServerConfig& config, Database& db, const std::string& repo,
                                 const std::vector<std::string>& workflows, const std::string& base_commit,
                                 const std::string& candidate_commit, const std::string& diff,
                                 std::optional<int> runs_per_arm, std::optional<int> warmup_runs, RepoMirrors& mirrors,
                                 const CandidateRuntime& runtime, const DependencyChange* change) {
  const RepoConfig& rc = config.repos.at(repo);
  std::set<std::string> diff_checked;  // the dependency's baseline commits its diff applies to
  std::vector<NewJob> jobs;
  for (const auto& n : workflows) {
    const WorkflowConfig& wf = config.workflows.at(n);
    // The design (threshold from the latest calibration) is frozen here: a later calibration or
    // config change does not rewrite this experiment.
    boost::json::object design = design_snapshot(wf, current_calibration(db, n), runs_per_arm, warmup_runs);
    const int block = static_cast<int>(design.at("runs_per_block").as_int64());
    const int warmup = static_cast<int>(design.at("warmup_runs").as_int64());
    NewJob job;
    job.workflow = n;
    job.workflow_config = wf.to_api_json();
    job.workflow_config["design"] = std::move(design);
    resolve_dependencies(config, mirrors, job.workflow_config, change);
    const ArmDependencies deps = arm_dependencies(config, job.workflow_config, change);
    if (change && !change->diff.empty()) {
      for (const auto& d : deps.baseline)
        if (d.repo == change->repo && diff_checked.insert(d.commit).second) mirrors.check_diff(d.repo, d.commit, change->diff);
    }
    job.payload = job_payload(rc, wf, base_commit, candidate_commit, diff, warmup, block, runtime, deps);
    job.runs_total = runs_total(warmup, block);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

}  // namespace ttfb
