#include "server/store/experiments.hpp"

#include "common/errors.hpp"

#include <set>

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr const char* kInsertExperiment = R"sql(
INSERT INTO experiments (repo, purpose, base_ref, base_commit, candidate_ref, candidate_commit, diff, diff_sha256,
  author, title, change_url, submitted_by, candidate_runtime, selection)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::jsonb) RETURNING id)sql";

constexpr const char* kInsertExperimentWorkflow = R"sql(
INSERT INTO experiment_workflows (experiment_id, workflow, config) VALUES ($1, $2, $3::jsonb))sql";

constexpr const char* kInsertJob = R"sql(
INSERT INTO jobs (experiment_id, workflow, payload, runs_total, priority, max_attempts, stage, block, avoid_workers)
VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, ARRAY(SELECT jsonb_array_elements_text($9::jsonb)))
RETURNING id)sql";

// One experiment as JSON, built by PostgreSQL. $2 is the server's public URL.
constexpr const char* kSelectExperimentJson = R"sql(
SELECT json_build_object(
  'id', e.id, 'url', $2 || '/api/v1/experiments/' || e.id, 'repo', e.repo, 'purpose', e.purpose,
  'base', json_build_object('ref', e.base_ref, 'commit', e.base_commit),
  'candidate', json_build_object('ref', e.candidate_ref, 'commit', e.candidate_commit,
                                 'diff_sha256', nullif(e.diff_sha256, ''), 'diff_lines',
                                 CASE WHEN e.diff = '' THEN 0 ELSE array_length(string_to_array(e.diff, E'\n'), 1) END,
                                 'env', e.candidate_runtime -> 'env',
                                 'command_prefix', e.candidate_runtime -> 'command_prefix',
                                 'interpreter', e.candidate_runtime -> 'interpreter',
                                 'dependency', (e.candidate_runtime -> 'dependency') - 'diff'),
  'author', e.author, 'title', e.title, 'change_url', e.change_url, 'submitted_by', e.submitted_by,
  'status', e.status, 'verdict', e.verdict, 'error', e.error, 'suite', e.suite, 'selection', e.selection,
  'created_at', e.created_at, 'started_at', e.started_at, 'finished_at', e.finished_at,
  'progress', (SELECT json_build_object(
      'runs_done', coalesce(sum(j.runs_done), 0), 'runs_total', coalesce(sum(j.runs_total), 0),
      'jobs', json_build_object('queued', count(*) FILTER (WHERE j.state = 'queued'),
                                'running', count(*) FILTER (WHERE j.state = 'running'),
                                'done', count(*) FILTER (WHERE j.state = 'done'),
                                'failed', count(*) FILTER (WHERE j.state = 'failed'),
                                'cancelled', count(*) FILTER (WHERE j.state = 'cancelled')))
    FROM jobs j WHERE j.experiment_id = e.id),
  'workflows', (SELECT coalesce(json_agg(json_build_object('workflow', w.workflow, 'state', w.state, 'verdict', w.verdict,
                                                           'design', w.config -> 'design',
                                                           'dependencies', w.config -> 'dependencies', 'result', w.result)
                                         ORDER BY w.workflow), '[]'::json)
                FROM experiment_workflows w WHERE w.experiment_id = e.id)
)::text
FROM experiments e WHERE e.id = $1)sql";

constexpr const char* kListExperimentIds = R"sql(
SELECT id FROM experiments
WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR repo = $2)
ORDER BY id DESC LIMIT $3)sql";

constexpr const char* kSelectSamplesJson = R"sql(
SELECT coalesce(json_agg(json_build_object(
  'job_id', s.job_id, 'stage', j.stage, 'workflow', s.workflow, 'run_index', s.run_index, 'arm', s.arm, 'warmup', s.warmup,
  'ttfb_ms', s.ttfb_ms, 'phases', s.phases, 'cpu_ms', s.cpu_ms, 'cpu_to_first_batch_ms', s.cpu_to_first_batch_ms, 'steal_ms', s.steal_ms, 'max_rss_kb', s.max_rss_kb, 'wall_ms', s.wall_ms,
  'exit_status', s.exit_status, 'signal', s.signal, 'worker', s.worker, 'host', s.host, 'attempt', s.attempt,
  'created_at', s.created_at) ORDER BY s.workflow, s.job_id, s.run_index), '[]'::json)::text
FROM samples s JOIN jobs j ON j.id = s.job_id WHERE s.experiment_id = $1)sql";

constexpr const char* kExperimentStatus = "SELECT status, submitted_by FROM experiments WHERE id = $1 FOR UPDATE";
constexpr const char* kCancelJobs = R"sql(
UPDATE jobs SET state = 'cancelled', lease_owner = NULL, lease_id = NULL, lease_expires_at = NULL, finished_at = now()
WHERE experiment_id = $1 AND state IN ('queued', 'running'))sql";
constexpr const char* kCancelExperiment = R"sql(
UPDATE experiments SET status = 'cancelled', finished_at = now() WHERE id = $1)sql";

constexpr const char* kJobsByState = "SELECT state, count(*) FROM jobs GROUP BY state";
constexpr const char* kExperimentsByVerdict =
    "SELECT coalesce(verdict, 'pending'), count(*) FROM experiments GROUP BY 1";
constexpr const char* kLiveWorkers =
    "SELECT count(*) FROM workers WHERE last_seen > now() - make_interval(secs => $1)";

constexpr const char* kListWorkersJson = R"sql(
SELECT coalesce(json_agg(json_build_object(
  'name', w.name, 'host', w.host, 'cpu_model', w.cpu_model, 'kernel', w.kernel, 'cores', w.cores,
  'version', w.version, 'first_seen', w.first_seen, 'last_seen', w.last_seen,
  'alive', w.last_seen > now() - make_interval(secs => $1),
  'current_job', (SELECT json_build_object('id', j.id, 'experiment_id', j.experiment_id, 'workflow', j.workflow,
                                           'runs_done', j.runs_done, 'runs_total', j.runs_total)
                  FROM jobs j WHERE j.state = 'running' AND j.lease_owner = w.name ORDER BY j.id LIMIT 1)
) ORDER BY w.name), '[]'::json)::text FROM workers w)sql";

}  // namespace

json::object experiment_json(pqxx::work& tx, long id, const std::string& public_url) {
  auto r = tx.exec_params(kSelectExperimentJson, id, public_url);
  if (r.empty()) throw ApiError(ErrorCode::not_found, "experiment " + std::to_string(id) + " does not exist");
  return json::parse(r[0][0].as<std::string>()).as_object();
}

long insert_experiment(pqxx::work& tx, const NewExperiment& e) {
  long id = tx.exec_params1(kInsertExperiment, e.repo, e.purpose, e.base_ref, e.base_commit, e.candidate_ref,
                            e.candidate_commit, e.diff, e.diff_sha256, e.author, e.title, e.change_url, e.submitted_by,
                            json::serialize(e.candidate_runtime),
                            e.selection ? std::optional<std::string>(json::serialize(*e.selection)) : std::nullopt)[0]
                .as<long>();
  std::set<std::string> workflows;
  for (const auto& j : e.jobs) {
    if (workflows.insert(j.workflow).second)
      tx.exec_params(kInsertExperimentWorkflow, id, j.workflow, json::serialize(j.workflow_config));
    insert_job(tx, id, j, e.max_attempts);
  }
  return id;
}

long insert_experiment(Database& db, const NewExperiment& e) {
  return db.transact([&](pqxx::work& tx) { return insert_experiment(tx, e); });
}

long insert_job(pqxx::work& tx, long experiment_id, const NewJob& j, int max_attempts) {
  json::array avoid;  // passed as JSON so that no name can break out of an array literal
  for (const auto& w : j.avoid_workers) avoid.emplace_back(w);
  return tx.exec_params1(kInsertJob, experiment_id, j.workflow, json::serialize(j.payload), j.runs_total, j.priority,
                         max_attempts, j.stage, j.block, json::serialize(avoid))[0].as<long>();
}

json::object get_experiment(Database& db, long id, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) { return experiment_json(tx, id, public_url); });
}

json::array list_experiments(Database& db, const std::optional<std::string>& status, const std::optional<std::string>& repo,
                             int limit, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) {
    json::array out;
    for (const auto& row : tx.exec_params(kListExperimentIds, status, repo, limit)) {
      json::object e = experiment_json(tx, row[0].as<long>(), public_url);
      out.push_back(std::move(e));
    }
    return out;
  });
}

json::array get_samples(Database& db, long id) {
  return db.transact([&](pqxx::work& tx) {
    if (tx.exec_params("SELECT 1 FROM experiments WHERE id = $1", id).empty())
      throw ApiError(ErrorCode::not_found, "experiment " + std::to_string(id) + " does not exist");
    return json::parse(tx.exec_params1(kSelectSamplesJson, id)[0].as<std::string>()).as_array();
  });
}

json::object cancel_experiment(Database& db, long id, const std::string& public_url, const std::string& caller,
                               bool caller_is_admin) {
  return db.transact([&](pqxx::work& tx) {
    auto r = tx.exec_params(kExperimentStatus, id);
    if (r.empty()) throw ApiError(ErrorCode::not_found, "experiment " + std::to_string(id) + " does not exist");
    std::string status = r[0][0].as<std::string>();
    const std::string owner = r[0][1].as<std::string>();
    if (!caller_is_admin && owner != caller)
      throw ApiError(ErrorCode::permission_denied, "experiment " + std::to_string(id) + " was submitted by token '" + owner +
                                                       "'; only that token or an admin token may cancel it");
    if (status != "queued" && status != "running")
      throw ApiError(ErrorCode::conflict, "experiment " + std::to_string(id) + " is already " + status);
    tx.exec_params(kCancelJobs, id);
    tx.exec_params(kCancelExperiment, id);
    return experiment_json(tx, id, public_url);
  });
}

QueueCounts queue_counts(Database& db, int worker_alive_seconds) {
  return db.transact([&](pqxx::work& tx) {
    QueueCounts c;
    for (const auto& row : tx.exec(kJobsByState)) c.jobs_by_state.emplace_back(row[0].as<std::string>(), row[1].as<long>());
    for (const auto& row : tx.exec(kExperimentsByVerdict))
      c.experiments_by_verdict.emplace_back(row[0].as<std::string>(), row[1].as<long>());
    c.live_workers = tx.exec_params1(kLiveWorkers, worker_alive_seconds)[0].as<long>();
    return c;
  });
}

json::array list_workers(Database& db, int worker_alive_seconds) {
  return db.transact([&](pqxx::work& tx) {
    return json::parse(tx.exec_params1(kListWorkersJson, worker_alive_seconds)[0].as<std::string>()).as_array();
  });
}

}  // namespace ttfb
