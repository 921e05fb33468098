// Power of the adaptive design on REAL A/A runs (README "Benchmarks"): reads the runs of an A/A
// calibration (what GET /api/v1/experiments/{id}/samples returns for a calibration experiment),
// resamples null and injected-slowdown experiments from them exactly as a calibration does
// (server/stats/calibration.hpp), and prints the modelled alert rate (first-stage regressions a
// rerun reproduces), the first stage's own rate, the confirmed power and runs per injected
// slowdown, and the smallest slowdown confirmed with at least 90% power. The design is the
// server's default (alpha 0.1, floor 1%, margin 2%, blocks of 10 up to 60, a one-sided rerun at
// 0.05 up to 120 runs per arm) unless told otherwise.
//
//   ttfb_calibration_bench --samples samples.json [--floor 1] [--effects 1,2,3,5,10]
//                          [--block 10] [--max-runs 60] [--alpha 0.1] [--rerun-alpha 0.05] [--json]
//
// bench/example_workflow.py runs it on the example workflow's calibration.
#include "server/stats/calibration.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

namespace {
namespace json = boost::json;
using namespace ttfb::stats;

std::vector<double> parse_list(const std::string& s) {
  std::vector<double> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stod(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string samples_path;
  CalibrationSettings s;
  s.detection_floor_pct = 1.0;
  s.design.alpha = 0.1;
  s.design.margin_pct = 2.0;
  s.rerun_alpha = 0.05;
  s.max_rerun_runs_per_arm = 120;
  s.injected_effects_pct = {1.0, 2.0, 3.0, 5.0, 10.0};
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--samples") samples_path = next();
      else if (a == "--floor" || a == "--min-effect") s.detection_floor_pct = std::stod(next());
      else if (a == "--effects") s.injected_effects_pct = parse_list(next());
      else if (a == "--block") s.design.runs_per_block = std::stoi(next());
      else if (a == "--max-runs") s.design.max_runs_per_arm = std::stoi(next());
      else if (a == "--alpha") s.design.alpha = std::stod(next());
      else if (a == "--rerun-alpha") s.rerun_alpha = std::stod(next());
      else if (a == "--json") as_json = true;
      else throw std::invalid_argument("unknown option " + a);
    } catch (const std::exception& e) {
      std::cerr << "ttfb_calibration_bench: " << e.what() << "\n";
      return 2;
    }
  }
  if (samples_path.empty()) {
    std::cerr << "usage: ttfb_calibration_bench --samples samples.json [--floor 1] [--effects 1,2,5,10] "
                 "[--block 10] [--max-runs 60] [--alpha 0.1] [--rerun-alpha 0.05] [--json]\n";
    return 2;
  }
  std::ifstream in(samples_path);
  std::stringstream text;
  text << in.rdbuf();
  json::value v = json::parse(text.str());
  const json::array& samples = v.is_object() ? v.at("samples").as_array() : v.as_array();
  std::map<long, AaExperiment> by_job;  // each job of a calibration is one A/A experiment
  for (const auto& x : samples) {
    const auto& o = x.as_object();
    if (o.at("warmup").as_bool()) continue;
    auto& aa = by_job[o.at("job_id").to_number<long>()];
    (o.at("arm").as_string() == "baseline" ? aa.baseline : aa.candidate).push_back(o.at("ttfb_ms").to_number<double>());
  }
  std::vector<AaExperiment> pool;
  for (auto& [id, aa] : by_job) pool.push_back(std::move(aa));
  const Calibration c = calibrate(pool, s);
  if (as_json) {
    std::cout << json::serialize(to_json(c)) << "\n";
    return 0;
  }
  std::printf("A/A pool: %zu batches, %zu runs; sigma_AA %.2f%% (effect sd of one block of %d runs per arm)\n",
              c.aa_experiments, c.samples, c.sigma_aa_pct, s.design.runs_per_block);
  std::printf("design: first stage alpha %.3g, blocks of %d up to %d runs per arm, detection floor %.2f%%, margin %.2f%%, "
              "rerun alpha %.3g (one-sided); k %.1f -> threshold %.2f%%\n",
              s.design.alpha, s.design.runs_per_block, s.design.max_runs_per_arm, s.detection_floor_pct, s.design.margin_pct,
              s.rerun_alpha, c.k, c.threshold_pct);
  std::printf("modelled alerts under no change %.3f%% [%.3f, %.3f] (%s), first stage different %.2f%%, of %d resampled "
              "A/A experiments; budget %.2f%% a workflow-test (met with a safety factor of %g: %s)\n\n",
              100 * c.achieved_fpr, 100 * c.achieved_fpr_ci_low, 100 * c.achieved_fpr_ci_high, c.achieved_fpr_ci_method.c_str(),
              100 * c.first_stage_fpr, s.null_experiments, 100 * c.target_fpr, kSafetyFactor, c.budget_met ? "yes" : "no");
  std::printf("| injected slowdown | confirmed power | mean first-stage runs per arm |\n|---|---|---|\n");
  for (const auto& p : c.power) std::printf("| +%g%% | %.1f%% | %.1f |\n", p.effect_pct, 100 * p.power, p.mean_runs_per_arm);
  if (c.smallest_effect_90_pct > 0)
    std::printf("\nsmallest injected slowdown confirmed with >= 90%% power: +%g%%\n", c.smallest_effect_90_pct);
  else
    std::printf("\nno injected slowdown reached 90%% power\n");
  return 0;
}
