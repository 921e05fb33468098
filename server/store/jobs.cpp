#include "server/store/jobs.hpp"

#include "common/errors.hpp"
#include "common/text.hpp"

#include <openssl/rand.h>

#include <spdlog/spdlog.h>

#include <cmath>
#include <set>

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr const char* kUpsertWorker = R"sql(
INSERT INTO workers (name, host, cpu_model, kernel, cores, version, first_seen, last_seen)
VALUES ($1, $2, $3, $4, $5, $6, now(), now())
ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, cpu_model = EXCLUDED.cpu_model,
  kernel = EXCLUDED.kernel, cores = EXCLUDED.cores, version = EXCLUDED.version, last_seen = now())sql";

// The oldest queued job of the highest priority that this worker may take: a job asks to avoid
// the workers in avoid_workers (a confirmation rerun avoids those that measured the original) as
// long as another live worker could take it, and, once it has waited longer than $4 seconds, as
// long as such a worker is getting on with the experiment (runs one of its jobs, or finished one
// within $4 seconds). A rerun of many jobs is worked through by the other worker, however long
// its queue; only a rerun that nobody else is taking falls back to the avoided worker.
constexpr const char* kClaimJob = R"sql(
WITH next AS (
  SELECT j.id FROM jobs j
  WHERE j.state = 'queued'
    AND (NOT ($1 = ANY (j.avoid_workers))
         OR (j.created_at < now() - make_interval(secs => $4)
             AND NOT EXISTS (SELECT 1 FROM jobs k
                             WHERE k.experiment_id = j.experiment_id AND k.last_worker IS NOT NULL
                               AND k.last_worker <> $1 AND NOT (k.last_worker = ANY (j.avoid_workers))
                               AND (k.state = 'running' OR k.finished_at > now() - make_interval(secs => $4))))
         OR NOT EXISTS (SELECT 1 FROM workers w WHERE w.name <> $1 AND NOT (w.name = ANY (j.avoid_workers))
                        AND w.last_seen > now() - make_interval(secs => $3)))
  ORDER BY j.priority DESC, j.id
  LIMIT 1
  FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET state = 'running', attempt = jobs.attempt + 1, lease_owner = $1, last_worker = $1, lease_id = $5,
  lease_expires_at = now() + make_interval(secs => $2), started_at = coalesce(jobs.started_at, now()),
  runs_done = 0
FROM next WHERE jobs.id = next.id
RETURNING jobs.id, jobs.experiment_id, jobs.attempt, jobs.payload::text)sql";

constexpr const char* kMarkExperimentRunning = R"sql(
UPDATE experiments SET status = 'running', started_at = coalesce(started_at, now())
WHERE id = $1 AND status = 'queued')sql";

// Every write names the lease it holds: owner, id and attempt must all be the job's current ones.
constexpr const char* kHeartbeat = R"sql(
UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $5), runs_done = greatest(runs_done, $6)
WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND lease_id = $3 AND attempt = $4)sql";

constexpr const char* kSelectLeasedJob = R"sql(
SELECT experiment_id, workflow, attempt, payload::text FROM jobs
WHERE id = $1 AND state = 'running' AND lease_owner = $2 AND lease_id = $3 AND attempt = $4 FOR UPDATE)sql";

constexpr const char* kSelectWorkerHost = R"sql(
SELECT json_build_object('host', host, 'cpu_model', cpu_model, 'kernel', kernel, 'cores', cores)::text
FROM workers WHERE name = $1)sql";

constexpr const char* kInsertSample = R"sql(
INSERT INTO samples (job_id, experiment_id, workflow, run_index, arm, warmup, ttfb_ms, phases, cpu_ms,
  max_rss_kb, wall_ms, exit_status, signal, worker, host, attempt, cpu_to_first_batch_ms, steal_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, $18)
ON CONFLICT (job_id, run_index) DO NOTHING)sql";

// A workflow's footprint from its first measured baseline run of a job on a plain commit.
constexpr const char* kUpsertFootprint = R"sql(
INSERT INTO workflow_footprints (workflow, base_commit, files, job_id, recorded_at)
VALUES ($1, $2, ARRAY(SELECT jsonb_array_elements_text($3::jsonb)), $4, now())
ON CONFLICT (workflow) DO UPDATE SET base_commit = EXCLUDED.base_commit, files = EXCLUDED.files,
  job_id = EXCLUDED.job_id, recorded_at = EXCLUDED.recorded_at)sql";

constexpr const char* kCountMeasuredSamples = R"sql(
SELECT count(*) FROM samples WHERE job_id = $1 AND NOT warmup)sql";

constexpr const char* kCompleteJob = R"sql(
UPDATE jobs SET state = 'done', lease_owner = NULL, lease_id = NULL, lease_expires_at = NULL, finished_at = now()
WHERE id = $1
RETURNING extract(epoch FROM finished_at - started_at)::float8)sql";

constexpr const char* kRequeueJob = R"sql(
UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_id = NULL, lease_expires_at = NULL,
  history = history || $2::jsonb
WHERE id = $1)sql";

constexpr const char* kFailJob = R"sql(
UPDATE jobs SET state = 'failed', lease_owner = NULL, lease_id = NULL, lease_expires_at = NULL, finished_at = now(),
  error = $2::jsonb, history = history || jsonb_build_array($2::jsonb)
WHERE id = $1)sql";

constexpr const char* kSelectJobAttempts = "SELECT attempt, max_attempts FROM jobs WHERE id = $1";

constexpr const char* kDeleteJobSamples = "DELETE FROM samples WHERE job_id = $1";

constexpr const char* kSelectExpiredJobs = R"sql(
SELECT id, lease_owner, attempt, max_attempts FROM jobs
WHERE state = 'running' AND lease_expires_at < now()
ORDER BY id FOR UPDATE SKIP LOCKED)sql";

constexpr const char* kJobExists = "SELECT state, lease_owner, attempt FROM jobs WHERE id = $1";

// Why a write with `lease` is refused, in words that never reveal the current lease id.
[[noreturn]] void lease_lost(pqxx::work& tx, long job_id, const Lease& lease) {
  auto r = tx.exec_params(kJobExists, job_id);
  if (r.empty()) throw ApiError(ErrorCode::not_found, "job " + std::to_string(job_id) + " does not exist");
  const std::string state = r[0][0].as<std::string>();
  const std::string owner = r[0][1].is_null() ? "" : r[0][1].as<std::string>();
  const int attempt = r[0][2].as<int>();
  std::string why;
  if (state != "running") why = "the job is " + state;
  else if (owner != lease.worker) why = "its lease is held by another worker";
  else if (attempt != lease.attempt) why = "it is on attempt " + std::to_string(attempt) + ", not " + std::to_string(lease.attempt);
  else why = "the lease id does not match (another process claimed it under this name)";
  throw ApiError(ErrorCode::conflict, "worker '" + lease.worker + "' does not hold the lease of job " +
                                          std::to_string(job_id) + ": " + why + "; drop it and claim again");
}

// 128 random bits, hex: a lease id nobody can guess from the outside.
std::string new_lease_id() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no randomness for a lease id");
  return to_hex(raw, sizeof raw);
}

const json::value* find(const json::object& o, const char* key) { return o.if_contains(key); }

double number_of(const json::value& v) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  throw ApiError(ErrorCode::invalid_argument, "expected a number, got " + json::serialize(v));
}

}  // namespace

json::object WorkerFacts::to_json() const {
  return json::object{{"name", name}, {"host", host}, {"cpu_model", cpu_model},
                      {"kernel", kernel}, {"cores", cores}, {"version", version}};
}

void touch_worker(pqxx::work& tx, const WorkerFacts& w) {
  tx.exec_params(kUpsertWorker, w.name, w.host, w.cpu_model, w.kernel, w.cores, w.version);
}

std::optional<json::object> claim_job(Database& db, const WorkerFacts& worker, int lease_seconds, int alive_seconds,
                                      int avoid_grace_seconds) {
  return db.transact([&](pqxx::work& tx) -> std::optional<json::object> {
    touch_worker(tx, worker);
    const std::string lease_id = new_lease_id();
    auto r = tx.exec_params(kClaimJob, worker.name, lease_seconds, alive_seconds, avoid_grace_seconds, lease_id);
    if (r.empty()) return std::nullopt;
    long id = r[0][0].as<long>();
    long experiment_id = r[0][1].as<long>();
    tx.exec_params(kMarkExperimentRunning, experiment_id);
    json::object job = json::parse(r[0][3].as<std::string>()).as_object();
    job["id"] = id;
    job["experiment_id"] = experiment_id;
    job["attempt"] = r[0][2].as<int>();
    job["lease_id"] = lease_id;
    job["lease_seconds"] = lease_seconds;
    spdlog::info("job {} (experiment {}) leased to {} (attempt {})", id, experiment_id, worker.name, r[0][2].as<int>());
    return job;
  });
}

void heartbeat_job(Database& db, long job_id, const Lease& lease, int lease_seconds, int runs_done) {
  db.transact([&](pqxx::work& tx) {
    auto r = tx.exec_params(kHeartbeat, job_id, lease.worker, lease.lease_id, lease.attempt, lease_seconds, runs_done);
    if (r.affected_rows() == 0) lease_lost(tx, job_id, lease);
    tx.exec_params("UPDATE workers SET last_seen = now() WHERE name = $1", lease.worker);
  });
}

namespace {

constexpr std::size_t kMaxFootprintFiles = 20000;

// A sample's "footprint" (worker/footprint.hpp) checked: at most kMaxFootprintFiles paths, each a
// relative path inside the repository (no '.' or '..' part, no NUL), at most 4096 bytes.
json::array footprint_of(const json::value& v) {
  if (!v.is_array()) throw ApiError(ErrorCode::invalid_argument, "sample.footprint must be an array of relative paths");
  const auto& a = v.as_array();
  if (a.size() > kMaxFootprintFiles)
    throw ApiError(ErrorCode::invalid_argument, "sample.footprint lists more than " + std::to_string(kMaxFootprintFiles) + " files");
  for (const auto& f : a) {
    if (!f.is_string() || f.as_string().empty() || f.as_string().size() > 4096)
      throw ApiError(ErrorCode::invalid_argument, "sample.footprint must hold paths of 1 to 4096 bytes");
    const std::string_view p = f.as_string();
    const bool plain = is_plain_relative_path(p);
    if (!plain) throw ApiError(ErrorCode::invalid_argument, "sample.footprint holds a path that is not a plain relative one");
  }
  return a;
}

}  // namespace

SampleCounts add_samples(Database& db, long job_id, const Lease& lease, const json::array& samples) {
  const std::string& worker = lease.worker;
  return db.transact([&](pqxx::work& tx) {
    auto r = tx.exec_params(kSelectLeasedJob, job_id, lease.worker, lease.lease_id, lease.attempt);
    if (r.empty()) lease_lost(tx, job_id, lease);
    long experiment_id = r[0][0].as<long>();
    std::string workflow = r[0][1].as<std::string>();
    int attempt = r[0][2].as<int>();
    json::object payload = json::parse(r[0][3].as<std::string>()).as_object();
    const json::array& schedule = payload.at("schedule").as_array();
    auto host_row = tx.exec_params(kSelectWorkerHost, worker);
    std::string host = host_row.empty() ? "{}" : host_row[0][0].as<std::string>();

    SampleCounts counts;
    for (const auto& v : samples) {
      if (!v.is_object()) throw ApiError(ErrorCode::invalid_argument, "each sample must be a JSON object");
      const auto& s = v.as_object();
      const auto* idx = find(s, "run_index");
      if (!idx || !idx->is_int64()) throw ApiError(ErrorCode::invalid_argument, "sample.run_index must be an integer");
      long run_index = idx->as_int64();
      if (run_index < 0 || run_index >= static_cast<long>(schedule.size()))
        throw ApiError(ErrorCode::invalid_argument, "sample.run_index " + std::to_string(run_index) + " is not in the job's schedule (0.." + std::to_string(schedule.size() - 1) + ")");
      const auto& planned = schedule[run_index].as_object();
      std::string arm = planned.at("arm").as_string().c_str();
      bool warmup = planned.at("warmup").as_bool();
      if (const auto* a = find(s, "arm"); a && (!a->is_string() || a->as_string() != arm))
        throw ApiError(ErrorCode::invalid_argument, "sample " + std::to_string(run_index) + " claims another arm than the schedule's '" + arm + "'");
      const auto* ttfb = find(s, "ttfb_ms");
      if (!ttfb) throw ApiError(ErrorCode::invalid_argument, "sample.ttfb_ms is required");
      double ttfb_ms = number_of(*ttfb);
      if (!(ttfb_ms > 0) || !std::isfinite(ttfb_ms))
        throw ApiError(ErrorCode::invalid_argument, "sample.ttfb_ms must be a positive number");
      auto opt_num = [&](const char* key) -> std::optional<double> {
        const auto* x = find(s, key);
        if (!x || x->is_null()) return std::nullopt;
        return number_of(*x);
      };
      auto opt_int = [&](const char* key) -> std::optional<long> {
        auto d = opt_num(key);
        if (!d) return std::nullopt;
        // Casting a double outside long's range is undefined: the field must be a plausible integer.
        if (!std::isfinite(*d) || *d < -2147483648.0 || *d > 2147483647.0)
          throw ApiError(ErrorCode::invalid_argument, std::string("sample.") + key + " is out of range");
        return static_cast<long>(*d);
      };
      // Times the server computes with: finite and not negative, or absent.
      auto opt_time = [&](const char* key) -> std::optional<double> {
        auto d = opt_num(key);
        if (d && (!std::isfinite(*d) || *d < 0))
          throw ApiError(ErrorCode::invalid_argument, std::string("sample.") + key + " must be a number >= 0 (milliseconds)");
        return d;
      };
      std::string phases = "[]";
      if (const auto* p = find(s, "phases"); p && p->is_array()) phases = json::serialize(*p);
      auto ins = tx.exec_params(kInsertSample, job_id, experiment_id, workflow, run_index, arm, warmup, ttfb_ms,
                                phases, opt_num("cpu_ms"), opt_int("max_rss_kb"), opt_num("wall_ms"),
                                opt_int("exit_status"), opt_int("signal"), worker, host, attempt,
                                opt_time("cpu_to_first_batch_ms"), opt_time("steal_ms"));
      if (ins.affected_rows() == 1) {
        ++counts.accepted;
      } else {
        ++counts.duplicates;
      }
      // The workflow's footprint, from a baseline that is a plain commit (no diff), and not a
      // bisection's probe of some older commit: what the workflow's start-up loads today.
      if (const auto* f = find(s, "footprint"); f && !f->is_null()) {
        const json::array files = footprint_of(*f);
        const json::value* base = payload.contains("arms") ? payload.at("arms").as_object().if_contains("baseline") : nullptr;
        const json::value* commit = base && base->is_object() ? base->as_object().if_contains("commit") : nullptr;
        const json::value* diff = base && base->is_object() ? base->as_object().if_contains("diff") : nullptr;
        const bool plain = commit && commit->is_string() && (!diff || (diff->is_string() && diff->as_string().empty()));
        if (arm == "baseline" && !warmup && plain && ins.affected_rows() == 1 &&
            tx.exec_params1("SELECT stage FROM jobs WHERE id = $1", job_id)[0].as<std::string>() != "probe")
          tx.exec_params(kUpsertFootprint, workflow, std::string(commit->as_string()), json::serialize(files), job_id);
      }
    }
    tx.exec_params("UPDATE jobs SET runs_done = (SELECT count(*) FROM samples WHERE job_id = $1) WHERE id = $1", job_id);
    return counts;
  });
}

double complete_job(Database& db, long job_id, const Lease& lease) {
  return db.transact([&](pqxx::work& tx) {
    auto r = tx.exec_params(kSelectLeasedJob, job_id, lease.worker, lease.lease_id, lease.attempt);
    if (r.empty()) lease_lost(tx, job_id, lease);
    json::object payload = json::parse(r[0][3].as<std::string>()).as_object();
    long measured = 0;
    for (const auto& run : payload.at("schedule").as_array())
      if (!run.as_object().at("warmup").as_bool()) ++measured;
    long have = tx.exec_params1(kCountMeasuredSamples, job_id)[0].as<long>();
    if (have < measured)
      throw ApiError(ErrorCode::invalid_argument, "job " + std::to_string(job_id) + " has " + std::to_string(have) + " of " +
                                                      std::to_string(measured) + " measured samples; report them before completing");
    return tx.exec_params1(kCompleteJob, job_id)[0].as<double>(0.0);
  });
}

void fail_job(Database& db, long job_id, const Lease& lease, const json::object& error, bool retryable) {
  const std::string& worker = lease.worker;
  db.transact([&](pqxx::work& tx) {
    auto r = tx.exec_params(kSelectLeasedJob, job_id, lease.worker, lease.lease_id, lease.attempt);
    if (r.empty()) lease_lost(tx, job_id, lease);
    json::object e = error;
    e["worker"] = worker;
    auto att = tx.exec_params1(kSelectJobAttempts, job_id);
    bool attempts_left = att[0].as<int>() < att[1].as<int>();
    if (retryable && attempts_left) {
      tx.exec_params(kDeleteJobSamples, job_id);
      e["requeued"] = true;
      tx.exec_params(kRequeueJob, job_id, json::serialize(json::array{e}));
      spdlog::warn("job {} requeued after a retryable failure on {}: {}", job_id, worker, json::serialize(error));
    } else {
      tx.exec_params(kFailJob, job_id, json::serialize(e));
      spdlog::warn("job {} failed on {}: {}", job_id, worker, json::serialize(error));
    }
  });
}

int requeue_expired_jobs(Database& db) {
  return db.transact([&](pqxx::work& tx) {
    int n = 0;
    for (const auto& row : tx.exec(kSelectExpiredJobs)) {
      long id = row[0].as<long>();
      std::string owner = row[1].as<std::string>();
      int attempt = row[2].as<int>();
      int max_attempts = row[3].as<int>();
      auto discarded = tx.exec_params(kDeleteJobSamples, id).affected_rows();
      json::object note{{"event", "lease_expired"}, {"worker", owner}, {"attempt", attempt},
                        {"discarded_samples", static_cast<long>(discarded)}};
      if (attempt >= max_attempts) {
        json::object err{{"code", "lease_expired"},
                         {"message", "the job's worker stopped answering on each of its " + std::to_string(max_attempts) +
                                         " attempts (last: " + owner + ")"}};
        tx.exec_params(kFailJob, id, json::serialize(err));
        spdlog::warn("job {}: lease of {} expired, no attempts left: failed", id, owner);
      } else {
        tx.exec_params(kRequeueJob, id, json::serialize(json::array{note}));
        spdlog::warn("job {}: lease of {} expired: requeued ({} partial samples discarded)", id, owner, discarded);
      }
      ++n;
    }
    return n;
  });
}

}  // namespace ttfb
