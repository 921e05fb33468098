#include "cli/report.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ttfb::cli {
namespace {

boost::json::object experiment(const char* status, const char* verdict) {
  auto v = boost::json::parse(R"json({"id": 7, "status": "done", "verdict": null, "url": "http://x/api/v1/experiments/7",
    "base": {"ref": "main", "commit": "0123456789abcdef0123456789abcdef01234567"},
    "candidate": {"ref": null, "commit": "0123456789abcdef0123456789abcdef01234567", "diff_sha256": "ab12", "diff_lines": 9},
    "workflows": [{"workflow": "example-train", "verdict": "regression", "result": {
      "n_baseline": 10, "n_candidate": 10, "median_baseline_ms": 120.0, "median_candidate_ms": 160.5,
      "effect_pct": 33.4, "ci_low_pct": 29.0, "ci_high_pct": 38.1, "p_value": 1.2e-9, "threshold_pct": 3.0,
      "outliers_baseline": 1, "outliers_candidate": 0,
      "rank_test": {"test": "mann_whitney_u", "method": "exact", "p_value": 1.1e-5, "hl_shift_pct": 32.9},
      "phases": [{"name": "imports", "delta_ms": 40.1}, {"name": "data", "delta_ms": 0.1}],
      "phase_summary": "imports +40.1 ms (98% of the change); other phases within noise",
      "reason": "slower by +33.4% [+29.0, +38.1] at look 1 of 6 (10 runs per arm, level 0.00244)",
      "confirmed": true,
      "confirmation": {"status": "reproduced", "effect_pct": 31.2, "ci_low_pct": 25.0, "ci_high_pct": 37.0,
                       "p_value": 2e-8, "workers": ["w2"]},
      "calibration": {"id": 3, "k": 1.5, "sigma_aa_pct": 1.2}}}]})json").as_object();
  v["status"] = status;
  if (verdict) v["verdict"] = verdict;
  return v;
}

// The rerun's p is one-sided and its effect the headline; the first stage's is shown beside it.
TEST(Report, ARerunsOneSidedPAndTheFirstStageAreNamed) {
  auto e = experiment("done", "regression");
  auto& r = e["workflows"].as_array()[0].as_object()["result"].as_object();
  r["confirmation"].as_object()["p_value_kind"] = "one-sided";
  r["first_stage"] = boost::json::object{{"effect_pct", 36.0}, {"ci_low_pct", 30.0}, {"ci_high_pct", 42.5}};
  const std::string t = format_experiment(e);
  EXPECT_NE(t.find("reproduced it: +31.2% [+25.0, +37.0], one-sided p 2.0e-08"), std::string::npos) << t;
  EXPECT_NE(t.find("the first stage's, biased upwards by stopping early, was +36.0% [+30.0, +42.5]"), std::string::npos) << t;
  r["confirmation"] = boost::json::object{{"status", "disabled"}};
  EXPECT_NE(format_experiment(e).find("no confirmation rerun (a fixed design): not confirmed"), std::string::npos);
}

// An infra owner's experiment: the candidate is the base revision, run another way; both are said.
TEST(Report, TheCandidatesRuntimeIsSaid) {
  auto e = experiment("done", "regression");
  auto& c = e["candidate"].as_object();
  c["diff_lines"] = 0;
  c["env"] = boost::json::object{{"MODE", "tuned"}, {"LANG", nullptr}};
  c["command_prefix"] = boost::json::array{"nice", "-n", "10"};
  c["interpreter"] = boost::json::array{"python3", "-X", "importtime"};
  const std::string t = format_experiment(e);
  EXPECT_NE(t.find("candidate the base revision (0123456789ab)"), std::string::npos) << t;
  EXPECT_NE(t.find("runs with env MODE=tuned; unset LANG; prefix nice -n 10; interpreter python3 -X importtime"),
            std::string::npos)
      << t;
  // Several workflows: the suite's answer in one line.
  e["suite"] = boost::json::object{{"verdict", "improvement"}, {"certified", true}, {"alpha", 0.05},
                                   {"statement", "faster across the suite, certified: -3.10% [-4.2%, -2.0%] (95%)"}};
  EXPECT_NE(format_experiment(e).find("suite: improvement (certified) -- faster across the suite, certified: -3.10% "
                                      "[-4.2%, -2.0%] (95%) (Holm's correction at alpha 0.05)"),
            std::string::npos)
      << format_experiment(e);
  // A diff's experiment says nothing of a runtime.
  EXPECT_EQ(format_experiment(experiment("done", "regression")).find("runs with"), std::string::npos);
}

// The second metric's numbers, its level beside TTFB's, and which metric decided.
TEST(Report, CpuTimeAndTheMetricThatDecidedAreSaid) {
  auto e = experiment("done", "regression");
  auto& r = e["workflows"].as_array()[0].as_object()["result"].as_object();
  r["alpha"] = 0.1;
  r["ttfb_alpha"] = 0.07;
  r["decided_by"] = "cpu_time";
  r["cpu_time"] = boost::json::object{{"tested", true}, {"effect_pct", 2.4}, {"ci_low_pct", 1.5}, {"ci_high_pct", 3.3},
                                      {"p_value", 1e-4}, {"alpha", 0.03}};
  r["confirmation"].as_object()["metric"] = "cpu_time";
  std::string t = format_experiment(e);
  EXPECT_NE(t.find("example-train: CPU time to the first batch +2.4% [+1.5, +3.3], p 0.0001 (tested at alpha 0.03, TTFB "
                   "at 0.07); CPU time decided"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("confirmation rerun reproduced it on CPU time: +31.2%"), std::string::npos) << t;
  r["decided_by"] = "ttfb";
  EXPECT_NE(format_experiment(e).find("(tested at alpha 0.03, TTFB at 0.07); TTFB decided"), std::string::npos);
  r["tail"] = boost::json::object{{"tested", true}, {"slow_candidate", 12}, {"n_candidate", 60}, {"slow_baseline", 0},
                                  {"n_baseline", 60}, {"p_slower", 0.00018}, {"p90_change_pct", 48.1}};
  r["decided_by"] = "tail";
  EXPECT_NE(format_experiment(e).find("example-train: slow runs 12/60 candidate, 0/60 baseline (exact p 0.0002), 90th "
                                      "percentile +48.1%; the slow tail decided"),
            std::string::npos)
      << format_experiment(e);
  r["cpu_time"] = boost::json::object{{"tested", false}, {"why", "cpu_time_alpha_share is 0: TTFB alone decides"}};
  EXPECT_NE(format_experiment(e).find("CPU time not tested: cpu_time_alpha_share is 0"), std::string::npos);
}

TEST(Report, ExitCodesFollowTheVerdict) {
  EXPECT_EQ(exit_code(experiment("done", "regression")), kExitRegression);
  EXPECT_EQ(exit_code(experiment("done", "no_change")), kExitNoRegression);
  EXPECT_EQ(exit_code(experiment("done", "improvement")), kExitNoRegression);
  EXPECT_EQ(exit_code(experiment("done", "inconclusive")), kExitInconclusive);
  EXPECT_EQ(exit_code(experiment("error", "error")), kExitError);
  EXPECT_EQ(exit_code(experiment("cancelled", nullptr)), kExitError);
}

TEST(Report, TableShowsNumbersVerdictAndMovedPhase) {
  std::string t = format_experiment(experiment("done", "regression"));
  EXPECT_NE(t.find("10/10"), std::string::npos) << t;
  EXPECT_NE(t.find("120.0 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("+33.4% [+29.0, +38.1]"), std::string::npos) << t;
  EXPECT_NE(t.find("1.2e-09"), std::string::npos) << t;
  EXPECT_NE(t.find("regression (confirmed)"), std::string::npos) << t;
  EXPECT_NE(t.find("phases: imports +40.1 ms (98% of the change)"), std::string::npos) << t;
  EXPECT_NE(t.find("at look 1 of 6"), std::string::npos) << t;
  EXPECT_NE(t.find("confirmation rerun reproduced it: +31.2% [+25.0, +37.0], p 2.0e-08 (on w2)"), std::string::npos) << t;
  EXPECT_NE(t.find("threshold 3.00% = max(detection floor, k 1.50 x sigma_AA 1.20%) from calibration 3"), std::string::npos) << t;
  EXPECT_NE(t.find("base + diff (9 lines"), std::string::npos) << t;
  EXPECT_NE(t.find("rank test (Mann-Whitney) p 1.1e-05, Hodges-Lehmann shift +32.9%"), std::string::npos) << t;
  EXPECT_NE(t.find("outliers removed (|ln x - pooled median| > 3.5 pooled MAD): 1 baseline, 0 candidate"), std::string::npos) << t;
}

TEST(Report, WorkflowShowsThresholdCalibrationAndRoc) {
  auto w = boost::json::parse(R"({"name": "example-train", "repo": "example", "description": "d",
    "policy": {"alpha": 0.01, "detection_floor_pct": 1.0, "equivalence_margin_pct": 2.0, "runs_per_block": 10, "max_runs_per_arm": 60, "spending": "pocock",
               "confirm": true, "fp_budget_per_week": 1, "tests_per_week": 200},
    "threshold_pct": 1.8, "k": 1.5, "sigma_aa_pct": 1.2,
    "calibration": {"stale": false, "stale_reason": "", "running": null, "last": null,
      "current": {"id": 4, "trigger": "manual", "experiment_id": 9, "finished_at": "2026-11-23 12:00:00.1+00",
        "result": {"aa_experiments": 4, "samples": 240, "achieved_fpr": 0.004, "achieved_fpr_ci": [0.002, 0.008],
                   "target_fpr": 0.005, "null_experiments": 4000, "budget_met": true, "smallest_effect_90_pct": 5,
                   "power": [{"effect_pct": 2, "power": 0.81, "mean_runs_per_arm": 41}],
                   "roc": [{"k": 0, "threshold_pct": 1, "fpr": 0.01, "tpr": [0.9]}]}}}})").as_object();
  std::string t = format_workflow(w);
  EXPECT_NE(t.find("threshold  1.80% = max(detection floor, k 1.50 x sigma_AA 1.20%)"), std::string::npos) << t;
  EXPECT_NE(t.find("false positives 0.40% [0.20, 0.80]"), std::string::npos) << t;
  EXPECT_NE(t.find("target 0.50%: within budget"), std::string::npos) << t;
  EXPECT_NE(t.find("+2%: 81% (41 runs/arm)"), std::string::npos) << t;
  EXPECT_NE(t.find("smallest slowdown detected with 90% power: 5%"), std::string::npos) << t;
  EXPECT_NE(t.find("ROC"), std::string::npos) << t;
}

}  // namespace
}  // namespace ttfb::cli
