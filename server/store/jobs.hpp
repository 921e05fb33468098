// The job queue in PostgreSQL: claim with FOR UPDATE SKIP LOCKED, leases extended by heartbeats,
// expired leases requeued, samples stored idempotently. Every function is one transaction.
//
//   auto job = ttfb::claim_job(db, worker, 30);          // nullopt: queue empty
//   ttfb::Lease lease{"w1", job->at("lease_id").as_string().c_str(), attempt};
//   ttfb::heartbeat_job(db, job_id, lease, 30, 4);        // throws conflict when the lease is lost
//   ttfb::add_samples(db, job_id, lease, samples_json);
//   ttfb::complete_job(db, job_id, lease);
//
// Leases are fenced: claim_job gives each claim a random lease id, and every write must present
// the worker (the token's name, never a name from the request body), that id and the attempt.
// Anything else — another worker, a second process under the same name, a stale worker whose
// lease expired and went to another attempt — is refused with conflict and writes nothing.
#pragma once

#include "server/store/db.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>

namespace ttfb {

struct WorkerFacts {
  std::string name, host, cpu_model, kernel, version;
  int cores = 0;
  boost::json::object to_json() const;
};

// Who may write to a running job: the lease a claim handed out.
struct Lease {
  std::string worker;    // the worker token's name
  std::string lease_id;  // the claim's random id (hex)
  int attempt = 0;       // the claim's attempt number
};

// Records the worker as seen now (insert or update).
void touch_worker(pqxx::work& tx, const WorkerFacts& w);

// Claims the oldest queued job of the highest priority, leased to the worker for lease_seconds.
// A job that lists the worker in avoid_workers is left to other workers seen within
// alive_seconds; after avoid_grace_seconds in the queue, only while one of them is getting on
// with the experiment (runs one of its jobs, or finished one within avoid_grace_seconds).
// Returns the job as workers receive it (docs/worker-protocol.md), with its `lease_id` and
// `attempt`, or nullopt when none is queued.
std::optional<boost::json::object> claim_job(Database& db, const WorkerFacts& worker, int lease_seconds,
                                             int alive_seconds = 60, int avoid_grace_seconds = 60);

// Extends the lease; throws ApiError(conflict) when `lease` is not the job's current one.
void heartbeat_job(Database& db, long job_id, const Lease& lease, int lease_seconds, int runs_done);

struct SampleCounts {
  int accepted = 0;
  int duplicates = 0;
};
// Stores samples (validated: run_index in the schedule, arm matching it, ttfb_ms > 0); a sample
// already stored for (job, run_index) is counted as a duplicate and left as it was.
SampleCounts add_samples(Database& db, long job_id, const Lease& lease, const boost::json::array& samples);

// Marks the job done; throws invalid_argument when measured runs of the schedule lack samples.
// Returns the seconds from the job's first claim to now (for ttfb_job_duration_seconds).
double complete_job(Database& db, long job_id, const Lease& lease);

// Records a failure. retryable and attempts left: back to the queue; otherwise the job fails.
void fail_job(Database& db, long job_id, const Lease& lease, const boost::json::object& error, bool retryable);

// Requeues running jobs whose lease expired (their partial samples are discarded: a job's runs
// must come from one worker's interleaved sequence), or fails them when attempts are spent.
// Returns the number of jobs requeued or failed.
int requeue_expired_jobs(Database& db);

}  // namespace ttfb
