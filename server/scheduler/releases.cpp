#include "server/scheduler/releases.hpp"

#include "common/errors.hpp"
#include "server/alerts/compose.hpp"
#include "server/alerts/outbox.hpp"
#include "server/scheduler/bisections.hpp"
#include "server/scheduler/submit.hpp"
#include "server/store/experiments.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <regex>

namespace ttfb {
namespace {
namespace json = boost::json;

constexpr std::size_t kMaxRangeCommits = 10000;

constexpr const char* kReleaseExists = "SELECT 1 FROM releases WHERE name = $1";

constexpr const char* kInsertRelease = R"sql(
INSERT INTO releases (name, repo, base_ref, base_commit, candidate_ref, candidate_commit, workflows, owner, owner_email,
                      experiment_id, created_by)
SELECT $1, $2, $3, $4, $5, $6, array(SELECT json_array_elements_text($7::json)), $8, $9, $10, $11)sql";

constexpr const char* kSelectRelease = R"sql(
SELECT r.id, r.name, r.repo, r.base_ref, r.base_commit, r.candidate_ref, r.candidate_commit, array_to_json(r.workflows)::text,
       r.owner, r.owner_email, r.experiment_id, r.status, r.reason, r.created_by, to_json(r.created_at)#>>'{}',
       coalesce(to_json(r.decided_at)#>>'{}', '')
FROM releases r)sql";

// Pending gates whose experiment has ended.
constexpr const char* kDecidable = R"sql(
SELECT r.id FROM releases r JOIN experiments e ON e.id = r.experiment_id
WHERE r.status = 'pending' AND e.status IN ('done', 'error', 'cancelled') ORDER BY r.id)sql";

constexpr const char* kLockPending = R"sql(
SELECT r.name, r.repo, r.base_ref, r.candidate_ref, r.owner, r.owner_email, r.experiment_id, e.status, r.created_by
FROM releases r JOIN experiments e ON e.id = r.experiment_id WHERE r.id = $1 AND r.status = 'pending' FOR UPDATE OF r)sql";

constexpr const char* kWorkflowResults = R"sql(
SELECT workflow, coalesce(verdict, ''), coalesce(result::text, 'null'), (config -> 'design')::text
FROM experiment_workflows WHERE experiment_id = $1 ORDER BY workflow)sql";

constexpr const char* kDecide = R"sql(
UPDATE releases SET status = $2, reason = $3, decided_at = now() WHERE id = $1)sql";

const std::regex kName("^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$");

std::optional<double> number(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v || !v->is_number()) return std::nullopt;
  return v->to_number<double>();
}

std::string encode_name(const std::string& name) { return name; }  // the name regex needs no escaping

// One workflow of the gate's experiment, as the gate shows it.
json::object workflow_line(const json::object& w) {
  const json::object empty;
  const json::object& r = w.contains("result") && w.at("result").is_object() ? w.at("result").as_object() : empty;
  auto get = [&](const char* k) { return r.contains(k) ? r.at(k) : json::value(nullptr); };
  json::value runs = nullptr;
  if (r.contains("n_baseline")) runs = r.at("n_baseline");
  return json::object{{"workflow", w.at("workflow")},
                      {"state", w.at("state")},
                      {"verdict", w.at("verdict")},
                      {"confirmed", r.contains("confirmed") ? r.at("confirmed") : json::value(false)},
                      {"effect_pct", get("effect_pct")},
                      {"ci_low_pct", get("ci_low_pct")},
                      {"ci_high_pct", get("ci_high_pct")},
                      {"p_value", get("p_value")},
                      {"threshold_pct", get("threshold_pct")},
                      {"phase_summary", get("phase_summary")},
                      {"reason", get("reason")},
                      {"runs_per_arm", runs}};
}

json::object release_json(pqxx::work& tx, const pqxx::row& row, const std::string& public_url) {
  const long id = row[0].as<long>();
  const std::string name = row[1].as<std::string>();
  json::object o;
  o["id"] = id;
  o["name"] = name;
  o["repo"] = row[2].as<std::string>();
  o["base"] = json::object{{"ref", row[3].as<std::string>()}, {"commit", row[4].as<std::string>()}};
  o["candidate"] = json::object{{"ref", row[5].as<std::string>()}, {"commit", row[6].as<std::string>()}};
  o["workflows"] = json::parse(row[7].as<std::string>());
  o["owner"] = row[8].as<std::string>();
  o["owner_email"] = row[9].as<std::string>();
  o["status"] = row[11].as<std::string>();
  o["reason"] = row[12].as<std::string>();
  const json::object e = experiment_json(tx, row[10].as<long>(), public_url);
  json::array wfs;
  for (const auto& w : e.at("workflows").as_array()) wfs.push_back(workflow_line(w.as_object()));
  o["experiment"] = json::object{{"id", e.at("id")},
                                 {"status", e.at("status")},
                                 {"verdict", e.at("verdict")},
                                 {"url", e.at("url")},
                                 {"progress", e.at("progress")},
                                 {"workflows", std::move(wfs)}};
  o["bisections"] = bisections_of_release(tx, id, public_url);
  o["url"] = public_url + "/api/v1/releases/" + encode_name(name);
  o["dashboard_url"] = public_url + "/#/releases/" + encode_name(name);
  o["created_by"] = row[13].as<std::string>();
  o["created_at"] = row[14].as<std::string>();
  o["decided_at"] = row[15].as<std::string>().empty() ? json::value(nullptr) : json::value(row[15].as<std::string>());
  return o;
}

json::object release_by_name(pqxx::work& tx, const std::string& name, const std::string& public_url) {
  const auto rows = tx.exec_params(std::string(kSelectRelease) + " WHERE r.name = $1", name);
  if (rows.empty()) throw ApiError(ErrorCode::not_found, "release '" + name + "' does not exist");
  return release_json(tx, rows[0], public_url);
}

struct Regressed {
  json::object design;               // what the gate's experiment judged it by; the bisection keeps it
  alerts::RegressedWorkflow facts;   // its name and what the confirmed verdict measured
};

alerts::RegressedWorkflow regressed_workflow(const std::string& workflow, const json::object& r) {
  alerts::RegressedWorkflow w;
  w.workflow = workflow;
  w.effect_pct = number(r, "effect_pct").value_or(alerts::kNotMeasured);
  w.ci_low_pct = number(r, "ci_low_pct").value_or(alerts::kNotMeasured);
  w.ci_high_pct = number(r, "ci_high_pct").value_or(alerts::kNotMeasured);
  w.confidence = number(r, "confidence").value_or(alerts::kNotMeasured);
  w.p_value = number(r, "p_value").value_or(alerts::kNotMeasured);
  if (const auto* ps = r.if_contains("phase_summary"); ps && ps->is_string()) w.phase_summary = std::string(ps->as_string());
  return w;
}

void alert_owner(pqxx::work& tx, const ServerConfig& config, long id, const std::string& name, const std::string& repo,
                 const std::string& base_ref, const std::string& candidate_ref, const std::string& owner,
                 const std::string& owner_email, const std::vector<Regressed>& regressed) {
  alerts::ReleaseBlockedFacts f;
  f.release_id = id;
  f.name = name;
  f.repo = repo;
  f.base_ref = base_ref;
  f.candidate_ref = candidate_ref;
  f.owner = owner;
  f.owner_email = owner_email;
  for (const auto& r : regressed) f.regressed.push_back(r.facts);
  alerts::enqueue_alert(tx, config, alerts::release_blocked_alert(f, config.public_url));
}

bool decide_one(const ServerConfig& config, Database& db, RepoMirrors& mirrors, long id) {
  return db.transact([&](pqxx::work& tx) {
    const auto rows = tx.exec_params(kLockPending, id);
    if (rows.empty()) return false;
    const auto& row = rows[0];
    const std::string name = row[0].as<std::string>(), repo = row[1].as<std::string>();
    const std::string base_ref = row[2].as<std::string>(), candidate_ref = row[3].as<std::string>();
    const std::string owner = row[4].as<std::string>(), owner_email = row[5].as<std::string>();
    const long experiment_id = row[6].as<long>();
    const std::string experiment_status = row[7].as<std::string>();
    const std::string created_by = row[8].as<std::string>();
    if (experiment_status == "cancelled") {
      tx.exec_params(kDecide, id, "cancelled", "the gate's experiment " + std::to_string(experiment_id) + " was cancelled");
      return true;
    }
    std::vector<Regressed> regressed;
    std::vector<std::string> errored, undecided;
    for (const auto& w : tx.exec_params(kWorkflowResults, experiment_id)) {
      const std::string wf = w[0].as<std::string>(), verdict = w[1].as<std::string>();
      const json::value result = json::parse(w[2].as<std::string>());
      const json::object r = result.is_object() ? result.as_object() : json::object{};
      // A regression verdict stands only once confirmed (or with confirmation off, by design).
      if (verdict == "regression")
        regressed.push_back(Regressed{json::parse(w[3].as<std::string>()).as_object(), regressed_workflow(wf, r)});
      else if (verdict == "error" || verdict.empty())
        errored.push_back(wf);
      else if (verdict == "inconclusive")
        undecided.push_back(wf);
    }
    const std::string range = base_ref + ".." + candidate_ref;
    std::string status, reason;
    if (!regressed.empty()) {
      status = "blocked";
      for (const auto& r : regressed) reason += (reason.empty() ? "" : "; ") + alerts::effect_line(r.facts);
      reason = "time to first batch regressed: " + reason;
      for (const auto& r : regressed) {
        BisectionRequest b;
        b.repo = repo;
        b.workflow = r.facts.workflow;
        b.good_ref = base_ref;
        b.bad_ref = candidate_ref;
        b.release_id = id;
        b.seed_experiment_id = experiment_id;
        b.design = r.design;
        b.requested_by = "release " + name + " (" + created_by + ")";
        start_bisection(tx, config, mirrors, b);
      }
      alert_owner(tx, config, id, name, repo, base_ref, candidate_ref, owner, owner_email, regressed);
    } else if (!errored.empty()) {
      status = "error";
      reason = "could not measure: " + join_names(errored);
    } else {
      status = "passed";
      reason = "no workflow starts slower";
      if (!undecided.empty())
        reason += " (not decided within the run budget, so any change is below the threshold's reach: " +
                  join_names(undecided) + ")";
    }
    tx.exec_params(kDecide, id, status, reason);
    spdlog::info("release {} ({}): {} — {}", name, range, status, reason);
    return true;
  });
}

}  // namespace

json::object create_release(const ServerConfig& config, Database& db, RepoMirrors& mirrors, const ReleaseRequest& rq) {
  if (!std::regex_match(rq.name, kName))
    throw ApiError(ErrorCode::invalid_argument,
                   "release name '" + rq.name + "' must be 1-100 of letters, digits and . _ + - (starting with a letter or digit)");
  if (!config.repos.count(rq.repo)) throw ApiError(ErrorCode::invalid_argument, "unknown repository '" + rq.repo + "'");
  const auto workflows = select_workflows(config, rq.repo, rq.workflows);
  if (rq.owner_email.size() > 254 || (!rq.owner_email.empty() && rq.owner_email.find('@') == std::string::npos))
    throw ApiError(ErrorCode::invalid_argument, "owner_email '" + rq.owner_email + "' is not an e-mail address");
  const std::string base = mirrors.resolve(rq.repo, rq.base);
  const std::string candidate = mirrors.resolve(rq.repo, rq.candidate);
  if (base == candidate)
    throw ApiError(ErrorCode::invalid_argument,
                   "base '" + rq.base + "' and candidate '" + rq.candidate + "' are the same commit " + base.substr(0, 12));
  // A blocked gate bisects base..candidate: check now that it can, before any worker time is spent.
  try {
    mirrors.first_parent_range(rq.repo, base, candidate, kMaxRangeCommits);
  } catch (const ApiError& e) {
    throw ApiError(ErrorCode::invalid_argument,
                   std::string("a release gate needs base on candidate's first-parent line, so that a regression can be "
                               "bisected: ") + e.what());
  }
  NewExperiment e;
  e.repo = rq.repo;
  e.purpose = "release";
  e.base_ref = rq.base;
  e.base_commit = base;
  e.candidate_ref = rq.candidate;
  e.candidate_commit = candidate;
  e.author = rq.owner_email.empty() ? rq.owner : rq.owner + " <" + rq.owner_email + ">";
  e.title = "release gate " + rq.name + ": " + rq.base + ".." + rq.candidate;
  e.submitted_by = rq.created_by;
  e.max_attempts = config.max_attempts;
  e.jobs = first_blocks(config, db, rq.repo, workflows, base, candidate, "", std::nullopt, std::nullopt, mirrors);
  json::array wfs;
  for (const auto& w : workflows) wfs.emplace_back(w);
  return db.transact([&](pqxx::work& tx) {
    if (!tx.exec_params(kReleaseExists, rq.name).empty())
      throw ApiError(ErrorCode::conflict, "a release named '" + rq.name + "' already exists (GET /api/v1/releases/" +
                                              rq.name + "); gate a new candidate under a new name");
    const long experiment_id = insert_experiment(tx, e);
    tx.exec_params(kInsertRelease, rq.name, rq.repo, rq.base, base, rq.candidate, candidate, json::serialize(wfs), rq.owner,
                   rq.owner_email, experiment_id, rq.created_by);
    spdlog::info("release gate {}: {}..{} over {} (experiment {})", rq.name, rq.base, rq.candidate, join_names(workflows),
                 experiment_id);
    return release_by_name(tx, rq.name, config.public_url);
  });
}

int advance_releases(const ServerConfig& config, Database& db, RepoMirrors& mirrors) {
  std::vector<long> ids = db.transact([&](pqxx::work& tx) {
    std::vector<long> out;
    for (const auto& row : tx.exec(kDecidable)) out.push_back(row[0].as<long>());
    return out;
  });
  int decided = 0;
  for (long id : ids) {
    try {
      decided += decide_one(config, db, mirrors, id) ? 1 : 0;
    } catch (const ApiError& e) {
      // Bisection could not start (the mirror cannot fetch, say): the gate stays pending and is
      // tried again next tick; the database being away is the scheduler's business.
      if (e.code() == ErrorCode::unavailable) throw;
      spdlog::warn("release {}: {}", id, e.what());
    }
  }
  return decided;
}

json::object get_release(Database& db, const std::string& name, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) { return release_by_name(tx, name, public_url); });
}

json::object list_releases(Database& db, const std::optional<std::string>& repo, const std::optional<std::string>& status,
                           int limit, const std::string& public_url) {
  return db.transact([&](pqxx::work& tx) {
    json::array out;
    for (const auto& row : tx.exec_params(std::string(kSelectRelease) +
                                              " WHERE ($1::text IS NULL OR r.repo = $1) AND ($2::text IS NULL OR r.status = $2)"
                                              " ORDER BY r.id DESC LIMIT $3",
                                          repo, status, limit))
      out.push_back(release_json(tx, row, public_url));
    const std::size_t n = out.size();
    return json::object{{"releases", std::move(out)}, {"count", n}};
  });
}

}  // namespace ttfb
