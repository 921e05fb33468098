#include "server/scheduler/calibrate.hpp"

#include "common/errors.hpp"
#include "server/scheduler/plan.hpp"
#include "server/scheduler/submit.hpp"

#include <spdlog/spdlog.h>

namespace ttfb {

StartedCalibration request_calibration(const ServerConfig& config, Database& db, RepoMirrors& mirrors,
                                       const CalibrationRequest& request) {
  auto it = config.workflows.find(request.workflow);
  if (it == config.workflows.end())
    throw ApiError(ErrorCode::not_found, "unknown workflow '" + request.workflow + "' (GET /api/v1/workflows lists them)");
  const WorkflowConfig& wf = it->second;
  const RepoConfig& repo = config.repos.at(wf.repo);
  const int runs = request.runs_per_arm.value_or(wf.policy.calibration_runs_per_arm);
  const int batches = request.batches.value_or(wf.policy.calibration_batches);

  NewExperiment e;
  e.repo = repo.name;
  e.purpose = "calibration";
  e.base_ref = request.base.value_or(repo.default_branch);
  e.base_commit = mirrors.resolve(repo.name, e.base_ref);
  e.candidate_ref = e.base_ref;
  e.candidate_commit = e.base_commit;
  e.title = "A/A calibration of " + wf.name + " (" + request.trigger + ")";
  e.submitted_by = request.requested_by;
  e.max_attempts = config.max_attempts;
  boost::json::object snapshot = wf.to_api_json();
  snapshot["design"] = design_snapshot(wf, std::nullopt, std::nullopt, std::nullopt);
  snapshot["calibration"] = boost::json::object{{"runs_per_arm", runs}, {"batches", batches}};
  resolve_dependencies(config, mirrors, snapshot);
  const ArmDependencies deps = arm_dependencies(config, snapshot);
  for (int b = 1; b <= batches; ++b) {
    NewJob job;
    job.workflow = wf.name;
    job.workflow_config = snapshot;
    job.stage = "calibration";
    job.block = b;
    job.priority = request.priority;
    job.payload = job_payload(repo, wf, e.base_commit, e.base_commit, "", wf.warmup_runs, runs, {}, deps);
    job.runs_total = runs_total(wf.warmup_runs, runs);
    e.jobs.push_back(std::move(job));
  }
  StartedCalibration started = start_calibration(db, e, wf.name, request.trigger, request.requested_by);
  spdlog::info("calibration {} of {} ({}): experiment {}, {} A/A batches of {} runs per arm at {}", started.id, wf.name,
               request.trigger, started.experiment_id, batches, runs, e.base_commit.substr(0, 12));
  return started;
}

}  // namespace ttfb
