#include "server/scheduler/analysis.hpp"

#include "common/json_number.hpp"
#include "server/alerts/compose.hpp"
#include "server/alerts/outbox.hpp"
#include "server/scheduler/plan.hpp"
#include "server/stats/adaptive.hpp"
#include "server/stats/calibration.hpp"
#include "server/stats/comparison.hpp"
#include "server/stats/phases.hpp"
#include "server/store/calibrations.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace ttfb {
namespace {
namespace json = boost::json;

double number_or(const json::object& o, const char* key, double fallback) {
  const auto* v = o.if_contains(key);
  if (v && v->is_double()) return v->get_double();
  if (v && v->is_int64()) return static_cast<double>(v->get_int64());
  return fallback;
}

std::string fmt(const char* f, double a, double b = 0.0, double c = 0.0, double d = 0.0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

const json::object& design_of(const WorkflowState& s) {
  const auto* d = s.config.if_contains("design");
  if (!d || !d->is_object()) throw std::invalid_argument("workflow snapshot has no design");
  return d->as_object();
}

// The measured runs of the jobs of one stage.
struct StageRuns {
  std::vector<double> baseline, candidate;
  stats::PhaseRuns baseline_phases, candidate_phases;
  std::set<std::string> workers;
  std::vector<long> job_ids;
};

std::vector<std::pair<std::string, double>> phases_of(const json::array& phases) {
  std::vector<std::pair<std::string, double>> out;
  for (const auto& p : phases) {
    if (!p.is_object()) continue;
    const auto* name = p.as_object().if_contains("name");
    if (!name || !name->is_string()) continue;
    out.emplace_back(std::string(name->get_string()), number_or(p.as_object(), "ms", 0.0));
  }
  return out;
}

StageRuns runs_of(const WorkflowState& s, const std::string& stage) {
  StageRuns out;
  std::set<long> ids;
  for (const auto& j : s.jobs) {
    if (j.stage == stage && j.state == "done") {
      ids.insert(j.id);
      out.job_ids.push_back(j.id);
      out.workers.insert(j.workers.begin(), j.workers.end());
    }
  }
  for (const auto& r : s.runs) {
    if (!ids.count(r.job_id)) continue;
    (r.baseline ? out.baseline : out.candidate).push_back(r.ttfb_ms);
    (r.baseline ? out.baseline_phases : out.candidate_phases).runs.push_back(phases_of(r.phases));
  }
  return out;
}

// A failed or cancelled job, if any: it ends the workflow.
const JobRecord* failed_job(const WorkflowState& s) {
  for (const auto& j : s.jobs) {
    if (j.state == "failed" || j.state == "cancelled") return &j;
  }
  return nullptr;
}

WorkflowUpdate error_update(const WorkflowState& s, const JobRecord& job) {
  json::object err = job.error.is_object() ? job.error.as_object() : json::object{};
  if (!err.contains("code")) err["code"] = job.state == "cancelled" ? "cancelled" : "job_failed";
  if (!err.contains("message")) err["message"] = "the job was " + job.state;
  err["job_id"] = job.id;
  err["stage"] = job.stage;
  WorkflowUpdate u;
  u.state = "done";
  u.verdict = "error";
  u.result = json::object{{"error", std::move(err)}, {"confirmed", false}};
  u.looks = s.looks;
  return u;
}

json::array to_array(const std::set<std::string>& xs) {
  json::array out;
  for (const auto& x : xs) out.emplace_back(x);
  return out;
}

const JobRecord& first_block(const WorkflowState& s) {
  for (const auto& j : s.jobs) {
    if (j.stage == "block") return j;
  }
  throw std::invalid_argument("workflow has no block job");
}

// The look at every block so far, as the result and the looks history show it.
struct Look {
  stats::LookDecision decision;
  json::object result;
};

Look look_at(const WorkflowState& s, const StageRuns& blocks, const stats::AdaptiveDesign& design) {
  Look l;
  l.decision = stats::decide_look(blocks.baseline, blocks.candidate, design);
  const auto& d = l.decision;
  l.result = stats::to_json(d.comparison);
  l.result["alpha"] = design.alpha;
  l.result["threshold_pct"] = design.threshold_pct;
  l.result["reason"] = d.reason;
  l.result["look"] = stats::to_json(d);
  l.result["verdict"] = d.more_runs ? json::value(nullptr) : json::value(std::string(stats::to_string(d.verdict)));
  const double phase_alpha = design.alpha;
  stats::PhaseAttribution a =
      stats::attribute_phases(blocks.baseline, blocks.candidate, blocks.baseline_phases, blocks.candidate_phases, phase_alpha);
  json::object aj = stats::to_json(a);
  l.result["phases"] = aj["phases"];
  l.result["phase_summary"] = a.summary;
  l.result["phase_total_delta_ms"] = aj["total_delta_ms"];
  l.result["workers"] = to_array(blocks.workers);
  l.result["calibration"] = s.config.at("design").as_object().at("calibration");
  return l;
}

json::object look_history_entry(const stats::LookDecision& d) {
  const auto& w = d.comparison.decision.welch;
  json::object o = stats::to_json(d);
  o["effect_pct"] = json_number(w.effect_pct);
  o["ci_low_pct"] = json_number(w.effect_ci_low_pct);
  o["ci_high_pct"] = json_number(w.effect_ci_high_pct);
  o["p_value"] = json_number(w.p_value);
  o["verdict"] = d.more_runs ? json::value(nullptr) : json::value(std::string(stats::to_string(d.verdict)));
  o["reason"] = d.reason;
  return o;
}

}  // namespace

WorkflowUpdate step_workflow(const WorkflowState& s) {
  if (const JobRecord* failed = failed_job(s)) return error_update(s, *failed);
  const json::object& dj = design_of(s);
  const stats::AdaptiveDesign design = design_from_snapshot(dj);
  const bool confirm = dj.contains("confirm") && dj.at("confirm").is_bool() && dj.at("confirm").as_bool();
  const int warmup = static_cast<int>(number_or(dj, "warmup_runs", 1));
  const JobRecord& first = first_block(s);

  const StageRuns blocks = runs_of(s, "block");
  Look look = look_at(s, blocks, design);
  const auto& d = look.decision;
  WorkflowUpdate u;
  u.looks = s.looks;
  u.result = std::move(look.result);

  if (s.state == "measuring") {
    u.looks.push_back(look_history_entry(d));
    u.result["confirmed"] = false;
    u.result["confirmation"] = nullptr;
    if (d.more_runs) {
      int max_block = 0;
      for (const auto& j : s.jobs) max_block = std::max(max_block, j.stage == "block" ? j.block : 0);
      const int runs = std::min(design.runs_per_block, design.max_runs_per_arm - d.runs_per_arm);
      NewJob job;
      job.workflow = s.workflow;
      job.stage = "block";
      job.block = max_block + 1;
      job.priority = first.priority + 1;  // finish what was started before starting more
      job.payload = with_schedule(first.payload, warmup, runs);
      job.runs_total = runs_total(warmup, runs);
      u.new_jobs.push_back(std::move(job));
      u.state = "measuring";
      return u;
    }
    if (d.outcome == stats::Outcome::different && confirm) {
      const int runs = std::max(design.runs_per_block, d.runs_per_arm);
      NewJob job;
      job.workflow = s.workflow;
      job.stage = "confirmation";
      job.block = 1;
      job.priority = first.priority + 1;
      job.payload = with_schedule(first.payload, warmup, runs);
      job.runs_total = runs_total(warmup, runs);
      job.avoid_workers.assign(blocks.workers.begin(), blocks.workers.end());
      u.new_jobs.push_back(std::move(job));
      u.state = "confirming";
      u.result["verdict"] = nullptr;
      u.result["tentative_verdict"] = std::string(stats::to_string(d.verdict));
      u.result["confirmation"] = json::object{{"status", "pending"}, {"runs_per_arm", runs},
                                              {"avoid_workers", to_array(blocks.workers)}};
      return u;
    }
    u.state = "done";
    u.verdict = std::string(stats::to_string(d.verdict));
    if (d.outcome == stats::Outcome::different)
      u.result["confirmation"] = json::object{{"status", "disabled"}};  // fixed designs, confirm = false
    return u;
  }

  // confirming: the rerun alone, one look at alpha, against the original decision.
  const StageRuns rerun = runs_of(s, "confirmation");
  const stats::Policy policy{design.alpha, design.threshold_pct, 1.0 - design.alpha};
  const stats::Comparison c = stats::compare_arms(rerun.baseline, rerun.candidate, policy);
  const auto& w = c.decision.welch;
  const auto& orig = d.comparison.decision.welch;
  const bool slower = d.verdict == stats::Verdict::regression;
  const bool reproduced = w.valid && w.p_value < design.alpha &&
                          (slower ? w.effect_ci_low_pct > 0.0 : w.effect_ci_high_pct < 0.0);
  std::set<std::string> overlap;
  for (const auto& worker : rerun.workers)
    if (blocks.workers.count(worker)) overlap.insert(worker);
  const std::string rerun_effect =
      w.valid ? fmt("%+.2f%% [%+.2f, %+.2f], p = %.3g", w.effect_pct, w.effect_ci_low_pct, w.effect_ci_high_pct, w.p_value)
              : "not enough samples";
  u.result["confirmation"] = json::object{
      {"status", reproduced ? "reproduced" : "not_reproduced"},
      {"n_baseline", c.baseline_outliers.kept.size()},
      {"n_candidate", c.candidate_outliers.kept.size()},
      {"effect_pct", json_number(w.effect_pct)},
      {"ci_low_pct", json_number(w.effect_ci_low_pct)},
      {"ci_high_pct", json_number(w.effect_ci_high_pct)},
      {"confidence", 1.0 - design.alpha},
      {"p_value", json_number(w.p_value)},
      {"workers", to_array(rerun.workers)},
      {"same_workers", !overlap.empty()},
  };
  u.state = "done";
  u.result["confirmed"] = reproduced;
  if (reproduced) {
    u.verdict = std::string(stats::to_string(d.verdict));
    u.result["reason"] = d.reason + "; confirmed by an independent rerun: " + rerun_effect;
  } else {
    u.verdict = "inconclusive";
    u.result["reason"] = std::string(slower ? "a slowdown of " : "a speed-up of ") +
                         fmt("%+.2f%%", orig.effect_pct) + " was not reproduced by the confirmation rerun (" +
                         rerun_effect + "); nobody is alerted";
  }
  u.result["verdict"] = *u.verdict;
  return u;
}

CalibrationStep step_calibration(const WorkflowState& s) {
  CalibrationStep out;
  if (const JobRecord* failed = failed_job(s)) {
    out.update = error_update(s, *failed);
    out.status = "error";
    out.error = out.update.result.at("error");
    return out;
  }
  const json::object& dj = design_of(s);
  stats::CalibrationSettings settings;
  settings.design = design_from_snapshot(dj);
  settings.min_effect_pct = number_or(dj, "min_effect_pct", 0.0);
  if (const auto* p = s.config.if_contains("policy"); p && p->is_object()) {
    settings.fp_budget_per_week = number_or(p->as_object(), "fp_budget_per_week", settings.fp_budget_per_week);
    settings.experiments_per_week = number_or(p->as_object(), "experiments_per_week", settings.experiments_per_week);
  }
  settings.seed = static_cast<std::uint64_t>(s.experiment_id);
  std::vector<stats::AaExperiment> pool;
  std::vector<double> all_b, all_c;
  for (const auto& j : s.jobs) {
    stats::AaExperiment aa;
    for (const auto& r : s.runs) {
      if (r.job_id != j.id) continue;
      (r.baseline ? aa.baseline : aa.candidate).push_back(r.ttfb_ms);
      (r.baseline ? all_b : all_c).push_back(r.ttfb_ms);
    }
    pool.push_back(std::move(aa));
  }
  const stats::Calibration cal = stats::calibrate(pool, settings);
  const stats::Policy policy{settings.design.alpha, cal.threshold_pct, 1.0 - settings.design.alpha};
  const stats::Comparison aa = stats::compare_arms(all_b, all_c, policy);
  out.status = "done";
  out.result = stats::to_json(cal);
  out.update.state = "done";
  out.update.verdict = std::string(stats::to_string(aa.decision.verdict));
  out.update.looks = s.looks;
  out.update.result = stats::to_json(aa);
  out.update.result["calibration"] = out.result;
  out.update.result["confirmed"] = false;
  return out;
}

namespace {

// A pre-submit change made start-up slower, confirmed: tell whoever submitted it, in the
// transaction that records the verdict (the outbox delivers it, once).
void alert_presubmit_regression(pqxx::work& tx, const ServerConfig& config, long experiment_id, const std::string& workflow,
                                const json::object& result) {
  const auto row = tx.exec_params1(
      "SELECT repo, author, title, change_url, submitted_by, base_ref, candidate_ref FROM experiments WHERE id = $1",
      experiment_id);
  alerts::PresubmitRegressionFacts f;
  f.experiment_id = experiment_id;
  f.repo = row[0].as<std::string>();
  f.workflow = workflow;
  f.author = row[1].as<std::string>();
  f.title = row[2].as<std::string>();
  f.change_url = row[3].as<std::string>();
  f.submitted_by = row[4].as<std::string>();
  f.base_ref = row[5].as<std::string>();
  if (!row[6].is_null()) f.candidate_ref = row[6].as<std::string>();
  f.effect_pct = number_or(result, "effect_pct", NAN);
  f.ci_low_pct = number_or(result, "ci_low_pct", NAN);
  f.ci_high_pct = number_or(result, "ci_high_pct", NAN);
  f.confidence = number_or(result, "confidence", NAN);
  f.p_value = number_or(result, "p_value", NAN);
  if (const auto* ps = result.if_contains("phase_summary"); ps && ps->is_string())
    f.phase_summary = std::string(ps->as_string());
  alerts::enqueue_alert(tx, config, alerts::presubmit_regression_alert(f, config.public_url));
}

}  // namespace

std::optional<std::string> analyse_workflow(Database& db, long experiment_id, const std::string& workflow,
                                            const ServerConfig* config) {
  return db.transact([&](pqxx::work& tx) -> std::optional<std::string> {
    auto state = load_workflow_state(tx, experiment_id, workflow);
    if (!state) return std::nullopt;
    WorkflowUpdate update;
    try {
      if (state->purpose == "calibration") {
        CalibrationStep step = step_calibration(*state);
        finish_calibration(tx, experiment_id, step.status, step.result, step.error);
        update = std::move(step.update);
      } else {
        update = step_workflow(*state);
      }
    } catch (const std::exception& e) {
      // Samples are validated on entry and designs at submission: this is a bug. Say so, end the
      // workflow with an error instead of retrying it forever.
      spdlog::error("experiment {} workflow {}: analysis failed: {}", experiment_id, workflow, e.what());
      update = WorkflowUpdate{};
      update.state = "done";
      update.verdict = "error";
      update.looks = state->looks;
      update.result = json::object{
          {"error", json::object{{"code", "internal"}, {"message", std::string("analysis failed: ") + e.what()}}}};
      if (state->purpose == "calibration") finish_calibration(tx, experiment_id, "error", nullptr, update.result["error"]);
    }
    save_workflow_update(tx, *state, update);
    if (config && state->purpose == "presubmit" && update.verdict == "regression")
      alert_presubmit_regression(tx, *config, experiment_id, workflow, update.result);
    spdlog::info("experiment {} workflow {}: {}{}", experiment_id, workflow, update.state,
                 update.verdict ? " (" + *update.verdict + ")" : "");
    return finish_experiment_if_done(tx, experiment_id);
  });
}

}  // namespace ttfb
