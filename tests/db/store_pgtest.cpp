// Database tests against a real PostgreSQL: migrations, the job queue under concurrent claimers,
// lease expiry, idempotent samples, tokens. Each test gets a throwaway database created through
// TTFB_LAB_TEST_PG_ADMIN_DSN (./lab test sets it); without it they fail loudly, never skip.
#include "common/errors.hpp"
#include "server/scheduler/plan.hpp"
#include "server/store/dashboard.hpp"
#include "server/store/db.hpp"
#include "server/store/experiments.hpp"
#include "server/store/footprints.hpp"
#include "server/store/jobs.hpp"
#include "server/store/tokens.hpp"
#include "throwaway_db.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <functional>
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
    e.submitted_by = "tester";
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

  // The lease a claim handed out, as `who` presents it.
  static Lease lease_of(const json::object& job, const std::string& who) {
    return Lease{who, std::string(job.at("lease_id").as_string()), static_cast<int>(job.at("attempt").as_int64())};
  }

  // The write is refused with conflict, in words that do not give the real lease id away.
  static void expect_conflict(const std::function<void()>& write, const char* what, const std::string& secret) {
    try {
      write();
      ADD_FAILURE() << what << ": accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), ErrorCode::conflict) << what << ": " << e.what();
      EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << what << ": the message reveals the lease id";
    }
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
  EXPECT_EQ(add_samples(*db_, id, lease_of(*job, "dying"), samples).accepted, 1);
  EXPECT_EQ(requeue_expired_jobs(*db_), 0) << "the lease has not expired yet";
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  EXPECT_EQ(requeue_expired_jobs(*db_), 1);

  // The dead worker's late calls are refused; another worker gets the job, attempt 2.
  try {
    heartbeat_job(*db_, id, lease_of(*job, "dying"), 30, 1);
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
  EXPECT_EQ(add_samples(*db_, id, lease_of(*job, "w1"), first_half).accepted, 3);
  EXPECT_THROW(complete_job(*db_, id, lease_of(*job, "w1")), ApiError) << "completion with missing samples must be refused";
  auto counts = add_samples(*db_, id, lease_of(*job, "w1"), all);  // a retried report of everything
  EXPECT_EQ(counts.accepted, static_cast<int>(all.size()) - 3);
  EXPECT_EQ(counts.duplicates, 3);
  complete_job(*db_, id, lease_of(*job, "w1"));
  EXPECT_EQ(get_samples(*db_, job->at("experiment_id").as_int64()).size(), all.size());
}

TEST_F(StoreTest, TheQueueNamesTheWorkerOfRunningFinishedAndFailedJobs) {
  make_experiment(3, 1);
  auto run_all = [&](const json::object& job, const std::string& who) {
    json::array all;
    for (const auto& run : job.at("schedule").as_array())
      all.push_back(json::object{{"run_index", run.at("run_index")}, {"arm", run.at("arm")}, {"ttfb_ms", 100.0}});
    add_samples(*db_, job.at("id").as_int64(), lease_of(job, who), all);
  };
  auto done = claim_job(*db_, worker("w-done"), 30);
  run_all(*done, "w-done");
  complete_job(*db_, done->at("id").as_int64(), lease_of(*done, "w-done"));
  auto failed = claim_job(*db_, worker("w-failed"), 30);
  fail_job(*db_, failed->at("id").as_int64(), lease_of(*failed, "w-failed"), json::object{{"code", "crash"}, {"message", "boom"}}, false);
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
      add_samples(*db_, id, lease_of(*job, "w1"), json::array{std::move(s)});
      ADD_FAILURE() << "accepted an invalid sample";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.code(), ErrorCode::invalid_argument) << e.what();
    }
  };
  expect_invalid({{"run_index", 99}, {"ttfb_ms", 1.0}});
  expect_invalid({{"run_index", 2}, {"ttfb_ms", -1.0}});
  expect_invalid({{"run_index", 2}, {"arm", "candidate"}, {"ttfb_ms", 1.0}});  // run 2 is baseline
  expect_invalid({{"run_index", 2}, {"ttfb_ms", 1.0}, {"max_rss_kb", 1e300}});    // no undefined cast to long
  expect_invalid({{"run_index", 2}, {"ttfb_ms", 1.0}, {"exit_status", -1e12}});
  expect_invalid({{"run_index", 2}, {"ttfb_ms", 1.0}, {"cpu_to_first_batch_ms", -5.0}});  // the verdict computes with it
  expect_invalid({{"run_index", 2}, {"ttfb_ms", 1.0}, {"steal_ms", -0.1}});
  // Given, they are stored and shown with the sample; absent, they are null.
  json::array ok{json::object{{"run_index", 2}, {"ttfb_ms", 100.0}, {"cpu_to_first_batch_ms", 80.5}, {"steal_ms", 0.0}}};
  ASSERT_EQ(add_samples(*db_, id, lease_of(*job, "w1"), ok).accepted, 1);
  const auto [cpu, steal] = db_->transact([&](pqxx::work& tx) {
    auto row = tx.exec_params1("SELECT cpu_to_first_batch_ms, steal_ms FROM samples WHERE job_id = $1", id);
    return std::pair{row[0].as<double>(), row[1].as<double>()};
  });
  EXPECT_DOUBLE_EQ(cpu, 80.5);
  EXPECT_DOUBLE_EQ(steal, 0.0);
  try {
    add_samples(*db_, id, lease_of(*job, "intruder"), json::array{json::object{{"run_index", 2}, {"ttfb_ms", 1.0}}});
    ADD_FAILURE() << "a worker without the lease must not report";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), ErrorCode::conflict);
  }
}

TEST_F(StoreTest, TheBaselinesFootprintOfAPlainCommitBecomesTheWorkflows) {
  NewExperiment e;
  e.repo = "example";
  e.base_ref = "main";
  e.base_commit = e.candidate_commit = std::string(40, 'b');
  e.submitted_by = "tester";
  e.max_attempts = 2;
  NewJob j;
  j.workflow = "wf";
  json::array schedule = interleaved_schedule(1, 2);  // a b | A B B A
  j.runs_total = static_cast<int>(schedule.size());
  j.payload = json::object{{"schedule", std::move(schedule)},
                           {"arms", json::object{{"baseline", json::object{{"commit", e.base_commit}, {"diff", ""}}},
                                                 {"candidate", json::object{{"commit", e.base_commit}, {"diff", "d"}}}}}};
  e.jobs.push_back(std::move(j));
  insert_experiment(*db_, e);
  auto job = claim_job(*db_, worker("w1"), 30);
  const long id = job->at("id").as_int64();
  const Lease lease = lease_of(*job, "w1");
  auto sample = [](int run, json::array files) {
    return json::object{{"run_index", run}, {"ttfb_ms", 100.0}, {"footprint", std::move(files)}};
  };
  for (const json::array& bad : {json::array{"/etc/passwd"}, json::array{"a/../../b"}, json::array{"a//b"},
                                 json::array{""}, json::array{1}, json::array{std::string("a\0b", 3)}}) {
    try {
      add_samples(*db_, id, lease, json::array{sample(2, bad)});
      ADD_FAILURE() << "accepted footprint " << json::serialize(bad);
    } catch (const ApiError& err) {
      EXPECT_EQ(err.code(), ErrorCode::invalid_argument) << err.what();
    }
  }
  auto stored = [&] { return workflow_footprint(*db_, "wf"); };
  // A warm-up's and the candidate's (it has a diff) are not the workflow's.
  add_samples(*db_, id, lease, json::array{sample(0, json::array{"warm.py"}), sample(3, json::array{"cand.py"})});
  EXPECT_TRUE(stored().is_null());
  add_samples(*db_, id, lease, json::array{sample(2, json::array{"pkg/mod.py", "train.py"})});
  const json::value fp = stored();
  ASSERT_TRUE(fp.is_object());
  EXPECT_EQ(fp.at("base_commit").as_string(), e.base_commit);
  EXPECT_EQ(fp.at("files"), (json::array{"pkg/mod.py", "train.py"}));
  EXPECT_EQ(fp.at("file_count").as_int64(), 2);
  EXPECT_EQ(fp.at("job_id").as_int64(), id);
  // The selection's one query: the named workflows' files, none for a workflow without a footprint.
  const auto files = footprint_files(*db_, {"wf", "no-footprint-yet", "it's \"quoted\""});
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files.at("wf"), (std::vector<std::string>{"pkg/mod.py", "train.py"}));
  EXPECT_TRUE(footprint_files(*db_, {}).empty());
}

TEST_F(StoreTest, OnlyTheClaimsLeaseMayWriteToAJob) {
  make_experiment(1, 2);
  auto job = claim_job(*db_, worker("w1"), 1);
  ASSERT_TRUE(job);
  const long id = job->at("id").as_int64();
  const Lease mine = lease_of(*job, "w1");
  ASSERT_EQ(mine.lease_id.size(), 32u) << "128 random bits, hex";
  json::array one{json::object{{"run_index", 2}, {"ttfb_ms", 100.0}}};

  // A second process under the same name (it knows the name and the attempt, not the id).
  Lease twin = mine;
  twin.lease_id = std::string(32, '0');
  expect_conflict([&] { heartbeat_job(*db_, id, twin, 30, 1); }, "heartbeat with a guessed id", mine.lease_id);
  expect_conflict([&] { add_samples(*db_, id, twin, one); }, "samples with a guessed id", mine.lease_id);
  expect_conflict([&] { complete_job(*db_, id, twin); }, "complete with a guessed id", mine.lease_id);
  expect_conflict([&] { fail_job(*db_, id, twin, json::object{{"code", "x"}}, true); }, "fail with a guessed id", mine.lease_id);
  // Another worker that read the job's id and attempt from GET /api/v1/jobs.
  expect_conflict([&] { add_samples(*db_, id, Lease{"w2", mine.lease_id, mine.attempt}, one); }, "another worker", mine.lease_id);
  long stored = db_->transact([&](pqxx::work& tx) {
    return tx.exec_params1("SELECT count(*) FROM samples WHERE job_id = $1", id)[0].as<long>();
  });
  EXPECT_EQ(stored, 0) << "refused writes must store nothing";

  // The lease expires and the same worker name claims attempt 2: the old lease is dead.
  std::this_thread::sleep_for(std::chrono::milliseconds(1300));
  ASSERT_EQ(requeue_expired_jobs(*db_), 1);
  auto again = claim_job(*db_, worker("w1"), 30);
  ASSERT_TRUE(again);
  const Lease now = lease_of(*again, "w1");
  EXPECT_EQ(now.attempt, 2);
  EXPECT_NE(now.lease_id, mine.lease_id) << "each claim gets a new id";
  expect_conflict([&] { add_samples(*db_, id, mine, one); }, "the first attempt's lease after a requeue", now.lease_id);
  EXPECT_EQ(add_samples(*db_, id, now, one).accepted, 1) << "the current lease writes";
  heartbeat_job(*db_, id, now, 30, 1);

  // Nothing that reads the queue shows the id.
  const std::string queue = json::serialize(list_jobs(*db_, std::nullopt, 10));
  EXPECT_EQ(queue.find(now.lease_id), std::string::npos) << "GET /api/v1/jobs must not reveal lease ids";
}

TEST_F(StoreTest, OnlyTheSubmitterOrAnAdminCancels) {
  long exp = make_experiment(1);
  try {
    cancel_experiment(*db_, exp, "http://x", "someone-else", false);
    ADD_FAILURE() << "another submit token cancelled the experiment";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.code(), ErrorCode::permission_denied) << e.what();
  }
  EXPECT_EQ(get_experiment(*db_, exp, "http://x").at("status").as_string(), "queued") << "nothing was cancelled";
  EXPECT_EQ(cancel_experiment(*db_, exp, "http://x", "an-admin", true).at("status").as_string(), "cancelled");
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
  auto e = cancel_experiment(*db_, exp, "http://x", "tester", false);
  EXPECT_EQ(e.at("status").as_string(), "cancelled");
  EXPECT_FALSE(claim_job(*db_, worker("w1"), 30));
  EXPECT_THROW(cancel_experiment(*db_, exp, "http://x", "tester", false), ApiError);
}

}  // namespace
}  // namespace ttfb
