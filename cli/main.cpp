// ttfb-lab: the command line of ttfb-lab.
//
//   ttfb-lab submit --repo example --base main --diff change.diff --workflow example-train --wait
//   ttfb-lab presubmit          ttfb-lab hook install --repo example --unreachable fail-open
//   ttfb-lab status 12          ttfb-lab wait 12          ttfb-lab repos          ttfb-lab workflows
//   ttfb-lab calibrate example-train      ttfb-lab workflows example-train
//   ttfb-lab release gate v1.1 --repo example --base v1.0 --candidate v1.1 --owner-email rc@example.com
//   ttfb-lab bisect --repo example --good v1.0 --bad v1.1 --workflow example-train
//   ttfb-lab releases     ttfb-lab bisections     ttfb-lab alerts --status failed
//
// The server comes from --server or TTFB_LAB_SERVER, the token from --token or TTFB_LAB_TOKEN
// (`./lab up` writes both into .lab/env). Exit codes: 0 no regression, 1 regression, 2 error,
// 3 inconclusive; for release gates 0 passed, 1 blocked, 2 error, 3 pending; for bisections
// 0 no regression, 1 culprit(s) found, 2 error, 3 running (cli/releases.hpp).
#include "cli/compare.hpp"
#include "cli/presubmit.hpp"
#include "cli/releases.hpp"
#include "cli/report.hpp"
#include "cli/text.hpp"
#include "common/errors.hpp"
#include "common/http_client.hpp"
#include "common/process.hpp"
#include "common/version.hpp"

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <sys/ioctl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

namespace po = boost::program_options;
namespace json = boost::json;
using ttfb::cli::kExitError;

namespace {

struct Common {
  std::string server;
  std::string token;
  bool json_output = false;
};

void add_common(po::options_description& d, Common& c) {
  d.add_options()("server", po::value(&c.server), "server URL (default: $TTFB_LAB_SERVER)")(
      "token", po::value(&c.token), "bearer token (default: $TTFB_LAB_TOKEN)")(
      "json", po::bool_switch(&c.json_output), "print the server's JSON instead of a table")("help,h", "show this help");
}

constexpr const char* kExitCodesHelp = "\nexit codes: 0 no regression, 1 regression, 2 error, 3 inconclusive\n";

// Parses a command's arguments into the variables its options are bound to. Returns false when
// --help was asked for (the options, and `help_footer`, are printed); throws po::error otherwise.
bool parse_args(const std::vector<std::string>& args, const po::options_description& d,
                const po::positional_options_description& pos, const std::string& help_footer = "") {
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(d).positional(pos).run(), vm);
  if (vm.count("help")) {
    std::cout << d << help_footer;
    return false;
  }
  po::notify(vm);
  return true;
}

ttfb::HttpClient client_for(Common& c) {
  if (c.server.empty()) {
    if (const char* s = std::getenv("TTFB_LAB_SERVER")) c.server = s;
  }
  if (c.token.empty()) {
    if (const char* t = std::getenv("TTFB_LAB_TOKEN")) c.token = t;
  }
  if (c.server.empty())
    throw std::runtime_error("no server given: pass --server URL or set TTFB_LAB_SERVER (after `./lab up`: source .lab/env)");
  return ttfb::HttpClient(c.server, c.token);
}

// The server's error as one line a person can act on.
[[noreturn]] void fail_with(const ttfb::HttpResponse& r, const std::string& what) {
  std::string message = r.body;
  json::error_code ec;
  auto v = json::parse(r.body, ec);
  if (!ec && v.is_object()) {
    if (const auto* e = v.as_object().if_contains("error"); e && e->is_object()) {
      const auto& eo = e->as_object();
      message = std::string(eo.at("message").as_string());
      if (const auto* d = eo.if_contains("details"); d && d->is_string() && !d->as_string().empty())
        message += "\n  " + std::string(d->as_string());
    }
  }
  throw std::runtime_error(what + " failed (HTTP " + std::to_string(r.status) + "): " + message);
}

json::object get_json(const ttfb::HttpClient& c, const std::string& target) {
  auto r = c.get(target);
  if (r.status != 200) fail_with(r, "GET " + target);
  return json::parse(r.body).as_object();
}

std::string read_diff(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read the diff file '" + path + "'");
    ss << in.rdbuf();
  }
  return ss.str();
}

// The progress line while waiting, on stderr: rewritten in place on a terminal (cut to its
// width, or \r could not return to its start), a new line every 10 s otherwise (CI logs).
class ProgressLine {
 public:
  void show(const std::string& line, bool last) {
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      std::cerr << "\r\033[K" << fit(line) << std::flush;
      if (last) std::cerr << "\n";
    } else if (last || now - last_line_ > std::chrono::seconds(10)) {
      std::cerr << line << "\n";
      last_line_ = now;
    }
  }
  // Before another message: ends a line left open on a terminal.
  void interrupt() const {
    if (tty_) std::cerr << "\n";
  }

 private:
  static std::string fit(const std::string& line) {
    winsize ws{};
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col < 10 || line.size() < ws.ws_col) return line;
    return line.substr(0, ws.ws_col - 4) + "...";
  }
  bool tty_ = isatty(STDERR_FILENO) != 0;
  std::chrono::steady_clock::time_point last_line_ = std::chrono::steady_clock::now() - std::chrono::hours(1);
};

struct Polled {
  json::object last;         // the last document fetched
  bool timed_out = false;    // `timeout_seconds` passed before it settled
};

// Fetches every `every` until `settled`, showing `progress` on stderr. The server may be
// restarting: transport failures are retried for a minute before giving up.
Polled poll(const std::function<json::object()>& fetch, const std::function<bool(const json::object&)>& settled,
            const std::function<std::string(const json::object&, double)>& progress, int timeout_seconds,
            std::chrono::milliseconds every) {
  const auto start = std::chrono::steady_clock::now();
  ProgressLine line;
  int transport_failures = 0;
  while (true) {
    json::object o;
    try {
      o = fetch();
      transport_failures = 0;
    } catch (const ttfb::TransportError& err) {
      if (++transport_failures > 30) throw;
      line.interrupt();
      std::cerr << err.what() << " (retrying)\n";
      std::this_thread::sleep_for(std::chrono::seconds(2));
      continue;
    }
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool done = settled(o);
    const bool out_of_time = !done && timeout_seconds > 0 && elapsed > timeout_seconds;
    line.show(progress(o, elapsed), done || out_of_time);
    if (done || out_of_time) return {std::move(o), out_of_time};
    std::this_thread::sleep_for(every);
  }
}

// Polls until the experiment has finished, showing progress on stderr.
json::object wait_for(const ttfb::HttpClient& c, long id, int timeout_seconds) {
  const std::string target = "/api/v1/experiments/" + std::to_string(id);
  auto finished = [](const json::object& e) {
    std::string status(e.at("status").as_string());
    return status == "done" || status == "error" || status == "cancelled";
  };
  Polled p = poll([&] { return get_json(c, target); }, finished, ttfb::cli::format_progress, timeout_seconds,
                  std::chrono::milliseconds(500));
  if (p.timed_out)
    throw std::runtime_error("gave up waiting for experiment " + std::to_string(id) + " after " +
                             std::to_string(timeout_seconds) + " s; it goes on: `ttfb-lab wait " + std::to_string(id) + "`");
  return p.last;
}

int show(const json::object& e, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(e) << "\n";
  } else {
    std::cout << ttfb::cli::format_experiment(e);
  }
  return ttfb::cli::exit_code(e);
}

// The server's answer when no workflow's footprint is touched by the diff: nothing was submitted.
// Says so (or prints the answer with --json) and returns true; false for any other answer.
bool skipped_by_footprint(const std::string& body, bool json_output) {
  json::error_code ec;
  const json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return false;
  const auto* status = v.as_object().if_contains("status");
  if (!status || !status->is_string() || status->as_string() != "skipped") return false;
  if (json_output) {
    std::cout << body << "\n";
  } else {
    const auto* m = v.as_object().if_contains("message");
    std::cerr << "ttfb-lab: " << (m && m->is_string() ? std::string(m->as_string()) : std::string("nothing to measure")) << "\n";
  }
  return true;
}

int cmd_submit(const std::vector<std::string>& args) {
  Common c;
  std::string repo, base, diff_path, candidate, author, title, change_url, purpose;
  std::string dependency, dependency_base, dependency_diff, dependency_candidate;
  std::vector<std::string> workflows, env, unset, prefix, interpreter;
  int runs = 0, wait_timeout = 0;
  bool wait = false;
  po::options_description d(
      "ttfb-lab submit: compare a diff (or a candidate revision, or the base run another way) against a base");
  d.add_options()("repo", po::value(&repo)->required(), "repository name (see `ttfb-lab repos`)")(
      "base", po::value(&base), "base revision: branch, tag or SHA (default: the repository's default branch)")(
      "diff", po::value(&diff_path), "unified diff file to apply on base, or - for standard input")(
      "candidate", po::value(&candidate), "candidate revision instead of a diff")(
      "env", po::value(&env), "NAME=VALUE set in the candidate's runs only (repeatable; with no --diff or "
      "--candidate the candidate is the base revision, run another way)")(
      "unset", po::value(&unset), "NAME removed from the candidate's runs' environment (repeatable)")(
      "prefix", po::value(&prefix), "a word put before the workflow's command in the candidate's runs, e.g. "
      "--prefix nice --prefix=-n --prefix 10 (repeatable, in order; =WORD for a word that starts with -)")(
      "interpreter", po::value(&interpreter), "a word in place of the command's first in the candidate's runs, e.g. "
      "--interpreter python3 --interpreter=-X --interpreter importtime (repeatable, in order)")(
      "dependency", po::value(&dependency), "a dependency experiment: the repository (a workflow's [[dependencies]]) "
      "whose change the candidate runs, with --dependency-diff or --dependency-candidate; both arms run the base "
      "revision of --repo, and the workflows are those that use it (default)")(
      "dependency-diff", po::value(&dependency_diff), "unified diff of the dependency, or - for standard input")(
      "dependency-candidate", po::value(&dependency_candidate), "the dependency's candidate revision")(
      "dependency-base", po::value(&dependency_base),
      "the dependency's baseline revision (default: the ref each workflow declares, else its default branch)")(
      "workflow,w", po::value(&workflows), "workflow to run (repeatable; default: all of the repository's)")(
      "author", po::value(&author), "who the change is by (name <e-mail>)")("title", po::value(&title), "the change's title")(
      "change-url", po::value(&change_url), "link to the change under review")(
      "purpose", po::value(&purpose),
      "presubmit (default) or release; for a release gate that bisects a regression use `ttfb-lab release gate`, "
      "for bisections `ttfb-lab bisect`, for calibrations `ttfb-lab calibrate`")(
      "runs", po::value(&runs), "a fixed design: this many runs per arm, one look at alpha, no confirmation rerun (default: adaptive blocks until the test decides)")(
      "wait", po::bool_switch(&wait), "wait for the verdict, showing progress, and exit by it")(
      "timeout", po::value(&wait_timeout), "with --wait: give up after this many seconds (default: never)");
  add_common(d, c);
  if (!parse_args(args, d, po::positional_options_description{}, kExitCodesHelp)) return 0;
  const bool runtime = !env.empty() || !unset.empty() || !prefix.empty() || !interpreter.empty();
  if (!diff_path.empty() && !candidate.empty())
    throw std::runtime_error("give one of --diff FILE (or --diff - for stdin) and --candidate REV, not both");
  if (dependency.empty() && (!dependency_diff.empty() || !dependency_candidate.empty() || !dependency_base.empty()))
    throw std::runtime_error("--dependency-diff, --dependency-candidate and --dependency-base need --dependency REPO");
  if (!dependency.empty() && dependency_diff.empty() == dependency_candidate.empty())
    throw std::runtime_error("with --dependency give one of --dependency-diff FILE and --dependency-candidate REV");
  if (diff_path.empty() && candidate.empty() && !runtime && dependency.empty())
    throw std::runtime_error("give --diff FILE (or --diff - for stdin), --candidate REV, what the candidate runs "
                             "differently (--env, --unset, --prefix, --interpreter), or a --dependency change");

  json::object body{{"repo", repo}};
  if (!env.empty() || !unset.empty()) {
    json::object e;
    for (const auto& kv : env) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw std::runtime_error("--env wants NAME=VALUE, not '" + kv + "'");
      e[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& name : unset) e[name] = nullptr;
    body["candidate_env"] = std::move(e);
  }
  auto words = [](const std::vector<std::string>& v) {
    json::array a;
    for (const auto& w : v) a.emplace_back(w);
    return a;
  };
  if (!prefix.empty()) body["candidate_command_prefix"] = words(prefix);
  if (!interpreter.empty()) body["candidate_interpreter"] = words(interpreter);
  if (!base.empty()) body["base"] = base;
  if (!diff_path.empty()) body["diff"] = read_diff(diff_path);
  if (!candidate.empty()) body["candidate"] = candidate;
  if (!dependency.empty()) {
    json::object dep{{"repo", dependency}};
    if (!dependency_diff.empty()) dep["diff"] = read_diff(dependency_diff);
    if (!dependency_candidate.empty()) dep["candidate"] = dependency_candidate;
    if (!dependency_base.empty()) dep["base"] = dependency_base;
    body["dependency"] = std::move(dep);
  }
  if (!workflows.empty()) {
    json::array w;
    for (const auto& x : workflows) w.emplace_back(x);
    body["workflows"] = std::move(w);
  }
  if (!author.empty()) body["author"] = author;
  if (!title.empty()) body["title"] = title;
  if (!change_url.empty()) body["change_url"] = change_url;
  if (!purpose.empty()) body["purpose"] = purpose;
  if (runs > 0) body["runs_per_arm"] = runs;

  auto client = client_for(c);
  auto r = client.post("/api/v1/experiments", json::serialize(body));
  if (r.status == 200 && skipped_by_footprint(r.body, c.json_output)) return 0;
  if (r.status != 201) fail_with(r, "submitting the experiment");
  auto created = json::parse(r.body).as_object();
  long id = created.at("id").as_int64();
  if (!wait) {
    if (c.json_output) {
      std::cout << r.body << "\n";
    } else {
      std::cout << "submitted experiment " << id << ": " << created.at("url").as_string().c_str() << "\n"
                << "wait for its verdict with: ttfb-lab wait " << id << "\n";
    }
    return 0;
  }
  std::cerr << "submitted experiment " << id << " (" << created.at("url").as_string().c_str() << ")\n";
  return show(wait_for(client, id, wait_timeout), c.json_output);
}

// ---- presubmit and the pre-push hook ------------------------------------------------------------

constexpr const char* kPresubmitHelp =
    "\nMeasures the change in this git checkout against its merge base with the upstream branch:\n"
    "the working tree (committed or not, new files included unless ignored), or with --commit the commits up to it.\n"
    "The server, token, repository and unreachable policy default to TTFB_LAB_SERVER, TTFB_LAB_TOKEN and\n"
    "git config ttfb-lab.server, ttfb-lab.token, ttfb-lab.repo, ttfb-lab.unreachable.\n"
    "exit codes: 0 no regression (or nothing to measure, or the server unreachable under fail-open),\n"
    "  1 regression, 2 error, 3 inconclusive\n";

// The server's repository this checkout is: the one named, else the one whose URL is a remote
// of this checkout, else the only one.
std::string pick_repo(const json::array& repos, const std::string& named) {
  std::vector<std::string> names;
  for (const auto& r : repos) names.emplace_back(r.as_object().at("name").as_string());
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  if (!named.empty()) {
    if (std::find(names.begin(), names.end(), named) == names.end())
      throw std::runtime_error("the server has no repository '" + named + "' (it has: " + known + ")");
    return named;
  }
  auto norm = [](std::string u) {
    while (!u.empty() && (u.back() == '/')) u.pop_back();
    if (u.size() > 4 && u.compare(u.size() - 4, 4, ".git") == 0) u.resize(u.size() - 4);
    return u;
  };
  for (const char* remote : {"origin", "upstream"}) {
    auto url = ttfb::cli::git_config(std::string("remote.") + remote + ".url");
    if (!url) continue;
    for (const auto& r : repos)
      if (norm(std::string(r.as_object().at("url").as_string())) == norm(*url)) return std::string(r.as_object().at("name").as_string());
  }
  if (names.size() == 1) return names.front();
  throw std::runtime_error("which repository is this? pass --repo NAME or `git config ttfb-lab.repo NAME` (the server has: " + known + ")");
}

void defaults_from_git(Common& c) {
  if (c.server.empty() && !std::getenv("TTFB_LAB_SERVER"))
    if (auto v = ttfb::cli::git_config("ttfb-lab.server")) c.server = *v;
  if (c.token.empty() && !std::getenv("TTFB_LAB_TOKEN"))
    if (auto v = ttfb::cli::git_config("ttfb-lab.token")) c.token = *v;
}

void write_file(const std::string& path, const std::string& text, bool append) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  out << text;
}

int cmd_presubmit(const std::vector<std::string>& args) {
  Common c;
  std::string repo, upstream, commit, unreachable, summary, junit;
  std::vector<std::string> workflows;
  int wait_timeout = 0;
  bool no_wait = false, hook = false;
  po::options_description d("ttfb-lab presubmit: measure this checkout's change before it is pushed");
  d.add_options()("repo", po::value(&repo), "the server's repository (default: git config ttfb-lab.repo, the remote's URL, or the only one)")(
      "upstream", po::value(&upstream), "compare with the merge base with this ref (default: @{upstream}, else origin/<default branch>)")(
      "commit", po::value(&commit), "measure the commits up to this one instead of the working tree")(
      "workflow,w", po::value(&workflows), "workflow to run (repeatable; default: git config ttfb-lab.workflow, else all of the repository's)")(
      "no-wait", po::bool_switch(&no_wait), "submit, print the experiment's address, and return")(
      "timeout", po::value(&wait_timeout), "give up waiting after this many seconds (exit 2; the experiment goes on)")(
      "unreachable", po::value(&unreachable), "when the server cannot be reached: fail-open (exit 0) or fail-closed (exit 2; the default)")(
      "summary", po::value(&summary), "append the verdict as a Markdown table to this file (e.g. $GITHUB_STEP_SUMMARY)")(
      "junit", po::value(&junit), "write the verdict as JUnit XML to this file (GitLab, Jenkins test reports)")(
      "hook", po::bool_switch(&hook), "run as the pre-push hook does (the unreachable policy defaults to fail-open)");
  add_common(d, c);
  if (!parse_args(args, d, po::positional_options_description{}, kPresubmitHelp)) return 0;
  if (unreachable.empty()) unreachable = ttfb::cli::git_config("ttfb-lab.unreachable").value_or(hook ? "fail-open" : "fail-closed");
  if (unreachable != "fail-open" && unreachable != "fail-closed")
    throw std::runtime_error("--unreachable must be fail-open or fail-closed, not '" + unreachable + "'");
  if (workflows.empty()) workflows = ttfb::cli::git_config_all("ttfb-lab.workflow");
  if (repo.empty()) {
    if (auto v = ttfb::cli::git_config("ttfb-lab.repo")) repo = *v;
    else if (const char* e = std::getenv("TTFB_LAB_REPO")) repo = e;
  }
  defaults_from_git(c);
  auto client = client_for(c);
  // The server is away: say so, and follow the policy.
  auto away = [&](const std::string& why) {
    std::cerr << "ttfb-lab presubmit: the server at " << c.server << " cannot be reached: " << why << "\n";
    if (unreachable == "fail-open") {
      std::cerr << "  not measured; going on anyway (policy fail-open)\n";
      return 0;
    }
    std::cerr << "  not measured; stopping here (policy fail-closed; TTFB_LAB_SKIP=1 skips the hook)\n";
    return kExitError;
  };
  json::array repos;
  try {
    auto r = client.get("/api/v1/repos");
    if (r.status == 503) return away("it answers 503 (its database is unavailable)");
    if (r.status != 200) fail_with(r, "GET /api/v1/repos");
    repos = json::parse(r.body).as_object().at("repos").as_array();
  } catch (const ttfb::TransportError& e) {
    return away(e.what());
  }
  repo = pick_repo(repos, repo);
  std::string default_branch = "main";
  for (const auto& r : repos)
    if (r.as_object().at("name").as_string() == repo) default_branch = std::string(r.as_object().at("default_branch").as_string());

  const ttfb::cli::Change change = ttfb::cli::change_in_checkout({upstream, "origin/" + default_branch, commit, ""});
  if (change.diff.empty()) {
    std::cerr << "ttfb-lab presubmit: nothing to measure: " << (commit.empty() ? "the working tree" : ttfb::cli::text::short_sha(change.head))
              << " has no change against " << ttfb::cli::text::short_sha(change.base) << " (the merge base with "
              << change.upstream << ")\n";
    return 0;
  }
  json::object body{{"repo", repo}, {"base", change.base}, {"diff", change.diff}, {"title", change.title}, {"purpose", "presubmit"}};
  if (!change.author.empty()) body["author"] = change.author;
  if (!workflows.empty()) {
    json::array w;
    for (const auto& x : workflows) w.emplace_back(x);
    body["workflows"] = std::move(w);
  }
  long diff_lines = std::count(change.diff.begin(), change.diff.end(), '\n');
  ttfb::HttpResponse r;
  try {
    r = client.post("/api/v1/experiments", json::serialize(body));
  } catch (const ttfb::TransportError& e) {
    return away(e.what());
  }
  if (r.status == 503) return away("it answers 503 (its database is unavailable)");
  if (r.status == 200 && skipped_by_footprint(r.body, c.json_output)) return 0;
  if (r.status != 201) fail_with(r, "submitting " + change.title);
  auto created = json::parse(r.body).as_object();
  const long id = created.at("id").as_int64();
  std::string server = c.server;
  while (!server.empty() && server.back() == '/') server.pop_back();
  const std::string dashboard = server + "/#/experiments/" + std::to_string(id);
  if (no_wait) {
    created["dashboard_url"] = dashboard;
    if (c.json_output) std::cout << json::serialize(created) << "\n";
    else std::cout << "submitted experiment " << id << ": " << dashboard << "\n  its verdict: ttfb-lab wait " << id << "\n";
    return 0;
  }
  std::cerr << "ttfb-lab: measuring \"" << change.title << "\" (" << diff_lines << " diff lines against "
            << ttfb::cli::text::short_sha(change.base) << ", the merge base with " << change.upstream << "): experiment " << id
            << ", " << dashboard << "\n";
  json::object e;
  try {
    e = wait_for(client, id, wait_timeout);
  } catch (const ttfb::TransportError& err) {
    return away(err.what());
  }
  e["dashboard_url"] = dashboard;
  if (!summary.empty()) write_file(summary, ttfb::cli::markdown_summary(e, dashboard), true);
  if (!junit.empty()) write_file(junit, ttfb::cli::junit_report(e, dashboard), false);
  if (c.json_output) {
    std::cout << json::serialize(e) << "\n";
  } else {
    std::cout << ttfb::cli::format_experiment(e) << "  dashboard: " << dashboard << "\n";
  }
  return ttfb::cli::exit_code(e);
}

int cmd_hook(const std::vector<std::string>& args) {
  if (args.empty() || (args[0] != "install" && args[0] != "uninstall"))
    throw std::runtime_error("usage: ttfb-lab hook install [--repo R] [--server URL] [--unreachable fail-open|fail-closed] [--force] | hook uninstall");
  const bool install = args[0] == "install";
  Common c;
  std::string repo, unreachable = "fail-open";
  std::vector<std::string> workflows;
  bool force = false;
  po::options_description d(install ? "ttfb-lab hook install: a git pre-push hook that refuses pushes that make start-up slower"
                                    : "ttfb-lab hook uninstall: remove the pre-push hook this command wrote");
  if (install)
    d.add_options()("repo", po::value(&repo), "the server's repository (saved as git config ttfb-lab.repo)")(
        "workflow,w", po::value(&workflows), "measure only this workflow (repeatable; saved as git config ttfb-lab.workflow)")(
        "unreachable", po::value(&unreachable), "when the server cannot be reached: fail-open (push anyway; the default) or fail-closed")(
        "force", po::bool_switch(&force), "replace a pre-push hook that is not ours (kept as pre-push.before-ttfb-lab)");
  add_common(d, c);
  if (!parse_args(std::vector<std::string>(args.begin() + 1, args.end()), d, po::positional_options_description{})) return 0;
  if (unreachable != "fail-open" && unreachable != "fail-closed")
    throw std::runtime_error("--unreachable must be fail-open or fail-closed, not '" + unreachable + "'");
  namespace fs = std::filesystem;
  fs::path dir;
  {
    ttfb::ProcessResult r = ttfb::run_process({"git", "rev-parse", "--path-format=absolute", "--git-path", "hooks"});
    if (!r.ok()) throw std::runtime_error("not inside a git checkout: " + r.output_tail(300));
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    dir = out;
  }
  const fs::path hook = dir / "pre-push";
  std::string existing;
  if (fs::exists(hook)) {
    std::ifstream in(hook);
    std::stringstream ss;
    ss << in.rdbuf();
    existing = ss.str();
  }
  if (!install) {
    if (existing.empty()) {
      std::cout << "no pre-push hook in " << dir.string() << "\n";
      return 0;
    }
    if (!ttfb::cli::is_our_hook(existing)) throw std::runtime_error(hook.string() + " is not ttfb-lab's hook; left as it is");
    fs::remove(hook);
    std::cout << "removed " << hook.string() << "\n";
    return 0;
  }
  if (!existing.empty() && !ttfb::cli::is_our_hook(existing)) {
    if (!force)
      throw std::runtime_error("a pre-push hook already exists at " + hook.string() +
                               " and is not ttfb-lab's: pass --force to replace it (it is kept as pre-push.before-ttfb-lab)");
    fs::rename(hook, dir / "pre-push.before-ttfb-lab");
  }
  fs::create_directories(dir);
  const std::string cli_path = fs::canonical("/proc/self/exe").string();
  write_file(hook.string(), ttfb::cli::pre_push_hook(cli_path), false);
  fs::permissions(hook, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
  auto set = [](const std::string& key, const std::string& value) {
    ttfb::ProcessResult r = ttfb::run_process({"git", "config", key, value});
    if (!r.ok()) throw std::runtime_error("git config " + key + ": " + r.output_tail(300));
  };
  set("ttfb-lab.unreachable", unreachable);
  if (!repo.empty()) set("ttfb-lab.repo", repo);
  if (!workflows.empty()) {
    ttfb::run_process({"git", "config", "--unset-all", "ttfb-lab.workflow"});
    for (const auto& w : workflows) {
      ttfb::ProcessResult r = ttfb::run_process({"git", "config", "--add", "ttfb-lab.workflow", w});
      if (!r.ok()) throw std::runtime_error("git config ttfb-lab.workflow: " + r.output_tail(300));
    }
  }
  if (!c.server.empty()) set("ttfb-lab.server", c.server);
  if (!c.token.empty()) set("ttfb-lab.token", c.token);  // readable by whoever reads .git/config
  std::cout << "installed " << hook.string() << " (running " << cli_path << ")\n"
            << "  each push is measured against its merge base; a confirmed regression refuses it\n"
            << "  server unreachable: " << unreachable << "; skip on purpose: TTFB_LAB_SKIP=1 git push\n";
  if (!c.token.empty())
    std::cerr << "note: the token is saved in plain text as git config ttfb-lab.token, readable by whoever can read\n"
              << "  this checkout's .git/config; TTFB_LAB_TOKEN in your environment keeps it out of the checkout\n";
  return 0;
}

int cmd_status_or_wait(const std::vector<std::string>& args, bool wait) {
  Common c;
  long id = 0;
  int wait_timeout = 0;
  po::options_description d(wait ? "ttfb-lab wait ID: wait for an experiment's verdict" : "ttfb-lab status ID: show an experiment");
  d.add_options()("id", po::value(&id)->required(), "experiment id");
  if (wait) d.add_options()("timeout", po::value(&wait_timeout), "give up after this many seconds");
  add_common(d, c);
  po::positional_options_description pos;
  pos.add("id", 1);
  if (!parse_args(args, d, pos)) return 0;
  auto client = client_for(c);
  json::object e = wait ? wait_for(client, id, wait_timeout) : get_json(client, "/api/v1/experiments/" + std::to_string(id));
  return show(e, c.json_output);
}

int cmd_list(const std::vector<std::string>& args, const std::string& what) {
  Common c;
  std::string name;
  po::options_description d(what == "workflows" ? "ttfb-lab workflows [NAME]: list the workflows, or show one with its "
                                                  "threshold and calibration"
                                                : "ttfb-lab " + what + ": list the server's " + what);
  if (what == "workflows") d.add_options()("name", po::value(&name), "a workflow to show");
  add_common(d, c);
  po::positional_options_description pos;
  if (what == "workflows") pos.add("name", 1);
  if (!parse_args(args, d, pos)) return 0;
  auto client = client_for(c);
  if (!name.empty()) {
    auto w = get_json(client, "/api/v1/workflows/" + name);
    std::cout << (c.json_output ? json::serialize(w) + "\n" : ttfb::cli::format_workflow(w));
    return 0;
  }
  auto o = get_json(client, "/api/v1/" + what);
  if (c.json_output) {
    std::cout << json::serialize(o) << "\n";
    return 0;
  }
  for (const auto& v : o.at(what).as_array()) {
    const auto& x = v.as_object();
    std::cout << x.at("name").as_string().c_str();
    if (what == "repos") std::cout << "  (" << x.at("default_branch").as_string().c_str() << ")  " << x.at("url").as_string().c_str();
    if (what == "workflows") {
      std::cout << "  repo " << x.at("repo").as_string().c_str();
      if (const auto* t = x.if_contains("threshold_pct"); t && t->is_number()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "  threshold %.2f%%%s", t->to_number<double>(),
                      x.at("calibrated").as_bool() ? " (calibrated)" : " (not calibrated)");
        std::cout << buf;
      }
      std::cout << "  " << x.at("description").as_string().c_str();
    }
    std::cout << "\n";
  }
  return 0;
}

// Starts an A/A calibration and (unless --no-wait) waits for it, showing the runs done.
int cmd_calibrate(const std::vector<std::string>& args) {
  Common c;
  std::string name, base;
  int runs = 0, batches = 0, timeout = 0;
  bool no_wait = false;
  po::options_description d(
      "ttfb-lab calibrate WORKFLOW: run A/A experiments (the same commit in both arms) and tune the workflow's\n"
      "threshold so that false alarms stay within its budget (ROC over resampled A/A experiments)");
  d.add_options()("workflow", po::value(&name)->required(), "workflow to calibrate")(
      "base", po::value(&base), "revision to measure (default: the repository's default branch)")(
      "runs", po::value(&runs), "runs per arm of each A/A batch (default: the workflow's calibration_runs_per_arm)")(
      "batches", po::value(&batches), "A/A batches (default: the workflow's calibration_batches)")(
      "no-wait", po::bool_switch(&no_wait), "start it and return")(
      "timeout", po::value(&timeout), "give up waiting after this many seconds (default: never)");
  add_common(d, c);
  po::positional_options_description pos;
  pos.add("workflow", 1);
  if (!parse_args(args, d, pos)) return 0;
  auto client = client_for(c);
  json::object body;
  if (!base.empty()) body["base"] = base;
  if (runs > 0) body["runs_per_arm"] = runs;
  if (batches > 0) body["batches"] = batches;
  auto r = client.post("/api/v1/workflows/" + name + "/calibrate", json::serialize(body));
  if (r.status != 202) fail_with(r, "calibrate " + name);
  json::object started = json::parse(r.body).as_object();
  const long id = started.at("calibration_id").as_int64();
  const long experiment = started.at("experiment_id").as_int64();
  std::cerr << "calibration " << id << " of " << name << " started: experiment " << experiment << "\n";
  if (no_wait) {
    if (c.json_output) std::cout << json::serialize(started) << "\n";
    return 0;
  }
  json::object e = wait_for(client, experiment, timeout);
  json::object w = get_json(client, "/api/v1/workflows/" + name);
  if (c.json_output) {
    std::cout << json::serialize(w) << "\n";
  } else {
    std::cout << ttfb::cli::format_workflow(w);
  }
  const auto& cal = w.at("calibration").as_object();
  const auto* cur = cal.if_contains("current");
  const bool done = cur && cur->is_object() && cur->as_object().at("id").as_int64() == id;
  if (!done) {
    std::cerr << "calibration " << id << " did not finish: experiment " << experiment << " is "
              << e.at("status").as_string().c_str() << "\n";
    return kExitError;
  }
  return 0;
}

int cmd_compare(const std::vector<std::string>& args) {
  std::string a, b, arm_a, arm_b;
  bool as_json = false;
  ttfb::stats::Policy policy;
  po::options_description d(
      "ttfb-lab compare A B: judge two files of TTFB samples measured elsewhere (B is the candidate)\n"
      "A file holds one number (ms) per line, or JSON: an array of numbers or the API's samples");
  d.add_options()("a", po::value(&a)->required(), "baseline samples file (- for stdin)")(
      "b", po::value(&b)->required(), "candidate samples file")(
      "alpha", po::value(&policy.alpha)->default_value(policy.alpha), "significance level")(
      "min-effect", po::value(&policy.min_effect_pct)->default_value(policy.min_effect_pct),
      "smallest slowdown (%) called a regression")(
      "margin", po::value(&policy.equivalence_margin_pct)->default_value(policy.equivalence_margin_pct),
      "equivalence margin (%) of the TOST reported beside the verdict")(
      "confidence", po::value(&policy.confidence)->default_value(policy.confidence), "level of the effect's interval")(
      "arm-a", po::value(&arm_a), "with the API's samples JSON: take this arm from A (e.g. baseline)")(
      "arm-b", po::value(&arm_b), "with the API's samples JSON: take this arm from B (e.g. candidate)")(
      "json", po::bool_switch(&as_json), "print JSON")("help,h", "show this help");
  po::positional_options_description pos;
  pos.add("a", 1).add("b", 1);
  if (!parse_args(args, d, pos, kExitCodesHelp)) return 0;
  auto base = ttfb::cli::read_samples(a, arm_a);
  auto cand = ttfb::cli::read_samples(b, arm_b);
  json::object c = ttfb::cli::compare_samples(base, cand, policy);
  if (as_json) {
    std::cout << json::serialize(c) << "\n";
  } else {
    std::cout << ttfb::cli::format_comparison(c, a, b);
  }
  std::string verdict(c.at("verdict").as_string());
  return verdict == "regression" ? ttfb::cli::kExitRegression
         : verdict == "inconclusive" ? ttfb::cli::kExitInconclusive
                                     : ttfb::cli::kExitNoRegression;
}

// --- release gates, bisections, alerts (issue 4) -------------------------------------------

constexpr const char* kReleaseExitCodesHelp =
    "\nexit codes: 0 passed, 1 blocked, 2 error or cancelled (also: a rejected request, an unreachable server,\n"
    "--timeout reached), 3 still pending (--no-wait, or `release status` without --wait)\n";
constexpr const char* kBisectExitCodesHelp =
    "\nexit codes: 0 no regression between good and bad, 1 culprit(s) found, 2 error, broken or cancelled (also: a\n"
    "rejected request, an unreachable server, --timeout reached), 3 still running (--no-wait, or `bisect status`\n"
    "without --wait)\n";

ttfb::cli::ReportStyle style_for(const Common& c) {
  return {.colour = !c.json_output && isatty(STDOUT_FILENO) != 0 && std::getenv("NO_COLOR") == nullptr};
}

void print(const json::object& o, const Common& c, const std::function<std::string(const json::object&)>& format) {
  std::cout << (c.json_output ? json::serialize(o) + "\n" : format(o));
}

json::object post_json(const ttfb::HttpClient& c, const std::string& target, const json::object& body, const std::string& what) {
  auto r = c.post(target, json::serialize(body));
  if (r.status < 200 || r.status > 299) fail_with(r, what);
  return json::parse(r.body).as_object();
}

// Detail for a progress line only: an HTTP error leaves it out instead of ending the wait.
std::optional<json::object> get_detail(const ttfb::HttpClient& c, const std::string& target) {
  auto r = c.get(target);
  if (r.status != 200) return std::nullopt;
  json::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// "?repo=example&limit=20" from the options given (empty values left out).
std::string query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params)
    if (!v.empty()) q += (q.empty() ? "?" : "&") + k + "=" + ttfb::cli::text::percent_encode(v);
  return q;
}

std::string release_target(const std::string& name) { return "/api/v1/releases/" + ttfb::cli::text::percent_encode(name); }
std::string bisection_target(long id) { return "/api/v1/bisections/" + std::to_string(id); }

// Waits until the gate is decided and the bisections it started have finished. While the gate
// is measured the progress line shows the experiment's looks; while bisections run, where each
// one stands (their full documents: the release carries summaries).
Polled wait_for_release(const ttfb::HttpClient& c, const std::string& name, int timeout_seconds) {
  std::optional<json::object> experiment;
  std::vector<json::object> running;
  auto fetch = [&] {
    json::object r = get_json(c, release_target(name));
    experiment.reset();
    running.clear();
    namespace text = ttfb::cli::text;
    if (const auto* e = text::object_field(r, "experiment"); e && !ttfb::cli::release_decided(r))
      if (auto id = text::num(*e, "id")) experiment = get_detail(c, "/api/v1/experiments/" + std::to_string(static_cast<long>(*id)));
    if (const auto* bs = text::array_field(r, "bisections"))
      for (const auto& v : *bs) {
        if (!v.is_object() || ttfb::cli::bisection_finished(v.as_object())) continue;
        if (auto id = text::num(v.as_object(), "id"))
          if (auto full = get_detail(c, bisection_target(static_cast<long>(*id)))) running.push_back(std::move(*full));
      }
    return r;
  };
  auto progress = [&](const json::object& r, double elapsed) {
    return ttfb::cli::format_release_progress(r, elapsed, experiment ? &*experiment : nullptr, running);
  };
  return poll(fetch, ttfb::cli::release_settled, progress, timeout_seconds, std::chrono::seconds(2));
}

Polled wait_for_bisection(const ttfb::HttpClient& c, long id, int timeout_seconds) {
  return poll([&] { return get_json(c, bisection_target(id)); }, ttfb::cli::bisection_finished,
              ttfb::cli::format_bisection_progress, timeout_seconds, std::chrono::seconds(2));
}

// Prints what the wait ended with and exits by it; --timeout reached is an error, with the
// command that picks the wait up again.
int finish_release(const Polled& p, const Common& c, const std::string& name, int timeout_seconds) {
  const auto style = style_for(c);
  print(p.last, c, [&](const json::object& r) { return ttfb::cli::format_release(r, style); });
  if (p.timed_out) {
    std::cerr << "gave up waiting after " << timeout_seconds << " s; the gate goes on: `ttfb-lab release status " << name
              << " --wait`\n";
    return kExitError;
  }
  return ttfb::cli::release_exit_code(p.last);
}

int finish_bisection(const Polled& p, const Common& c, long id, int timeout_seconds) {
  const auto style = style_for(c);
  print(p.last, c, [&](const json::object& b) { return ttfb::cli::format_bisection(b, style); });
  if (p.timed_out) {
    std::cerr << "gave up waiting after " << timeout_seconds << " s; the bisection goes on: `ttfb-lab bisect status " << id
              << " --wait`\n";
    return kExitError;
  }
  return ttfb::cli::bisection_exit_code(p.last);
}

int cmd_release_gate(const std::vector<std::string>& args) {
  Common c;
  std::string name, repo, base, candidate, owner, owner_email;
  std::vector<std::string> workflows;
  bool no_wait = false;
  int timeout = 0;
  po::options_description d(
      "ttfb-lab release gate NAME: measure a release candidate against its base over the repository's workflows.\n"
      "A confirmed regression blocks the release and starts a bisection per regressed workflow, whose culprits\n"
      "(and the owner) are alerted. Waits until the gate is decided and its bisections have finished");
  d.add_options()("name", po::value(&name)->required(), "the release's name, unique (e.g. v1.1)")(
      "repo", po::value(&repo)->required(), "repository name (see `ttfb-lab repos`)")(
      "base", po::value(&base)->required(), "the release to compare with: branch, tag or SHA")(
      "candidate", po::value(&candidate)->required(), "the release candidate: branch, tag or SHA")(
      "workflow,w", po::value(&workflows), "workflow to gate on (repeatable; default: all of the repository's)")(
      "owner", po::value(&owner), "who owns the release (told when it is blocked)")(
      "owner-email", po::value(&owner_email), "the owner's e-mail")(
      "no-wait", po::bool_switch(&no_wait), "create the gate and return (exit 3 while it is pending)")(
      "timeout", po::value(&timeout), "give up waiting after this many seconds (exit 2; the gate goes on)");
  add_common(d, c);
  po::positional_options_description pos;
  pos.add("name", 1);
  if (!parse_args(args, d, pos, kReleaseExitCodesHelp)) return 0;

  json::object body{{"name", name}, {"repo", repo}, {"base", base}, {"candidate", candidate}};
  if (!workflows.empty()) body["workflows"] = json::array(workflows.begin(), workflows.end());
  if (!owner.empty()) body["owner"] = owner;
  if (!owner_email.empty()) body["owner_email"] = owner_email;
  auto client = client_for(c);
  auto answer = client.post("/api/v1/releases", json::serialize(body));
  if (answer.status == 409) {
    try {
      fail_with(answer, "creating release gate " + name);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string(e.what()) + "\n  to follow the existing gate: ttfb-lab release status " + name + " --wait");
    }
  }
  if (answer.status < 200 || answer.status > 299) fail_with(answer, "creating release gate " + name);
  json::object created = json::parse(answer.body).as_object();
  if (no_wait) {
    print(created, c, [&](const json::object& r) { return ttfb::cli::format_release(r, style_for(c)); });
    std::cerr << "follow it with: ttfb-lab release status " << name << " --wait\n";
    return ttfb::cli::release_exit_code(created);
  }
  std::cerr << "release gate " << name << " created: " << ttfb::cli::text::field(created, "dashboard_url") << "\n";
  return finish_release(wait_for_release(client, name, timeout), c, name, timeout);
}

int cmd_release_status(const std::vector<std::string>& args) {
  Common c;
  std::string name;
  bool wait = false;
  int timeout = 0;
  po::options_description d("ttfb-lab release status NAME: show a release gate, its workflows' verdicts and its bisections");
  d.add_options()("name", po::value(&name)->required(), "the release's name")(
      "wait", po::bool_switch(&wait), "wait until the gate is decided and its bisections have finished, showing progress")(
      "timeout", po::value(&timeout), "with --wait: give up after this many seconds (exit 2)");
  add_common(d, c);
  po::positional_options_description pos;
  pos.add("name", 1);
  if (!parse_args(args, d, pos, kReleaseExitCodesHelp)) return 0;
  auto client = client_for(c);
  if (wait) return finish_release(wait_for_release(client, name, timeout), c, name, timeout);
  return finish_release(Polled{get_json(client, release_target(name))}, c, name, timeout);
}

void release_usage() {
  std::cout << "usage: ttfb-lab release gate NAME --repo R --base REF --candidate REF [--workflow W]... [--owner NAME]\n"
               "                              [--owner-email E] [--no-wait] [--timeout SECONDS]\n"
               "       ttfb-lab release status NAME [--wait] [--timeout SECONDS]\n\n"
               "  gate    measure a release candidate against its base; a regression blocks it and is bisected\n"
               "  status  show a release gate (--wait: until it is decided and its bisections have finished)\n\n"
               "`ttfb-lab releases` lists them; `ttfb-lab release gate --help` shows the options."
            << kReleaseExitCodesHelp;
}

int cmd_release(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    release_usage();
    return args.empty() ? kExitError : 0;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "gate") return cmd_release_gate(rest);
  if (args[0] == "status") return cmd_release_status(rest);
  std::cerr << "ttfb-lab release: unknown subcommand '" << args[0] << "'\n\n";
  release_usage();
  return kExitError;
}

int cmd_bisect_status(const std::vector<std::string>& args) {
  Common c;
  long id = 0;
  bool wait = false;
  int timeout = 0;
  po::options_description d("ttfb-lab bisect status ID: show a bisection: culprits, broken commits, what it measured, its cost");
  d.add_options()("id", po::value(&id)->required(), "bisection id")(
      "wait", po::bool_switch(&wait), "wait until it has finished, showing progress")(
      "timeout", po::value(&timeout), "with --wait: give up after this many seconds (exit 2)");
  add_common(d, c);
  po::positional_options_description pos;
  pos.add("id", 1);
  if (!parse_args(args, d, pos, kBisectExitCodesHelp)) return 0;
  auto client = client_for(c);
  if (wait) return finish_bisection(wait_for_bisection(client, id, timeout), c, id, timeout);
  return finish_bisection(Polled{get_json(client, bisection_target(id))}, c, id, timeout);
}

int cmd_bisect(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "status") return cmd_bisect_status({args.begin() + 1, args.end()});
  Common c;
  std::string repo, good, bad, workflow;
  bool no_wait = false;
  int timeout = 0;
  po::options_description d(
      "ttfb-lab bisect: find the commit(s) between a good and a bad revision that made a workflow slower.\n"
      "Verifies that bad is slower than good, then probes the first-parent range; commits that do not build\n"
      "or run are skipped. Waits for the culprits (`ttfb-lab bisect status ID` shows one later)");
  d.add_options()("repo", po::value(&repo)->required(), "repository name (see `ttfb-lab repos`)")(
      "good", po::value(&good)->required(), "a revision that is fast: branch, tag or SHA")(
      "bad", po::value(&bad)->required(), "a later revision that is slow")(
      "workflow,w", po::value(&workflow)->required(), "the workflow that regressed")(
      "no-wait", po::bool_switch(&no_wait), "start it and return (exit 3 while it runs)")(
      "timeout", po::value(&timeout), "give up waiting after this many seconds (exit 2; the bisection goes on)");
  add_common(d, c);
  if (!parse_args(args, d, po::positional_options_description{}, kBisectExitCodesHelp)) return 0;
  json::object body{{"repo", repo}, {"good", good}, {"bad", bad}, {"workflow", workflow}};
  auto client = client_for(c);
  json::object created = post_json(client, "/api/v1/bisections", body, "starting the bisection");
  const auto id_value = ttfb::cli::text::num(created, "id");
  if (!id_value) throw std::runtime_error("the server's answer has no bisection id: " + json::serialize(created));
  const long id = static_cast<long>(*id_value);
  if (no_wait) {
    print(created, c, [&](const json::object& b) { return ttfb::cli::format_bisection(b, style_for(c)); });
    std::cerr << "follow it with: ttfb-lab bisect status " << id << " --wait\n";
    return ttfb::cli::bisection_exit_code(created);
  }
  std::cerr << "bisection " << id << " started: " << ttfb::cli::text::field(created, "dashboard_url") << "\n";
  return finish_bisection(wait_for_bisection(client, id, timeout), c, id, timeout);
}

// `releases`, `bisections` and `alerts`: GET the list with the filters given, print it as a table.
int cmd_list_filtered(const std::vector<std::string>& args, const std::string& what) {
  Common c;
  std::string repo, status, kind;
  int limit = 0;
  const char* statuses = what == "releases"     ? "pending, passed, blocked, error, cancelled"
                         : what == "bisections" ? "verifying, searching, found, no_regression, broken, error, cancelled"
                                                : "pending, sending, delivered, failed, unknown";
  po::options_description d(what == "releases"     ? "ttfb-lab releases: list release gates, newest first"
                            : what == "bisections" ? "ttfb-lab bisections: list bisections, newest first"
                                                   : "ttfb-lab alerts: list the alerts sent (or being sent) about "
                                                     "regressions: to whom, how, and whether they arrived");
  d.add_options()("repo", po::value(&repo), "only this repository's")(
      "status", po::value(&status), (std::string("only those with this status: ") + statuses).c_str());
  if (what == "alerts") d.add_options()("kind", po::value(&kind), "only this kind: culprit, presubmit_regression, release_blocked");
  d.add_options()("limit", po::value(&limit), "at most this many (the server's default: 50)");
  add_common(d, c);
  if (!parse_args(args, d, po::positional_options_description{})) return 0;
  auto client = client_for(c);
  const std::string target =
      "/api/v1/" + what + query({{"repo", repo}, {"status", status}, {"kind", kind}, {"limit", limit > 0 ? std::to_string(limit) : ""}});
  const json::object list = get_json(client, target);
  print(list, c, what == "releases"     ? ttfb::cli::format_releases
                 : what == "bisections" ? ttfb::cli::format_bisections
                                        : ttfb::cli::format_alerts);
  return 0;
}

void usage() {
  std::cout << "usage: ttfb-lab COMMAND [options]\n\n"
               "commands:\n"
               "  submit     compare a diff or candidate revision against a base (--wait for the verdict)\n"
               "  presubmit  measure this git checkout's change against its merge base, and wait for the verdict\n"
               "  hook install  a git pre-push hook that refuses a push that makes start-up slower\n"
               "  status ID  show an experiment's state and results\n"
               "  wait ID    wait for an experiment's verdict, showing progress\n"
               "  repos      list repositories\n"
               "  workflows [NAME]  list workflows, or show one with its threshold and calibration\n"
               "  calibrate W  run A/A experiments and tune W's threshold to its false-positive budget\n"
               "  compare A B  judge two files of samples measured elsewhere (like benchstat)\n"
               "  release gate NAME  gate a release candidate against its base; a regression is bisected\n"
               "  release status NAME  show a release gate (--wait for its decision and bisections)\n"
               "  releases   list release gates\n"
               "  bisect     find the commit(s) that made a workflow slower between --good and --bad\n"
               "  bisect status ID  show a bisection (--wait for its culprits)\n"
               "  bisections list bisections\n"
               "  alerts     list the alerts about regressions and whether they were delivered\n"
               "  version    print this CLI's version (also --version)\n\n"
               "`ttfb-lab COMMAND --help` shows a command's options. The server and token come from\n"
               "--server/--token or TTFB_LAB_SERVER/TTFB_LAB_TOKEN.\n"
               "exit codes: 0 no regression, 1 regression, 2 error, 3 inconclusive;\n"
               "  release: 0 passed, 1 blocked, 2 error, 3 pending; bisect: 0 no regression, 1 culprit(s), 2 error, 3 running\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    usage();
    return argc < 2 ? kExitError : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "version") {
    std::cout << "ttfb-lab " << ttfb::kVersion << "\n";
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "submit") return cmd_submit(args);
    if (cmd == "presubmit") return cmd_presubmit(args);
    if (cmd == "hook") return cmd_hook(args);
    if (cmd == "status") return cmd_status_or_wait(args, false);
    if (cmd == "wait") return cmd_status_or_wait(args, true);
    if (cmd == "repos" || cmd == "workflows") return cmd_list(args, cmd);
    if (cmd == "compare") return cmd_compare(args);
    if (cmd == "calibrate") return cmd_calibrate(args);
    if (cmd == "release") return cmd_release(args);
    if (cmd == "bisect") return cmd_bisect(args);
    if (cmd == "releases" || cmd == "bisections" || cmd == "alerts") return cmd_list_filtered(args, cmd);
    std::cerr << "ttfb-lab: unknown command '" << cmd << "'\n\n";
    usage();
    return kExitError;
  } catch (const ttfb::TransportError& e) {
    std::cerr << "ttfb-lab " << cmd << ": " << e.what()
              << "\n  is the server running? Check the URL in TTFB_LAB_SERVER or --server (locally: ./lab status, ./lab up)\n";
    return kExitError;
  } catch (const po::error& e) {
    std::cerr << "ttfb-lab " << cmd << ": " << e.what() << " (see `ttfb-lab " << cmd << " --help`)\n";
    return kExitError;
  } catch (const std::exception& e) {
    std::cerr << "ttfb-lab " << cmd << ": " << e.what() << "\n";
    return kExitError;
  }
}
