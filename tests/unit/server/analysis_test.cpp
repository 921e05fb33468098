// The scheduler's step for one workflow (server/scheduler/analysis.hpp), without a database:
// the next block, the confirmation rerun on other workers, reproduced and not reproduced
// confirmations, the runs budget, failures, and calibration batches.
#include "server/scheduler/analysis.hpp"
#include "server/scheduler/plan.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace ttfb {
namespace {
namespace json = boost::json;

WorkflowConfig example_workflow() {
  WorkflowConfig wf;
  wf.name = "wf";
  wf.repo = "example";
  wf.command = {"python3", "train.py"};
  wf.warmup_runs = 1;
  wf.policy.alpha = 0.01;
  wf.policy.detection_floor_pct = 3.0;
  wf.policy.equivalence_margin_pct = 3.0;
  wf.policy.runs_per_block = 10;
  wf.policy.max_runs_per_arm = 30;
  return wf;
}

// A workflow of an experiment with the given blocks of runs: each block is a job on `worker`
// whose candidate is `factor` times slower, with log-normal noise of `sigma`.
struct Builder {
  WorkflowState s;
  std::mt19937_64 engine{7};
  long next_id = 1;
  double level = 1.0;  // both arms of the next jobs are this much slower (a worker's level)
  explicit Builder(const std::string& state = "measuring", std::optional<int> fixed = std::nullopt) {
    WorkflowConfig wf = example_workflow();
    RepoConfig repo{"example", "/srv/example", "main", ""};
    s.experiment_id = 42;
    s.purpose = "presubmit";
    s.workflow = "wf";
    s.state = state;
    s.config = wf.to_api_json();
    s.config["design"] = design_snapshot(wf, std::nullopt, fixed, std::nullopt);
    s.config["payload_for_tests"] = job_payload(repo, wf, std::string(40, 'a'), std::string(40, 'a'), "diff", 1, 10);
  }
  JobRecord& job(const std::string& stage, int runs, double factor, double sigma, const std::string& worker,
                 const std::string& state = "done") {
    JobRecord j;
    j.id = next_id++;
    j.stage = stage;
    j.block = 1;
    for (const auto& other : s.jobs) if (other.stage == stage) ++j.block;
    j.state = state;
    j.error = nullptr;
    j.payload = s.config.at("payload_for_tests").as_object();
    j.workers = {worker};
    std::normal_distribution<double> z(0.0, 1.0);
    if (state == "done") {
      for (int i = 0; i < runs; ++i) {
        for (bool baseline : {true, false}) {
          RunRecord r;
          r.job_id = j.id;
          r.baseline = baseline;
          r.ttfb_ms = 200.0 * level * (baseline ? 1.0 : factor) * std::exp(sigma * z(engine));
          r.phases = json::array{json::object{{"name", "imports"}, {"ms", r.ttfb_ms * 0.4}},
                                 json::object{{"name", "data"}, {"ms", 120.0}}};
          s.runs.push_back(std::move(r));
        }
      }
    }
    s.jobs.push_back(std::move(j));
    return s.jobs.back();
  }
};

TEST(Analysis, AnUnclearFirstBlockSchedulesTheNextOne) {
  Builder b;
  b.job("block", 10, 1.0, 0.08, "w1");  // 8% noise: neither different nor within 3%
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "measuring");
  EXPECT_FALSE(u.verdict);
  ASSERT_EQ(u.new_jobs.size(), 1u);
  EXPECT_EQ(u.new_jobs[0].stage, "block");
  EXPECT_EQ(u.new_jobs[0].block, 2);
  EXPECT_EQ(u.new_jobs[0].priority, 1) << "follow-up blocks go before new experiments";
  EXPECT_EQ(u.new_jobs[0].payload.at("schedule").as_array().size(), 22u) << "1 warm-up + 10 runs per arm";
  EXPECT_EQ(u.new_jobs[0].runs_total, 22);
  ASSERT_EQ(u.looks.size(), 1u);
  EXPECT_EQ(u.looks[0].at("outcome").as_string(), "unknown");
  EXPECT_TRUE(u.result.at("verdict").is_null());
}

TEST(Analysis, AClearSlowdownIsRerunOnOtherWorkersBeforeItCounts) {
  Builder b;
  b.job("block", 10, 1.3, 0.03, "w1");
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "confirming");
  EXPECT_FALSE(u.verdict) << "not final until confirmed";
  ASSERT_EQ(u.new_jobs.size(), 1u);
  EXPECT_EQ(u.new_jobs[0].stage, "confirmation");
  EXPECT_EQ(u.new_jobs[0].avoid_workers, std::vector<std::string>{"w1"});
  EXPECT_EQ(u.result.at("tentative_verdict").as_string(), "regression");
  EXPECT_EQ(u.result.at("confirmation").at("status").as_string(), "pending");
}

TEST(Analysis, AReproducedSlowdownIsAConfirmedRegression) {
  Builder b("confirming");
  b.job("block", 10, 1.3, 0.03, "w1");
  b.job("confirmation", 10, 1.3, 0.03, "w2");
  b.s.looks.push_back(json::object{{"look", 1}});
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "done");
  ASSERT_TRUE(u.verdict);
  EXPECT_EQ(*u.verdict, "regression");
  EXPECT_TRUE(u.result.at("confirmed").as_bool());
  const auto& c = u.result.at("confirmation").as_object();
  EXPECT_EQ(c.at("status").as_string(), "reproduced");
  EXPECT_FALSE(c.at("same_workers").as_bool());
  EXPECT_EQ(u.looks.size(), 1u) << "the confirmation is not a look of the adaptive test";
  EXPECT_TRUE(u.new_jobs.empty());
  EXPECT_NE(u.result.at("phase_summary").as_string().find("imports"), std::string::npos)
      << u.result.at("phase_summary").as_string();
  // The headline effect is the rerun's (unbiased), the first stage's is kept beside it.
  EXPECT_EQ(u.result.at("effect_source").as_string(), "rerun");
  EXPECT_DOUBLE_EQ(u.result.at("effect_pct").as_double(), c.at("effect_pct").as_double());
  EXPECT_DOUBLE_EQ(u.result.at("p_value").as_double(), c.at("p_value").as_double());
  EXPECT_EQ(c.at("p_value_kind").as_string(), "one-sided");
  EXPECT_NE(u.result.at("first_stage").at("effect_pct").as_double(), c.at("effect_pct").as_double());
  EXPECT_EQ(u.result.at("first_stage").at("runs_per_arm").as_int64(), 10);
  const std::string reason(u.result.at("reason").as_string());
  EXPECT_NE(reason.find("confirmed by an independent rerun of 10 runs per arm"), std::string::npos) << reason;
  EXPECT_NE(reason.find("one-sided p = "), std::string::npos) << reason;
}

// The rerun is sized by power, not by the stopping look: a moderate slowdown that stopped at the
// first look gets a rerun of several jobs of a block each, enough for the end of its interval
// nearer 0, and a clear one gets one job.
TEST(Analysis, TheRerunIsSizedByPowerInJobsOfABlock) {
  Builder moderate;
  moderate.job("block", 10, 1.12, 0.05, "w1");
  WorkflowUpdate u = step_workflow(moderate.s);
  ASSERT_EQ(u.state, "confirming") << boost::json::serialize(u.result);
  const auto& c = u.result.at("confirmation").as_object();
  const auto runs = c.at("runs_per_arm").as_int64();
  EXPECT_GT(runs, 10) << boost::json::serialize(c);
  EXPECT_EQ(static_cast<std::int64_t>(u.new_jobs.size()), c.at("jobs").as_int64());
  std::int64_t total = 0;
  for (const auto& j : u.new_jobs) {
    EXPECT_EQ(j.stage, "confirmation");
    EXPECT_LE(j.runs_total, 22) << "a job is at most a block (and its warm-up)";
    total += j.runs_total / 2 - 1;
  }
  EXPECT_EQ(total, runs);
  EXPECT_GE(c.at("sized_for_pct").as_double(), 3.0) << "never sized below the threshold";
  EXPECT_DOUBLE_EQ(c.at("rerun_alpha").as_double(), 0.05);
  Builder clear;
  clear.job("block", 10, 1.5, 0.01, "w1");
  u = step_workflow(clear.s);
  ASSERT_EQ(u.state, "confirming");
  EXPECT_EQ(u.new_jobs.size(), 1u);
  EXPECT_EQ(u.result.at("confirmation").at("runs_per_arm").as_int64(), 10);
}

TEST(Analysis, AnUnreproducedSlowdownAlertsNobody) {
  Builder b("confirming");
  b.job("block", 10, 1.3, 0.03, "w1");
  b.job("confirmation", 10, 1.0, 0.03, "w2");  // gone in the rerun: a flaky slowdown
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "done");
  EXPECT_EQ(*u.verdict, "inconclusive");
  EXPECT_FALSE(u.result.at("confirmed").as_bool());
  EXPECT_EQ(u.result.at("confirmation").at("status").as_string(), "not_reproduced");
  EXPECT_NE(u.result.at("reason").as_string().find("not reproduced"), std::string::npos);
}

TEST(Analysis, TheRunsBudgetEndsInconclusive) {
  Builder b;
  for (int i = 0; i < 3; ++i) b.job("block", 10, 1.0, 0.15, "w1");  // 30 runs = max, 15% noise
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "done");
  EXPECT_EQ(*u.verdict, "inconclusive");
  EXPECT_TRUE(u.new_jobs.empty());
}

TEST(Analysis, AFixedDesignDecidesOnceWithoutConfirmation) {
  Builder b("measuring", 12);
  b.job("block", 12, 1.3, 0.03, "w1");
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "done");
  EXPECT_EQ(*u.verdict, "regression");
  EXPECT_FALSE(u.result.at("confirmed").as_bool());
  EXPECT_EQ(u.result.at("confirmation").at("status").as_string(), "disabled");
  // One look at TTFB's share of alpha: the tail's 5% is its own, CPU time's is TTFB's again (these
  // runs have no CPU time).
  EXPECT_DOUBLE_EQ(u.result.at("look").at("nominal_alpha").as_double(), 0.01 * (1 - 0.05));
  const std::string reason(u.result.at("reason").as_string());
  EXPECT_NE(reason.find("not confirmed by a rerun (a fixed design of 12 runs per arm)"), std::string::npos) << reason;
  EXPECT_EQ(reason.find("confirmed by an independent rerun"), std::string::npos) << reason;
}

// Blocks of a workflow are jobs: a 12% level shift between two jobs (another worker, a busier
// hour) does not hide a +4% change, because the look's test is blocked by job.
TEST(Analysis, TheLookIsBlockedByJob) {
  Builder b;
  b.job("block", 10, 1.04, 0.01, "w1");
  b.level = 1.12;
  b.job("block", 10, 1.04, 0.01, "w2");
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.result.at("test").as_string(), "blocked_log_t");
  EXPECT_EQ(u.result.at("blocks").as_int64(), 2);
  EXPECT_DOUBLE_EQ(u.result.at("equivalence_margin_pct").as_double(), 3.0);
  EXPECT_EQ(u.state, "confirming") << boost::json::serialize(u.result);
}

// A block far noisier than the others (it overlapped another worker's job) is set aside and
// measured again, not fed into the test; when most blocks are noisy, the machine is, and all count.
TEST(Analysis, AFarNoisierBlockIsSetAsideAndMeasuredAgain) {
  Builder b;
  b.job("block", 10, 1.0, 0.05, "w1");  // too noisy for "the same within 3%" at 20 runs per arm
  b.job("block", 10, 1.0, 0.25, "w2");  // five times the noise
  b.job("block", 10, 1.0, 0.05, "w1");
  WorkflowUpdate u = step_workflow(b.s);
  const auto& aside = u.result.at("set_aside_jobs").as_array();
  ASSERT_EQ(aside.size(), 1u) << boost::json::serialize(u.result);
  EXPECT_EQ(aside[0].at("job_id").as_int64(), 2);
  EXPECT_GT(aside[0].at("sigma_pct").as_double(), 2.5 * aside[0].at("usual_sigma_pct").as_double());
  EXPECT_EQ(u.result.at("look").at("runs_per_arm").as_int64(), 20) << "the noisy block's runs are not in the look";
  EXPECT_NE(u.result.at("reason").as_string().find("1 block was set aside"), std::string::npos);
  EXPECT_EQ(u.state, "measuring");
  ASSERT_EQ(u.new_jobs.size(), 1u) << "its runs are measured again";
  EXPECT_EQ(u.new_jobs[0].stage, "block");

  Builder busy;
  for (int i = 0; i < 2; ++i) busy.job("block", 10, 1.0, 0.02, "w1");
  for (int i = 0; i < 3; ++i) busy.job("block", 10, 1.0, 0.10, "w2");
  for (int i = 0; i < 2; ++i) busy.job("block", 10, 1.0, 0.02, "w1");
  u = step_workflow(busy.s);
  EXPECT_TRUE(u.result.at("set_aside_jobs").as_array().empty());
  EXPECT_EQ(u.result.at("look").at("runs_per_arm").as_int64(), 70) << "every block counts";
  bool warned = false;
  for (const auto& w : u.result.at("warnings").as_array())
    warned |= std::string(w.as_string()).find("3 of 7 blocks were far noisier than usual") != std::string::npos;
  EXPECT_TRUE(warned) << boost::json::serialize(u.result.at("warnings"));
}

// The rerun's blocks are held to the first stage's noise: one far noisier is set aside and
// replaced by another block before the rerun is judged.
TEST(Analysis, AFarNoisierRerunBlockIsReplacedBeforeTheJudgement) {
  Builder b("confirming");
  b.job("block", 10, 1.3, 0.02, "w1");
  b.job("confirmation", 10, 1.3, 0.15, "w2");  // the rerun's only planned block, 7 times noisier
  WorkflowUpdate u = step_workflow(b.s);
  ASSERT_EQ(u.state, "confirming") << boost::json::serialize(u.result);
  ASSERT_EQ(u.new_jobs.size(), 1u);
  EXPECT_EQ(u.new_jobs[0].stage, "confirmation");
  EXPECT_EQ(u.result.at("confirmation").at("set_aside_jobs").as_array().size(), 1u);
  b.job("confirmation", 10, 1.3, 0.02, "w2");
  u = step_workflow(b.s);
  EXPECT_EQ(u.state, "done");
  EXPECT_EQ(*u.verdict, "regression");
  const auto& c = u.result.at("confirmation").as_object();
  EXPECT_EQ(c.at("jobs").to_number<std::int64_t>(), 1) << "judged on the replacement alone";
  EXPECT_EQ(c.at("set_aside_jobs").as_array().size(), 1u);
}

TEST(Analysis, AFailedJobEndsTheWorkflowWithItsError) {
  Builder b;
  b.job("block", 10, 1.0, 0.03, "w1");
  JobRecord& failed = b.job("block", 0, 1.0, 0.03, "w1", "failed");
  failed.error = json::object{{"code", "workload_crashed"}, {"message", "exit status 1"}};
  WorkflowUpdate u = step_workflow(b.s);
  EXPECT_EQ(u.state, "done");
  EXPECT_EQ(*u.verdict, "error");
  EXPECT_EQ(u.result.at("error").at("code").as_string(), "workload_crashed");
}

TEST(Analysis, CalibrationBatchesSetTheThreshold) {
  Builder b;
  b.s.purpose = "calibration";
  for (int i = 0; i < 3; ++i) b.job("calibration", 30, 1.0, 0.03, "w1");
  CalibrationStep step = step_calibration(b.s);
  EXPECT_EQ(step.status, "done");
  const auto& r = step.result.as_object();
  EXPECT_EQ(r.at("aa_experiments").to_number<long>(), 3);
  EXPECT_GT(r.at("sigma_aa_pct").as_double(), 0.5);
  EXPECT_GE(r.at("threshold_pct").as_double(), 3.0) << "never below detection_floor_pct";
  EXPECT_EQ(step.update.state, "done");
  EXPECT_TRUE(step.update.result.contains("calibration"));
}

}  // namespace
}  // namespace ttfb
