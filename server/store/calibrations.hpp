// A/A calibrations in PostgreSQL: started (an experiment of purpose "calibration" with its A/A
// batches, and a calibrations row, in one transaction), finished by the scheduler's analysis,
// read back as the workflow's current threshold and as JSON for GET /api/v1/workflows/{name}.
#pragma once

#include "server/config.hpp"
#include "server/scheduler/plan.hpp"
#include "server/store/db.hpp"
#include "server/store/experiments.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb {

// Starts a calibration: inserts the experiment (its jobs stage "calibration") and the row.
// Throws ApiError(conflict) naming the running one when the workflow already has one.
struct StartedCalibration {
  long id = 0;
  long experiment_id = 0;
};
StartedCalibration start_calibration(Database& db, const NewExperiment& experiment, const std::string& workflow,
                                     const std::string& trigger, const std::string& requested_by);

// The latest finished calibration of a workflow, as submissions use it.
std::optional<CurrentCalibration> current_calibration(Database& db, const std::string& workflow);

// Records the end of the calibration run by experiment_id: status done with its numbers and
// result, or error / cancelled with the error.
void finish_calibration(pqxx::work& tx, long experiment_id, const std::string& status, const boost::json::value& result,
                        const boost::json::value& error);
void cancel_calibration_of(pqxx::work& tx, long experiment_id);

// {"current": {...} | null, "running": {...} | null, "stale": bool, "stale_reason": "...",
//  "experiments_since": n}: what GET /api/v1/workflows/{name} shows under "calibration".
boost::json::object calibration_status(Database& db, const std::string& workflow, const WorkflowPolicy& policy);

// The "current" calibration of a calibration_status() answer as submissions use it (nullopt when
// there is none), so a caller holding the status need not read the row again.
std::optional<CurrentCalibration> current_of(const boost::json::object& status);

// Workflows whose latest finished calibration is stale (older than recalibrate_after_days, or
// followed by recalibrate_after_experiments experiments) and which have none running. Only
// workflows calibrated before: a first calibration is asked for by people.
std::vector<std::string> stale_calibrations(Database& db, const std::map<std::string, WorkflowConfig>& workflows);

}  // namespace ttfb
