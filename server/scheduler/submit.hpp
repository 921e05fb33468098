// What every submission shares (experiments, release gates): which workflows a request means,
// and the first job of each with its design frozen at submission.
#pragma once

#include "server/config.hpp"
#include "server/repos.hpp"
#include "server/store/db.hpp"
#include "server/scheduler/plan.hpp"
#include "server/store/experiments.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ttfb {

// The workflows a request names, checked against the repository's (unknown or repeated names:
// ApiError(invalid_argument) naming them and the known ones). Empty `names`: every workflow of
// the repository, the holistic suite (none configured: invalid_argument).
std::vector<std::string> select_workflows(const ServerConfig& config, const std::string& repo,
                                          const std::vector<std::string>& names);

// Resolves each of a workflow snapshot's "dependencies" (wf.to_api_json()) to the commit of its
// ref (the dependency repository's default branch when empty) and stores it there as "commit", so
// that every job of the experiment or bisection runs the same dependency revisions, however the
// branches move. `change`'s base_ref, when given, replaces the workflow's ref of that repository.
void resolve_dependencies(const ServerConfig& config, RepoMirrors& mirrors, boost::json::object& snapshot,
                          const DependencyChange* change = nullptr);

// The workflows (of `repo`, or all of them when `names` is empty) that declare `dependency`;
// ApiError(invalid_argument) when a named one does not, or none does.
std::vector<std::string> select_dependents(const ServerConfig& config, const std::string& repo, const std::string& dependency,
                                           const std::vector<std::string>& names);

// One first block per workflow, baseline `base_commit` vs `candidate_commit` (+ `diff`), with the
// design of the workflow's latest calibration (plan.hpp: design_snapshot) and its dependencies
// resolved (with `change` on the candidate: its diff is checked against each baseline commit of
// the dependency, ApiError(invalid_argument) with git's words). `runs_per_arm` makes a fixed design.
std::vector<NewJob> first_blocks(const ServerConfig& config, Database& db, const std::string& repo,
                                 const std::vector<std::string>& workflows, const std::string& base_commit,
                                 const std::string& candidate_commit, const std::string& diff,
                                 std::optional<int> runs_per_arm, std::optional<int> warmup_runs, RepoMirrors& mirrors,
                                 const CandidateRuntime& runtime = {}, const DependencyChange* change = nullptr);

// "a, b, c", or "(none)".
std::string join_names(const std::vector<std::string>& names);

}  // namespace ttfb
