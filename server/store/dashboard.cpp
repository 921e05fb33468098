#include "server/store/dashboard.hpp"

#include "common/errors.hpp"

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr const char* kJobCounts = "SELECT state, count(*) FROM jobs GROUP BY state";

constexpr const char* kJobs = R"sql(
SELECT coalesce(json_agg(row_to_json(j) ORDER BY j.rank, j.sort_key, j.id), '[]'::json)::text FROM (
  SELECT j.id, j.experiment_id, e.purpose, j.workflow, j.stage, j.state, coalesce(j.lease_owner, j.last_worker) AS worker, j.attempt,
         j.runs_done, j.runs_total, j.created_at, j.started_at, j.finished_at,
         CASE WHEN j.state = 'failed' THEN j.error END AS error,
         CASE j.state WHEN 'running' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END AS rank,
         CASE WHEN j.state = 'queued' THEN -j.priority::double precision
              WHEN j.state = 'running' THEN 0
              ELSE -extract(epoch FROM coalesce(j.finished_at, j.created_at)) END AS sort_key
  FROM jobs j JOIN experiments e ON e.id = j.experiment_id
  WHERE $1::text IS NULL OR j.state = $1
  ORDER BY rank, sort_key, j.id
  LIMIT $2) j)sql";

constexpr const char* kExperiments = R"sql(
SELECT coalesce(json_agg(row_to_json(x) ORDER BY x.finished_at DESC, x.id DESC), '[]'::json)::text FROM (
  SELECT e.id, e.purpose, e.base_ref, e.base_commit, ew.verdict, e.finished_at,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY s.ttfb_ms) FILTER (WHERE s.arm = 'baseline') AS baseline_median_ms,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY s.ttfb_ms) FILTER (WHERE s.arm = 'candidate') AS candidate_median_ms,
         count(*) FILTER (WHERE s.arm = 'baseline') AS baseline_runs,
         (ew.result ->> 'effect_pct')::double precision AS effect_pct,
         (ew.config #>> '{design,threshold_pct}')::double precision AS threshold_pct,
         $3 || '/api/v1/experiments/' || e.id AS url
  FROM experiments e
  JOIN experiment_workflows ew ON ew.experiment_id = e.id AND ew.workflow = $1
  JOIN samples s ON s.experiment_id = e.id AND s.workflow = $1 AND NOT s.warmup
  WHERE e.status = 'done' AND e.purpose <> 'bisect'
  GROUP BY e.id, e.purpose, e.base_ref, e.base_commit, ew.verdict, e.finished_at, ew.result, ew.config
  ORDER BY e.finished_at DESC, e.id DESC
  LIMIT $2) x)sql";

constexpr const char* kCalibrations = R"sql(
SELECT coalesce(json_agg(json_build_object('id', c.id, 'finished_at', c.finished_at, 'sigma_aa_pct', c.sigma_aa_pct,
                                           'k', c.k, 'threshold_pct', c.threshold_pct, 'trigger', c.trigger)
                         ORDER BY c.id DESC), '[]'::json)::text
FROM (SELECT * FROM calibrations WHERE workflow = $1 AND status = 'done' ORDER BY id DESC LIMIT $2) c)sql";

}  // namespace

json::object list_jobs(Database& db, const std::optional<std::string>& state, int limit) {
  return db.transact([&](pqxx::work& tx) {
    json::object counts{{"queued", 0}, {"running", 0}, {"done", 0}, {"failed", 0}, {"cancelled", 0}};
    for (const auto& row : tx.exec(kJobCounts)) counts[row[0].as<std::string>()] = row[1].as<long>();
    json::value jobs = json::parse(tx.exec_params1(kJobs, state, limit)[0].as<std::string>());
    for (auto& j : jobs.as_array()) {
      j.as_object().erase("rank");
      j.as_object().erase("sort_key");
    }
    return json::object{{"counts", std::move(counts)}, {"jobs", std::move(jobs)}};
  });
}

std::string experiment_diff(Database& db, long id) {
  return db.transact([&](pqxx::work& tx) {
    const auto rows = tx.exec_params("SELECT CASE WHEN diff = '' THEN coalesce(candidate_runtime #>> '{dependency,diff}', '') ELSE diff END "
                                     "FROM experiments WHERE id = $1", id);
    if (rows.empty()) throw ApiError(ErrorCode::not_found, "experiment " + std::to_string(id) + " does not exist");
    return rows[0][0].is_null() ? std::string() : rows[0][0].as<std::string>();
  });
}

json::object workflow_history(Database& db, const std::string& workflow, int limit, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) {
    json::value experiments = json::parse(tx.exec_params1(kExperiments, workflow, limit, public_url)[0].as<std::string>());
    json::value calibrations = json::parse(tx.exec_params1(kCalibrations, workflow, limit)[0].as<std::string>());
    return json::object{{"workflow", workflow}, {"experiments", std::move(experiments)}, {"calibrations", std::move(calibrations)}};
  });
}

}  // namespace ttfb
