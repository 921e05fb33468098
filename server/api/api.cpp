#include "server/api/api.hpp"

#include "common/errors.hpp"
#include "common/text.hpp"
#include "common/utf8.hpp"
#include "server/alerts/outbox.hpp"
#include "server/api/fields.hpp"
#include "server/scheduler/bisections.hpp"
#include "server/scheduler/calibrate.hpp"
#include "server/scheduler/releases.hpp"
#include "server/scheduler/select.hpp"
#include "server/scheduler/plan.hpp"
#include "server/scheduler/submit.hpp"
#include "server/store/calibrations.hpp"
#include "server/store/dashboard.hpp"
#include "server/store/experiments.hpp"
#include "server/store/footprints.hpp"
#include "server/store/jobs.hpp"
#include "server/store/tokens.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace ttfb {
namespace {
namespace json = boost::json;

HttpAnswer json_answer(int status, const json::value& v) {
  HttpAnswer a;
  a.status = status;
  a.body = json::serialize(v);
  return a;
}

// ?limit=N (1..1000), or `fallback`.
int query_limit(const HttpRequest& req, int fallback) {
  auto it = req.query.find("limit");
  if (it == req.query.end()) return fallback;
  static const std::regex kNum("[0-9]{1,4}");
  if (!std::regex_match(it->second, kNum) || std::stoi(it->second) < 1 || std::stoi(it->second) > 1000)
    throw ApiError(ErrorCode::invalid_argument, "limit must be an integer from 1 to 1000");
  return std::stoi(it->second);
}

// ?key=value, absent or empty as nullopt; a value outside `allowed` (when given) is an error.
std::optional<std::string> query_opt(const HttpRequest& req, const char* key, const std::set<std::string>& allowed = {}) {
  auto it = req.query.find(key);
  if (it == req.query.end() || it->second.empty()) return std::nullopt;
  if (!allowed.empty() && !allowed.count(it->second)) {
    std::string names;
    for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
    throw ApiError(ErrorCode::invalid_argument, std::string(key) + " must be one of: " + names);
  }
  return it->second;
}

long parse_id(const std::string& s, const char* what) {
  static const std::regex kId("[1-9][0-9]{0,17}");
  if (!std::regex_match(s, kId)) throw ApiError(ErrorCode::not_found, std::string(what) + " '" + s + "' does not exist");
  return std::stol(s);
}

// A worker is who its token says: the token's name. A name in the body that says otherwise is a
// misconfigured worker (or one pretending), refused before it can touch a job.
std::string worker_identity(const TokenInfo& who, const std::string& named_in_body) {
  if (!named_in_body.empty() && named_in_body != who.name)
    throw ApiError(ErrorCode::permission_denied, "this token belongs to worker '" + who.name + "', but the request names '" +
                                                     named_in_body + "': give each worker its own token, named like it");
  return who.name;
}

// The lease a job write presents: the worker from the token, the id and attempt from the body.
Lease presented_lease(const json::object& body, const TokenInfo& who) {
  std::string named;
  if (const auto* w = body.if_contains("worker"); w && w->is_string()) named = opt_string(body, "worker", 200).value_or("");
  Lease lease;
  lease.worker = worker_identity(who, named);
  lease.lease_id = req_string(body, "lease_id", "the lease id that the claim returned with the job", 64);
  lease.attempt = static_cast<int>(opt_int(body, "attempt", 1, 1000000).value_or(0));
  if (lease.attempt == 0) throw ApiError(ErrorCode::invalid_argument, "'attempt' is required: the attempt the claim returned with the job");
  return lease;
}

}  // namespace

Api::Api(const ServerConfig& config, Database& db, Metrics& metrics, RepoMirrors& mirrors,
         boost::asio::thread_pool& blocking)
    : config_(config), db_(db), metrics_(metrics), mirrors_(mirrors), blocking_(blocking), web_(TTFB_LAB_WEB_DIR) {}

void Api::handle(HttpRequest request, std::function<void(HttpAnswer)> respond) {
  auto started = std::chrono::steady_clock::now();
  boost::asio::post(blocking_, [this, request = std::move(request), respond = std::move(respond), started] {
    std::string route = "unmatched";
    HttpAnswer answer;
    // dispatch() maps every exception it knows; this is the last catch, for what escapes it (an
    // allocation failure, a throw from a catch block): the request fails, the process lives.
    try {
      answer = dispatch(request, route);
    } catch (...) {
      spdlog::error("{} {}: an error escaped the API's handlers", request.method, to_valid_utf8(request.path));
      answer = json_answer(500, error_json(ErrorCode::internal, "internal error"));
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    try {
      metrics_.observe_request(route, request.method, answer.status, seconds);
    } catch (const std::exception& e) {
      spdlog::warn("metrics: {}", e.what());
    }
    respond(std::move(answer));
  });
}

HttpAnswer Api::dispatch(const HttpRequest& req, std::string& route) {
  const std::string& m = req.method;
  const std::string& p = req.path;
  static const std::regex kExperiment(R"(/api/v1/experiments/([^/]+))");
  static const std::regex kExperimentSub(R"(/api/v1/experiments/([^/]+)/(samples|cancel|diff))");
  static const std::regex kWorkflow(R"(/api/v1/workflows/([^/]+))");
  static const std::regex kWorkflowCalibrate(R"(/api/v1/workflows/([^/]+)/calibrate)");
  static const std::regex kWorkflowHistory(R"(/api/v1/workflows/([^/]+)/history)");
  static const std::regex kJobAction(R"(/api/v1/worker/jobs/([^/]+)/(heartbeat|samples|complete|fail))");
  static const std::regex kRelease(R"(/api/v1/releases/([^/]+))");
  static const std::regex kBisection(R"(/api/v1/bisections/([^/]+))");
  std::smatch match;

  // Authentication: resolved lazily, once per request.
  std::optional<std::optional<TokenInfo>> token;
  auto caller = [&]() -> const std::optional<TokenInfo>& {
    if (!token) {
      std::string secret;
      if (req.authorization.rfind("Bearer ", 0) == 0) secret = req.authorization.substr(7);
      token = secret.empty() ? std::nullopt : authenticate(db_, secret);
      if (!secret.empty() && !*token)
        throw ApiError(ErrorCode::unauthenticated, "the bearer token is unknown or revoked");
    }
    return *token;
  };
  auto require = [&](const std::string& scope) -> TokenInfo {
    const auto& t = caller();
    if (!t)
      throw ApiError(ErrorCode::unauthenticated,
                     "missing bearer token: send 'Authorization: Bearer <token>' (the ttfb-lab CLI reads TTFB_LAB_TOKEN)");
    if (!t->has_scope(scope) && !t->has_scope("admin"))
      throw ApiError(ErrorCode::permission_denied, "token '" + t->name + "' lacks the '" + scope + "' scope");
    return *t;
  };
  auto require_read = [&] {
    if (!config_.open_reads) {
      const auto& t = caller();
      if (!t) throw ApiError(ErrorCode::unauthenticated, "missing bearer token: reads need a token on this server");
    }
  };
  auto method_not_allowed = [&](const char* allowed) -> HttpAnswer {
    HttpAnswer a = json_answer(405, error_json(ErrorCode::invalid_argument,
                                               "method " + m + " is not allowed on " + p + " (allowed: " + allowed + ")"));
    a.headers.emplace_back("Allow", allowed);
    return a;
  };

  try {
    if (p == "/healthz") {
      route = "/healthz";
      return json_answer(200, json::object{{"status", "ok"}});
    }
    if (p == "/readyz") {
      route = "/readyz";
      int applied = db_.applied_version();
      int available = Database::available_version(TTFB_LAB_SCHEMA_DIR);
      if (applied < available)
        throw ApiError(ErrorCode::unavailable, "database schema is at version " + std::to_string(applied) + ", expected " +
                                                   std::to_string(available));
      return json_answer(200, json::object{{"status", "ready"}, {"schema_version", applied}});
    }
    if (m == "GET" || m == "HEAD") {
      // The dashboard (web/): public files, no token (its API calls carry their own).
      if (auto a = web_.serve(p)) {
        route = p == "/" || p == "/index.html" ? "/" : p.rfind("/vendor/", 0) == 0 ? "/vendor/{file}" : "/assets/{file}";
        return *a;
      }
    }
    if (p == "/metrics") {
      route = "/metrics";
      HttpAnswer a;
      a.content_type = "text/plain; version=0.0.4";
      a.body = metrics_.serialize();
      return a;
    }
    if (p == "/api/v1/openapi.json") {
      // The API's own description (docs/openapi.json), open like the dashboard; read on each
      // request so that the served document is always the file in the tree.
      route = "/api/v1/openapi.json";
      if (m != "GET") return method_not_allowed("GET");
      std::ifstream in(TTFB_LAB_OPENAPI_FILE, std::ios::binary);
      if (!in) {
        spdlog::warn("GET {}: cannot read {}", p, TTFB_LAB_OPENAPI_FILE);
        throw ApiError(ErrorCode::not_found, "the OpenAPI description (docs/openapi.json) is missing on this server");
      }
      std::ostringstream text;
      text << in.rdbuf();
      HttpAnswer a;
      a.body = text.str();
      return a;
    }
    if (p == "/api/v1/repos") {
      route = "/api/v1/repos";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      json::array out;
      for (const auto& [name, r] : config_.repos) {
        json::array wfs;
        for (const auto& [wn, w] : config_.workflows)
          if (w.repo == name) wfs.emplace_back(wn);
        out.push_back(json::object{{"name", name}, {"url", r.url}, {"default_branch", r.default_branch},
                                   {"description", r.description}, {"workflows", std::move(wfs)}});
      }
      return json_answer(200, json::object{{"repos", std::move(out)}});
    }
    if (p == "/api/v1/workflows") {
      route = "/api/v1/workflows";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      json::array out;
      for (const auto& [name, w] : config_.workflows) {
        json::object o = w.to_api_json();
        auto cal = current_calibration(db_, name);
        o["threshold_pct"] = design_snapshot(w, cal, std::nullopt, std::nullopt).at("threshold_pct");
        o["calibrated"] = cal.has_value();
        out.push_back(std::move(o));
      }
      return json_answer(200, json::object{{"workflows", std::move(out)}});
    }
    if (std::regex_match(p, match, kWorkflowCalibrate)) {
      route = "/api/v1/workflows/{name}/calibrate";
      if (m != "POST") return method_not_allowed("POST");
      TokenInfo who = require("submit");
      json::object body = req.body.empty() ? json::object{} : parse_body(req.body);
      CalibrationRequest r;
      r.workflow = match[1];
      r.base = opt_string(body, "base");
      if (auto v = opt_int(body, "runs_per_arm", 5, 500)) r.runs_per_arm = static_cast<int>(*v);
      if (auto v = opt_int(body, "batches", 1, 20)) r.batches = static_cast<int>(*v);
      r.requested_by = who.name;
      StartedCalibration c = request_calibration(config_, db_, mirrors_, r);
      std::string url = config_.public_url + "/api/v1/workflows/" + r.workflow;
      HttpAnswer a = json_answer(202, json::object{{"calibration_id", c.id}, {"experiment_id", c.experiment_id},
                                                   {"workflow", r.workflow}, {"url", url},
                                                   {"experiment_url", config_.public_url + "/api/v1/experiments/" +
                                                                          std::to_string(c.experiment_id)}});
      a.headers.emplace_back("Location", "/api/v1/workflows/" + r.workflow);
      return a;
    }
    if (std::regex_match(p, match, kWorkflow)) {
      route = "/api/v1/workflows/{name}";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      auto it = config_.workflows.find(match[1]);
      if (it == config_.workflows.end())
        throw ApiError(ErrorCode::not_found, "workflow '" + std::string(match[1]) + "' does not exist");
      json::object o = it->second.to_api_json();
      json::object status = calibration_status(db_, it->first, it->second.policy);
      o["footprint"] = workflow_footprint(db_, it->first);
      auto cal = current_of(status);
      o["threshold_pct"] = design_snapshot(it->second, cal, std::nullopt, std::nullopt).at("threshold_pct");
      // The current calibration's numbers at the top level, the whole record under "calibration".
      for (const char* key : {"sigma_aa_pct", "k", "achieved_fpr", "target_fpr", "budget_met", "power",
                              "smallest_effect_90_pct", "roc"})
        o[key] = nullptr;
      if (const auto& cur = status["current"]; cur.is_object()) {
        if (const auto* res = cur.as_object().if_contains("result"); res && res->is_object()) {
          for (const char* key : {"sigma_aa_pct", "k", "achieved_fpr", "target_fpr", "budget_met", "power",
                                  "smallest_effect_90_pct", "roc"})
            if (const auto* v = res->as_object().if_contains(key)) o[key] = *v;
        }
      }
      o["calibration"] = std::move(status);
      return json_answer(200, o);
    }
    if (p == "/api/v1/experiments") {
      route = "/api/v1/experiments";
      if (m == "GET") {
        require_read();
        std::optional<std::string> status, repo;
        if (auto it = req.query.find("status"); it != req.query.end() && !it->second.empty()) {
          static const std::set<std::string> kStatuses{"queued", "running", "done", "error", "cancelled"};
          if (!kStatuses.count(it->second))
            throw ApiError(ErrorCode::invalid_argument, "status must be one of queued, running, done, error, cancelled");
          status = it->second;
        }
        if (auto it = req.query.find("repo"); it != req.query.end() && !it->second.empty()) repo = it->second;
        const int limit = query_limit(req, 50);
        return json_answer(200, json::object{{"experiments", list_experiments(db_, status, repo, limit, config_.public_url)}});
      }
      if (m != "POST") return method_not_allowed("GET, POST");
      TokenInfo who = require("submit");
      json::object body = parse_body(req.body);

      NewExperiment e;
      e.repo = req_string(body, "repo", "the name of a configured repository (GET /api/v1/repos)");
      auto repo_it = config_.repos.find(e.repo);
      if (repo_it == config_.repos.end()) {
        std::vector<std::string> names;
        for (const auto& [n, r] : config_.repos) names.push_back(n);
        throw ApiError(ErrorCode::invalid_argument, "unknown repository '" + e.repo + "'; known: " + join_names(names));
      }
      e.purpose = opt_string(body, "purpose").value_or("presubmit");
      // Bisections and calibrations make their own experiments (POST /bisections, /workflows/{name}/calibrate).
      static const std::set<std::string> kPurposes{"presubmit", "release"};
      if (!kPurposes.count(e.purpose))
        throw ApiError(ErrorCode::invalid_argument,
                       "purpose must be presubmit or release (bisections and calibrations have their own endpoints: "
                       "POST /api/v1/bisections, POST /api/v1/workflows/{name}/calibrate)");
      e.base_ref = opt_string(body, "base").value_or(repo_it->second.default_branch);
      if (e.base_ref.empty()) e.base_ref = repo_it->second.default_branch;
      auto diff = opt_string(body, "diff", config_.body_limit_bytes);
      auto candidate = opt_string(body, "candidate");
      // An infra owner's experiment: the candidate runs the same revision (or the diff's) with
      // another environment, a command prefix or another interpreter.
      const CandidateRuntime runtime = candidate_runtime(body);
      // Or a change to a repository the workflows use ([[dependencies]]), on the same revision.
      const std::optional<DependencyRequest> dependency = dependency_request(body, config_.body_limit_bytes);
      if (diff && candidate) throw ApiError(ErrorCode::invalid_argument, "give either 'diff' or 'candidate', not both");
      if (dependency) {
        if (diff || candidate)
          throw ApiError(ErrorCode::invalid_argument,
                         "a dependency experiment runs the same revision of '" + e.repo + "' (its base) on both arms: give "
                         "the change as 'dependency.diff' or 'dependency.candidate', without a top-level 'diff' or 'candidate'");
        if (!runtime.empty())
          throw ApiError(ErrorCode::invalid_argument,
                         "one change at a time: 'candidate_env', 'candidate_command_prefix' and 'candidate_interpreter' "
                         "cannot be combined with 'dependency' (submit them as two experiments)");
        if (!config_.repos.count(dependency->repo))
          throw ApiError(ErrorCode::invalid_argument, "'dependency.repo': unknown repository '" + dependency->repo + "'");
      }
      if (!diff && !candidate && runtime.empty() && !dependency)
        throw ApiError(ErrorCode::invalid_argument,
                       "give 'diff' (a unified diff against base) or 'candidate' (a revision), or what the candidate "
                       "runs differently on the base revision: 'candidate_env', 'candidate_command_prefix', "
                       "'candidate_interpreter' or 'dependency'");
      if (diff && diff->find_first_not_of(" \t\r\n") == std::string::npos)
        throw ApiError(ErrorCode::invalid_argument, "'diff' is empty: there is nothing to compare");
      e.author = opt_string(body, "author").value_or("");
      e.title = opt_string(body, "title").value_or("");
      e.change_url = opt_string(body, "change_url").value_or("");
      auto runs_override = opt_int(body, "runs_per_arm", 2, 500);
      auto warmup_override = opt_int(body, "warmup_runs", 0, 20);

      // A dependency experiment: every workflow of the repository that uses the dependency, by default.
      const std::vector<std::string> requested = workflow_names(body);
      std::vector<std::string> names = dependency ? select_dependents(config_, e.repo, dependency->repo, requested)
                                                  : select_workflows(config_, e.repo, requested);
      // A diff without named workflows runs those whose footprint it touches ("select": "all": every one).
      const std::string select = opt_string(body, "select").value_or("footprint");
      if (select != "footprint" && select != "all")
        throw ApiError(ErrorCode::invalid_argument, "'select' must be \"footprint\" (the default: the workflows whose "
                                                    "footprint the diff touches) or \"all\"");
      const bool by_footprint = diff && requested.empty() && runtime.empty() && select == "footprint";

      // Git: resolve revisions and check the diff before anything is stored.
      e.base_commit = mirrors_.resolve(e.repo, e.base_ref);
      if (diff) {
        mirrors_.check_diff(e.repo, e.base_commit, *diff);
        e.diff = *diff;
        e.diff_sha256 = sha256_hex(*diff);
        e.candidate_commit = e.base_commit;
      } else if (candidate) {
        e.candidate_ref = *candidate;
        e.candidate_commit = mirrors_.resolve(e.repo, *candidate);
      } else {
        e.candidate_commit = e.base_commit;  // the same revision: only the runtime differs
      }
      e.candidate_runtime = runtime.to_json();
      if (by_footprint) {
        std::map<std::string, std::optional<std::vector<std::string>>> footprints;
        for (auto& [n, files] : footprint_files(db_, names)) footprints[n] = std::move(files);
        json::array selection, skipped;
        std::vector<std::string> chosen;
        for (const auto& c : choose_by_footprint(names, footprints, diff_paths(*diff))) {
          json::array touched;
          for (const auto& t : c.touched) touched.emplace_back(t);
          json::object o{{"workflow", c.workflow}, {"chosen", c.chosen}, {"reason", c.reason},
                         {"touched", std::move(touched)}, {"footprint_files", c.footprint_files}};
          if (c.chosen) chosen.push_back(c.workflow);
          else skipped.push_back(o);
          selection.push_back(std::move(o));
        }
        if (chosen.empty()) {
          // Nothing to measure: no experiment, and the answer says why.
          std::string names_skipped;
          for (const auto& s : skipped) names_skipped += (names_skipped.empty() ? "" : ", ") + std::string(s.at("workflow").as_string());
          return json_answer(200, json::object{
              {"id", nullptr}, {"status", "skipped"}, {"selection", std::move(selection)},
              {"message", "nothing to measure: the diff changes no file that a workflow of '" + e.repo +
                              "' opens in its start-up or build (skipped: " + names_skipped +
                              "); name the workflows, or give \"select\": \"all\", to run them anyway"}});
        }
        names = chosen;
        e.selection = std::move(selection);
      }
      std::optional<DependencyChange> change;
      if (dependency) {
        change = DependencyChange{dependency->repo, dependency->base, "", dependency->diff.value_or("")};
        json::object d{{"repo", dependency->repo}};
        if (dependency->base) d["base_ref"] = *dependency->base;
        if (dependency->candidate) {
          change->commit = mirrors_.resolve(dependency->repo, *dependency->candidate);
          d["ref"] = *dependency->candidate;
          d["commit"] = change->commit;
          // Whoever made the change hears of a regression it causes, unless the request names someone.
          const git::CommitInfo c = mirrors_.commit_info(dependency->repo, change->commit);
          if (e.author.empty() && !c.author_email.empty()) e.author = c.author_name + " <" + c.author_email + ">";
          d["subject"] = c.subject;
        } else {
          d["diff"] = change->diff;
          d["diff_sha256"] = sha256_hex(change->diff);
        }
        e.candidate_runtime["dependency"] = std::move(d);
      }
      e.submitted_by = who.name;
      e.max_attempts = config_.max_attempts;

      std::optional<int> fixed_runs, warmup_runs;
      if (runs_override) fixed_runs = static_cast<int>(*runs_override);
      if (warmup_override) warmup_runs = static_cast<int>(*warmup_override);
      e.jobs = first_blocks(config_, db_, e.repo, names, e.base_commit, e.candidate_commit, e.diff, fixed_runs, warmup_runs,
                            mirrors_, runtime, change ? &*change : nullptr);
      long id = insert_experiment(db_, e);
      spdlog::info("experiment {} submitted by {}: repo {} base {} ({}), {} workflow(s)", id, who.name, e.repo, e.base_ref,
                   e.base_commit.substr(0, 12), e.jobs.size());
      std::string url = config_.public_url + "/api/v1/experiments/" + std::to_string(id);
      HttpAnswer a = json_answer(201, json::object{{"id", id}, {"status", "queued"}, {"url", url},
                                                   {"base_commit", e.base_commit}, {"candidate_commit", e.candidate_commit}});
      a.headers.emplace_back("Location", "/api/v1/experiments/" + std::to_string(id));
      return a;
    }
    if (std::regex_match(p, match, kExperimentSub)) {
      long id = parse_id(match[1], "experiment");
      if (match[2] == "samples") {
        route = "/api/v1/experiments/{id}/samples";
        if (m != "GET") return method_not_allowed("GET");
        require_read();
        return json_answer(200, json::object{{"experiment_id", id}, {"samples", get_samples(db_, id)}});
      }
      if (match[2] == "diff") {
        route = "/api/v1/experiments/{id}/diff";
        if (m != "GET") return method_not_allowed("GET");
        require_read();
        HttpAnswer a;
        a.content_type = "text/x-diff; charset=utf-8";
        a.body = experiment_diff(db_, id);
        return a;
      }
      route = "/api/v1/experiments/{id}/cancel";
      if (m != "POST") return method_not_allowed("POST");
      const TokenInfo who = require("submit");
      return json_answer(200, cancel_experiment(db_, id, config_.public_url, who.name, who.has_scope("admin")));
    }
    if (std::regex_match(p, match, kExperiment)) {
      route = "/api/v1/experiments/{id}";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      return json_answer(200, get_experiment(db_, parse_id(match[1], "experiment"), config_.public_url));
    }
    if (p == "/api/v1/releases") {
      route = "/api/v1/releases";
      if (m == "GET") {
        require_read();
        static const std::set<std::string> kStatuses{"pending", "passed", "blocked", "error", "cancelled"};
        return json_answer(200, list_releases(db_, query_opt(req, "repo"), query_opt(req, "status", kStatuses),
                                              query_limit(req, 50), config_.public_url));
      }
      if (m != "POST") return method_not_allowed("GET, POST");
      TokenInfo who = require("submit");
      json::object body = parse_body(req.body);
      ReleaseRequest rq;
      rq.name = req_string(body, "name", "the release's name, e.g. \"v1.1\"");
      rq.repo = req_string(body, "repo", "the name of a configured repository (GET /api/v1/repos)");
      rq.base = req_string(body, "base", "the last released revision (tag, branch or SHA)");
      rq.candidate = req_string(body, "candidate", "the revision to release (tag, branch or SHA)");
      rq.workflows = workflow_names(body);
      rq.owner = opt_string(body, "owner").value_or("");
      rq.owner_email = opt_string(body, "owner_email").value_or("");
      rq.created_by = who.name;
      json::object gate = create_release(config_, db_, mirrors_, rq);
      HttpAnswer a = json_answer(201, gate);
      a.headers.emplace_back("Location", "/api/v1/releases/" + rq.name);
      return a;
    }
    if (std::regex_match(p, match, kRelease)) {
      route = "/api/v1/releases/{name}";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      return json_answer(200, get_release(db_, match[1], config_.public_url));
    }
    if (p == "/api/v1/bisections") {
      route = "/api/v1/bisections";
      if (m == "GET") {
        require_read();
        static const std::set<std::string> kStatuses{"verifying", "searching", "found", "no_regression",
                                                     "unresolved", "broken", "error", "cancelled"};
        return json_answer(200, list_bisections(db_, query_opt(req, "repo"), query_opt(req, "status", kStatuses),
                                                query_limit(req, 50), config_.public_url));
      }
      if (m != "POST") return method_not_allowed("GET, POST");
      TokenInfo who = require("submit");
      json::object body = parse_body(req.body);
      BisectionRequest rq;
      rq.repo = req_string(body, "repo", "the name of a configured repository (GET /api/v1/repos)");
      rq.workflow = req_string(body, "workflow", "the workflow whose time to first batch regressed");
      rq.good_ref = req_string(body, "good", "a revision known to be fast (tag, branch or SHA)");
      rq.bad_ref = req_string(body, "bad", "a later revision known to be slow, on good's branch");
      rq.requested_by = who.name;
      const long id = start_bisection(config_, db_, mirrors_, rq);
      HttpAnswer a = json_answer(201, get_bisection(db_, id, config_.public_url));
      a.headers.emplace_back("Location", "/api/v1/bisections/" + std::to_string(id));
      return a;
    }
    if (std::regex_match(p, match, kBisection)) {
      route = "/api/v1/bisections/{id}";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      return json_answer(200, get_bisection(db_, parse_id(match[1], "bisection"), config_.public_url));
    }
    if (p == "/api/v1/alerts") {
      route = "/api/v1/alerts";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      static const std::set<std::string> kStatuses{"pending", "sending", "delivered", "failed", "unknown"};
      static const std::set<std::string> kKinds{"presubmit_regression", "culprit", "release_blocked"};
      alerts::AlertQuery q;
      q.status = query_opt(req, "status", kStatuses).value_or("");
      q.repo = query_opt(req, "repo").value_or("");
      q.kind = query_opt(req, "kind", kKinds).value_or("");
      q.limit = query_limit(req, 100);
      return json_answer(200, alerts::list_alerts(db_, q));
    }
    if (std::regex_match(p, match, kWorkflowHistory)) {
      route = "/api/v1/workflows/{name}/history";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      if (!config_.workflows.count(match[1]))
        throw ApiError(ErrorCode::not_found, "workflow '" + std::string(match[1]) + "' does not exist");
      return json_answer(200, workflow_history(db_, match[1], query_limit(req, 100), config_.public_url));
    }
    if (p == "/api/v1/jobs") {
      route = "/api/v1/jobs";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      static const std::set<std::string> kStates{"queued", "running", "done", "failed", "cancelled"};
      return json_answer(200, list_jobs(db_, query_opt(req, "state", kStates), query_limit(req, 100)));
    }
    if (p == "/api/v1/workers") {
      route = "/api/v1/workers";
      if (m != "GET") return method_not_allowed("GET");
      require_read();
      return json_answer(200, json::object{{"workers", list_workers(db_, config_.worker_alive_seconds)}});
    }
    if (p == "/api/v1/worker/claim") {
      route = "/api/v1/worker/claim";
      if (m != "POST") return method_not_allowed("POST");
      const TokenInfo who = require("worker");
      json::object body = parse_body(req.body);
      WorkerFacts facts = worker_facts(body);
      facts.name = worker_identity(who, facts.name);
      auto job = claim_job(db_, facts, config_.lease_seconds, config_.worker_alive_seconds);
      if (!job) {
        HttpAnswer a;
        a.status = 204;
        return a;
      }
      return json_answer(200, json::object{{"job", std::move(*job)}});
    }
    if (std::regex_match(p, match, kJobAction)) {
      std::string action = match[2];
      route = "/api/v1/worker/jobs/{id}/" + action;
      if (m != "POST") return method_not_allowed("POST");
      const TokenInfo who = require("worker");
      long id = parse_id(match[1], "job");
      json::object body = parse_body(req.body);
      const Lease lease = presented_lease(body, who);
      if (action == "heartbeat") {
        int done = static_cast<int>(opt_int(body, "done", 0, 1000000).value_or(0));
        heartbeat_job(db_, id, lease, config_.lease_seconds, done);
        return json_answer(200, json::object{{"lease_seconds", config_.lease_seconds}});
      }
      if (action == "samples") {
        const auto* s = body.if_contains("samples");
        if (!s || !s->is_array()) throw ApiError(ErrorCode::invalid_argument, "'samples' must be an array");
        auto counts = add_samples(db_, id, lease, s->as_array());
        metrics_.count_runs(counts.accepted);
        return json_answer(200, json::object{{"accepted", counts.accepted}, {"duplicates", counts.duplicates}});
      }
      if (action == "complete") {
        metrics_.observe_job_duration(complete_job(db_, id, lease));
        return json_answer(200, json::object{{"status", "done"}});
      }
      const auto* err = body.if_contains("error");
      if (!err || !err->is_object())
        throw ApiError(ErrorCode::invalid_argument, "'error' must be an object with 'code' and 'message'");
      // The arm that failed is kept in jobs.error for a bisection to name the broken commit: only
      // the two arms' names, so what lands there is one of them or nothing.
      if (const auto* arm = err->as_object().if_contains("arm");
          arm && !arm->is_null() && !(arm->is_string() && (arm->as_string() == "baseline" || arm->as_string() == "candidate")))
        throw ApiError(ErrorCode::invalid_argument, "'error.arm' must be \"baseline\" or \"candidate\" when given");
      bool retryable = false;
      if (const auto* r = body.if_contains("retryable"); r && r->is_bool()) retryable = r->as_bool();
      fail_job(db_, id, lease, err->as_object(), retryable);
      return json_answer(200, json::object{{"status", retryable ? "requeued_or_failed" : "failed"}});
    }
    route = "unmatched";
    throw ApiError(ErrorCode::not_found, "no such endpoint: " + m + " " + p);
  } catch (const ApiError& e) {
    if (e.code() == ErrorCode::internal || e.code() == ErrorCode::unavailable)
      spdlog::warn("{} {}: {} ({})", m, p, to_valid_utf8(e.what()), to_valid_utf8(e.details()));
    return json_answer(http_status(e.code()), error_json(e));
  } catch (const std::exception& e) {
    spdlog::error("{} {}: unexpected error: {}", m, p, to_valid_utf8(e.what()));
    return json_answer(500, error_json(ErrorCode::internal, "internal error"));
  }
}

}  // namespace ttfb
