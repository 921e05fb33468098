// ttfb-lab: the command line of ttfb-lab.
//
//   ttfb-lab submit --repo example --base main --diff change.diff --workflow example-train --wait
//   ttfb-lab status 12          ttfb-lab wait 12          ttfb-lab repos          ttfb-lab workflows
//   ttfb-lab calibrate example-train      ttfb-lab workflows example-train
//
// The server comes from --server or TTFB_LAB_SERVER, the token from --token or TTFB_LAB_TOKEN
// (`./lab up` writes both into .lab/env). Exit codes: 0 no regression, 1 regression, 2 error,
// 3 inconclusive.
#include "cli/compare.hpp"
#include "cli/report.hpp"
#include "common/errors.hpp"
#include "common/http_client.hpp"

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
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

// Polls until the experiment has finished, showing progress on stderr.
json::object wait_for(const ttfb::HttpClient& c, long id, int timeout_seconds) {
  auto start = std::chrono::steady_clock::now();
  bool tty = isatty(STDERR_FILENO);
  auto last_line = start - std::chrono::hours(1);
  int transport_failures = 0;
  while (true) {
    json::object e;
    try {
      e = get_json(c, "/api/v1/experiments/" + std::to_string(id));
      transport_failures = 0;
    } catch (const ttfb::TransportError& err) {
      // The server may be restarting: keep waiting a while before giving up.
      if (++transport_failures > 30) throw;
      std::cerr << "\n" << err.what() << " (retrying)\n";
      std::this_thread::sleep_for(std::chrono::seconds(2));
      continue;
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string status(e.at("status").as_string());
    bool finished = status == "done" || status == "error" || status == "cancelled";
    auto now = std::chrono::steady_clock::now();
    if (tty) {
      std::cerr << "\r\033[K" << ttfb::cli::format_progress(e, elapsed) << std::flush;
      if (finished) std::cerr << "\n";
    } else if (finished || now - last_line > std::chrono::seconds(10)) {
      std::cerr << ttfb::cli::format_progress(e, elapsed) << "\n";
      last_line = now;
    }
    if (finished) return e;
    if (timeout_seconds > 0 && elapsed > timeout_seconds)
      throw std::runtime_error("gave up waiting for experiment " + std::to_string(id) + " after " +
                               std::to_string(timeout_seconds) + " s; it goes on: `ttfb-lab wait " + std::to_string(id) + "`");
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int show(const json::object& e, bool as_json) {
  if (as_json) {
    std::cout << json::serialize(e) << "\n";
  } else {
    std::cout << ttfb::cli::format_experiment(e);
  }
  return ttfb::cli::exit_code(e);
}

int cmd_submit(const std::vector<std::string>& args) {
  Common c;
  std::string repo, base, diff_path, candidate, author, title, change_url, purpose;
  std::vector<std::string> workflows;
  int runs = 0, wait_timeout = 0;
  bool wait = false;
  po::options_description d("ttfb-lab submit: compare a diff (or a candidate revision) against a base");
  d.add_options()("repo", po::value(&repo)->required(), "repository name (see `ttfb-lab repos`)")(
      "base", po::value(&base), "base revision: branch, tag or SHA (default: the repository's default branch)")(
      "diff", po::value(&diff_path), "unified diff file to apply on base, or - for standard input")(
      "candidate", po::value(&candidate), "candidate revision instead of a diff")(
      "workflow,w", po::value(&workflows), "workflow to run (repeatable; default: all of the repository's)")(
      "author", po::value(&author), "who the change is by (name <e-mail>)")("title", po::value(&title), "the change's title")(
      "change-url", po::value(&change_url), "link to the change under review")(
      "purpose", po::value(&purpose), "presubmit (default), release, bisect, calibration")(
      "runs", po::value(&runs), "a fixed design: this many runs per arm, one look at alpha, no confirmation rerun (default: adaptive blocks until the test decides)")(
      "wait", po::bool_switch(&wait), "wait for the verdict, showing progress, and exit by it")(
      "timeout", po::value(&wait_timeout), "with --wait: give up after this many seconds (default: never)");
  add_common(d, c);
  if (!parse_args(args, d, po::positional_options_description{}, kExitCodesHelp)) return 0;
  if (diff_path.empty() == candidate.empty())
    throw std::runtime_error("give exactly one of --diff FILE (or --diff - for stdin) and --candidate REV");

  json::object body{{"repo", repo}};
  if (!base.empty()) body["base"] = base;
  if (!diff_path.empty()) body["diff"] = read_diff(diff_path);
  if (!candidate.empty()) body["candidate"] = candidate;
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

void usage() {
  std::cout << "usage: ttfb-lab COMMAND [options]\n\n"
               "commands:\n"
               "  submit     compare a diff or candidate revision against a base (--wait for the verdict)\n"
               "  status ID  show an experiment's state and results\n"
               "  wait ID    wait for an experiment's verdict, showing progress\n"
               "  repos      list repositories\n"
               "  workflows [NAME]  list workflows, or show one with its threshold and calibration\n"
               "  calibrate W  run A/A experiments and tune W's threshold to its false-positive budget\n"
               "  compare A B  judge two files of samples measured elsewhere (like benchstat)\n\n"
               "`ttfb-lab COMMAND --help` shows a command's options. The server and token come from\n"
               "--server/--token or TTFB_LAB_SERVER/TTFB_LAB_TOKEN.\n"
               "exit codes: 0 no regression, 1 regression, 2 error, 3 inconclusive\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    usage();
    return argc < 2 ? kExitError : 0;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (cmd == "submit") return cmd_submit(args);
    if (cmd == "status") return cmd_status_or_wait(args, false);
    if (cmd == "wait") return cmd_status_or_wait(args, true);
    if (cmd == "repos" || cmd == "workflows") return cmd_list(args, cmd);
    if (cmd == "compare") return cmd_compare(args);
    if (cmd == "calibrate") return cmd_calibrate(args);
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
