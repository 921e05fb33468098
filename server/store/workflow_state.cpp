#include "server/store/workflow_state.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

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
               AND j.state = 'cancelled'),
       coalesce(w.result, '{}'::jsonb)::text, coalesce(w.config -> 'design', '{}'::jsonb)::text, e.purpose
FROM experiment_workflows w JOIN experiments e ON e.id = w.experiment_id
WHERE w.experiment_id = $1 ORDER BY w.workflow)sql";

constexpr const char* kSaveSuite = "UPDATE experiments SET suite = $2::jsonb WHERE id = $1";

constexpr const char* kFinishExperiment = R"sql(
UPDATE experiments SET status = $2, verdict = $3, error = $4::jsonb, finished_at = now()
WHERE id = $1 AND status IN ('queued', 'running'))sql";

double number_in(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<double>() : std::numeric_limits<double>::quiet_NaN();
}

json::value finite_or_null(double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); }

}  // namespace

stats::SuiteMember suite_member(const std::string& workflow, const std::string& verdict, const json::object& result) {
  stats::SuiteMember m;
  m.workflow = workflow;
  m.verdict = verdict;
  m.effect_pct = number_in(result, "effect_pct");
  m.p_value = number_in(result, "p_value");
  // The headline's interval (the rerun's when it confirmed) gives the standard error of its log
  // ratio: half its width over the normal quantile of its level. The interval is Welch's t, a
  // little wider than the normal's, so this errs on the wide side.
  const double lo = number_in(result, "ci_low_pct"), hi = number_in(result, "ci_high_pct"),
               confidence = number_in(result, "confidence");
  m.se_log = std::numeric_limits<double>::quiet_NaN();
  if (std::isfinite(lo) && std::isfinite(hi) && lo > -100.0 && confidence > 0.0 && confidence < 1.0) {
    const double z = boost::math::quantile(boost::math::complement(boost::math::normal(), (1.0 - confidence) / 2.0));
    m.se_log = (std::log1p(hi / 100.0) - std::log1p(lo / 100.0)) / (2.0 * z);
  }
  // The level its p was judged at: the rerun's alpha (its p is the rerun's, one-sided), or the
  // deciding look's nominal level.
  const auto* source = result.if_contains("effect_source");
  if (source && source->is_string() && source->as_string() == "rerun") {
    if (const auto* c = result.if_contains("confirmation"); c && c->is_object())
      m.level = number_in(c->as_object(), "rerun_alpha");
  } else if (const auto* look = result.if_contains("look"); look && look->is_object()) {
    m.level = number_in(look->as_object(), "nominal_alpha");
  }
  if (!std::isfinite(m.level)) m.level = 0.0;
  return m;
}

json::object suite_json(const stats::SuiteSummary& s, const std::vector<stats::SuiteMember>& members) {
  json::array rows;
  for (std::size_t i = 0; i < members.size(); ++i) {
    rows.push_back(json::object{{"workflow", members[i].workflow},
                                {"verdict", members[i].verdict},
                                {"effect_pct", finite_or_null(members[i].effect_pct)},
                                {"holm_p", finite_or_null(s.holm_p.at(i))}});
  }
  auto strings = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& x : v) a.emplace_back(x);
    return a;
  };
  return json::object{{"workflows", s.workflows},
                      {"measured", s.measured},
                      {"counts", json::object{{"regression", s.regressions},
                                              {"improvement", s.improvements},
                                              {"no_change", s.no_change},
                                              {"inconclusive", s.inconclusive},
                                              {"error", s.errors}}},
                      {"alpha", s.alpha},
                      {"multiplicity", "holm"},
                      {"regressed", strings(s.regressed)},
                      {"improved", strings(s.improved)},
                      {"geomean_effect_pct", finite_or_null(s.geomean_effect_pct)},
                      {"ci_low_pct", finite_or_null(s.ci_low_pct)},
                      {"ci_high_pct", finite_or_null(s.ci_high_pct)},
                      {"confidence", 1.0 - s.alpha},
                      {"verdict", s.verdict},
                      {"certified", s.certified},
                      {"statement", s.statement},
                      {"members", std::move(rows)}};
}

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
  std::vector<stats::SuiteMember> members;
  double suite_alpha = 0.5, suite_margin = -1.0;
  bool suite = false;
  for (const auto& row : tx.exec_params(kSelectWorkflowOutcomes, experiment_id)) {
    if (row[1].as<std::string>() != "done") return std::nullopt;
    const std::string verdict = row[2].is_null() ? "error" : row[2].as<std::string>();
    const std::string purpose = row[7].as<std::string>();
    suite = purpose == "presubmit" || purpose == "release";
    const json::object design = json::parse(row[6].as<std::string>()).as_object();
    if (const auto* a = design.if_contains("alpha"); a && a->is_number()) suite_alpha = std::min(suite_alpha, a->to_number<double>());
    if (const auto* m = design.if_contains("equivalence_margin_pct"); m && m->is_number())
      suite_margin = suite_margin < 0.0 ? m->to_number<double>() : std::min(suite_margin, m->to_number<double>());
    members.push_back(suite_member(row[0].as<std::string>(), verdict, json::parse(row[5].as<std::string>()).as_object()));
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
  // A cancelled experiment has no answer for its suite: its workflows stopped where they were.
  if (suite && !cancelled && members.size() >= 2 && suite_alpha < 0.5) {
    tx.exec_params(kSaveSuite, experiment_id,
                   json::serialize(suite_json(stats::summarize_suite(members, suite_alpha, std::max(0.0, suite_margin)),
                                              members)));
  }
  return verdict;
}

}  // namespace ttfb
