#include "server/scheduler/bisections.hpp"

#include "common/errors.hpp"
#include "server/alerts/compose.hpp"
#include "server/alerts/outbox.hpp"
#include "server/bisect/replay.hpp"
#include "server/scheduler/broken_ends.hpp"
#include "server/scheduler/plan.hpp"
#include "server/scheduler/submit.hpp"
#include "server/store/calibrations.hpp"
#include "server/store/experiments.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr std::size_t kMaxRangeCommits = 10000;

constexpr const char* kLiveWorkers =
    "SELECT count(*) FROM workers WHERE last_seen > now() - make_interval(secs => $1)";

constexpr const char* kNow = "SELECT to_json(now())#>>'{}'";

constexpr const char* kInsertExperimentWorkflow = R"sql(
INSERT INTO experiment_workflows (experiment_id, workflow, config) VALUES ($1, $2, $3::jsonb))sql";

constexpr const char* kInsertBisection = R"sql(
INSERT INTO bisections (repo, workflow, good_ref, good_commit, bad_ref, bad_commit, release_id, experiment_id,
                        seed_experiment_id, commits, options, status, requested_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, 'verifying', $12) RETURNING id)sql";

// Active bisections whose round has finished: no probe queued or running, one not yet analysed.
constexpr const char* kReadyBisections = R"sql(
SELECT b.id FROM bisections b
WHERE b.status IN ('verifying', 'searching')
  AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = b.experiment_id AND j.state IN ('queued', 'running'))
  AND EXISTS (SELECT 1 FROM jobs j WHERE j.experiment_id = b.experiment_id AND NOT j.analysed)
ORDER BY b.id)sql";

constexpr const char* kLockBisection = R"sql(
SELECT repo, workflow, experiment_id, seed_experiment_id, commits::text, options::text, steps::text
FROM bisections WHERE id = $1 AND status IN ('verifying', 'searching') FOR UPDATE)sql";

constexpr const char* kJobsOf = "SELECT id, state, coalesce(error::text, 'null') FROM jobs WHERE experiment_id = $1 ORDER BY id";

constexpr const char* kProbeSamples = R"sql(
SELECT job_id, arm, ttfb_ms, phases::text FROM samples WHERE experiment_id = $1 AND NOT warmup ORDER BY job_id, run_index)sql";

// A release gate's measurement of the ends: baseline = good, candidate = bad.
constexpr const char* kSeedSamples = R"sql(
SELECT s.job_id, s.arm, s.ttfb_ms, s.phases::text FROM samples s JOIN jobs j ON j.id = s.job_id
WHERE s.experiment_id = $1 AND s.workflow = $2 AND NOT s.warmup AND j.state = 'done'
  AND j.stage IN ('block', 'confirmation')
ORDER BY s.job_id, s.run_index)sql";

constexpr const char* kMarkAnalysed = "UPDATE jobs SET analysed = true WHERE experiment_id = $1 AND NOT analysed";

constexpr const char* kSaveProgress = R"sql(
UPDATE bisections SET status = $2, steps = $3::jsonb, result = $4::jsonb, message = $5 WHERE id = $1)sql";

constexpr const char* kSaveFinal = R"sql(
UPDATE bisections SET status = $2, steps = $3::jsonb, result = $4::jsonb, message = $5, finished_at = now()
WHERE id = $1)sql";

constexpr const char* kFinishExperimentWorkflow = R"sql(
UPDATE experiment_workflows SET state = 'done', verdict = $3, result = $4::jsonb
WHERE experiment_id = $1 AND workflow = $2)sql";

constexpr const char* kFinishExperiment = R"sql(
UPDATE experiments SET status = $2, verdict = $3, finished_at = now(), error = $4::jsonb WHERE id = $1)sql";

constexpr const char* kSelectBisection = R"sql(
SELECT b.id, b.repo, b.workflow, b.good_ref, b.good_commit, b.bad_ref, b.bad_commit, r.name, b.status, b.message,
       coalesce(b.result::text, 'null'), b.steps::text, b.experiment_id, to_json(b.created_at)#>>'{}',
       coalesce(to_json(b.finished_at)#>>'{}', ''),
       extract(epoch FROM coalesce(b.finished_at, now()) - b.created_at),
       (SELECT count(*) FROM jobs j WHERE j.experiment_id = b.experiment_id), b.options::text,
       jsonb_array_length(b.commits), b.requested_by
FROM bisections b LEFT JOIN releases r ON r.id = b.release_id)sql";

int int_of(const json::object& o, const char* key) {
  const auto& v = o.at(key);
  if (v.is_int64()) return static_cast<int>(v.as_int64());
  if (v.is_uint64()) return static_cast<int>(v.as_uint64());
  return static_cast<int>(v.as_double());
}

double double_of(const json::object& o, const char* key) {
  const auto& v = o.at(key);
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  return static_cast<double>(v.as_uint64());
}

std::vector<git::CommitInfo> commits_from_json(const json::array& a) {
  std::vector<git::CommitInfo> out;
  for (const auto& v : a) {
    const auto& o = v.as_object();
    out.push_back(git::CommitInfo{std::string(o.at("sha").as_string()), std::string(o.at("subject").as_string()),
                                  std::string(o.at("author").as_string()), std::string(o.at("email").as_string()),
                                  std::string(o.at("date").as_string())});
  }
  return out;
}

json::array commits_to_json(const std::vector<git::CommitInfo>& commits) {
  json::array out;
  for (const auto& c : commits)
    out.push_back(json::object{{"sha", c.sha}, {"subject", c.subject}, {"author", c.author_name}, {"email", c.author_email},
                               {"date", c.date}});
  return out;
}

bisect::SearchOptions options_from_json(const json::object& o) {
  bisect::SearchOptions s;
  s.design = design_from_snapshot(o.at("design").as_object());
  s.parallel_probes = int_of(o, "parallel_probes");
  s.max_runs_per_commit = int_of(o, "max_runs_per_commit");
  // Bisections started before parts were decided side by side replay as they were planned.
  const auto* pp = o.if_contains("part_pairs");
  s.part_pairs = pp && pp->is_bool() && pp->as_bool();
  // ... and those started before the sandwich had its own level tested at the design's alpha.
  const auto* sa = o.if_contains("sandwich_alpha");
  s.sandwich_alpha = sa && sa->is_number() ? sa->to_number<double>() : s.design.alpha;
  return s;
}


std::vector<std::pair<std::string, double>> phases_of(const std::string& text) {
  std::vector<std::pair<std::string, double>> out;
  const json::value v = json::parse(text);
  if (!v.is_array()) return out;
  for (const auto& p : v.as_array()) {
    if (!p.is_object()) continue;
    const auto* name = p.as_object().if_contains("name");
    const auto* ms = p.as_object().if_contains("ms");
    if (!name || !name->is_string() || !ms || !ms->is_number()) continue;
    out.emplace_back(std::string(name->as_string()), ms->to_number<double>());
  }
  return out;
}

// What a failed probe job's jobs.error says: the arm that failed ("baseline", "candidate"), or
// "" when it names none (not an arm's failure, or recorded before workers said), and the words.
struct ProbeError {
  std::string arm;
  std::string text;
};

ProbeError probe_error(const std::string& error_json, const std::string& state) {
  const json::value v = json::parse(error_json);
  ProbeError e;
  if (v.is_object()) {
    const auto& o = v.as_object();
    if (const auto* arm = o.if_contains("arm"); arm && arm->is_string() &&
                                                (arm->as_string() == "baseline" || arm->as_string() == "candidate"))
      e.arm = std::string(arm->as_string());
    std::string code = o.contains("code") && o.at("code").is_string() ? std::string(o.at("code").as_string()) : "";
    std::string message = o.contains("message") && o.at("message").is_string() ? std::string(o.at("message").as_string()) : "";
    if (!code.empty() || !message.empty()) e.text = code + (code.empty() || message.empty() ? "" : ": ") + message;
  }
  if (e.text.empty()) e.text = "the probe job " + state;
  // Which arm, unless the worker's words already say (a run's failure names its run and arm).
  if (!e.arm.empty() && e.text.find(e.arm) == std::string::npos) e.text += " (the " + e.arm + " arm)";
  return e;
}

// The probe jobs of one round, inserted; returns the step recorded for it.
json::object plan_round(pqxx::work& tx, const ServerConfig& config, long experiment_id, const std::string& workflow,
                        const json::object& snapshot, const std::vector<git::CommitInfo>& commits,
                        const std::vector<bisect::Request>& requests, int round, int warmup, int max_attempts,
                        const std::string& now) {
  const WorkflowConfig& wf = config.workflows.at(workflow);
  const RepoConfig& repo = config.repos.at(wf.repo);
  // The dependencies resolved when the bisection started (in its options; none before they were).
  const ArmDependencies deps = arm_dependencies(config, snapshot);
  json::array reqs, jobs;
  for (const auto& r : requests) {
    json::object q{{"index", r.commit}, {"commit", commits.at(static_cast<std::size_t>(r.commit)).sha}, {"runs", r.runs}};
    if (r.beside >= 0) q["beside"] = r.beside;
    if (r.part) q["part"] = true;
    reqs.push_back(std::move(q));
  }
  for (const auto& p : bisect::plan_jobs(requests, bisect::Pairing::paired)) {
    const std::string& sha = commits.at(static_cast<std::size_t>(p.commit)).sha;
    NewJob job;
    job.workflow = workflow;
    job.workflow_config = snapshot;
    job.stage = "probe";
    job.block = round;
    job.priority = round;  // finish the bisection started before starting more
    if (p.beside >= 0) {
      // Baseline: the good end, as the reference each run of the commit is scaled by; for a
      // sandwich, the parent; for a part's ends side by side, the part's good end.
      job.payload = job_payload(repo, wf, commits.at(static_cast<std::size_t>(p.beside)).sha, sha, "", warmup, p.runs, {}, deps);
      job.runs_total = runs_total(warmup, p.runs);
    } else {
      job.payload = probe_payload(repo, wf, sha, warmup, p.runs, deps);
      job.runs_total = warmup + p.runs;
    }
    const long id = insert_job(tx, experiment_id, job, max_attempts);
    jobs.push_back(json::object{{"id", id}, {"index", p.commit}, {"runs", p.runs}, {"beside", p.beside}, {"sandwich", p.sandwich}, {"part", p.part}});
  }
  return json::object{{"round", round}, {"requests", std::move(reqs)}, {"jobs", std::move(jobs)},
                      {"state", "running"}, {"started_at", now}, {"finished_at", nullptr}};
}

// A release gate's jobs of the ends: baseline = good (the reference), candidate = bad.
bisect::Seed load_seed(pqxx::work& tx, long seed_experiment, const std::string& workflow, int bad_index) {
  std::map<long, bisect::ProbeOutcome> jobs;
  for (const auto& row : tx.exec_params(kSeedSamples, seed_experiment, workflow)) {
    bisect::ProbeOutcome& o = jobs[row[0].as<long>()];
    o.job = bisect::ProbeJob{bad_index, 0, 0, false};
    bisect::CommitRuns& c = row[1].as<std::string>() == "baseline" ? o.beside : o.runs;
    c.ttfb_ms.push_back(row[2].as<double>());
    c.phases.runs.push_back(phases_of(row[3].as<std::string>()));
  }
  bisect::Seed seed;
  for (auto& [id, o] : jobs) seed.jobs.push_back(std::move(o));
  return seed;
}

// The recorded rounds with what their jobs measured.
std::vector<bisect::Round> load_rounds(pqxx::work& tx, long experiment_id, const json::array& steps) {
  std::map<long, std::pair<std::string, std::string>> job_state;  // id -> (state, error json)
  for (const auto& row : tx.exec_params(kJobsOf, experiment_id))
    job_state[row[0].as<long>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
  std::map<long, std::map<std::string, bisect::CommitRuns>> runs;  // job -> arm -> runs
  for (const auto& row : tx.exec_params(kProbeSamples, experiment_id)) {
    auto& c = runs[row[0].as<long>()][row[1].as<std::string>()];
    c.ttfb_ms.push_back(row[2].as<double>());
    c.phases.runs.push_back(phases_of(row[3].as<std::string>()));
  }
  std::vector<bisect::Round> rounds;
  for (const auto& sv : steps) {
    const auto& step = sv.as_object();
    bisect::Round round;
    for (const auto& rv : step.at("requests").as_array()) {
      const auto& r = rv.as_object();
      const auto* part = r.if_contains("part");
      round.requests.push_back(bisect::Request{int_of(r, "index"), int_of(r, "runs"), r.contains("beside") ? int_of(r, "beside") : -1,
                                               part && part->is_bool() && part->as_bool()});
    }
    for (const auto& jv : step.at("jobs").as_array()) {
      const long id = jv.as_object().at("id").as_int64();
      const auto& j = jv.as_object();
      bisect::ProbeOutcome o;
      o.job.commit = int_of(j, "index");
      o.job.runs = j.contains("runs") ? int_of(j, "runs") : 0;
      o.job.beside = j.contains("beside") ? int_of(j, "beside") : -1;
      o.job.sandwich = j.contains("sandwich") && j.at("sandwich").is_bool() && j.at("sandwich").as_bool();
      o.job.part = j.contains("part") && j.at("part").is_bool() && j.at("part").as_bool();
      const auto& [state, error] = job_state.at(id);
      if (state == "done" && o.job.beside >= 0) {
        o.beside = runs[id]["baseline"];
        o.runs = runs[id]["candidate"];
      } else if (state == "done") {
        o.runs = runs[id]["baseline"];  // a single-arm job's schedule names its arm "baseline"
      } else {
        // The commit its failed arm measured: a paired probe's baseline is the good end (a
        // sandwich's, the parent), not the commit the job probes.
        ProbeError e = probe_error(error, state);
        o.error = std::move(e.text);
        o.failed = bisect::failed_commit(o.job, e.arm);
      }
      round.outcomes.push_back(std::move(o));
    }
    rounds.push_back(std::move(round));
  }
  return rounds;
}

std::string dashboard_url(const std::string& public_url, long id) {
  return public_url + "/#/bisections/" + std::to_string(id);
}

// A number of a culprit's JSON; NaN when it is null (not measured).
double number_or_nan(const json::value& v) { return v.is_number() ? v.to_number<double>() : NAN; }

// One alert per culprit, to its author, committed with the result.
void alert_culprits(pqxx::work& tx, const ServerConfig& config, long id, const std::string& repo,
                    const std::string& workflow, const json::object& result, const std::vector<git::CommitInfo>& commits) {
  for (const auto& cv : result.at("culprits").as_array()) {
    const auto& c = cv.as_object();
    alerts::CulpritFacts f;
    f.bisection_id = id;
    f.repo = repo;
    f.workflow = workflow;
    f.commit = std::string(c.at("commit").as_string());
    f.subject = std::string(c.at("subject").as_string());
    f.author_name = std::string(c.at("author").as_string());
    f.author_email = std::string(c.at("email").as_string());
    f.effect_pct = number_or_nan(c.at("effect_pct"));
    f.ci_low_pct = number_or_nan(c.at("ci_low_pct"));
    f.ci_high_pct = number_or_nan(c.at("ci_high_pct"));
    if (const auto* level = c.if_contains("ci_level")) f.ci_level = number_or_nan(*level);
    f.p_value = number_or_nan(c.at("p_value"));
    if (c.at("phase").is_string()) f.phase = std::string(c.at("phase").as_string());
    f.phase_delta_ms = number_or_nan(c.at("phase_delta_ms"));
    f.phase_summary = std::string(c.at("phase_summary").as_string());
    f.good_commit = commits.front().sha;
    f.bad_commit = commits.back().sha;
    f.range_commits = commits.size();
    alerts::enqueue_alert(tx, config, alerts::culprit_alert(f, config.public_url));
  }
}

json::object summary_json(const pqxx::row& row, const std::string& public_url, bool full) {
  const long id = row[0].as<long>();
  json::object o;
  o["id"] = id;
  o["repo"] = row[1].as<std::string>();
  o["workflow"] = row[2].as<std::string>();
  o["good"] = json::object{{"ref", row[3].as<std::string>()}, {"commit", row[4].as<std::string>()}};
  o["bad"] = json::object{{"ref", row[5].as<std::string>()}, {"commit", row[6].as<std::string>()}};
  o["release"] = row[7].is_null() ? json::value(nullptr) : json::value(row[7].as<std::string>());
  o["status"] = row[8].as<std::string>();
  o["message"] = row[9].as<std::string>();
  const json::value result = json::parse(row[10].as<std::string>());
  const json::object empty;
  const json::object& r = result.is_object() ? result.as_object() : empty;
  auto field = [&](const char* k, json::value fallback) { return r.contains(k) ? r.at(k) : fallback; };
  o["total_effect_pct"] = field("total_effect_pct", nullptr);
  o["explained_fraction"] = field("explained_fraction", nullptr);
  for (const char* k : {"total_ci_low_pct", "total_ci_high_pct", "remainder_pct", "remainder_ci_low_pct",
                        "remainder_ci_high_pct", "ci_level"})
    o[k] = field(k, nullptr);
  o["parts"] = field("parts", json::array{});
  o["culprits"] = field("culprits", json::array{});
  o["suggested_good"] = field("suggested_good", nullptr);
  // Both ends included; the candidates for a culprit are every commit after the good end.
  o["range"] = json::object{{"commits", row[18].as<long>()}, {"candidates", row[18].as<long>() - 1}};
  const json::value steps = json::parse(row[11].as<std::string>());
  o["cost"] = json::object{{"runs", field("measured_runs", 0)},
                           {"reused_runs", field("reused_runs", 0)},
                           {"sandwich_runs", field("sandwich_runs", 0)},
                           {"part_runs", field("part_runs", 0)},
                           {"reopened", field("reopened", 0)},
                           {"jobs", row[16].as<long>()},
                           {"rounds", steps.as_array().size()},
                           {"wall_seconds", row[15].as<double>()}};
  o["experiment_id"] = row[12].as<long>();
  o["requested_by"] = row[19].as<std::string>();
  o["url"] = public_url + "/api/v1/bisections/" + std::to_string(id);
  o["dashboard_url"] = dashboard_url(public_url, id);
  o["created_at"] = row[13].as<std::string>();
  o["finished_at"] = row[14].as<std::string>().empty() ? json::value(nullptr) : json::value(row[14].as<std::string>());
  if (full) {
    o["broken"] = field("broken", json::array{});
    o["reference_ms"] = field("reference_ms", nullptr);
    o["commits"] = field("commits", json::array{});
    o["steps"] = steps;
    const json::value options = json::parse(row[17].as<std::string>());
    o["options"] = options;
  }
  return o;
}

// Records the end: the row, the experiment's workflow and the experiment, and the culprits' alerts.
void finish(pqxx::work& tx, const ServerConfig& config, long id, long experiment_id, const std::string& repo,
            const std::string& workflow, const std::string& status, const std::string& message, const json::object& result,
            const json::array& steps, const std::vector<git::CommitInfo>& commits) {
  tx.exec_params(kSaveFinal, id, status, json::serialize(steps), json::serialize(result), message);
  std::string verdict = status == "found" ? "regression" : status == "no_regression" ? "no_change" : "inconclusive";
  std::string exp_status = "done";
  json::value error = nullptr;
  if (status == "error" || status == "cancelled") {
    verdict = "error";
    exp_status = status == "cancelled" ? "cancelled" : "error";
    error = json::object{{"code", status}, {"message", message}};
  }
  json::object wf_result{{"bisection_id", id}, {"status", status}, {"message", message}};
  if (result.contains("culprits")) wf_result["culprits"] = result.at("culprits");
  tx.exec_params(kFinishExperimentWorkflow, experiment_id, workflow, verdict, json::serialize(wf_result));
  tx.exec_params(kFinishExperiment, experiment_id, exp_status, verdict, json::serialize(error));
  if (status == "found") alert_culprits(tx, config, id, repo, workflow, result, commits);
}

int live_workers(pqxx::work& tx, const ServerConfig& config) {
  return tx.exec_params1(kLiveWorkers, config.worker_alive_seconds)[0].as<int>();
}

// For a good end that cannot be measured: the first commit of the range where all of the
// workflow's files (the paths its command names that exist at the bad end) exist, when they do
// not all exist at the good end. About log2(commits) look-ups in the server's mirror, each one
// `git cat-file --batch-check`. Nothing when git cannot say (logged): the message goes without.
std::optional<SuggestedGood> suggest_good(const ServerConfig& config, RepoMirrors& mirrors, const std::string& repo,
                                          const std::string& workflow, const std::vector<git::CommitInfo>& commits) {
  const auto wit = config.workflows.find(workflow);
  if (wit == config.workflows.end() || commits.size() < 2) return std::nullopt;
  try {
    const std::vector<std::string> candidates = workflow_paths(wit->second);
    if (candidates.empty()) return std::nullopt;
    const auto at_bad = mirrors.paths_exist(repo, commits.back().sha, candidates);
    std::vector<std::string> paths;
    for (std::size_t i = 0; i < candidates.size(); ++i)
      if (at_bad[i]) paths.push_back(candidates[i]);
    if (paths.empty()) return std::nullopt;
    auto all_at = [&](int i) {
      const auto e = mirrors.paths_exist(repo, commits.at(static_cast<std::size_t>(i)).sha, paths);
      return std::all_of(e.begin(), e.end(), [](bool b) { return b; });
    };
    if (all_at(0)) return std::nullopt;  // the files are there: the good end fails for another reason
    return SuggestedGood{first_index_where(0, static_cast<int>(commits.size()) - 1, all_at), paths};
  } catch (const std::exception& e) {
    spdlog::warn("bisection of {} in {}: cannot look for the first commit with the workflow's files: {}", workflow, repo,
                 e.what());
    return std::nullopt;
  }
}

// One bisection's step; false when it was not ready after all (another replica got there).
bool advance_one(const ServerConfig& config, Database& db, RepoMirrors& mirrors, long id) {
  return db.transact([&](pqxx::work& tx) {
    const auto rows = tx.exec_params(kLockBisection, id);
    if (rows.empty()) return false;
    const auto& row = rows[0];
    const std::string repo = row[0].as<std::string>();
    const std::string workflow = row[1].as<std::string>();
    const long experiment_id = row[2].as<long>();
    const long seed_experiment = row[3].is_null() ? 0 : row[3].as<long>();  // 0: none (ids start at 1)
    const auto commits = commits_from_json(json::parse(row[4].as<std::string>()).as_array());
    const json::object options = json::parse(row[5].as<std::string>()).as_object();
    json::array steps = json::parse(row[6].as<std::string>()).as_array();
    const std::string now = tx.exec1(kNow)[0].as<std::string>();

    bool busy = false, cancelled = false;
    for (const auto& j : tx.exec_params(kJobsOf, experiment_id)) {
      const std::string state = j[1].as<std::string>();
      busy |= state == "queued" || state == "running";
      cancelled |= state == "cancelled";
    }
    if (busy) return false;
    tx.exec_params(kMarkAnalysed, experiment_id);
    if (!steps.empty()) {
      auto& last = steps.back().as_object();
      last["state"] = "done";
      last["finished_at"] = now;
    }
    if (cancelled) {
      finish(tx, config, id, experiment_id, repo, workflow, "cancelled", "cancelled: a probe job was cancelled",
             json::object{}, steps, commits);
      spdlog::info("bisection {} cancelled", id);
      return true;
    }
    try {
      const int n = static_cast<int>(commits.size());
      const bisect::Seed seed = seed_experiment > 0 ? load_seed(tx, seed_experiment, workflow, n - 1) : bisect::Seed{};
      const auto rounds = load_rounds(tx, experiment_id, steps);
      const bisect::Replayed r = bisect::replay(n, options_from_json(options), seed, rounds, bisect::Pairing::paired);
      const double phase_alpha = double_of(options, "phase_alpha");
      json::object result = bisect::report(r, commits, phase_alpha);
      const std::string status(result.at("status").as_string());
      if (r.search.done()) {
        const bool good_broken = r.broken.count(0) > 0, bad_broken = r.broken.count(n - 1) > 0;
        if (status == "broken" && (good_broken || bad_broken)) {
          // An end cannot run: say which commit and why, and where the workflow first can.
          const auto suggestion = good_broken ? suggest_good(config, mirrors, repo, workflow, commits) : std::nullopt;
          result["message"] = broken_ends_message(commits, r.broken, suggestion);
          result["suggested_good"] = suggested_good_json(commits, suggestion);
        }
        const std::string message(result.at("message").as_string());
        finish(tx, config, id, experiment_id, repo, workflow, status, message, result, steps, commits);
        spdlog::info("bisection {} of {} ({} commits): {} — {}", id, workflow, commits.size(), status, message);
        return true;
      }
      const int round = static_cast<int>(steps.size()) + 1;
      const int max_attempts = config.max_attempts;
      json::object round_snapshot{{"design", options.at("design")}};
      if (const auto* d = options.if_contains("dependencies")) round_snapshot["dependencies"] = *d;
      steps.push_back(plan_round(tx, config, experiment_id, workflow, round_snapshot,
                                 commits, r.next, round, int_of(options, "warmup_runs"), max_attempts, now));
      tx.exec_params(kSaveProgress, id, status, json::serialize(steps), json::serialize(result), "");
      spdlog::info("bisection {}: round {} probes {} commit(s)", id, round, r.next.size());
    } catch (const std::exception& e) {
      // A replay that does not match its rounds, a snapshot that does not parse: say so and stop
      // rather than measure forever.
      spdlog::error("bisection {}: {}", id, e.what());
      finish(tx, config, id, experiment_id, repo, workflow, "error", std::string("internal error: ") + e.what(),
             json::object{}, steps, commits);
    }
    return true;
  });
}

}  // namespace

long start_bisection(pqxx::work& tx, const ServerConfig& config, RepoMirrors& mirrors, const BisectionRequest& rq) {
  auto rit = config.repos.find(rq.repo);
  if (rit == config.repos.end()) throw ApiError(ErrorCode::invalid_argument, "unknown repository '" + rq.repo + "'");
  auto wit = config.workflows.find(rq.workflow);
  if (wit == config.workflows.end() || wit->second.repo != rq.repo) {
    std::string known;
    for (const auto& [n, w] : config.workflows)
      if (w.repo == rq.repo) known += (known.empty() ? "" : ", ") + n;
    throw ApiError(ErrorCode::invalid_argument,
                   "unknown workflow '" + rq.workflow + "' for repository '" + rq.repo + "'; known: " + known);
  }
  const WorkflowConfig& wf = wit->second;
  if (!rq.design) throw std::invalid_argument("start_bisection: no design");
  const std::string good = mirrors.resolve(rq.repo, rq.good_ref);
  const std::string bad = mirrors.resolve(rq.repo, rq.bad_ref);
  if (good == bad)
    throw ApiError(ErrorCode::invalid_argument,
                   "good '" + rq.good_ref + "' and bad '" + rq.bad_ref + "' are the same commit " + good.substr(0, 12));
  const auto commits = mirrors.first_parent_range(rq.repo, good, bad, kMaxRangeCommits);

  // A bisection tests at its own level and threshold ([bisect]), not the workflows' first-stage
  // screen: every probe and culprit decision is final there, nothing reruns it.
  json::object design = *rq.design;
  design["alpha"] = config.bisect.alpha;
  if (const auto* t = design.if_contains("threshold_pct"); t && t->is_number())
    design["threshold_pct"] = std::max(t->to_number<double>(), config.bisect.threshold_pct);
  bisect::SearchOptions so;
  so.design = design_from_snapshot(design);
  so.parallel_probes = std::clamp(live_workers(tx, config), 1, config.bisect.max_parallel_probes);
  so.max_runs_per_commit = std::max(config.bisect.max_runs_per_commit, so.design.runs_per_block);
  // Probe runs are each scaled by the good end's run beside them (Pairing::paired): a part beside
  // a culprit is decided on its ends side by side instead (search.hpp, SearchOptions::part_pairs).
  so.part_pairs = true;
  so.sandwich_alpha = config.bisect.sandwich_alpha;
  const int warmup = design.contains("warmup_runs") ? int_of(design, "warmup_runs") : wf.warmup_runs;
  json::object options{{"design", design},
                       {"parallel_probes", so.parallel_probes},
                       {"max_runs_per_commit", so.max_runs_per_commit},
                       {"part_pairs", so.part_pairs},
                       {"sandwich_alpha", so.sandwich_alpha},
                       {"warmup_runs", warmup},
                       {"phase_alpha", so.design.alpha}};
  // The workflow's dependencies: those its seed (a release gate's experiment) ran with, whose
  // runs of the ends the search reuses, or else their refs resolved now. Every probe runs these.
  json::object snapshot = wf.to_api_json();
  std::optional<json::value> seeded;
  if (rq.seed_experiment_id) {
    const auto rows = tx.exec_params(
        "SELECT (config -> 'dependencies')::text FROM experiment_workflows WHERE experiment_id = $1 AND workflow = $2",
        *rq.seed_experiment_id, wf.name);
    if (!rows.empty() && !rows[0][0].is_null()) seeded = json::parse(rows[0][0].as<std::string>());
  }
  if (seeded && seeded->is_array()) snapshot["dependencies"] = *seeded;
  else resolve_dependencies(config, mirrors, snapshot);
  options["dependencies"] = snapshot.at("dependencies");

  NewExperiment e;
  e.repo = rq.repo;
  e.purpose = "bisect";
  e.base_ref = rq.good_ref;
  e.base_commit = good;
  e.candidate_ref = rq.bad_ref;
  e.candidate_commit = bad;
  e.title = "bisection of " + wf.name + ": " + rq.good_ref + ".." + rq.bad_ref;
  e.submitted_by = rq.requested_by;
  e.max_attempts = config.max_attempts;
  const long experiment_id = insert_experiment(tx, e);
  snapshot["design"] = design;
  tx.exec_params(kInsertExperimentWorkflow, experiment_id, wf.name, json::serialize(snapshot));
  const long id =
      tx.exec_params1(kInsertBisection, rq.repo, wf.name, rq.good_ref, good, rq.bad_ref, bad, rq.release_id, experiment_id,
                      rq.seed_experiment_id, json::serialize(commits_to_json(commits)), json::serialize(options),
                      rq.requested_by)[0]
          .as<long>();

  // The first round: the ends, unless a seed already tells them apart.
  const int n = static_cast<int>(commits.size());
  const bisect::Seed seed = rq.seed_experiment_id ? load_seed(tx, *rq.seed_experiment_id, wf.name, n - 1) : bisect::Seed{};
  const bisect::Replayed r = bisect::replay(n, so, seed, {}, bisect::Pairing::paired);
  json::object result = bisect::report(r, commits, so.design.alpha);
  const std::string status(result.at("status").as_string());
  json::array steps;
  if (r.search.done()) {
    finish(tx, config, id, experiment_id, rq.repo, wf.name, status, std::string(result.at("message").as_string()), result,
           steps, commits);
  } else {
    const std::string now = tx.exec1(kNow)[0].as<std::string>();
    steps.push_back(plan_round(tx, config, experiment_id, wf.name,
                               json::object{{"design", design}, {"dependencies", options.at("dependencies")}}, commits, r.next, 1,
                               warmup, config.max_attempts, now));
    tx.exec_params(kSaveProgress, id, status, json::serialize(steps), json::serialize(result), "");
  }
  spdlog::info("bisection {} of {}: {}..{} ({} commits, {} seed runs, {} parallel probes)", id, wf.name,
               good.substr(0, 12), bad.substr(0, 12), commits.size(), r.seed_runs, so.parallel_probes);
  return id;
}

long start_bisection(const ServerConfig& config, Database& db, RepoMirrors& mirrors, const BisectionRequest& request) {
  BisectionRequest rq = request;
  if (!rq.design) {
    auto it = config.workflows.find(rq.workflow);
    if (it != config.workflows.end())
      rq.design = design_snapshot(it->second, current_calibration(db, rq.workflow), std::nullopt, std::nullopt);
  }
  if (!rq.design) {  // unknown workflow: let the transaction form say so
    rq.design = json::object{};
  }
  return db.transact([&](pqxx::work& tx) { return start_bisection(tx, config, mirrors, rq); });
}

int advance_bisections(const ServerConfig& config, Database& db, RepoMirrors& mirrors) {
  std::vector<long> ready = db.transact([&](pqxx::work& tx) {
    std::vector<long> ids;
    for (const auto& row : tx.exec(kReadyBisections)) ids.push_back(row[0].as<long>());
    return ids;
  });
  int advanced = 0;
  for (long id : ready) advanced += advance_one(config, db, mirrors, id) ? 1 : 0;
  return advanced;
}

json::object get_bisection(Database& db, long id, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) {
    const auto rows = tx.exec_params(std::string(kSelectBisection) + " WHERE b.id = $1", id);
    if (rows.empty()) throw ApiError(ErrorCode::not_found, "bisection " + std::to_string(id) + " does not exist");
    return summary_json(rows[0], public_url, true);
  });
}

json::object list_bisections(Database& db, const std::optional<std::string>& repo, const std::optional<std::string>& status,
                             int limit, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) {
    json::array out;
    for (const auto& row :
         tx.exec_params(std::string(kSelectBisection) +
                            " WHERE ($1::text IS NULL OR b.repo = $1) AND ($2::text IS NULL OR b.status = $2)"
                            " ORDER BY b.id DESC LIMIT $3",
                        repo, status, limit))
      out.push_back(summary_json(row, public_url, false));
    const std::size_t n = out.size();
    return json::object{{"bisections", std::move(out)}, {"count", n}};
  });
}

json::array bisections_of_release(pqxx::work& tx, long release_id, const std::string& public_url) {
  json::array out;
  for (const auto& row : tx.exec_params(std::string(kSelectBisection) + " WHERE b.release_id = $1 ORDER BY b.id", release_id))
    out.push_back(summary_json(row, public_url, false));
  return out;
}

}  // namespace ttfb
