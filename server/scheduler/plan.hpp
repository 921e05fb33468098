// How an experiment becomes work: per workflow, blocks of runs (one job each) with both arms on
// one worker, runs interleaved so that drift (thermal, page cache, a noisy neighbour) hits both
// arms alike; and the design every block is judged by, frozen at submission.
#pragma once

#include "server/config.hpp"
#include "server/stats/adaptive.hpp"

#include <boost/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ttfb {

// Warm-up runs first (baseline, candidate alternating; flagged, not analysed), then measured runs
// in ABBA order: (A B) (B A) (A B) (B A) ... — each arm is first in half of the pairs, which
// cancels a linear trend and any "second run is faster" effect.
boost::json::array interleaved_schedule(int warmup_runs_per_arm, int runs_per_arm);

// A workflow's calibrated threshold as the submission sees it (server/store/calibrations.hpp).
struct CurrentCalibration {
  long id = 0;
  double sigma_aa_pct = 0.0;
  double k = 0.0;
  double threshold_pct = 0.0;
  std::string finished_at;
};

// The design snapshot stored in experiment_workflows.config["design"]: alpha, the detection
// threshold in force (max(detection_floor_pct, k sigma_AA) of the workflow's latest calibration,
// or detection_floor_pct when it has none), the equivalence margin, blocks, budget, spending, confirmation, warm-ups, and which calibration it
// came from. `fixed_runs` (a client's runs_per_arm) makes it a fixed design: one block of that
// many runs per arm, one look at alpha, no confirmation rerun.
boost::json::object design_snapshot(const WorkflowConfig& wf, const std::optional<CurrentCalibration>& calibration,
                                    std::optional<int> fixed_runs, std::optional<int> warmup_override);

// Reads a snapshot back; throws std::invalid_argument when a key is missing or invalid.
stats::AdaptiveDesign design_from_snapshot(const boost::json::object& design);

// What the candidate arm runs differently from the baseline, besides its revision: an
// experiment of an infra owner's (a runtime, its flags, an environment) on the same workflow
// revision. Applied to the candidate's measured and warm-up runs, not to its build.
struct CandidateRuntime {
  std::map<std::string, std::optional<std::string>> env;  // set in the candidate's environment, or
                                                          // (nullopt) removed from it
  std::vector<std::string> command_prefix;                // prepended to the workflow's command
  std::vector<std::string> interpreter;                   // replaces the command's first word
  bool empty() const { return env.empty() && command_prefix.empty() && interpreter.empty(); }
  // {"env": {...}, "command_prefix": [...], "interpreter": [...]}, only the keys that are set
  // (the payload's arm fields and the experiment's stored column alike).
  boost::json::object to_json() const;
};

// One dependency of an arm as a worker receives it (docs/worker-protocol.md): a commit of another
// configured repository, with a diff or none, placed at `path` in each run's copy.
struct DependencyRevision {
  std::string repo, url, commit, diff, path;
};
struct ArmDependencies {
  std::vector<DependencyRevision> baseline, candidate;
  bool empty() const { return baseline.empty() && candidate.empty(); }
};

// A dependency experiment's candidate: `repo` at `commit` (a revision of it), or at each
// workflow's baseline commit of it with `diff` applied. Everything else is the same on both arms.
struct DependencyChange {
  std::string repo;
  std::optional<std::string> base_ref;  // the baseline's revision of it instead of each workflow's ref
  std::string commit;                   // empty: each workflow's baseline commit (with `diff`)
  std::string diff;
};

// The arms' dependencies of a workflow snapshot whose "dependencies" entries carry their resolved
// "commit" (submit.hpp, resolve_dependencies): the same on both arms, but for `change`'s repository
// on the candidate. Old snapshots without dependencies: none.
ArmDependencies arm_dependencies(const ServerConfig& config, const boost::json::object& snapshot,
                                 const DependencyChange* change = nullptr);

// What a worker receives for one block (docs/worker-protocol.md): repository, workflow, arms,
// schedule of warm-up + measured runs.
boost::json::object job_payload(const RepoConfig& repo, const WorkflowConfig& wf, const std::string& base_commit,
                                const std::string& candidate_commit, const std::string& diff, int warmup_runs,
                                int runs_per_arm, const CandidateRuntime& runtime = {},
                                const ArmDependencies& dependencies = {});

// The same payload with a new schedule (the next block, a confirmation batch).
boost::json::object with_schedule(boost::json::object payload, int warmup_runs, int runs_per_arm);

// One revision only (a bisection's probe of one commit): warm-up runs, then measured runs, all
// on the "baseline" arm (the job's candidate arm is the same commit and is never run).
boost::json::array single_arm_schedule(int warmup_runs, int runs);
// The payload of a bisection probe: `commit` on both arms, single_arm_schedule.
boost::json::object probe_payload(const RepoConfig& repo, const WorkflowConfig& wf, const std::string& commit, int warmup_runs,
                                  int runs, const ArmDependencies& dependencies = {});

// Measured + warm-up runs of a schedule: what jobs.runs_total counts.
inline int runs_total(int warmup_runs, int runs_per_arm) { return 2 * (warmup_runs + runs_per_arm); }

}  // namespace ttfb
