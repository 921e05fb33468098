#include "server/scheduler/analysis.hpp"

#include "common/json_number.hpp"
#include "common/text.hpp"
#include "server/alerts/compose.hpp"
#include "server/alerts/outbox.hpp"
#include "server/scheduler/plan.hpp"
#include "server/stats/adaptive.hpp"
#include "server/stats/calibration.hpp"
#include "server/stats/comparison.hpp"
#include "server/stats/confirm.hpp"
#include "server/stats/metrics.hpp"
#include "server/stats/noisy_jobs.hpp"
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
  if (v && v->is_uint64()) return static_cast<double>(v->get_uint64());
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
  std::vector<long> baseline_jobs, candidate_jobs;  // the job of each run, for the blocked test
  // CPU time to the first batch of the same runs; NaN where a run has none (cpu_usable says no)
  std::vector<double> cpu_baseline, cpu_candidate;
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
    (r.baseline ? out.baseline_jobs : out.candidate_jobs).push_back(r.job_id);
    (r.baseline ? out.cpu_baseline : out.cpu_candidate).push_back(r.cpu_ms.value_or(NAN));
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

struct RerunSettings {
  double alpha = 0.05;       // one-sided
  int max_runs_per_arm = 0;  // 0: the design's
};

// Designs frozen before the rerun had its own level reran at the design's alpha, two-sided.
RerunSettings rerun_settings(const json::object& dj, const stats::AdaptiveDesign& design) {
  RerunSettings r;
  r.alpha = number_or(dj, "rerun_alpha", design.alpha / 2.0);
  r.max_runs_per_arm = static_cast<int>(number_or(dj, "max_rerun_runs_per_arm", design.max_runs_per_arm));
  return r;
}

// The rerun's size. A tail is counted, not measured with an interval: there is no power formula
// to size it by, so its rerun gets the first stage's whole budget (at least the runs that
// found it), within the rerun's cap.
stats::RerunPlan plan_for(bool by_tail, const stats::LookSummary& deciding, int runs_per_arm,
                          const stats::AdaptiveDesign& design, const RerunSettings& rerun) {
  if (!by_tail) return stats::plan_rerun(deciding, runs_per_arm, design, rerun.alpha, rerun.max_runs_per_arm);
  stats::RerunPlan p;
  const int block = design.runs_per_block;
  const int cap = rerun.max_runs_per_arm > 0 ? std::max(rerun.max_runs_per_arm, block) : design.max_runs_per_arm;
  p.runs_per_arm = std::min(std::max(design.max_runs_per_arm, runs_per_arm), cap);
  p.jobs = (p.runs_per_arm + block - 1) / block;
  p.sized_for_pct = design.threshold_pct;
  p.sigma_pct = NAN;
  p.power = NAN;
  p.capped = std::max(design.max_runs_per_arm, runs_per_arm) > cap;
  return p;
}

// At most this many of a workflow's blocks are set aside for being far noisier than usual; past
// it the noise is the machine's, not a job's, and every job counts (with a warning).
constexpr std::size_t kMaxSetAsideJobs = 2;

struct SetAside {
  std::vector<long> jobs;
  json::array details;   // {"job_id", "sigma_pct", "usual_sigma_pct"}
  std::string warning;   // when more were noisy than may be set aside
};

// The blocks far noisier than the workflow's usual (noisy_jobs.hpp): the usual is the per-run
// noise its calibration measured when it has one, else the median of its blocks.
SetAside noisy_blocks(const json::object& dj, const StageRuns& blocks, const stats::AdaptiveDesign& design,
                      double reference_sigma = 0.0) {
  SetAside out;
  double usual = reference_sigma;
  if (const auto* cal = dj.if_contains("calibration"); usual <= 0.0 && cal && cal->is_object())
    usual = number_or(cal->as_object(), "sigma_aa_pct", 0.0) / 100.0 * std::sqrt(design.runs_per_block / 2.0);
  const auto spreads = stats::job_spreads(blocks.baseline, blocks.baseline_jobs, blocks.candidate, blocks.candidate_jobs);
  const auto noisy = stats::noisy_jobs(blocks.baseline, blocks.baseline_jobs, blocks.candidate, blocks.candidate_jobs, usual);
  if (noisy.empty()) return out;
  if (noisy.size() > kMaxSetAsideJobs) {
    out.warning = std::to_string(noisy.size()) + " of " + std::to_string(spreads.size()) +
                  " blocks were far noisier than usual: the machine is busy, so all of them count";
    return out;
  }
  double median_sigma = 0.0;
  {
    std::vector<double> sigmas;
    for (const auto& sp : spreads) sigmas.push_back(sp.sigma);
    std::sort(sigmas.begin(), sigmas.end());
    median_sigma = sigmas[sigmas.size() / 2];
  }
  for (const auto& sp : spreads) {
    if (std::find(noisy.begin(), noisy.end(), sp.job) == noisy.end()) continue;
    out.jobs.push_back(sp.job);
    out.details.push_back(json::object{{"job_id", sp.job},
                                       {"sigma_pct", 100.0 * sp.sigma},
                                       {"usual_sigma_pct", 100.0 * (usual > 0.0 ? usual : median_sigma)}});
  }
  return out;
}

StageRuns without_jobs(const StageRuns& in, const std::vector<long>& jobs) {
  if (jobs.empty()) return in;
  StageRuns out = in;
  out.baseline.clear(), out.candidate.clear(), out.baseline_jobs.clear(), out.candidate_jobs.clear();
  out.cpu_baseline.clear(), out.cpu_candidate.clear();
  out.baseline_phases.runs.clear(), out.candidate_phases.runs.clear();
  auto keep = [&](long j) { return std::find(jobs.begin(), jobs.end(), j) == jobs.end(); };
  out.job_ids.clear();
  for (long j : in.job_ids)
    if (keep(j)) out.job_ids.push_back(j);
  for (std::size_t i = 0; i < in.baseline.size(); ++i) {
    if (!keep(in.baseline_jobs[i])) continue;
    out.baseline.push_back(in.baseline[i]);
    out.baseline_jobs.push_back(in.baseline_jobs[i]);
    out.cpu_baseline.push_back(in.cpu_baseline[i]);
    out.baseline_phases.runs.push_back(in.baseline_phases.runs[i]);
  }
  for (std::size_t i = 0; i < in.candidate.size(); ++i) {
    if (!keep(in.candidate_jobs[i])) continue;
    out.candidate.push_back(in.candidate[i]);
    out.candidate_jobs.push_back(in.candidate_jobs[i]);
    out.cpu_candidate.push_back(in.cpu_candidate[i]);
    out.candidate_phases.runs.push_back(in.candidate_phases.runs[i]);
  }
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
  stats::LookDecision decision;            // TTFB's look, with the outcome of both metrics together
  stats::Metric decided_by = stats::Metric::ttfb;
  std::optional<stats::LookDecision> cpu;  // CPU time's look, when CPU time was tested
  std::optional<stats::TailLook> tail;     // the tail's, when it was tested
  json::object result;
};

// The share of alpha spent on CPU time; designs frozen before there was one: TTFB alone.
double cpu_share_of(const json::object& dj) {
  const double share = number_or(dj, "cpu_time_alpha_share", 0.0);
  return share >= 0.0 && share < 1.0 ? share : 0.0;
}

// The share of alpha spent on the tail; designs frozen before there was one: none.
double tail_share_of(const json::object& dj) {
  const double share = number_or(dj, "tail_alpha_share", 0.0);
  return share >= 0.0 && share + cpu_share_of(dj) < 1.0 ? share : 0.0;
}

// What the result says of the tail (tail.hpp): the slow-run counts, the exact p, the 90th
// percentiles, the level it was tested at and what it said.
json::object tail_json(const std::optional<stats::TailLook>& tail, double share) {
  if (share <= 0.0) return json::object{{"tested", false}, {"why", "tail_alpha_share is 0"}};
  if (!tail) return json::object{{"tested", false}, {"why", "no runs yet"}};
  json::object o = stats::to_json(tail->comparison);
  o["tested"] = tail->comparison.valid;
  o["alpha"] = tail->nominal_alpha;
  o["alpha_kind"] = "two-sided, at this look of the tail's plan; each side at half";
  o["outcome"] = stats::to_string(tail->outcome);
  o["suspect"] = tail->suspect;
  return o;
}

// What the result says of the CPU-time metric: its look's numbers, or why it was not tested.
json::object cpu_time_json(const std::optional<stats::LookDecision>& cpu, const stats::AdaptiveDesign& design,
                           double share, double tail_share, const StageRuns& runs) {
  if (share <= 0.0)
    return json::object{{"tested", false}, {"why", "cpu_time_alpha_share is 0: CPU time is not tested"}};
  if (!cpu) {
    const bool any = !runs.baseline.empty() || !runs.candidate.empty();
    return json::object{
        {"tested", false},
        {"why", any ? "not every run has its CPU time to the first batch (a worker without a cgroup that counts CPU "
                      "time, or runs from before it was measured): its share of alpha goes back to TTFB"
                    : "no runs yet"}};
  }
  json::object o = stats::to_json(cpu->comparison);
  o["tested"] = true;
  o["metric"] = "cpu_time_to_first_batch";
  o["unit"] = "ms of CPU (user + system, all the workload's processes)";
  o["alpha"] = stats::design_for(design, stats::Metric::cpu_time, share, tail_share).alpha;
  o["look"] = stats::to_json(*cpu);
  o["reason"] = cpu->reason;
  return o;
}

Look look_at(const WorkflowState& s, const StageRuns& blocks, const stats::AdaptiveDesign& design, double cpu_share,
             double tail_share) {
  Look l;
  const stats::TwoMetricLook two =
      stats::decide_two_metrics(blocks.baseline, blocks.candidate, blocks.cpu_baseline, blocks.cpu_candidate, design,
                                cpu_share, blocks.baseline_jobs, blocks.candidate_jobs, tail_share);
  l.decision = two.decision;
  l.decided_by = two.decided_by;
  l.cpu = two.cpu;
  l.tail = two.tail;
  const auto& d = l.decision;
  l.result = stats::to_json(d.comparison);
  l.result["alpha"] = design.alpha;
  l.result["ttfb_alpha"] = stats::design_for(design, stats::Metric::ttfb, two.cpu ? cpu_share : 0.0, tail_share).alpha;
  l.result["cpu_time_alpha_share"] = cpu_share;
  l.result["tail_alpha_share"] = tail_share;
  l.result["cpu_time"] = cpu_time_json(two.cpu, design, cpu_share, tail_share, blocks);
  l.result["tail"] = tail_json(two.tail, tail_share);
  l.result["decided_by"] = d.more_runs ? json::value(nullptr) : json::value(std::string(stats::to_string(two.decided_by)));
  l.result["threshold_pct"] = design.threshold_pct;
  l.result["equivalence_margin_pct"] = design.margin_pct;
  if (const auto* floor = design_of(s).if_contains("detection_floor_pct")) l.result["detection_floor_pct"] = *floor;
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
  const RerunSettings rerun = rerun_settings(dj, design);
  const double cpu_share = cpu_share_of(dj);
  const double tail_share = tail_share_of(dj);
  const int warmup = static_cast<int>(number_or(dj, "warmup_runs", 1));
  const JobRecord& first = first_block(s);

  // Blocks far noisier than usual are set aside (and replaced by the next block) rather than fed in.
  const StageRuns all_blocks = runs_of(s, "block");
  const SetAside set_aside = noisy_blocks(dj, all_blocks, design);
  const StageRuns blocks = without_jobs(all_blocks, set_aside.jobs);
  Look look = look_at(s, blocks, design, cpu_share, tail_share);
  const auto& d = look.decision;
  const bool by_cpu = look.decided_by == stats::Metric::cpu_time && look.cpu.has_value();
  const bool by_tail = look.decided_by == stats::Metric::tail && look.tail.has_value();
  // The rerun judges the metric that decided: its summary sizes the rerun, its values judge it.
  const stats::LookSummary deciding = stats::summary_of(by_cpu ? look.cpu->comparison.decision.welch
                                                               : d.comparison.decision.welch);
  WorkflowUpdate u;
  u.looks = s.looks;
  u.result = std::move(look.result);
  u.result["set_aside_jobs"] = set_aside.details;
  if (!set_aside.details.empty()) {
    u.result["reason"] = std::string(u.result.at("reason").as_string()) + " (" +
                         std::to_string(set_aside.details.size()) +
                         (set_aside.details.size() == 1 ? " block was" : " blocks were") +
                         " set aside for being far noisier than usual, and measured again)";
  }
  if (!set_aside.warning.empty()) u.result["warnings"].as_array().emplace_back(set_aside.warning);

  if (s.state == "measuring") {
    u.looks.push_back(look_history_entry(d));
    if (look.cpu) {
      const auto& cw = look.cpu->comparison.decision.welch;
      u.looks.back().as_object()["cpu_time"] =
          json::object{{"effect_pct", json_number(cw.effect_pct)}, {"ci_low_pct", json_number(cw.effect_ci_low_pct)},
                       {"ci_high_pct", json_number(cw.effect_ci_high_pct)}, {"p_value", json_number(cw.p_value)},
                       {"outcome", stats::to_string(look.cpu->outcome)}};
      u.looks.back().as_object()["decided_by"] = std::string(stats::to_string(look.decided_by));
    }
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
      // The rerun is sized by power (confirm.hpp), in jobs of a block each so its test is
      // blocked by job too, on other workers than the first stage's where there are any.
      const stats::RerunPlan plan = plan_for(by_tail, deciding, d.runs_per_arm, design, rerun);
      for (int j = 0, left = plan.runs_per_arm; j < plan.jobs; ++j) {
        const int runs = std::min(design.runs_per_block, left);
        left -= runs;
        NewJob job;
        job.workflow = s.workflow;
        job.stage = "confirmation";
        job.block = j + 1;
        job.priority = first.priority + 1;
        job.payload = with_schedule(first.payload, warmup, runs);
        job.runs_total = runs_total(warmup, runs);
        job.avoid_workers.assign(blocks.workers.begin(), blocks.workers.end());
        u.new_jobs.push_back(std::move(job));
      }
      u.state = "confirming";
      u.result["verdict"] = nullptr;
      u.result["tentative_verdict"] = std::string(stats::to_string(d.verdict));
      json::object c = stats::to_json(plan);
      c["status"] = "pending";
      c["rerun_alpha"] = rerun.alpha;
      c["metric"] = std::string(stats::to_string(look.decided_by));
      c["avoid_workers"] = to_array(blocks.workers);
      u.result["confirmation"] = std::move(c);
      return u;
    }
    u.state = "done";
    u.verdict = std::string(stats::to_string(d.verdict));
    if (d.outcome == stats::Outcome::different) {
      // Fixed designs (or confirm = false): one look, no rerun, and the reason says so.
      u.result["confirmation"] = json::object{{"status", "disabled"}};
      u.result["reason"] = d.reason + "; not confirmed by a rerun (" +
                           (dj.contains("fixed") && dj.at("fixed").is_bool() && dj.at("fixed").as_bool()
                                ? std::string("a fixed design of ") + std::to_string(design.max_runs_per_arm) + " runs per arm"
                                : std::string("confirmation is off for this workflow")) +
                           ")";
    }
    return u;
  }

  // confirming: the rerun alone, against the direction the first stage found (confirm.hpp). Its
  // blocks far noisier than the first stage's are set aside and measured again too.
  const StageRuns all_again = runs_of(s, "confirmation");
  double first_stage_sigma = 0.0;
  {
    std::vector<double> sigmas;
    for (const auto& sp : stats::job_spreads(blocks.baseline, blocks.baseline_jobs, blocks.candidate, blocks.candidate_jobs))
      sigmas.push_back(sp.sigma);
    if (!sigmas.empty()) {
      std::sort(sigmas.begin(), sigmas.end());
      first_stage_sigma = sigmas[sigmas.size() / 2];
    }
  }
  const SetAside rerun_aside = noisy_blocks(dj, all_again, design, first_stage_sigma);
  const stats::RerunPlan planned = plan_for(by_tail, deciding, d.runs_per_arm, design, rerun);
  const std::size_t wanted_jobs = static_cast<std::size_t>(planned.jobs) + rerun_aside.jobs.size();
  if (!rerun_aside.jobs.empty() && all_again.job_ids.size() < wanted_jobs) {
    int max_block = 0;
    for (const auto& j : s.jobs) max_block = std::max(max_block, j.stage == "confirmation" ? j.block : 0);
    for (std::size_t k = all_again.job_ids.size(); k < wanted_jobs; ++k) {
      NewJob job;
      job.workflow = s.workflow;
      job.stage = "confirmation";
      job.block = ++max_block;
      job.priority = first.priority + 1;
      job.payload = with_schedule(first.payload, warmup, design.runs_per_block);
      job.runs_total = runs_total(warmup, design.runs_per_block);
      job.avoid_workers.assign(blocks.workers.begin(), blocks.workers.end());
      u.new_jobs.push_back(std::move(job));
    }
    u.state = "confirming";
    u.result["verdict"] = nullptr;
    u.result["tentative_verdict"] = std::string(stats::to_string(d.verdict));
    json::object c = stats::to_json(planned);
    c["status"] = "pending";
    c["rerun_alpha"] = rerun.alpha;
    c["metric"] = std::string(stats::to_string(look.decided_by));
    c["set_aside_jobs"] = rerun_aside.details;
    u.result["confirmation"] = std::move(c);
    return u;
  }
  const StageRuns again = without_jobs(all_again, rerun_aside.jobs);
  const bool slower = d.verdict == stats::Verdict::regression;
  // A CPU-time verdict is rerun on CPU time; should the rerun's runs lack it (a worker without
  // cgroups took them), on TTFB, which tests the same "no change" at the same level.
  const bool rerun_on_cpu = by_cpu && stats::cpu_usable(again.cpu_baseline, again.cpu_candidate);
  const stats::Metric rerun_metric = rerun_on_cpu ? stats::Metric::cpu_time : by_tail ? stats::Metric::tail : stats::Metric::ttfb;
  // TTFB of the rerun, whichever metric it judged: what people wait for, beside the verdict.
  const stats::RerunResult rr_ttfb =
      stats::judge_rerun(again.baseline, again.candidate, again.baseline_jobs, again.candidate_jobs, design, rerun.alpha, slower);
  stats::RerunResult rr =
      rerun_on_cpu ? stats::judge_rerun(again.cpu_baseline, again.cpu_candidate, again.baseline_jobs, again.candidate_jobs,
                                        design, rerun.alpha, slower)
                   : rr_ttfb;
  // A tail is reproduced when the rerun alone has more slow runs at rerun_alpha (exact, one-sided)
  // and a 90th percentile at least the threshold slower (faster, for a faster tail).
  std::optional<stats::TailComparison> rerun_tail;
  if (by_tail) {
    rerun_tail = stats::compare_tails(again.baseline, again.candidate, again.baseline_jobs, again.candidate_jobs);
    const double p = slower ? rerun_tail->p_slower : rerun_tail->p_faster;
    rr.one_sided_p = p;
    rr.reproduced = rerun_tail->valid && p < rerun.alpha &&
                    (slower ? rerun_tail->p90_change_pct >= design.threshold_pct : rerun_tail->p90_change_pct <= -design.threshold_pct);
  }
  const auto& c = rr.comparison;
  const auto& w = c.decision.welch;
  const auto& orig = by_cpu ? look.cpu->comparison.decision.welch : d.comparison.decision.welch;
  const char* metric_words = rerun_on_cpu ? "CPU time to the first batch " : "";
  std::string tail_words;
  if (rerun_tail) {
    tail_words = stats::slow_counts(*rerun_tail) + ", 90th percentile " + fmt("%+.1f%%", rerun_tail->p90_change_pct) +
                 fmt(", exact one-sided p = %.3g (needs < %.3g)", rr.one_sided_p, rerun.alpha);
  }
  std::set<std::string> overlap;
  for (const auto& worker : again.workers)
    if (blocks.workers.count(worker)) overlap.insert(worker);
  const std::string rerun_effect =
      rerun_tail ? tail_words
      : w.valid ? fmt("%+.2f%% [%+.2f, %+.2f] at %.4g%%", w.effect_pct, w.effect_ci_low_pct, w.effect_ci_high_pct,
                    100.0 * w.confidence) +
                    fmt(", one-sided p = %.3g (needs < %.3g)", rr.one_sided_p, rerun.alpha)
              : "not enough samples";
  json::object confirmation = u.result.contains("confirmation") && u.result.at("confirmation").is_object()
                                  ? u.result.at("confirmation").as_object()
                                  : json::object{};
  confirmation["status"] = rr.reproduced ? "reproduced" : "not_reproduced";
  confirmation["metric"] = std::string(stats::to_string(rerun_metric));
  if (rerun_tail) confirmation["tail"] = stats::to_json(*rerun_tail);
  if (rerun_on_cpu || rerun_tail) {
    const auto& tw = rr_ttfb.comparison.decision.welch;
    confirmation["ttfb"] = json::object{{"effect_pct", json_number(tw.effect_pct)},
                                        {"ci_low_pct", json_number(tw.effect_ci_low_pct)},
                                        {"ci_high_pct", json_number(tw.effect_ci_high_pct)},
                                        {"confidence", tw.confidence},
                                        {"p_value", json_number(rr_ttfb.one_sided_p)},
                                        {"p_value_kind", "one-sided"}};
  }
  confirmation["test"] = w.blocks > 0 ? "blocked_log_t" : "welch_log_t";
  confirmation["jobs"] = again.job_ids.size();
  confirmation["runs_per_arm"] = std::min(again.baseline.size(), again.candidate.size());
  confirmation["n_baseline"] = c.baseline_outliers.kept.size();
  confirmation["n_candidate"] = c.candidate_outliers.kept.size();
  confirmation["effect_pct"] = json_number(w.effect_pct);
  confirmation["ci_low_pct"] = json_number(w.effect_ci_low_pct);
  confirmation["ci_high_pct"] = json_number(w.effect_ci_high_pct);
  confirmation["confidence"] = w.confidence;
  confirmation["p_value"] = json_number(rr.one_sided_p);
  confirmation["p_value_kind"] = "one-sided";
  confirmation["rerun_alpha"] = rerun.alpha;
  confirmation["workers"] = to_array(again.workers);
  confirmation["set_aside_jobs"] = rerun_aside.details;
  confirmation["same_workers"] = !overlap.empty();
  u.result["confirmation"] = std::move(confirmation);
  // The first stage's own numbers, beside the headline: its estimate is biased upwards by
  // stopping early, the rerun's is not (its size was fixed before it ran).
  u.result["first_stage"] = json::object{{"metric", std::string(stats::to_string(look.decided_by))},
                                         {"effect_pct", json_number(orig.effect_pct)},
                                         {"ci_low_pct", json_number(orig.effect_ci_low_pct)},
                                         {"ci_high_pct", json_number(orig.effect_ci_high_pct)},
                                         {"confidence", orig.confidence},
                                         {"p_value", json_number(orig.p_value)},
                                         {"p_value_kind", "two-sided, at the look's level of the spending plan"},
                                         {"runs_per_arm", d.runs_per_arm},
                                         {"look", d.look}};
  u.state = "done";
  u.result["confirmed"] = rr.reproduced;
  if (rr.reproduced) {
    u.verdict = std::string(stats::to_string(d.verdict));
    u.result["reason"] = d.reason + "; confirmed by an independent rerun of " +
                         std::to_string(std::min(again.baseline.size(), again.candidate.size())) + " runs per arm: " +
                         metric_words + rerun_effect;
    // The headline effect is the rerun's TTFB (what people wait for), also when CPU time decided:
    // then the confirmation's own numbers are CPU time's, and `decided_by` says so.
    const auto& hw = rr_ttfb.comparison.decision.welch;
    u.result["effect_pct"] = json_number(hw.effect_pct);
    u.result["ci_low_pct"] = json_number(hw.effect_ci_low_pct);
    u.result["ci_high_pct"] = json_number(hw.effect_ci_high_pct);
    u.result["confidence"] = hw.confidence;
    u.result["p_value"] = json_number(rr_ttfb.one_sided_p);
    u.result["p_value_kind"] = "one-sided, of the confirmation rerun";
    u.result["effect_source"] = "rerun";
  } else {
    u.verdict = "inconclusive";
    u.result["reason"] =
        (by_tail ? std::string(slower ? "a slower tail" : "a faster tail")
                 : std::string(slower ? "a slowdown of " : "a speed-up of ") + (by_cpu ? "CPU time to the first batch " : "") +
                       fmt("%+.2f%%", orig.effect_pct)) +
        " was not reproduced by the confirmation rerun (" + metric_words + rerun_effect +
        fmt(", and at least the %.3g%% threshold", design.threshold_pct) + "); nobody is alerted";
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
  const stats::AdaptiveDesign whole = design_from_snapshot(dj);
  settings.detection_floor_pct = number_or(dj, "detection_floor_pct", number_or(dj, "min_effect_pct", 0.0));
  const RerunSettings rerun = rerun_settings(dj, whole);
  settings.rerun_alpha = rerun.alpha;
  settings.max_rerun_runs_per_arm = rerun.max_runs_per_arm;
  // The pool is TTFB's: simulated at TTFB's share of alpha, with CPU time's alerts added as their
  // bound (its first stage's one-sided alpha times the rerun's), so the budget covers both.
  const double cpu_share = cpu_share_of(dj), tail_share = tail_share_of(dj);
  settings.design = stats::design_for(whole, stats::Metric::ttfb, cpu_share, tail_share);
  settings.extra_alert_rate =
      (stats::design_for(whole, stats::Metric::cpu_time, cpu_share, tail_share).alpha +
       stats::design_for(whole, stats::Metric::tail, cpu_share, tail_share).alpha) / 2.0 * rerun.alpha;
  if (const auto* p = s.config.if_contains("policy"); p && p->is_object()) {
    settings.fp_budget_per_week = number_or(p->as_object(), "fp_budget_per_week", settings.fp_budget_per_week);
    settings.tests_per_week = number_or(p->as_object(), "tests_per_week", settings.tests_per_week);
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
  const stats::Policy policy{settings.design.alpha, cal.threshold_pct, 1.0 - settings.design.alpha,
                             settings.design.margin_pct};
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
      "SELECT repo, author, title, change_url, submitted_by, base_ref, candidate_ref, candidate_runtime::text "
      "FROM experiments WHERE id = $1",
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
  f.runtime_words = candidate_runtime_words(json::parse(row[7].as<std::string>()).as_object());
  f.effect_pct = number_or(result, "effect_pct", NAN);
  f.ci_low_pct = number_or(result, "ci_low_pct", NAN);
  f.ci_high_pct = number_or(result, "ci_high_pct", NAN);
  f.confidence = number_or(result, "confidence", NAN);
  f.p_value = number_or(result, "p_value", NAN);
  if (const auto* ps = result.if_contains("phase_summary"); ps && ps->is_string())
    f.phase_summary = std::string(ps->as_string());
  const auto* confirmed = result.if_contains("confirmed");
  f.confirmed_by_rerun = confirmed && confirmed->is_bool() && confirmed->as_bool();
  if (const auto* look = result.if_contains("look"); look && look->is_object())
    f.runs_per_arm = static_cast<int>(number_or(look->as_object(), "runs_per_arm", 0));
  // CPU time decided: its numbers lead the alert, the confirmation's when the rerun judged CPU time.
  if (const auto* by = result.if_contains("decided_by"); by && by->is_string() && by->as_string() == "cpu_time") {
    const json::object* src = nullptr;
    if (const auto* c = result.if_contains("confirmation"); c && c->is_object()) {
      const auto* m = c->as_object().if_contains("metric");
      if (m && m->is_string() && m->as_string() == "cpu_time") src = &c->as_object();
    }
    if (const auto* c = result.if_contains("cpu_time"); !src && !f.confirmed_by_rerun && c && c->is_object())
      src = &c->as_object();
    if (src) {
      f.cpu_effect_pct = number_or(*src, "effect_pct", NAN);
      f.cpu_ci_low_pct = number_or(*src, "ci_low_pct", NAN);
      f.cpu_ci_high_pct = number_or(*src, "ci_high_pct", NAN);
      f.cpu_confidence = number_or(*src, "confidence", NAN);
      f.cpu_p_value = number_or(*src, "p_value", NAN);
    }
  }
  if (const auto* by = result.if_contains("decided_by"); by && by->is_string() && by->as_string() == "tail") {
    const json::object* t = nullptr;
    if (const auto* c = result.if_contains("confirmation"); c && c->is_object() && c->as_object().contains("tail"))
      t = &c->as_object().at("tail").as_object();
    else if (const auto* ft = result.if_contains("tail"); ft && ft->is_object())
      t = &ft->as_object();
    if (t) {
      f.tail_words = std::to_string(static_cast<long>(number_or(*t, "slow_candidate", 0))) + " of " +
                     std::to_string(static_cast<long>(number_or(*t, "n_candidate", 0))) + " runs slow against " +
                     std::to_string(static_cast<long>(number_or(*t, "slow_baseline", 0))) + " of " +
                     std::to_string(static_cast<long>(number_or(*t, "n_baseline", 0))) + ", 90th percentile " +
                     fmt("%+.1f%%", number_or(*t, "p90_change_pct", NAN)) +
                     fmt(" (exact p = %.2g)", number_or(*t, "p_slower", NAN));
    }
  }
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
