// Turns an experiment's samples into per-workflow results and an overall verdict (v0: Welch's
// t-test on log TTFB with a minimum effect; see server/stats/).
#pragma once

#include "server/store/db.hpp"
#include "server/store/experiments.hpp"

#include <string>

namespace ttfb {

// The result of one workflow: n per arm, medians, means, CV, effect % with CI, p-value,
// threshold, verdict, per-phase medians, or the job's error.
WorkflowResult analyse_workflow(const WorkflowToAnalyse& w);

// Analyses and stores; returns the experiment's verdict. Overall verdict: error if any job
// failed, else regression if any workflow regressed, else inconclusive if any was, else
// improvement if any improved, else no_change.
std::string analyse_experiment(Database& db, long experiment_id);

}  // namespace ttfb
