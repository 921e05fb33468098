// Read models the dashboard needs beyond the other endpoints: the job queue, and a workflow's
// measurements over time. Plain SQL with parameters, JSON built by PostgreSQL.
//
//   json::object q = ttfb::list_jobs(db, "queued", 50);   // {"counts": {...}, "jobs": [...]}
//   json::object h = ttfb::workflow_history(db, "example-train", 100, public_url);
//   std::string d = ttfb::experiment_diff(db, 12);          // what `submit --diff` sent
#pragma once

#include "server/store/db.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>

namespace ttfb {

// Jobs of every experiment: `counts` by state (all of them), and up to `limit` jobs, running
// first, then queued in claim order, then the latest finished; `state` keeps one state only.
// Each job: id, experiment_id, purpose, workflow, stage, state, worker (the lease holder, else
// the last worker that held it: who ran a finished job), attempt, runs_done,
// runs_total, created_at, started_at, finished_at, error (code and message, failed jobs).
boost::json::object list_jobs(Database& db, const std::optional<std::string>& state, int limit);

// The workflow's finished experiments (not bisections: their arms are not one change's), newest first (up to `limit`): id, purpose, base_ref, base_commit, verdict,
// finished_at, the baseline's and the candidate's median TTFB (measured runs), effect_pct and
// threshold_pct when analysed, url; and its finished calibrations: id, finished_at,
// sigma_aa_pct, k, threshold_pct (the caller checks that the workflow exists).
// The diff an experiment's candidate applies (empty for none). ApiError not_found for no experiment.
std::string experiment_diff(Database& db, long id);

boost::json::object workflow_history(Database& db, const std::string& workflow, int limit, const std::string& public_url);

}  // namespace ttfb
