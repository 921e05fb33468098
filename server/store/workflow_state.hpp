// Where each workflow of an experiment stands, for the scheduler's analysis: its jobs (blocks,
// confirmation, calibration batches), their measured runs, and the design frozen at submission;
// and the one transaction that records a step (new jobs, the result so far, the final verdict).
//
//   for (auto [experiment, workflow] : ttfb::workflows_ready(db))
//     db.transact([&](pqxx::work& tx) {
//       auto state = ttfb::load_workflow_state(tx, experiment, workflow);   // row locked
//       if (state) ttfb::save_workflow_update(tx, *state, decide(*state));
//     });
#pragma once

#include "server/store/db.hpp"
#include "server/stats/suite.hpp"
#include "server/store/experiments.hpp"

#include <boost/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ttfb {

struct JobRecord {
  long id = 0;
  std::string stage;        // block | confirmation | calibration
  int block = 1;
  std::string state;        // queued | running | done | failed | cancelled
  boost::json::value error;  // null unless failed
  bool analysed = false;
  int priority = 0;
  boost::json::object payload;
  std::set<std::string> workers;  // who produced its measured runs
};

struct RunRecord {
  long job_id = 0;
  bool baseline = true;
  double ttfb_ms = 0.0;
  boost::json::array phases;
  std::optional<double> cpu_ms;  // CPU time to the first batch; unknown for some workers and older runs
};

struct WorkflowState {
  long experiment_id = 0;
  std::string purpose;
  std::string workflow;
  boost::json::object config;  // the snapshot taken at submission, with "design"
  std::string state;           // measuring | confirming | done
  boost::json::array looks;
  std::vector<JobRecord> jobs;  // by id
  std::vector<RunRecord> runs;  // measured runs, by job then run index
  int max_attempts = 3;
};

// Workflows with something new to analyse (bisections drive their own jobs: not theirs): not done, of an experiment still queued or running,
// no job of theirs queued or running, and at least one finished job not analysed yet.
std::vector<std::pair<long, std::string>> workflows_ready(Database& db);

// Locks the workflow's row and loads it; nullopt when it is no longer ready (another scheduler
// got there first, or a job was added meanwhile).
std::optional<WorkflowState> load_workflow_state(pqxx::work& tx, long experiment_id, const std::string& workflow);

struct WorkflowUpdate {
  std::string state;                   // the workflow's new state
  std::optional<std::string> verdict;  // set when final
  boost::json::object result;          // what GET /experiments/{id} shows for the workflow
  boost::json::array looks;            // the looks so far, the new one included
  std::vector<NewJob> new_jobs;        // the next block or the confirmation rerun
};

// Records the step: every job of the state marked analysed, new jobs inserted, the row updated.
void save_workflow_update(pqxx::work& tx, const WorkflowState& state, const WorkflowUpdate& update);

// When every workflow of the experiment is done: the overall verdict (error if any workflow
// errored, else regression if any regressed, else inconclusive if any was, else improvement if any
// improved, else no_change) and status, stored; returns the verdict. nullopt while some workflow
// is still measuring or confirming.
// Also writes experiments.suite for an experiment of two or more workflows (pre-submit or release,
// not cancelled):
// suite_json of the workflows' results, at the smallest of their designs' alphas and margins.
std::optional<std::string> finish_experiment_if_done(pqxx::work& tx, long experiment_id);

// A workflow's result as a member of its experiment's suite: the headline effect, the standard
// error of its log ratio from the headline's interval, its p and the level it was judged at.
stats::SuiteMember suite_member(const std::string& workflow, const std::string& verdict, const boost::json::object& result);
// experiments.suite: the summary's numbers and words, and each member's verdict, effect and Holm p.
boost::json::object suite_json(const stats::SuiteSummary& summary, const std::vector<stats::SuiteMember>& members);

}  // namespace ttfb
