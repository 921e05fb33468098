// The adaptive engine's storage against a real PostgreSQL: confirmation reruns avoid the workers
// that measured the original while another can take them, a workflow's step is saved in one
// transaction (next block, analysed marks, the experiment finished when every workflow is), and
// calibrations: one at a time per workflow, the current threshold, staleness.
#include "common/errors.hpp"
#include "server/scheduler/analysis.hpp"
#include "server/scheduler/plan.hpp"
#include "server/store/calibrations.hpp"
#include "server/store/db.hpp"
#include "server/store/experiments.hpp"
#include "server/store/jobs.hpp"
#include "server/store/workflow_state.hpp"
#include "throwaway_db.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <random>

namespace ttfb {
namespace {
namespace json = boost::json;

class AdaptiveStoreTest : public testing::ThrowawayDatabaseTest {
 protected:
  void SetUp() override {
    ThrowawayDatabaseTest::SetUp();
    wf_.name = "wf";
    wf_.repo = "example";
    wf_.command = {"true"};
    wf_.warmup_runs = 0;
    wf_.policy.runs_per_block = 4;
    wf_.policy.max_runs_per_arm = 8;
  }
  NewJob block_job(const std::string& stage = "block") {
    NewJob j;
    j.workflow = wf_.name;
    j.workflow_config = wf_.to_api_json();
    j.workflow_config["design"] = design_snapshot(wf_, std::nullopt, std::nullopt, std::nullopt);
    j.stage = stage;
    j.payload = job_payload(repo_, wf_, std::string(40, 'a'), std::string(40, 'a'), "", 0, 4);
    j.runs_total = runs_total(0, 4);
    return j;
  }

  NewExperiment experiment(const std::string& purpose = "presubmit") {
    NewExperiment e;
    e.repo = "example";
    e.purpose = purpose;
    e.base_ref = "main";
    e.base_commit = std::string(40, 'a');
    e.candidate_commit = std::string(40, 'a');
    e.max_attempts = 2;
    return e;
  }

  WorkerFacts worker(const std::string& name) {
    WorkerFacts w;
    w.name = name;
    return w;
  }

  // Claims as `name` and reports every run of the schedule: `fill` adds the measured values to
  // each sample, given its arm and its index among that arm's runs.
  template <class Fill>
  long report_job(const std::string& name, Fill fill) {
    auto job = claim_job(*db_, worker(name), 30);
    EXPECT_TRUE(job.has_value());
    if (!job) return 0;
    long id = job->at("id").as_int64();
    int i = 0, j = 0;
    json::array samples;
    for (const auto& r : job->at("schedule").as_array()) {
      const auto& ro = r.as_object();
      const bool base = ro.at("arm").as_string() == "baseline";
      json::object sample{{"run_index", ro.at("run_index")}, {"arm", ro.at("arm")}, {"warmup", ro.at("warmup")}};
      fill(base, base ? i++ : j++, sample);
      samples.push_back(std::move(sample));
    }
    const Lease lease{name, std::string(job->at("lease_id").as_string()), static_cast<int>(job->at("attempt").as_int64())};
    add_samples(*db_, id, lease, samples);
    complete_job(*db_, id, lease);
    return id;
  }

  // Every run of the schedule with the candidate `factor` slower.
  long run_job(const std::string& name, double factor, std::uint64_t seed) {
    std::mt19937_64 engine(seed);
    std::normal_distribution<double> z(0.0, 0.004);
    return report_job(name, [&](bool base, int, json::object& s) {
      s["ttfb_ms"] = 200.0 * (base ? 1.0 : factor) * std::exp(z(engine));
    });
  }

  // As run_job, with TTFB that scatters like runs waiting for a core (each arm the same spread
  // of values, the candidate's `ttfb_factor` slower) and CPU time to the first batch that moves
  // by `cpu_factor` at 0.4% noise.
  long run_job_cpu(const std::string& name, double ttfb_factor, double cpu_factor, std::uint64_t seed) {
    std::mt19937_64 engine(seed);
    std::normal_distribution<double> z(0.0, 0.004);
    const double waits[] = {0.0, 90.0, 30.0, 60.0};
    return report_job(name, [&](bool base, int k, json::object& s) {
      s["ttfb_ms"] = (200.0 + waits[k % 4]) * (base ? 1.0 : ttfb_factor);
      s["cpu_to_first_batch_ms"] = 150.0 * (base ? 1.0 : cpu_factor) * std::exp(z(engine));
    });
  }

  // Every run alike in both arms but for a slow tail in the candidate: of each ten runs of an
  // arm, the 4th and 8th 50% slower.
  long run_tail_job(const std::string& name) {
    return report_job(name, [](bool base, int k, json::object& s) {
      k %= 10;
      const double x = 200.0 * (1.0 + 0.002 * ((k * 7) % 10 - 4.5));
      s["ttfb_ms"] = !base && (k == 3 || k == 7) ? 1.5 * x : x;
    });
  }

  WorkflowConfig wf_;
  RepoConfig repo_{"example", "/srv/example", "main", ""};
};

TEST_F(AdaptiveStoreTest, AConfirmationAvoidsTheOriginalWorkersWhileAnotherIsLive) {
  auto e = experiment();
  NewJob j = block_job("confirmation");
  j.avoid_workers = {"w1"};
  e.jobs.push_back(j);
  insert_experiment(*db_, e);
  // w2 has been seen (it is live) but is busy elsewhere: w1 must not take the job.
  db_->transact([&](pqxx::work& tx) { touch_worker(tx, worker("w2")); });
  EXPECT_FALSE(claim_job(*db_, worker("w1"), 30)) << "w1 measured the original";
  auto job = claim_job(*db_, worker("w2"), 30);
  ASSERT_TRUE(job);
}

// A rerun of several jobs waits for the other worker however long its queue, while that worker
// is getting on with the experiment; one that nobody else takes falls back to the avoided worker.
TEST_F(AdaptiveStoreTest, ALongRerunStaysOffTheOriginalWorkerWhileTheOtherWorksThroughIt) {
  auto e = experiment();
  for (int k = 0; k < 3; ++k) {
    NewJob j = block_job("confirmation");
    j.avoid_workers = {"w1"};
    e.jobs.push_back(j);
  }
  const long id = insert_experiment(*db_, e);
  // Queued two minutes ago, past the grace.
  db_->transact([&](pqxx::work& tx) {
    tx.exec_params("UPDATE jobs SET created_at = now() - interval '120 seconds' WHERE experiment_id = $1", id);
  });
  ASSERT_TRUE(claim_job(*db_, worker("w2"), 30)) << "w2 takes the first rerun job";
  EXPECT_FALSE(claim_job(*db_, worker("w1"), 30)) << "w2 is running one of the rerun's jobs: w1 waits";
  // w2's job ended long ago and it took nothing since (stalled, busy elsewhere): w1 takes over.
  db_->transact([&](pqxx::work& tx) {
    tx.exec_params("UPDATE jobs SET state = 'done', finished_at = now() - interval '90 seconds', lease_owner = NULL "
                   "WHERE experiment_id = $1 AND state = 'running'", id);
  });
  EXPECT_TRUE(claim_job(*db_, worker("w1"), 30)) << "nobody else is getting on with it";
}

TEST_F(AdaptiveStoreTest, AConfirmationRunsOnTheSameWorkerWhenItIsTheOnlyOne) {
  auto e = experiment();
  NewJob j = block_job("confirmation");
  j.avoid_workers = {"w1"};
  e.jobs.push_back(j);
  insert_experiment(*db_, e);
  EXPECT_TRUE(claim_job(*db_, worker("w1"), 30)) << "no other live worker: better the same worker than none";
}

TEST_F(AdaptiveStoreTest, WorkflowStepsAreSavedAndTheExperimentFinishesWithTheLastWorkflow) {
  auto e = experiment();
  e.jobs.push_back(block_job());
  long id = insert_experiment(*db_, e);
  EXPECT_TRUE(workflows_ready(*db_).empty()) << "nothing finished yet";
  run_job("w1", 1.0, 1);  // 0.4% noise, no change: "same" within 3% at the first look
  auto ready = workflows_ready(*db_);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0], std::make_pair(id, std::string("wf")));
  auto verdict = analyse_workflow(*db_, id, "wf");
  ASSERT_TRUE(verdict);
  EXPECT_EQ(*verdict, "no_change");
  EXPECT_TRUE(workflows_ready(*db_).empty()) << "analysed jobs are not analysed again";
  json::object got = get_experiment(*db_, id, "http://x");
  EXPECT_EQ(got.at("status").as_string(), "done");
  const auto& w = got.at("workflows").as_array()[0].as_object();
  EXPECT_EQ(w.at("state").as_string(), "done");
  EXPECT_EQ(w.at("result").at("look").at("outcome").as_string(), "same");
  EXPECT_EQ(w.at("design").at("runs_per_block").as_int64(), 4);
}

TEST_F(AdaptiveStoreTest, ASlowdownGetsAConfirmationJobThenAConfirmedVerdict) {
  auto e = experiment();
  e.jobs.push_back(block_job());
  long id = insert_experiment(*db_, e);
  run_job("w1", 1.3, 2);
  EXPECT_FALSE(analyse_workflow(*db_, id, "wf")) << "not finished: a confirmation is queued";
  long queued = db_->transact([&](pqxx::work& tx) {
    return tx.exec_params1("SELECT count(*) FROM jobs WHERE experiment_id = $1 AND stage = 'confirmation' AND state = 'queued' "
                           "AND avoid_workers = ARRAY['w1']", id)[0].as<long>();
  });
  EXPECT_EQ(queued, 1);
  run_job("w1", 1.3, 3);  // no other worker is live: w1 takes it
  auto verdict = analyse_workflow(*db_, id, "wf");
  ASSERT_TRUE(verdict);
  EXPECT_EQ(*verdict, "regression");
  json::object got = get_experiment(*db_, id, "http://x");
  const auto& r = got.at("workflows").as_array()[0].at("result").as_object();
  EXPECT_TRUE(r.at("confirmed").as_bool());
  EXPECT_TRUE(r.at("confirmation").at("same_workers").as_bool()) << "said, since it could not be avoided";
}

TEST_F(AdaptiveStoreTest, ACpuBoundSlowdownHiddenInTtfbsNoiseIsDecidedAndConfirmedOnCpuTime) {
  auto e = experiment();
  e.author = "Ada Lovelace <ada@example.com>";
  e.title = "eager import";
  e.jobs.push_back(block_job());
  long id = insert_experiment(*db_, e);
  ServerConfig config;
  config.public_url = "http://x";
  config.repos["example"] = repo_;
  config.repos["example"].alerts.webhook_url = "http://127.0.0.1:9/hook";
  // TTFB +3% with a spread of 200-290 ms in 4 runs per arm: far from decided. CPU time +10%.
  run_job_cpu("w1", 1.03, 1.10, 4);
  EXPECT_FALSE(analyse_workflow(*db_, id, "wf", &config)) << "a confirmation is queued";
  json::object got = get_experiment(*db_, id, "http://x");
  const auto& first = got.at("workflows").as_array()[0].at("result").as_object();
  EXPECT_EQ(first.at("decided_by").as_string(), "cpu_time");
  EXPECT_TRUE(first.at("cpu_time").at("tested").as_bool());
  EXPECT_NEAR(first.at("cpu_time").at("effect_pct").as_double(), 10.0, 1.0);
  // TTFB, CPU time and the tail share alpha.
  EXPECT_NEAR(first.at("cpu_time").at("alpha").as_double() + first.at("ttfb_alpha").as_double() +
                  first.at("tail_alpha_share").as_double() * first.at("alpha").as_double(),
              first.at("alpha").as_double(), 1e-12);
  EXPECT_EQ(first.at("confirmation").at("metric").as_string(), "cpu_time");
  EXPECT_EQ(first.at("look").at("outcome").as_string(), "different");

  run_job_cpu("w1", 1.03, 1.10, 5);
  auto verdict = analyse_workflow(*db_, id, "wf", &config);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(*verdict, "regression");
  got = get_experiment(*db_, id, "http://x");
  const auto& r = got.at("workflows").as_array()[0].at("result").as_object();
  EXPECT_TRUE(r.at("confirmed").as_bool());
  EXPECT_EQ(r.at("decided_by").as_string(), "cpu_time");
  const auto& c = r.at("confirmation").as_object();
  EXPECT_EQ(c.at("metric").as_string(), "cpu_time");
  EXPECT_NEAR(c.at("effect_pct").as_double(), 10.0, 1.0) << "the rerun judged CPU time";
  EXPECT_NEAR(c.at("ttfb").at("effect_pct").as_double(), 3.0, 0.5) << "and shows TTFB beside it";
  EXPECT_NEAR(r.at("effect_pct").as_double(), 3.0, 0.5) << "the headline stays TTFB's";
  EXPECT_EQ(r.at("first_stage").at("metric").as_string(), "cpu_time");
  EXPECT_NE(std::string(r.at("reason").as_string()).find("CPU time to the first batch"), std::string::npos) << r.at("reason");
  const std::string text = db_->transact([&](pqxx::work& tx) {
    return tx.exec1("SELECT text FROM alerts WHERE kind = 'presubmit_regression'")[0].as<std::string>();
  });
  EXPECT_NE(text.find("more CPU time before its first batch"), std::string::npos) << text;
  EXPECT_NE(text.find("its time to first batch changed +3.0%"), std::string::npos) << text;
}

TEST_F(AdaptiveStoreTest, ASlowTailTheOutlierRuleHidesIsARegressionConfirmedByARerun) {
  wf_.policy.runs_per_block = 10;
  wf_.policy.max_runs_per_arm = 60;
  auto e = experiment();
  e.title = "lazy cache";
  e.author = "Ada Lovelace <ada@example.com>";
  NewJob first = block_job();
  first.payload = job_payload(repo_, wf_, std::string(40, 'a'), std::string(40, 'a'), "", 0, 10);
  first.runs_total = runs_total(0, 10);
  e.jobs.push_back(first);
  long id = insert_experiment(*db_, e);
  ServerConfig config;
  config.public_url = "http://x";
  config.repos["example"] = repo_;
  config.repos["example"].alerts.webhook_url = "http://127.0.0.1:9/hook";
  json::object got;
  int jobs_run = 0;
  for (; jobs_run < 20; ++jobs_run) {
    run_tail_job("w1");
    if (analyse_workflow(*db_, id, "wf", &config)) break;
    got = get_experiment(*db_, id, "http://x");
    const auto& r = got.at("workflows").as_array()[0].at("result").as_object();
    if (jobs_run == 0) {
      EXPECT_EQ(r.at("look").at("outcome").as_string(), "unknown") << "not certified the same: " << r.at("reason");
      EXPECT_TRUE(r.at("tail").at("suspect").as_bool());
    }
  }
  ASSERT_LT(jobs_run, 20) << "the experiment never finished";
  EXPECT_EQ(jobs_run, 11) << "6 blocks to decide on the tail, then 6 rerun jobs of 10 (the first stage's budget)";
  got = get_experiment(*db_, id, "http://x");
  const auto& w = got.at("workflows").as_array()[0].as_object();
  EXPECT_EQ(w.at("verdict").as_string(), "regression");
  const auto& r = w.at("result").as_object();
  EXPECT_EQ(r.at("decided_by").as_string(), "tail");
  EXPECT_TRUE(r.at("confirmed").as_bool());
  EXPECT_EQ(r.at("confirmation").at("metric").as_string(), "tail");
  EXPECT_EQ(r.at("confirmation").at("tail").at("slow_candidate").as_int64(), 12);
  EXPECT_EQ(r.at("confirmation").at("tail").at("slow_baseline").as_int64(), 0);
  EXPECT_LT(r.at("confirmation").at("p_value").as_double(), 0.05);
  EXPECT_NEAR(r.at("effect_pct").as_double(), 0.0, 0.5) << "TTFB's test, after the outlier rule, sees no change";
  const std::string text = db_->transact([&](pqxx::work& tx) {
    return tx.exec1("SELECT text FROM alerts WHERE kind = 'presubmit_regression'")[0].as<std::string>();
  });
  EXPECT_NE(text.find("makes some of wf's start-ups much slower than main: 12 of 60 runs slow against 0 of 60"),
            std::string::npos)
      << text;
}

TEST_F(AdaptiveStoreTest, WithItsShareAtZeroCpuTimeIsNotTested) {
  wf_.policy.cpu_time_alpha_share = 0.0;
  wf_.policy.tail_alpha_share = 0.0;
  auto e = experiment();
  e.jobs.push_back(block_job());
  long id = insert_experiment(*db_, e);
  run_job_cpu("w1", 1.03, 1.10, 4);
  analyse_workflow(*db_, id, "wf");
  json::object got = get_experiment(*db_, id, "http://x");
  const auto& r = got.at("workflows").as_array()[0].at("result").as_object();
  EXPECT_FALSE(r.at("cpu_time").at("tested").as_bool());
  EXPECT_NE(std::string(r.at("cpu_time").at("why").as_string()).find("cpu_time_alpha_share is 0"), std::string::npos);
  EXPECT_DOUBLE_EQ(r.at("ttfb_alpha").as_double(), r.at("alpha").as_double());
  EXPECT_EQ(r.at("look").at("outcome").as_string(), "unknown") << "TTFB alone cannot tell yet: another block";
}

TEST_F(AdaptiveStoreTest, RunsWithoutCpuTimeAreJudgedOnTtfbAloneAtTheWholeAlpha) {
  // A worker without cgroups reports no CPU time: TTFB alone decides, and the result says why.
  auto e2 = experiment();
  e2.jobs.push_back(block_job());
  long id2 = insert_experiment(*db_, e2);
  run_job("w1", 1.0, 6);
  analyse_workflow(*db_, id2, "wf");
  json::object got = get_experiment(*db_, id2, "http://x");
  const auto& r2 = got.at("workflows").as_array()[0].at("result").as_object();
  EXPECT_FALSE(r2.at("cpu_time").at("tested").as_bool());
  EXPECT_NE(std::string(r2.at("cpu_time").at("why").as_string()).find("not every run has its CPU time"), std::string::npos);
  EXPECT_DOUBLE_EQ(r2.at("ttfb_alpha").as_double(), r2.at("alpha").as_double() * (1.0 - r2.at("tail_alpha_share").as_double()))
      << "CPU time's share is TTFB's again";
}

TEST_F(AdaptiveStoreTest, CalibrationsRunOneAtATimeAndSetTheThreshold) {
  auto e = experiment("calibration");
  for (int i = 0; i < 2; ++i) e.jobs.push_back(block_job("calibration"));
  StartedCalibration c = start_calibration(*db_, e, "wf", "manual", "tester");
  EXPECT_THROW(start_calibration(*db_, e, "wf", "manual", "tester"), ApiError) << "one at a time";
  EXPECT_FALSE(current_calibration(*db_, "wf"));
  json::object status = calibration_status(*db_, "wf", wf_.policy);
  EXPECT_TRUE(status.at("current").is_null());
  EXPECT_EQ(status.at("running").at("id").as_int64(), c.id);
  run_job("w1", 1.0, 4);
  run_job("w1", 1.0, 5);
  auto verdict = analyse_workflow(*db_, c.experiment_id, "wf");
  ASSERT_TRUE(verdict);
  auto current = current_calibration(*db_, "wf");
  ASSERT_TRUE(current);
  EXPECT_EQ(current->id, c.id);
  EXPECT_GT(current->sigma_aa_pct, 0.0);
  EXPECT_GE(current->threshold_pct, wf_.policy.detection_floor_pct);
  status = calibration_status(*db_, "wf", wf_.policy);
  EXPECT_FALSE(status.at("stale").as_bool()) << status;
  EXPECT_TRUE(status.at("current").at("result").as_object().contains("roc"));
  // A later submission freezes that calibration into its design.
  json::object design = design_snapshot(wf_, current, std::nullopt, std::nullopt);
  EXPECT_EQ(design.at("calibration").at("id").as_int64(), c.id);
  // Stale by count: the workflow allows 500 experiments by default; allow 1 and add one.
  WorkflowPolicy strict = wf_.policy;
  strict.recalibrate_after_experiments = 1;
  auto later = experiment();
  later.jobs.push_back(block_job());
  insert_experiment(*db_, later);
  status = calibration_status(*db_, "wf", strict);
  EXPECT_TRUE(status.at("stale").as_bool());
  EXPECT_NE(status.at("stale_reason").as_string().find("experiments since"), std::string::npos);
  std::map<std::string, WorkflowConfig> workflows{{"wf", wf_}};
  workflows["wf"].policy = strict;
  EXPECT_EQ(stale_calibrations(*db_, workflows), std::vector<std::string>{"wf"});
}

}  // namespace
}  // namespace ttfb
