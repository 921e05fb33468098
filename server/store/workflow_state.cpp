#include "server/store/workflow_state.hpp"

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr const char* kWorkflowsReady = R"sql(
SELECT w.experiment_id, w.workflow FROM experiment_workflows w JOIN experiments e ON e.id = w.experiment_id
WHERE w.state <> 'done' AND e.status IN ('queued', 'running') AND e.purpose <> 'bisect'
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = w.experiment_id AND j.workflow = w.workflow AND NOT j.analysed
              AND j.state IN ('done', 'failed', 'cancelled'))
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = w.experiment_id AND j.workflow = w.workflow
                  AND j.state IN ('queued', 'running'))
ORDER BY w.experiment_id, w.workflow LIMIT 50)sql";

constexpr const char* kLockWorkflow = R"sql(
SELECT e.purpose, w.config::text, w.state, w.looks::text
FROM experiment_workflows w JOIN experiments e ON e.id = w.experiment_id
WHERE w.experiment_id = $1 AND w.workflow = $2 AND w.state <> 'done' AND e.status IN ('queued', 'running')
FOR UPDATE OF w)sql";

constexpr const char* kSelectJobs = R"sql(
SELECT j.id, j.stage, j.block, j.state, coalesce(j.error::text, 'null'), j.analysed, j.priority, j.payload::text,
       j.max_attempts,
       ARRAY(SELECT DISTINCT s.worker FROM samples s WHERE s.job_id = j.id AND NOT s.warmup ORDER BY 1)
FROM jobs j WHERE j.experiment_id = $1 AND j.workflow = $2 ORDER BY j.id)sql";

constexpr const char* kSelectRuns = R"sql(
SELECT s.job_id, s.arm, s.ttfb_ms, s.phases::text, s.cpu_to_first_batch_ms FROM samples s JOIN jobs j ON j.id = s.job_id
WHERE s.experiment_id = $1 AND s.workflow = $2 AND NOT s.warmup AND j.state = 'done'
ORDER BY s.job_id, s.run_index)sql";

constexpr const char* kMarkAnalysed = R"sql(
UPDATE jobs SET analysed = true
WHERE experiment_id = $1 AND workflow = $2 AND state IN ('done', 'failed', 'cancelled'))sql";

constexpr const char* kUpdateWorkflow = R"sql(
UPDATE experiment_workflows SET state = $3, verdict = $4, result = $5::jsonb, looks = $6::jsonb
WHERE experiment_id = $1 AND workflow = $2)sql";

constexpr const char* kSelectWorkflowOutcomes = R"sql(
SELECT w.workflow, w.state, w.verdict, coalesce(w.result -> 'error', 'null')::text,
       EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = w.experiment_id AND j.workflow = w.workflow
               AND j.state = 'cancelled')
FROM experiment_workflows w WHERE w.experiment_id = $1 ORDER BY w.workflow)sql";

constexpr const char* kFinishExperiment = R"sql(
UPDATE experiments SET status = $2, verdict = $3, error = $4::jsonb, finished_at = now()
WHERE id = $1 AND status IN ('queued', 'running'))sql";

}  // namespace

std::vector<std::pair<long, std::string>> workflows_ready(Database& db) {
  return db.transact([&](pqxx::work& tx) {
    std::vector<std::pair<long, std::string>> out;
    for (const auto& row : tx.exec(kWorkflowsReady)) out.emplace_back(row[0].as<long>(), row[1].as<std::string>());
    return out;
  });
}

std::optional<WorkflowState> load_workflow_state(pqxx::work& tx, long experiment_id, const std::string& workflow) {
  auto head = tx.exec_params(kLockWorkflow, experiment_id, workflow);
  if (head.empty()) return std::nullopt;
  WorkflowState s;
  s.experiment_id = experiment_id;
  s.workflow = workflow;
  s.purpose = head[0][0].as<std::string>();
  s.config = json::parse(head[0][1].as<std::string>()).as_object();
  s.state = head[0][2].as<std::string>();
  s.looks = json::parse(head[0][3].as<std::string>()).as_array();
  bool unanalysed = false;
  for (const auto& row : tx.exec_params(kSelectJobs, experiment_id, workflow)) {
    JobRecord j;
    j.id = row[0].as<long>();
    j.stage = row[1].as<std::string>();
    j.block = row[2].as<int>();
    j.state = row[3].as<std::string>();
    j.error = json::parse(row[4].as<std::string>());
    j.analysed = row[5].as<bool>();
    j.priority = row[6].as<int>();
    j.payload = json::parse(row[7].as<std::string>()).as_object();
    s.max_attempts = row[8].as<int>();
    auto workers = row[9].as_array();
    for (auto elem = workers.get_next(); elem.first != pqxx::array_parser::juncture::done; elem = workers.get_next()) {
      if (elem.first == pqxx::array_parser::juncture::string_value) j.workers.insert(elem.second);
    }
    if (j.state == "queued" || j.state == "running") return std::nullopt;  // not ready after all
    unanalysed |= !j.analysed;
    s.jobs.push_back(std::move(j));
  }
  if (!unanalysed) return std::nullopt;
  for (const auto& row : tx.exec_params(kSelectRuns, experiment_id, workflow)) {
    RunRecord r;
    r.job_id = row[0].as<long>();
    r.baseline = row[1].as<std::string>() == "baseline";
    r.ttfb_ms = row[2].as<double>();
    r.phases = json::parse(row[3].as<std::string>()).as_array();
    if (!row[4].is_null()) r.cpu_ms = row[4].as<double>();
    s.runs.push_back(std::move(r));
  }
  return s;
}

void save_workflow_update(pqxx::work& tx, const WorkflowState& state, const WorkflowUpdate& u) {
  tx.exec_params(kMarkAnalysed, state.experiment_id, state.workflow);
  for (const auto& job : u.new_jobs) insert_job(tx, state.experiment_id, job, state.max_attempts);
  tx.exec_params(kUpdateWorkflow, state.experiment_id, state.workflow, u.state, u.verdict, json::serialize(u.result),
                 json::serialize(u.looks));
}

std::optional<std::string> finish_experiment_if_done(pqxx::work& tx, long experiment_id) {
  bool any_error = false, any_regression = false, any_inconclusive = false, any_improvement = false, cancelled = false;
  json::value error = nullptr;
  for (const auto& row : tx.exec_params(kSelectWorkflowOutcomes, experiment_id)) {
    if (row[1].as<std::string>() != "done") return std::nullopt;
    const std::string verdict = row[2].is_null() ? "error" : row[2].as<std::string>();
    cancelled |= row[4].as<bool>();
    if (verdict == "error") {
      any_error = true;
      json::value e = json::parse(row[3].as<std::string>());
      if (error.is_null() && e.is_object()) {
        e.as_object()["workflow"] = row[0].as<std::string>();
        error = std::move(e);
      }
    }
    any_regression |= verdict == "regression";
    any_inconclusive |= verdict == "inconclusive";
    any_improvement |= verdict == "improvement";
  }
  const std::string verdict = any_error          ? "error"
                              : any_regression   ? "regression"
                              : any_inconclusive ? "inconclusive"
                              : any_improvement  ? "improvement"
                                                 : "no_change";
  const std::string status = cancelled ? "cancelled" : any_error ? "error" : "done";
  std::optional<std::string> err;
  if (!error.is_null()) err = json::serialize(error);
  tx.exec_params(kFinishExperiment, experiment_id, status, verdict, err);
  return verdict;
}

}  // namespace ttfb
