// Experiments in PostgreSQL: created with their per-workflow rows and jobs in one transaction,
// read back as the JSON the REST API returns, cancelled, and analysed once their jobs are done.
#pragma once

#include "server/store/db.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb {

struct NewJob {
  std::string workflow;
  boost::json::object workflow_config;  // snapshot, stored in experiment_workflows.config
  boost::json::object payload;          // repo, workflow, arms, schedule (docs/worker-protocol.md)
  int runs_total = 0;
  int priority = 0;
  std::string stage = "block";          // block | confirmation | calibration | probe (bisection)
  int block = 1;
  std::vector<std::string> avoid_workers;  // run elsewhere when another live worker can
};

struct NewExperiment {
  std::string repo;
  std::string purpose = "presubmit";
  std::string base_ref, base_commit;
  std::optional<std::string> candidate_ref;
  std::string candidate_commit;
  std::string diff, diff_sha256;
  std::string author, title, change_url, submitted_by;
  boost::json::object candidate_runtime;  // CandidateRuntime::to_json() (server/scheduler/plan.hpp): {} for none
  std::optional<boost::json::array> selection;  // the workflows chosen by footprint (scheduler/select.hpp), if they were
  int max_attempts = 3;
  std::vector<NewJob> jobs;
};

long insert_experiment(Database& db, const NewExperiment& e);
// The same inside a transaction the caller holds (a calibration inserts its row beside it).
long insert_experiment(pqxx::work& tx, const NewExperiment& e);
// Adds a job to an existing experiment (the next block, a confirmation rerun); returns its id.
long insert_job(pqxx::work& tx, long experiment_id, const NewJob& job, int max_attempts);

// The experiment as GET /api/v1/experiments/{id} shows it; throws not_found.
boost::json::object get_experiment(Database& db, long id, const std::string& public_url);
// The same inside the caller's transaction (a release gate shows its experiment).
boost::json::object experiment_json(pqxx::work& tx, long id, const std::string& public_url);
boost::json::array list_experiments(Database& db, const std::optional<std::string>& status,
                                    const std::optional<std::string>& repo, int limit, const std::string& public_url);
// Every sample of the experiment (warm-ups flagged), in run order per job; throws not_found.
boost::json::array get_samples(Database& db, long id);
// Cancels queued and running jobs; a finished experiment gives conflict.
// Only the token that submitted it (experiments.submitted_by) or an admin token may cancel.
boost::json::object cancel_experiment(Database& db, long id, const std::string& public_url, const std::string& caller,
                                      bool caller_is_admin);

// Counts for /metrics: jobs by state, live workers, experiments by verdict.
struct QueueCounts {
  std::vector<std::pair<std::string, long>> jobs_by_state;
  std::vector<std::pair<std::string, long>> experiments_by_verdict;
  long live_workers = 0;
};
QueueCounts queue_counts(Database& db, int worker_alive_seconds);

boost::json::array list_workers(Database& db, int worker_alive_seconds);

}  // namespace ttfb
