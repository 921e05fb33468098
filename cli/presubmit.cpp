#include "cli/presubmit.hpp"

#include "cli/text.hpp"
#include "common/process.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace ttfb::cli {
namespace {
namespace json = boost::json;
using namespace ttfb::cli::text;

constexpr const char* kHookMarker = "# ttfb-lab pre-push hook";

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// git in the checkout; throws with git's own words. `index`: a GIT_INDEX_FILE to use instead.
std::string git(const std::vector<std::string>& args, const std::string& cwd, const std::string& what,
                const std::string& index = "") {
  std::vector<std::string> argv{"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions o;
  o.cwd = cwd;
  if (!index.empty()) {
    auto env = current_environment();
    env["GIT_INDEX_FILE"] = index;
    o.env = std::move(env);
  }
  o.max_output_bytes = 64u << 20;  // a diff may be large; the server caps what it accepts
  ProcessResult r = run_process(argv, o);
  if (!r.ok()) throw std::runtime_error(what + ": " + trim(r.output_tail(600)));
  return r.out;
}

// True when git exits 0 (with `index` as GIT_INDEX_FILE): for --quiet questions.
bool succeeds(const std::vector<std::string>& args, const std::string& cwd, const std::string& index) {
  try {
    git(args, cwd, "", index);
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

std::optional<std::string> try_git(const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> argv{"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessOptions o;
  o.cwd = cwd;
  ProcessResult r = run_process(argv, o);
  if (!r.ok()) return std::nullopt;
  return trim(r.out);
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}

struct Row {
  std::string workflow, verdict, effect, p, threshold, phases, reason;
  bool confirmed = false;
};

std::vector<Row> rows_of(const json::object& e) {
  std::vector<Row> rows;
  if (const auto* ws = array_field(e, "workflows")) {
    for (const auto& wv : *ws) {
      const auto& w = wv.as_object();
      Row r;
      r.workflow = field(w, "workflow");
      r.verdict = field(w, "verdict", field(w, "state"));
      if (const auto* res = object_field(w, "result")) {
        r.effect = format_effect(num(*res, "effect_pct"), num(*res, "ci_low_pct"), num(*res, "ci_high_pct"));
        r.p = num(*res, "p_value") ? format_p(*num(*res, "p_value")) : "-";
        r.threshold = num(*res, "threshold_pct") ? fmt("%.1f%%", *num(*res, "threshold_pct")) : "-";
        r.phases = field(*res, "phase_summary", "");
        r.reason = field(*res, "reason", "");
        if (const auto* c = res->if_contains("confirmed"); c && c->is_bool()) r.confirmed = c->as_bool();
      }
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

}  // namespace

std::optional<std::string> git_config(const std::string& key, const std::string& cwd) {
  auto v = try_git({"config", "--get", key}, cwd);
  if (!v || v->empty()) return std::nullopt;
  return v;
}

std::vector<std::string> git_config_all(const std::string& key, const std::string& cwd) {
  std::vector<std::string> out;
  auto v = try_git({"config", "--get-all", key}, cwd);
  if (!v) return out;
  std::istringstream in(*v);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

Change change_in_checkout(const ChangeRequest& rq) {
  Change c;
  c.top = trim(git({"rev-parse", "--show-toplevel"}, rq.cwd, "not inside a git checkout"));
  const std::string cwd = c.top;
  c.upstream = rq.upstream;
  if (c.upstream.empty()) {
    if (auto u = try_git({"rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}"}, cwd)) c.upstream = *u;
  }
  if (c.upstream.empty()) c.upstream = rq.fallback_upstream;
  if (c.upstream.empty())
    throw std::runtime_error("no upstream branch to compare with: pass --upstream REF, or set one (git branch --set-upstream-to origin/main)");
  const std::string upstream_sha =
      trim(git({"rev-parse", "--verify", "--quiet", c.upstream + "^{commit}"}, cwd, "the upstream '" + c.upstream + "' is not a commit here"));
  if (!rq.commit.empty()) {
    c.head = trim(git({"rev-parse", "--verify", "--quiet", rq.commit + "^{commit}"}, cwd, "unknown commit '" + rq.commit + "'"));
  } else {
    c.head = trim(git({"rev-parse", "--verify", "HEAD^{commit}"}, cwd, "the checkout has no commit yet"));
  }
  c.base = trim(git({"merge-base", c.head, upstream_sha}, cwd, "no merge base of " + short_sha(c.head) + " and " + c.upstream));
  if (!rq.commit.empty()) {
    c.diff = git({"diff", "--binary", "--no-color", "--no-ext-diff", c.base, c.head}, cwd, "git diff");
    c.title = trim(git({"log", "-1", "--format=%s", c.head}, cwd, "git log"));
    c.author = trim(git({"log", "-1", "--format=%an <%ae>", c.head}, cwd, "git log"));
  } else {
    // The files as they are on disk (staged or not, and new files git does not ignore) against
    // the merge base, through a copy of the index: the checkout's own index is left alone.
    const std::string index = trim(git({"rev-parse", "--path-format=absolute", "--git-path", "index"}, cwd, "git rev-parse"));
    char tmpl[] = "/tmp/ttfb-lab-index-XXXXXX";
    const int fd = mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("cannot create a temporary index file");
    ::close(fd);
    const std::string copy = tmpl;
    struct Remove {
      std::string path;
      ~Remove() { std::filesystem::remove(path); }
    } remove_copy{copy};
    if (std::filesystem::exists(index))
      std::filesystem::copy_file(index, copy, std::filesystem::copy_options::overwrite_existing);
    else
      std::filesystem::remove(copy);
    git({"add", "-A", "."}, cwd, "git add (to a temporary index)", copy);
    c.diff = git({"diff", "--cached", "--binary", "--no-color", "--no-ext-diff", c.base}, cwd, "git diff", copy);
    // Anything on disk that HEAD does not have (exit 1 of --quiet: they differ), from the same
    // temporary index rather than a second full diff.
    c.uncommitted = !succeeds({"diff", "--cached", "--quiet", c.head}, cwd, copy);
    std::string branch = try_git({"rev-parse", "--abbrev-ref", "HEAD"}, cwd).value_or("HEAD");
    c.title = (c.uncommitted ? "working tree of " : "") + branch + " at " + short_sha(c.head);
    if (!c.uncommitted) {
      if (auto s = try_git({"log", "-1", "--format=%s", c.head}, cwd); s && c.head != c.base) c.title = *s;
    }
    const auto name = git_config("user.name", cwd), email = git_config("user.email", cwd);
    if (name || email) c.author = name.value_or("") + (email ? " <" + *email + ">" : "");
  }
  return c;
}

std::string pre_push_hook(const std::string& cli_path) {
  std::ostringstream out;
  out << "#!/bin/sh\n"
      << kHookMarker << " (written by `ttfb-lab hook install`; reinstall to update).\n"
      << "# For each ref pushed, measures its commits against the merge base with the upstream branch and\n"
      << "# refuses the push on a confirmed start-up regression. Skip on purpose: TTFB_LAB_SKIP=1 git push\n"
      << "# Server, token, repository and the policy when the server cannot be reached come from\n"
      << "# TTFB_LAB_SERVER / TTFB_LAB_TOKEN or git config ttfb-lab.server, ttfb-lab.token, ttfb-lab.repo,\n"
      << "# ttfb-lab.unreachable (fail-open: push anyway; fail-closed: refuse).\n"
      << "if [ \"${TTFB_LAB_SKIP:-0}\" = \"1\" ]; then\n"
      << "  echo \"ttfb-lab: skipped on purpose (TTFB_LAB_SKIP=1)\" >&2\n"
      << "  exit 0\n"
      << "fi\n"
      << "cli='" << cli_path << "'\n"
      << "[ -x \"$cli\" ] || cli=ttfb-lab\n"
      << "zero=0000000000000000000000000000000000000000\n"
      << "refuse=0\n"
      << "while read -r local_ref local_sha remote_ref remote_sha; do\n"
      << "  [ \"$local_sha\" = \"$zero\" ] && continue  # a deletion: nothing to measure\n"
      << "  echo \"ttfb-lab: measuring $local_ref (${local_sha%${local_sha#???????}}) before it goes to $remote_ref\" >&2\n"
      << "  \"$cli\" presubmit --commit \"$local_sha\" --hook </dev/null\n"
      << "  case $? in\n"
      << "    0|3) ;;\n"
      << "    1) echo \"ttfb-lab: push refused: $local_ref makes start-up slower (above). To push anyway: TTFB_LAB_SKIP=1 git push\" >&2\n"
      << "       refuse=1 ;;\n"
      << "    *) echo \"ttfb-lab: push refused: $local_ref could not be measured (above; fail-closed). To push anyway: TTFB_LAB_SKIP=1 git push\" >&2\n"
      << "       refuse=1 ;;\n"
      << "  esac\n"
      << "done\n"
      << "exit $refuse\n";
  return out.str();
}

bool is_our_hook(const std::string& text) { return text.find(kHookMarker) != std::string::npos; }

std::string markdown_summary(const json::object& e, const std::string& dashboard_url) {
  std::ostringstream out;
  const std::string verdict = field(e, "verdict", field(e, "status"));
  out << "### ttfb-lab: " << (verdict == "regression" ? "start-up regression" : verdict == "no_change" ? "no start-up regression" : verdict)
      << " (experiment " << field(e, "id") << ")\n\n";
  if (const auto* t = e.if_contains("title"); t && t->is_string() && !t->as_string().empty())
    out << md_escape(std::string(t->as_string())) << "\n\n";
  out << "| workflow | verdict | effect [CI] | p | threshold | what moved |\n|---|---|---|---|---|---|\n";
  for (const auto& r : rows_of(e))
    out << "| " << md_escape(r.workflow) << " | " << (r.verdict == "regression" ? "**regression**" : md_escape(r.verdict))
        << (r.confirmed ? " (confirmed)" : "") << " | " << md_escape(r.effect.empty() ? "-" : r.effect) << " | " << r.p << " | "
        << r.threshold << " | " << md_escape(r.phases.empty() ? "-" : r.phases) << " |\n";
  if (const auto* err = object_field(e, "error")) out << "\nerror: " << md_escape(field(*err, "message")) << "\n";
  if (!dashboard_url.empty()) out << "\n[The experiment on the dashboard](" << dashboard_url << ")\n";
  return out.str();
}

std::string junit_report(const json::object& e, const std::string& dashboard_url) {
  const auto rows = rows_of(e);
  int failures = 0, errors = 0, skipped = 0;
  std::ostringstream cases;
  const std::string status = field(e, "status", "");
  for (const auto& r : rows) {
    cases << "    <testcase classname=\"ttfb-lab\" name=\"" << xml_escape(r.workflow) << "\">\n";
    const std::string detail = xml_escape(r.reason + (r.phases.empty() ? "" : "\n" + r.phases) +
                                          (dashboard_url.empty() ? "" : "\n" + dashboard_url));
    if (r.verdict == "regression") {
      ++failures;
      cases << "      <failure message=\"time to first batch " << xml_escape(r.effect) << "\">" << detail << "</failure>\n";
    } else if (r.verdict == "error" || status == "error") {
      ++errors;
      cases << "      <error message=\"the workflow could not be measured\">" << detail << "</error>\n";
    } else if (r.verdict == "inconclusive" || r.verdict == "-") {
      ++skipped;
      cases << "      <skipped message=\"inconclusive\">" << detail << "</skipped>\n";
    }
    cases << "      <system-out>" << xml_escape(r.effect + " p " + r.p + " threshold " + r.threshold) << "</system-out>\n";
    cases << "    </testcase>\n";
  }
  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<testsuites>\n  <testsuite name=\"ttfb-lab experiment " << xml_escape(field(e, "id")) << "\" tests=\"" << rows.size()
      << "\" failures=\"" << failures << "\" errors=\"" << errors << "\" skipped=\"" << skipped << "\">\n"
      << cases.str() << "  </testsuite>\n</testsuites>\n";
  return out.str();
}

}  // namespace ttfb::cli
