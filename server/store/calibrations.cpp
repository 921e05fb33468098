#include "server/store/calibrations.hpp"

#include "common/errors.hpp"

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr const char* kRunningCalibration = R"sql(
SELECT id, experiment_id FROM calibrations WHERE workflow = $1 AND status = 'running')sql";

constexpr const char* kInsertCalibration = R"sql(
INSERT INTO calibrations (workflow, experiment_id, trigger, requested_by) VALUES ($1, $2, $3, $4) RETURNING id)sql";

constexpr const char* kCurrentCalibration = R"sql(
SELECT id, sigma_aa_pct, k, threshold_pct, finished_at::text FROM calibrations
WHERE workflow = $1 AND status = 'done' ORDER BY id DESC LIMIT 1)sql";

constexpr const char* kFinishCalibration = R"sql(
UPDATE calibrations SET status = $2, result = $3::jsonb, error = $4::jsonb, finished_at = now(),
  sigma_aa_pct = ($3::jsonb ->> 'sigma_aa_pct')::double precision,
  k = ($3::jsonb ->> 'k')::double precision,
  threshold_pct = ($3::jsonb ->> 'threshold_pct')::double precision
WHERE experiment_id = $1 AND status = 'running')sql";

// One calibration as JSON, with how stale it is. $2, $3: the workflow's staleness limits.
constexpr const char* kCalibrationJson = R"sql(
SELECT json_build_object(
  'id', c.id, 'experiment_id', c.experiment_id, 'trigger', c.trigger, 'requested_by', c.requested_by,
  'status', c.status, 'created_at', c.created_at, 'finished_at', c.finished_at,
  'sigma_aa_pct', c.sigma_aa_pct, 'k', c.k, 'threshold_pct', c.threshold_pct, 'error', c.error,
  'result', c.result,
  'age_days', extract(epoch FROM now() - coalesce(c.finished_at, c.created_at)) / 86400.0,
  'experiments_since', (SELECT count(*) FROM experiment_workflows w JOIN experiments e ON e.id = w.experiment_id
                        WHERE w.workflow = c.workflow AND e.purpose <> 'calibration'
                          AND e.created_at > coalesce(c.finished_at, c.created_at))
)::text FROM calibrations c WHERE c.id = $1)sql";

constexpr const char* kLatestIds = R"sql(
SELECT (SELECT id FROM calibrations WHERE workflow = $1 AND status = 'done' ORDER BY id DESC LIMIT 1),
       (SELECT id FROM calibrations WHERE workflow = $1 AND status = 'running' LIMIT 1),
       (SELECT id FROM calibrations WHERE workflow = $1 ORDER BY id DESC LIMIT 1))sql";

constexpr const char* kCancelCalibration = R"sql(
UPDATE calibrations SET status = 'cancelled', finished_at = now() WHERE experiment_id = $1 AND status = 'running')sql";

json::object calibration_json(pqxx::work& tx, long id) {
  return json::parse(tx.exec_params1(kCalibrationJson, id)[0].as<std::string>()).as_object();
}

double number(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v && v->is_double()) return v->get_double();
  if (v && v->is_int64()) return static_cast<double>(v->get_int64());
  return 0.0;
}

// Why a finished calibration is stale, or "" when it is not.
std::string stale_reason(const json::object& c, const WorkflowPolicy& p) {
  const double age = number(c, "age_days");
  const double since = number(c, "experiments_since");
  if (age > p.recalibrate_after_days)
    return "older than " + std::to_string(p.recalibrate_after_days) + " days";
  if (since >= p.recalibrate_after_experiments)
    return std::to_string(static_cast<long>(since)) + " experiments since (limit " +
           std::to_string(p.recalibrate_after_experiments) + ")";
  return "";
}

}  // namespace

StartedCalibration start_calibration(Database& db, const NewExperiment& experiment, const std::string& workflow,
                                     const std::string& trigger, const std::string& requested_by) {
  return db.transact([&](pqxx::work& tx) {
    auto running = tx.exec_params(kRunningCalibration, workflow);
    if (!running.empty())
      throw ApiError(ErrorCode::conflict, "workflow '" + workflow + "' is already being calibrated (calibration " +
                                              running[0][0].as<std::string>() + ", experiment " +
                                              running[0][1].as<std::string>() + ")");
    StartedCalibration out;
    out.experiment_id = insert_experiment(tx, experiment);
    out.id = tx.exec_params1(kInsertCalibration, workflow, out.experiment_id, trigger, requested_by)[0].as<long>();
    return out;
  });
}

std::optional<CurrentCalibration> current_calibration(Database& db, const std::string& workflow) {
  return db.transact([&](pqxx::work& tx) -> std::optional<CurrentCalibration> {
    auto r = tx.exec_params(kCurrentCalibration, workflow);
    if (r.empty() || r[0][1].is_null() || r[0][2].is_null()) return std::nullopt;
    return CurrentCalibration{r[0][0].as<long>(), r[0][1].as<double>(), r[0][2].as<double>(), r[0][3].as<double>(),
                              r[0][4].as<std::string>()};
  });
}

void finish_calibration(pqxx::work& tx, long experiment_id, const std::string& status, const json::value& result,
                        const json::value& error) {
  std::optional<std::string> r, e;
  if (!result.is_null()) r = json::serialize(result);
  if (!error.is_null()) e = json::serialize(error);
  tx.exec_params(kFinishCalibration, experiment_id, status, r, e);
}

void cancel_calibration_of(pqxx::work& tx, long experiment_id) { tx.exec_params(kCancelCalibration, experiment_id); }

json::object calibration_status(Database& db, const std::string& workflow, const WorkflowPolicy& policy) {
  return db.transact([&](pqxx::work& tx) {
    auto ids = tx.exec_params1(kLatestIds, workflow);
    json::object out{{"current", nullptr}, {"running", nullptr}, {"last", nullptr}, {"stale", false},
                     {"stale_reason", ""}};
    if (!ids[0].is_null()) {
      json::object c = calibration_json(tx, ids[0].as<long>());
      std::string reason = stale_reason(c, policy);
      out["stale"] = !reason.empty();
      out["stale_reason"] = reason;
      out["current"] = std::move(c);
    } else {
      out["stale"] = true;
      out["stale_reason"] = "never calibrated: the detection threshold is detection_floor_pct";
    }
    if (!ids[1].is_null()) out["running"] = calibration_json(tx, ids[1].as<long>());
    if (!ids[2].is_null() && ids[2].as<long>() != (ids[0].is_null() ? -1 : ids[0].as<long>()) &&
        ids[2].as<long>() != (ids[1].is_null() ? -1 : ids[1].as<long>()))
      out["last"] = calibration_json(tx, ids[2].as<long>());  // a failed or cancelled one, newer than current
    return out;
  });
}

std::optional<CurrentCalibration> current_of(const json::object& status) {
  const auto* cur = status.if_contains("current");
  if (!cur || !cur->is_object()) return std::nullopt;
  const auto& c = cur->as_object();
  const auto* sigma = c.if_contains("sigma_aa_pct");
  const auto* k = c.if_contains("k");
  if (!sigma || !k || !sigma->is_number() || !k->is_number()) return std::nullopt;
  const auto* finished = c.if_contains("finished_at");
  return CurrentCalibration{c.at("id").to_number<long>(), sigma->to_number<double>(), k->to_number<double>(),
                            number(c, "threshold_pct"),
                            finished && finished->is_string() ? std::string(finished->get_string()) : ""};
}

std::vector<std::string> stale_calibrations(Database& db, const std::map<std::string, WorkflowConfig>& workflows) {
  std::vector<std::string> out;
  for (const auto& [name, wf] : workflows) {
    json::object s = calibration_status(db, name, wf.policy);
    if (s["current"].is_null() || !s["running"].is_null()) continue;
    // One that failed lately is not retried on every tick: a day later at the earliest.
    if (const auto& last = s["last"]; last.is_object() && number(last.as_object(), "age_days") < 1.0) continue;
    if (s["stale"].as_bool()) out.push_back(name);
  }
  return out;
}

}  // namespace ttfb
