// What every submission shares (experiments, release gates): which workflows a request means,
// and the first job of each with its design frozen at submission.
#pragma once

#include "server/config.hpp"
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

// One first block per workflow, baseline `base_commit` vs `candidate_commit` (+ `diff`), with the
// design of the workflow's latest calibration (plan.hpp: design_snapshot). `runs_per_arm` makes a
// fixed design.
std::vector<NewJob> first_blocks(const ServerConfig& config, Database& db, const std::string& repo,
                                 const std::vector<std::string>& workflows, const std::string& base_commit,
                                 const std::string& candidate_commit, const std::string& diff,
                                 std::optional<int> runs_per_arm, std::optional<int> warmup_runs,
                                 const CandidateRuntime& runtime = {});

// "a, b, c", or "(none)".
std::string join_names(const std::vector<std::string>& names);

}  // namespace ttfb
