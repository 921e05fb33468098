// Turns a workflow's finished jobs into its next step (server/stats/adaptive.hpp for the rules):
//   measuring   look at all blocks so far: different -> a confirmation rerun (or the verdict when
//               confirmation is off); same -> no_change; unknown -> the next block, or
//               inconclusive when the runs budget is spent.
//   confirming  the rerun alone, at alpha: reproduced (significant, same direction) -> the
//               verdict stands, confirmed; not reproduced -> inconclusive, confirmed false, and
//               the result says so (nobody is alerted).
//   calibration A/A batches -> stats::calibrate -> the workflow's new threshold.
// A failed or cancelled job ends its workflow with verdict error.
#pragma once

#include "server/config.hpp"
#include "server/store/db.hpp"
#include "server/store/workflow_state.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>

namespace ttfb {

// The decision, without the database (unit-tested). Throws std::invalid_argument for a snapshot
// without a valid design.
WorkflowUpdate step_workflow(const WorkflowState& state);

struct CalibrationStep {
  WorkflowUpdate update;
  std::string status;         // done | error
  boost::json::value result;  // stats::to_json(Calibration) when done
  boost::json::value error;   // when error
};
CalibrationStep step_calibration(const WorkflowState& state);

// One transaction: load (row locked), step, save, and finish the experiment when every workflow
// is done. Returns the experiment's verdict when this step finished it. With `config`, a
// pre-submit workflow's regression verdict (confirmed, or final without confirmation by design)
// also queues an alert to the change's author (server/alerts/outbox.hpp) in the same transaction.
std::optional<std::string> analyse_workflow(Database& db, long experiment_id, const std::string& workflow,
                                            const ServerConfig* config = nullptr);

}  // namespace ttfb
