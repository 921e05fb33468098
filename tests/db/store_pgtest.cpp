// Database tests against a real PostgreSQL: migrations, the job queue under concurrent claimers,
// lease expiry, idempotent samples, tokens. Each test gets a throwaway database created through
// TTFB_LAB_TEST_PG_ADMIN_DSN (./lab test sets it); without it they fail loudly, never skip.
#include "common/errors.hpp"
#include "server/scheduler/plan.hpp"
#include "server/store/dashboard.hpp"
#include "server/store/db.hpp"
#include "server/store/experiments.hpp"
#include "server/store/jobs.hpp"
#include "server/store/tokens.hpp"
#include "throwaway_db.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace ttfb {
namespace {
namespace json = boost::json;

// A fresh database per test (throwaway_db.hpp), dropped afterwards.
class StoreTest : public testing::ThrowawayDatabaseTest {
 protected:
  long make_experiment(int jobs, int runs_per_arm = 2) {
    NewExperiment e;
    e.repo = "example";
    e.base_ref = "main";
    e.base_commit = std::string(40, 'a');
    e.candidate_commit = std::string(40, 'a');
    e.diff = "diff";
    e.max_attempts = 2;
    for (int i = 0; i < jobs; ++i) {
      NewJob j;
      j.workflow = "wf" + std::to_string(i);
      j.workflow_config = json::object{{"policy", json::object{{"alpha", 0.01}}}};
      json::array schedule = interleaved_schedule(1, runs_per_arm);
      j.runs_total = static_cast<int>(schedule.size());
      j.payload = json::object{{"schedule", std::move(schedule)}};
      e.jobs.push_back(std::move(j));
    }
    return insert_experiment(*db_, e);
  }

  WorkerFacts worker(const std::string& name) {
    WorkerFacts w;
    w.name = name;
    w.host = "test-host";
    return w;
  }

};

TEST_F(StoreTest, MigrationsApplyOnceAndAreRecorded) {
  EXPECT_EQ(db_->migrate(TTFB_LAB_SCHEMA_DIR), 0) << "a second start must apply nothing";
  EXPECT_EQ(db_->applied_version(), Database::available_version(TTFB_LAB_SCHEMA_DIR));
  long n = db_->transact([](pqxx::work& tx) { return tx.exec1("SELECT count(*) FROM schema_migrations")[0].as<long>(); });
  EXPECT_EQ(n, Database::available_version(TTFB_LAB_SCHEMA_DIR));
}

TEST_F(StoreTest, TwoConcurrentClaimersNeverGetTheSameJob) {
  constexpr int kJobs = 60;
  make_experiment(kJobs);
  std::mutex mu;
  std::vector<long> claimed;
  auto claimer = [&](const std::string& name) {
    while (true) {
      auto job = claim_job(*db_, worker(name), 30);
      if (!job) return;
      std::lock_guard lock(mu);
      claimed.push_back(job->at("id").as_int64());
    }
  };
  std::thread a(claimer, "w-a"), b(claimer, "w-b");
  a.join();
  b.join();
  std::set<long> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(unique.size(), static_cast<std::size_t>(kJobs)) << "a job was handed to two workers";
}

TEST_F(StoreTest, ClaimReturnsTheJobAsWorkersReceiveIt) {
  long exp = make_experiment(1, 3);
  auto job = claim_job(*db_, worker("w1"), 30);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->at("experiment_id").as_int64(), exp);
  EXPECT_EQ(job->at("attempt").as_int64(), 1);
  EXPECT_EQ(job->at("schedule").as_array().size(), 8u);  // 2 warm-up + 2*3 measured
  EXPECT_FALSE(claim_job(*db_, worker("w2"), 30)) << "the only job is taken";
  auto e = get_experiment(*db_, exp, "http://x");
  EXPECT_EQ(e.at("status").as_string(), "running");
}

TEST_F(StoreTest, ExpiredLeaseIsRequeuedAndItsPartialSamplesDiscarded) {
  make_experiment(1, 2);
  auto job = claim_job(*db_, worker("dying"), 1);
  ASSERT_TRUE(job);
  long id = job->at("id").as_int64();
  json::array samples{json::object{{"run_index", 2}, {"arm", "baseline"}, {"ttfb_ms", 100.0}}};
  EXPECT_EQ(add_samples(*db_, id, "dying", samples).accepted, 1);
  EXPECT_EQ(requeue_expired_jobs(*db_), 0) << "the lease has not expired yet";
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(requeue_expired_jobs(*db_), 1);

  // The dead worker's late calls are refused; another worker gets the job, attempt 2.
  try {
    heartbeat_job(*db_, id, "dying", 30, 1);
    ADD_FAILURE() << "a heartbeat after the lease expired must be refused";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), ErrorCode::conflict);
  }
  auto again = claim_job(*db_, worker("healthy"), 30);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->at("id").as_int64(), id);
  EXPECT_EQ(again->at("attempt").as_int64(), 2);
  long left = db_->transact([&](pqxx::work& tx) {
    return tx.exec_params1("SELECT count(*) FROM samples WHERE job_id = $1", id)[0].as<long>();
  });
  EXPECT_EQ(left, 0);
}

TEST_F(StoreTest, LeaseExpiringOnTheLastAttemptFailsTheJob) {
  make_experiment(1, 2);  // max_attempts = 2
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto job = claim_job(*db_, worker("flaky"), 1);
    ASSERT_TRUE(job);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_EQ(requeue_expired_jobs(*db_), 1);
  }
  EXPECT_FALSE(claim_job(*db_, worker("flaky"), 1));
  std::string state = db_->transact([](pqxx::work& tx) { return tx.exec1("SELECT state FROM jobs")[0].as<std::string>(); });
  EXPECT_EQ(state, "failed");
}

TEST_F(StoreTest, ResentSamplesAreNotDuplicatedAndCompletionNeedsAllRuns) {
  make_experiment(1, 2);
  auto job = claim_job(*db_, worker("w1"), 30);
  long id = job->at("id").as_int64();
  const auto& schedule = job->at("schedule").as_array();
  json::array all;
  for (const auto& run : schedule) {
    const auto& r = run.as_object();
    all.push_back(json::object{{"run_index", r.at("run_index")}, {"arm", r.at("arm")}, {"ttfb_ms", 120.5},
                               {"phases", json::array{json::object{{"name", "imports"}, {"ms", 50.0}}}}});
  }
  json::array first_half(all.begin(), all.begin() + 3);
  EXPECT_EQ(add_samples(*db_, id, "w1", first_half).accepted, 3);
  EXPECT_THROW(complete_job(*db_, id, "w1"), ApiError) << "completion with missing samples must be refused";
  auto counts = add_samples(*db_, id, "w1", all);  // a retried report of everything
  EXPECT_EQ(counts.accepted, static_cast<int>(all.size()) - 3);
  EXPECT_EQ(counts.duplicates, 3);
  complete_job(*db_, id, "w1");
  EXPECT_EQ(get_samples(*db_, job->at("experiment_id").as_int64()).size(), all.size());
}

TEST_F(StoreTest, TheQueueNamesTheWorkerOfRunningFinishedAndFailedJobs) {
  make_experiment(3, 1);
  auto run_all = [&](const json::object& job, const std::string& who) {
    json::array all;
    for (const auto& run : job.at("schedule").as_array())
      all.push_back(json::object{{"run_index", run.at("run_index")}, {"arm", run.at("arm")}, {"ttfb_ms", 100.0}});
    add_samples(*db_, job.at("id").as_int64(), who, all);
  };
  auto done = claim_job(*db_, worker("w-done"), 30);
  run_all(*done, "w-done");
  complete_job(*db_, done->at("id").as_int64(), "w-done");
  auto failed = claim_job(*db_, worker("w-failed"), 30);
  fail_job(*db_, failed->at("id").as_int64(), "w-failed", json::object{{"code", "crash"}, {"message", "boom"}}, false);
  auto running = claim_job(*db_, worker("w-running"), 30);

  auto q = list_jobs(*db_, std::nullopt, 10);
  std::map<long, std::string> worker_of;
  for (const auto& j : q.at("jobs").as_array())
    worker_of[j.at("id").as_int64()] = j.at("worker").is_string() ? std::string(j.at("worker").as_string()) : "(none)";
  EXPECT_EQ(worker_of[done->at("id").as_int64()], "w-done") << "who ran a finished job stays known";
  EXPECT_EQ(worker_of[failed->at("id").as_int64()], "w-failed") << "and who held a failed one";
  EXPECT_EQ(worker_of[running->at("id").as_int64()], "w-running");
}

TEST_F(StoreTest, SamplesAreValidatedAgainstTheSchedule) {
  make_experiment(1, 2);
  auto job = claim_job(*db_, worker("w1"), 30);
  long id = job->at("id").as_int64();
  auto expect_invalid = [&](json::object s) {
    try {
      add_samples(*db_, id, "w1", json::array{std::move(s)});
      ADD_FAILURE() << "accepted an invalid sample";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    }
  };
  expect_invalid({{"run_index", 99}, {"ttfb_ms", 1.0}});
  expect_invalid({{"run_index", 2}, {"ttfb_ms", -1.0}});
  expect_invalid({{"run_index", 2}, {"arm", "candidate"}, {"ttfb_ms", 1.0}});  // run 2 is baseline
  try {
    add_samples(*db_, id, "intruder", json::array{json::object{{"run_index", 2}, {"ttfb_ms", 1.0}}});
    ADD_FAILURE() << "a worker without the lease must not report";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), ErrorCode::conflict);
  }
}

TEST_F(StoreTest, TokensAreStoredHashedWithScopes) {
  std::string secret = create_token(*db_, "ci", {"submit"});
  EXPECT_EQ(secret.rfind("ttfb_", 0), 0u);
  auto who = authenticate(*db_, secret);
  ASSERT_TRUE(who);
  EXPECT_EQ(who->name, "ci");
  EXPECT_TRUE(who->has_scope("submit"));
  EXPECT_FALSE(who->has_scope("worker"));
  long plain = db_->transact([&](pqxx::work& tx) {
    return tx.exec_params1("SELECT count(*) FROM tokens WHERE token_hash = $1", secret)[0].as<long>();
  });
  EXPECT_EQ(plain, 0) << "the secret itself must never be stored";
  EXPECT_FALSE(authenticate(*db_, secret + "x"));
  EXPECT_EQ(revoke_tokens(*db_, "ci"), 1);
  EXPECT_FALSE(authenticate(*db_, secret));
  EXPECT_THROW(create_token(*db_, "bad", {"root"}), ApiError);
}

TEST_F(StoreTest, CancelStopsQueuedJobsAndRefusesFinishedExperiments) {
  long exp = make_experiment(2);
  auto e = cancel_experiment(*db_, exp, "http://x");
  EXPECT_EQ(e.at("status").as_string(), "cancelled");
  EXPECT_FALSE(claim_job(*db_, worker("w1"), 30));
  EXPECT_THROW(cancel_experiment(*db_, exp, "http://x"), ApiError);
}

}  // namespace
}  // namespace ttfb
