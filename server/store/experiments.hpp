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
};

struct NewExperiment {
  std::string repo;
  std::string purpose = "presubmit";
  std::string base_ref, base_commit;
  std::optional<std::string> candidate_ref;
  std::string candidate_commit;
  std::string diff, diff_sha256;
  std::string author, title, change_url, submitted_by;
  int max_attempts = 3;
  std::vector<NewJob> jobs;
};

long insert_experiment(Database& db, const NewExperiment& e);

// The experiment as GET /api/v1/experiments/{id} shows it; throws not_found.
boost::json::object get_experiment(Database& db, long id, const std::string& public_url);
boost::json::array list_experiments(Database& db, const std::optional<std::string>& status,
                                    const std::optional<std::string>& repo, int limit, const std::string& public_url);
// Every sample of the experiment (warm-ups flagged), in run order per job; throws not_found.
boost::json::array get_samples(Database& db, long id);
// Cancels queued and running jobs; a finished experiment gives conflict.
boost::json::object cancel_experiment(Database& db, long id, const std::string& public_url);

// Experiments whose jobs are all finished (done, failed or cancelled) but which have no verdict yet.
std::vector<long> experiments_ready_for_analysis(Database& db);

struct ArmSamples {
  std::vector<double> baseline, candidate;                    // measured TTFB, ms
  std::vector<boost::json::array> baseline_phases, candidate_phases;
};
struct WorkflowToAnalyse {
  std::string workflow;
  boost::json::object config;   // the snapshot taken at submission
  std::string job_state;        // done | failed | cancelled
  boost::json::value job_error;  // null unless failed
  ArmSamples samples;
};
std::vector<WorkflowToAnalyse> load_for_analysis(Database& db, long experiment_id);

// Stores per-workflow results and the experiment's overall verdict and status in one transaction.
struct WorkflowResult {
  std::string workflow;
  std::string verdict;
  boost::json::object result;
};
void store_analysis(Database& db, long experiment_id, const std::vector<WorkflowResult>& results,
                    const std::string& status, const std::string& verdict, const boost::json::value& error);

// Counts for /metrics: jobs by state, live workers, experiments by verdict.
struct QueueCounts {
  std::vector<std::pair<std::string, long>> jobs_by_state;
  std::vector<std::pair<std::string, long>> experiments_by_verdict;
  long live_workers = 0;
};
QueueCounts queue_counts(Database& db, int worker_alive_seconds);

boost::json::array list_workers(Database& db, int worker_alive_seconds);

}  // namespace ttfb
