// Starting an A/A calibration of a workflow: the same commit in both arms, measured in
// `batches` jobs of `runs_per_arm` runs per arm, analysed by stats::calibrate when all are done
// (server/scheduler/analysis.hpp). Used by POST /api/v1/workflows/{name}/calibrate and by the
// scheduler when a calibration goes stale.
#pragma once

#include "server/config.hpp"
#include "server/repos.hpp"
#include "server/store/calibrations.hpp"
#include "server/store/db.hpp"

#include <optional>
#include <string>

namespace ttfb {

struct CalibrationRequest {
  std::string workflow;
  std::optional<std::string> base;          // default: the repository's default branch
  std::optional<int> runs_per_arm;          // default: policy.calibration_runs_per_arm
  std::optional<int> batches;               // default: policy.calibration_batches
  std::string trigger = "manual";           // manual | stale
  std::string requested_by;
  int priority = 0;                         // stale ones run at -10, after everything else
};

// Throws ApiError: invalid_argument for an unknown workflow or revision, conflict when the
// workflow is already being calibrated.
StartedCalibration request_calibration(const ServerConfig& config, Database& db, RepoMirrors& mirrors,
                                       const CalibrationRequest& request);

}  // namespace ttfb
