// The whole verdict, first stage and confirmation rerun, on runs with the structure real
// experiments have (README "Benchmarks", issue 14): what share of true +1, +2, +3, +5 %
// regressions ends as a *confirmed* regression (the alert), how many A/A experiments alert, how
// many true +2 % regressions are certified "no change", and the runs it takes — for the design
// the server uses now and the one it used before, measured in the same run on the same
// simulated runs (common random numbers), reported side by side and as ratios.
//
//   ttfb_verdict_bench [--experiments 4000] [--noise 0.03] [--overlap P] [--seed 1] [--json]
//
// The noise model, per job (a block of interleaved baseline/candidate runs on one worker):
//   - per-run log-normal noise of --noise (3 %: the example workflow alone on a core);
//   - a level shift between jobs, N(0, 1.5 %), shared by both arms of the job (worktree, cache,
//     hour); when a job overlaps another worker's: +12 % and three times the per-run noise (the
//     lab's logs: 13.8 % raw spread against 3.4 % alone);
//   - a drift inside the job, linear, N(0, 1 %) from its first run to its last;
//   - bursts: 3 % of runs wait for a core, x U(1.2, 2.0).
// A regression of e % multiplies every candidate run by 1 + e/100.
// CPU time to the first batch, the second metric (metrics.hpp), per run: log-normal noise of 1 %
// and a job level of N(0, 0.5 %), not touched by waits for a core (an overlapped job: +2 % and
// 1.5 times the noise, from shared caches; no bursts). A regression is either CPU-bound (an
// import, parsing: CPU time grows with TTFB, e % both) or wait-bound (a sleep, I/O: TTFB only).
//
// Designs:
//   before   alpha 0.01 over the looks, threshold 3 % that was also the margin of "same",
//            Welch's test on the runs of all jobs pooled, a rerun of as many runs as the
//            stopping look, two-sided at the same alpha (the server until issue 14);
//   now      the server's defaults: first stage at alpha 0.1 two-sided (a screen), split
//            0.08 / 0.015 / 0.005 between TTFB, CPU time and the slow tail (cpu_time_alpha_share
//            0.15 and tail_alpha_share 0.05, metrics.hpp and tail.hpp), detection
//            floor 1 %, equivalence margin 2 %, the look's test blocked by job; a rerun sized by
//            power (confirm.hpp) up to 120 runs per arm in jobs of 10, one-sided at 0.05, that
//            must also reach the floor. Alerts under no change: at most 0.05 x 0.05 = 0.25 % a
//            test, half the budget of 1 a week at 200 a week.
//   TTFB alone  the same with cpu_time_alpha_share 0: what the CPU-time metric adds.
// Two fleets are simulated: jobs never overlap (each measuring worker has its cores), and 15 % of
// jobs overlap (two workers on one 2-core machine). --overlap P simulates only P.
#include "server/stats/adaptive.hpp"
#include "server/stats/calibration.hpp"
#include "server/stats/comparison.hpp"
#include "server/stats/confirm.hpp"
#include "server/stats/metrics.hpp"
#include "server/stats/noisy_jobs.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {
using namespace ttfb::stats;
namespace json = boost::json;

struct NoiseModel {
  double run_sigma = 0.03;
  double job_level_sd = 0.015;
  double overlap_probability = 0.15;
  double overlap_level = 0.12;
  double overlap_noise_factor = 3.0;
  double drift_sd = 0.01;
  double burst_probability = 0.03;
  double cpu_sigma = 0.01;
  double cpu_job_level_sd = 0.005;
  double overlap_cpu_level = 0.02;
  double overlap_cpu_noise_factor = 1.5;
};

struct Runs {
  std::vector<double> baseline, candidate;
  std::vector<long> baseline_jobs, candidate_jobs;
  std::vector<double> cpu_baseline, cpu_candidate;  // CPU time to the first batch of the same runs
};

// Appends one job of n interleaved pairs to `out`.
// tail_runs > 0: a tail change instead, that share of the candidate's runs e % slower (a lock, a
// cold cache; CPU time unchanged), the others alike.
void add_job(std::mt19937_64& engine, const NoiseModel& m, int n, double effect_pct, bool cpu_bound, long job, Runs& out,
             double tail_runs = 0.0) {
  std::normal_distribution<double> z(0.0, 1.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const bool overlapped = u(engine) < m.overlap_probability;
  const double level = m.job_level_sd * z(engine) + (overlapped ? m.overlap_level : 0.0);
  const double sigma = m.run_sigma * (overlapped ? m.overlap_noise_factor : 1.0);
  const double drift = m.drift_sd * z(engine);
  const double factor = 1.0 + effect_pct / 100.0;
  const double cpu_level = m.cpu_job_level_sd * z(engine) + (overlapped ? m.overlap_cpu_level : 0.0);
  const double cpu_sigma = m.cpu_sigma * (overlapped ? m.overlap_cpu_noise_factor : 1.0);
  for (int i = 0; i < n; ++i) {
    const double at = n > 1 ? static_cast<double>(i) / (n - 1) - 0.5 : 0.0;
    for (bool baseline : {true, false}) {
      double x = 200.0 * std::exp(level + drift * at + sigma * z(engine));
      if (u(engine) < m.burst_probability) x *= 1.2 + 0.8 * u(engine);
      const double cpu = 150.0 * std::exp(cpu_level + cpu_sigma * z(engine));
      if (baseline) {
        out.baseline.push_back(x);
        out.baseline_jobs.push_back(job);
        out.cpu_baseline.push_back(cpu);
      } else {
        out.candidate.push_back(tail_runs > 0.0 ? (u(engine) < tail_runs ? x * factor : x) : x * factor);
        out.candidate_jobs.push_back(job);
        out.cpu_candidate.push_back(cpu_bound && tail_runs == 0.0 ? cpu * factor : cpu);
      }
    }
  }
}

struct Design {
  std::string name;
  AdaptiveDesign first;
  bool blocked = false;
  bool powered_rerun = false;  // the rerun of confirm.hpp; false: the rerun before this change
  double rerun_alpha = 0.0;
  int rerun_max_runs = 0;
  bool set_aside_noisy = false;  // blocks far noisier than the others are replaced (noisy_jobs.hpp)
  double cpu_share = 0.0;        // of alpha, spent on CPU time (metrics.hpp); needs set_aside_noisy
  double tail_share = 0.0;       // of alpha, spent on the slow tail (tail.hpp); needs set_aside_noisy
};

// The first stage as step_workflow runs it with noisy blocks set aside: after each block, the
// blocks far noisier than the others (at most 2; past that all count) leave the look, and the
// plan's looks are taken on the kept runs, until a look decides or the kept runs reach the budget.
struct FirstStage {
  RulesOutcome outcome;
  Metric decided_by = Metric::ttfb;
  LookSummary stop;  // of the metric that decided
  int runs_measured = 0;  // per arm, the set-aside blocks included
};

FirstStage first_stage_setting_aside(const Runs& runs, const Design& d, int blocks_available) {
  const bool with_cpu = d.cpu_share > 0.0;
  const bool with_tail = d.tail_share > 0.0;
  const auto plan = plan_looks(design_for(d.first, Metric::ttfb, d.cpu_share, d.tail_share));
  const auto cpu_plan =
      with_cpu ? plan_looks(design_for(d.first, Metric::cpu_time, d.cpu_share, d.tail_share)) : std::vector<LookPlan>{};
  const auto tail_plan =
      with_tail ? plan_looks(design_for(d.first, Metric::tail, d.cpu_share, d.tail_share)) : std::vector<LookPlan>{};
  const int block = d.first.runs_per_block;
  FirstStage out;
  std::size_t next_look = 0;
  for (int j = 1; j <= blocks_available; ++j) {
    const auto n = static_cast<std::size_t>(j * block);
    const std::span<const double> b(runs.baseline), c(runs.candidate);
    const std::span<const long> bj(runs.baseline_jobs), cj(runs.candidate_jobs);
    auto noisy = noisy_jobs(b.first(n), bj.first(n), c.first(n), cj.first(n));
    if (noisy.size() > 2) noisy.clear();
    Runs kept;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::find(noisy.begin(), noisy.end(), runs.baseline_jobs[i]) != noisy.end()) continue;
      kept.baseline.push_back(runs.baseline[i]);
      kept.candidate.push_back(runs.candidate[i]);
      kept.baseline_jobs.push_back(runs.baseline_jobs[i]);
      kept.candidate_jobs.push_back(runs.candidate_jobs[i]);
      kept.cpu_baseline.push_back(runs.cpu_baseline[i]);
      kept.cpu_candidate.push_back(runs.cpu_candidate[i]);
    }
    out.runs_measured = j * block;
    const int have = static_cast<int>(kept.baseline.size());
    if (next_look >= plan.size() || have < plan[next_look].runs_per_arm) continue;
    while (next_look + 1 < plan.size() && plan[next_look + 1].runs_per_arm <= have) ++next_look;
    const std::span<const LookPlan> one(&plan[next_look], 1);
    const auto look = summarize_looks(kept.baseline, kept.candidate, one, kept.baseline_jobs, kept.candidate_jobs);
    out.outcome = classify(look[0], plan[next_look].nominal_alpha, d.first.threshold_pct, d.first.margin_pct);
    out.stop = look[0];
    out.decided_by = Metric::ttfb;
    bool tail_settled = false;
    if (with_tail && out.outcome.outcome != Outcome::different) {  // the rules 1b and 1c of metrics.hpp
      const TailLook t = tail_look(compare_tails(kept.baseline, kept.candidate, kept.baseline_jobs, kept.candidate_jobs),
                                   tail_plan[next_look].nominal_alpha, d.first.threshold_pct);
      if (t.outcome == Outcome::different) {
        out.outcome.outcome = Outcome::different;
        out.outcome.verdict = t.verdict;
        out.decided_by = Metric::tail;
        tail_settled = true;
      } else if (out.outcome.outcome == Outcome::same && t.suspect) {
        out.outcome.outcome = Outcome::unknown;
        out.outcome.verdict = Verdict::inconclusive;
        tail_settled = true;
      }
    }
    if (with_cpu && !tail_settled) {
      const std::span<const LookPlan> cpu_one(&cpu_plan[next_look], 1);
      const auto cpu_look =
          summarize_looks(kept.cpu_baseline, kept.cpu_candidate, cpu_one, kept.baseline_jobs, kept.candidate_jobs);
      const RulesOutcome c =
          classify(cpu_look[0], cpu_plan[next_look].nominal_alpha, d.first.threshold_pct, d.first.margin_pct);
      const CombinedOutcome both = combine(out.outcome, &c, look[0].valid ? look[0].effect_pct : NAN);
      out.outcome = both.rules;
      out.decided_by = both.decided_by;
      if (both.decided_by == Metric::cpu_time) out.stop = cpu_look[0];
    }
    out.outcome.look = static_cast<int>(next_look) + 1;
    out.outcome.runs_per_arm = plan[next_look].runs_per_arm;
    if (out.outcome.outcome != Outcome::unknown || next_look + 1 == plan.size()) return out;
    ++next_look;
  }
  return out;  // ran out of simulated blocks: undecided, inconclusive
}

struct Tally {
  std::size_t experiments = 0;
  std::size_t first_stage_regressions = 0;  // tentative: sent to the rerun
  std::size_t confirmed_regressions = 0;    // the alert
  std::size_t confirmed_improvements = 0;
  std::size_t confirmed_by_cpu = 0;         // confirmed regressions CPU time decided
  std::size_t confirmed_by_tail = 0;        // ... the slow tail decided
  std::size_t no_change = 0;                // certified "the same"
  double first_runs = 0.0, rerun_runs = 0.0;  // per arm, summed
};

// The rerun as step_workflow runs it: one job of max(block, stopping look) runs per arm, Welch
// on the values the outlier rule keeps, at the design's alpha, the interval on the same side.
bool rerun_reproduces(const Runs& rerun, int n, const AdaptiveDesign& d, bool slower) {
  const std::span<const double> b(rerun.baseline), c(rerun.candidate);
  const Comparison cmp = compare_arms(b.first(n), c.first(n), Policy{d.alpha, d.threshold_pct, 1.0 - d.alpha, d.margin_pct});
  const auto& w = cmp.decision.welch;
  return w.valid && w.p_value < d.alpha && (slower ? w.effect_ci_low_pct > 0.0 : w.effect_ci_high_pct < 0.0);
}

std::vector<Tally> simulate(const std::vector<Design>& designs, const NoiseModel& m, double effect_pct, bool cpu_bound,
                            int experiments, std::uint64_t seed, double tail_runs = 0.0) {
  std::mt19937_64 engine(seed);
  std::vector<Tally> out(designs.size());
  int max_runs = 0, max_rerun = 0;
  for (const auto& d : designs) {
    max_runs = std::max(max_runs, d.first.max_runs_per_arm);
    max_rerun = std::max({max_rerun, d.first.max_runs_per_arm, d.rerun_max_runs});
  }
  const int block = designs.front().first.runs_per_block;
  for (int e = 0; e < experiments; ++e) {
    Runs runs, rerun;
    long job = 1;
    const int spare = 2;  // blocks measured again in place of noisy ones
    for (int n = 0; n < max_runs + spare * block; n += block) add_job(engine, m, block, effect_pct, cpu_bound, job++, runs, tail_runs);
    for (int n = 0; n < max_rerun + spare * block; n += block) add_job(engine, m, block, effect_pct, cpu_bound, job++, rerun, tail_runs);
    for (std::size_t i = 0; i < designs.size(); ++i) {
      const Design& d = designs[i];
      const auto plan = plan_looks(d.first);
      RulesOutcome r;
      LookSummary stop;
      Metric decided_by = Metric::ttfb;
      int measured = 0;
      const int n_first = d.first.max_runs_per_arm;
      const std::span<const double> fb(runs.baseline.data(), static_cast<std::size_t>(n_first)),
          fc(runs.candidate.data(), static_cast<std::size_t>(n_first));
      const std::span<const long> fbj(runs.baseline_jobs.data(), static_cast<std::size_t>(n_first)),
          fcj(runs.candidate_jobs.data(), static_cast<std::size_t>(n_first));
      if (d.set_aside_noisy) {
        const FirstStage f = first_stage_setting_aside(runs, d, (n_first + spare * block) / block);
        r = f.outcome;
        stop = f.stop;
        decided_by = f.decided_by;
        measured = f.runs_measured;
      } else {
        const auto looks = d.blocked ? summarize_looks(fb, fc, plan, fbj, fcj) : summarize_looks(fb, fc, plan);
        r = apply_rules(looks, plan, d.first.threshold_pct, d.first.margin_pct);
        stop = looks[static_cast<std::size_t>(r.look) - 1];
        measured = r.runs_per_arm;
      }
      Tally& t = out[i];
      ++t.experiments;
      t.first_runs += measured;
      if (r.verdict == Verdict::no_change) ++t.no_change;
      if (r.outcome != Outcome::different) continue;
      const bool slower = r.verdict == Verdict::regression;
      if (slower) ++t.first_stage_regressions;
      if (!d.powered_rerun) {
        const int n = std::max(d.first.runs_per_block, r.runs_per_arm);
        t.rerun_runs += n;
        if (rerun_reproduces(rerun, n, d.first, slower)) ++(slower ? t.confirmed_regressions : t.confirmed_improvements);
        continue;
      }
      RerunPlan rp = plan_rerun(stop, r.runs_per_arm, d.first, d.rerun_alpha, d.rerun_max_runs);
      if (decided_by == Metric::tail) {  // as analysis.cpp's plan_for: the first stage's whole budget
        rp.runs_per_arm = std::min(std::max(d.first.max_runs_per_arm, r.runs_per_arm), d.rerun_max_runs);
      }
      t.rerun_runs += rp.runs_per_arm;
      auto n = static_cast<std::size_t>(rp.runs_per_arm);
      Runs judged;
      if (d.set_aside_noisy) {
        // As step_workflow: rerun blocks far noisier than the first stage's are replaced by spares.
        std::vector<double> sigmas;
        for (const auto& sp : job_spreads(fb.first(static_cast<std::size_t>(measured)), fbj.first(static_cast<std::size_t>(measured)),
                                          fc.first(static_cast<std::size_t>(measured)), fcj.first(static_cast<std::size_t>(measured))))
          sigmas.push_back(sp.sigma);
        std::sort(sigmas.begin(), sigmas.end());
        const double reference = sigmas.empty() ? 0.0 : sigmas[sigmas.size() / 2];
        const std::span<const double> b(rerun.baseline), c(rerun.candidate);
        const std::span<const long> bj(rerun.baseline_jobs), cj(rerun.candidate_jobs);
        auto noisy = noisy_jobs(b.first(n), bj.first(n), c.first(n), cj.first(n), reference);
        if (noisy.size() > 2) noisy.clear();
        const std::size_t upto = std::min(rerun.baseline.size(), n + noisy.size() * static_cast<std::size_t>(block));
        t.rerun_runs += static_cast<double>(upto - n);
        for (std::size_t k = 0; k < upto; ++k) {
          if (std::find(noisy.begin(), noisy.end(), rerun.baseline_jobs[k]) != noisy.end()) continue;
          judged.baseline.push_back(rerun.baseline[k]);
          judged.candidate.push_back(rerun.candidate[k]);
          judged.baseline_jobs.push_back(rerun.baseline_jobs[k]);
          judged.candidate_jobs.push_back(rerun.candidate_jobs[k]);
          judged.cpu_baseline.push_back(rerun.cpu_baseline[k]);
          judged.cpu_candidate.push_back(rerun.cpu_candidate[k]);
        }
      } else {
        judged = rerun;
      }
      n = std::min(n, judged.baseline.size());
      const std::span<const long> bj(judged.baseline_jobs), cj(judged.candidate_jobs);
      // The rerun judges the metric that decided, as step_workflow.
      const bool on_cpu = decided_by == Metric::cpu_time;
      const std::span<const double> vb(on_cpu ? judged.cpu_baseline : judged.baseline),
          vc(on_cpu ? judged.cpu_candidate : judged.candidate);
      RerunResult rr = judge_rerun(vb.first(n), vc.first(n), bj.first(n), cj.first(n), d.first, d.rerun_alpha, slower);
      if (decided_by == Metric::tail) {
        const TailComparison tc = compare_tails(vb.first(n), vc.first(n), bj.first(n), cj.first(n));
        rr.reproduced = tc.valid && (slower ? tc.p_slower < d.rerun_alpha && tc.p90_change_pct >= d.first.threshold_pct
                                            : tc.p_faster < d.rerun_alpha && tc.p90_change_pct <= -d.first.threshold_pct);
      }
      if (rr.reproduced) ++(slower ? t.confirmed_regressions : t.confirmed_improvements);
      if (rr.reproduced && slower && on_cpu) ++t.confirmed_by_cpu;
      if (rr.reproduced && slower && decided_by == Metric::tail) ++t.confirmed_by_tail;
    }
  }
  return out;
}

double rate(std::size_t k, std::size_t n) { return n ? static_cast<double>(k) / static_cast<double>(n) : 0.0; }

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * x);
  return buf;
}

std::string ratio(double now, double before) {
  if (before == 0.0) return now == 0.0 ? "1.00" : "inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", now / before);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int experiments = 4000;
  std::uint64_t seed = 1;
  bool as_json = false;
  NoiseModel model;
  std::vector<std::array<double, 4>> tried;
  bool overlap_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--experiments" && i + 1 < argc) experiments = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--noise" && i + 1 < argc) model.run_sigma = std::atof(argv[++i]);
    else if (a == "--overlap" && i + 1 < argc) {
      model.overlap_probability = std::atof(argv[++i]);
      overlap_given = true;
    }
    else if (a == "--json") as_json = true;
    else if (a == "--try" && i + 4 < argc) {  // --try ALPHA RERUN_ALPHA RERUN_MAX CPU_SHARE: one more design, to explore
      tried.push_back({std::atof(argv[i + 1]), std::atof(argv[i + 2]), std::atof(argv[i + 3]), std::atof(argv[i + 4])});
      i += 4;
    }
    else {
      std::cerr << "usage: ttfb_verdict_bench [--experiments N] [--noise SIGMA] [--overlap P] [--seed S] [--json]\n"
                   "                          [--try ALPHA RERUN_ALPHA RERUN_MAX CPU_SHARE]...   (more designs to compare)\n";
      return 2;
    }
  }
  if (experiments < 100) {
    std::cerr << "ttfb_verdict_bench: --experiments must be at least 100\n";
    return 2;
  }
  const auto started = std::chrono::steady_clock::now();
  std::vector<Design> designs = {
      {"before", AdaptiveDesign{.alpha = 0.01, .threshold_pct = 3.0, .margin_pct = 3.0, .runs_per_block = 10, .max_runs_per_arm = 60},
       false},
      {"now", AdaptiveDesign{.alpha = 0.1, .threshold_pct = 1.0, .margin_pct = 2.0, .runs_per_block = 10, .max_runs_per_arm = 60},
       true, true, 0.05, 120, true, 0.15, 0.05},
      {"TTFB alone", AdaptiveDesign{.alpha = 0.1, .threshold_pct = 1.0, .margin_pct = 2.0, .runs_per_block = 10, .max_runs_per_arm = 60},
       true, true, 0.05, 120, true, 0.0},
  };
  for (const auto& t : tried) {
    char name[64];
    std::snprintf(name, sizeof name, "alpha %g, rerun %g, rerun max %g, CPU share %g", t[0], t[1], t[2], t[3]);
    designs.push_back({name,
                       AdaptiveDesign{.alpha = t[0], .threshold_pct = 1.0, .margin_pct = 2.0, .runs_per_block = 10, .max_runs_per_arm = 60},
                       true, true, t[1], static_cast<int>(t[2]), true, t[3], 0.05});
  }
  const std::vector<double> effects = {0.0, 1.0, 2.0, 3.0, 5.0};
  // Two fleets: measuring workers that each have their cores (the design's target), and two
  // workers sharing a 2-core machine, whose jobs overlap 15% of the time.
  std::vector<std::pair<std::string, double>> scenarios = {{"each worker on its own cores", 0.0},
                                                           {"two workers sharing 2 cores (15% of jobs overlap)", 0.15}};
  if (overlap_given) scenarios = {{"jobs overlap with probability " + std::to_string(model.overlap_probability), model.overlap_probability}};
  json::object report{{"experiments", experiments}, {"seed", seed}, {"noise_sigma", model.run_sigma},
                      {"alert_budget_per_test", 1.0 / 200.0}};
  json::array scenario_reports;
  for (const auto& [fleet, overlap] : scenarios)
  for (const bool cpu_bound : {true, false}) {
    const std::string scenario = fleet + (cpu_bound ? ", CPU-bound regressions (an import, parsing)"
                                                    : ", wait-bound regressions (a sleep, I/O: CPU time unchanged)");
    NoiseModel m = model;
    m.overlap_probability = overlap;
    std::vector<std::vector<Tally>> by_effect;
    // The same seeds for both kinds: A/A rows are the same experiments.
    for (std::size_t e = 0; e < effects.size(); ++e)
      by_effect.push_back(simulate(designs, m, effects[e], cpu_bound, experiments, seed + e));
    json::array rows;
    for (std::size_t e = 0; e < effects.size(); ++e) {
      for (std::size_t i = 0; i < designs.size(); ++i) {
        const Tally& t = by_effect[e][i];
        const auto [lo, hi] = wilson_interval(t.confirmed_regressions, t.experiments);
        rows.push_back(json::object{{"design", designs[i].name},
                                    {"effect_pct", effects[e]},
                                    {"confirmed_regression", rate(t.confirmed_regressions, t.experiments)},
                                    {"confirmed_regression_ci", json::array{lo, hi}},
                                    {"confirmed_by_cpu_time", rate(t.confirmed_by_cpu, t.experiments)},
                                    {"first_stage_regression", rate(t.first_stage_regressions, t.experiments)},
                                    {"no_change", rate(t.no_change, t.experiments)},
                                    {"mean_first_stage_runs_per_arm", t.first_runs / t.experiments},
                                    {"mean_rerun_runs_per_arm", t.rerun_runs / t.experiments}});
      }
    }
    scenario_reports.push_back(json::object{{"scenario", scenario},
                                            {"overlap_probability", overlap},
                                            {"regression_kind", cpu_bound ? "cpu_bound" : "wait_bound"},
                                            {"rows", std::move(rows)}});
    if (as_json) continue;
    std::printf("## %s: the whole verdict (%d experiments per cell, per-run noise %.1f%%)\n\n", scenario.c_str(), experiments,
                100.0 * m.run_sigma);
    std::printf("| true change | design | confirmed regression [95%% CI] | of which CPU time decided | first stage regression | "
                "certified no change | runs per arm (first stage + rerun) |\n|---|---|---|---|---|---|---|\n");
    for (std::size_t e = 0; e < effects.size(); ++e) {
      const std::string change = effects[e] == 0.0 ? "none (A/A)" : "+" + std::to_string(static_cast<int>(effects[e])) + "%";
      for (std::size_t i = 0; i < designs.size(); ++i) {
        const Tally& t = by_effect[e][i];
        const auto [lo, hi] = wilson_interval(t.confirmed_regressions, t.experiments);
        std::printf("| %s | %s | %s [%s, %s] | %s | %s | %s | %.1f + %.1f |\n", change.c_str(), designs[i].name.c_str(),
                    pct(rate(t.confirmed_regressions, t.experiments)).c_str(), pct(lo).c_str(), pct(hi).c_str(),
                    pct(rate(t.confirmed_by_cpu, t.experiments)).c_str(),
                    pct(rate(t.first_stage_regressions, t.experiments)).c_str(), pct(rate(t.no_change, t.experiments)).c_str(),
                    t.first_runs / t.experiments, t.rerun_runs / t.experiments);
      }
    }
    const std::size_t now = 1;
    std::printf("\nnow / before, confirmed power:");
    for (std::size_t e = 1; e < effects.size(); ++e) {
      std::printf(" +%g%% %s", effects[e],
                  ratio(rate(by_effect[e][now].confirmed_regressions, experiments),
                        rate(by_effect[e][0].confirmed_regressions, experiments))
                      .c_str());
    }
    std::printf("; certified no change at +2%%: %s now, %s before; A/A alerts %s now (budget 0.50%% a test, modelled "
                "alpha/2 x rerun alpha = %s, both metrics together)\n",
                pct(rate(by_effect[2][now].no_change, experiments)).c_str(),
                pct(rate(by_effect[2][0].no_change, experiments)).c_str(),
                pct(rate(by_effect[0][now].confirmed_regressions, experiments)).c_str(),
                pct(designs[now].first.alpha / 2.0 * designs[now].rerun_alpha).c_str());
    std::printf("now / TTFB alone, confirmed power:");
    for (std::size_t e = 1; e < effects.size(); ++e) {
      std::printf(" +%g%% %s", effects[e],
                  ratio(rate(by_effect[e][now].confirmed_regressions, experiments),
                        rate(by_effect[e][2].confirmed_regressions, experiments))
                      .c_str());
    }
    std::printf("\n\n");
  }
  // Slow tails, each worker on its own cores: a share of the candidate's runs much slower.
  json::array tail_rows;
  if (!as_json) {
    std::printf("## slow tails (each worker on its own cores): a share of the candidate's runs much slower, the others alike\n\n"
                "| change | design | confirmed regression [95%% CI] | of which the tail decided | certified no change | "
                "runs per arm (first stage + rerun) |\n|---|---|---|---|---|---|\n");
  }
  for (const auto& [share, effect] : std::vector<std::pair<double, double>>{{0.15, 50.0}, {0.10, 100.0}}) {
    NoiseModel m = model;
    m.overlap_probability = 0.0;
    const auto tallies = simulate(designs, m, effect, false, experiments, seed + 100, share);
    char change[64];
    std::snprintf(change, sizeof change, "%.0f%% of runs +%.0f%%", 100.0 * share, effect);
    for (std::size_t i = 0; i < designs.size(); ++i) {
      const Tally& t = tallies[i];
      const auto [lo, hi] = wilson_interval(t.confirmed_regressions, t.experiments);
      tail_rows.push_back(json::object{{"change", change},
                                       {"design", designs[i].name},
                                       {"confirmed_regression", rate(t.confirmed_regressions, t.experiments)},
                                       {"confirmed_by_tail", rate(t.confirmed_by_tail, t.experiments)},
                                       {"no_change", rate(t.no_change, t.experiments)}});
      if (as_json) continue;
      std::printf("| %s | %s | %s [%s, %s] | %s | %s | %.1f + %.1f |\n", change, designs[i].name.c_str(),
                  pct(rate(t.confirmed_regressions, t.experiments)).c_str(), pct(lo).c_str(), pct(hi).c_str(),
                  pct(rate(t.confirmed_by_tail, t.experiments)).c_str(), pct(rate(t.no_change, t.experiments)).c_str(),
                  t.first_runs / t.experiments, t.rerun_runs / t.experiments);
    }
  }
  if (!as_json) std::printf("\n");
  report["tails"] = std::move(tail_rows);
  report["scenarios"] = std::move(scenario_reports);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  report["seconds"] = seconds;
  if (as_json) std::cout << json::serialize(report) << "\n";
  else std::printf("(%.1f s)\n", seconds);
  return 0;
}
