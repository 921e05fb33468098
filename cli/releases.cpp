#include "cli/releases.hpp"

#include "cli/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace ttfb::cli {
namespace json = boost::json;
using text::array_field;
using text::count;
using text::field;
using text::fmt;
using text::format_duration;
using text::format_effect;
using text::format_p;
using text::format_table;
using text::format_time;
using text::num;
using text::object_field;
using text::paint;
using text::short_sha;

namespace {

// --- small readers --------------------------------------------------------------------------

// The objects of an array field, skipping anything else (a missing or null array is empty).
std::vector<const json::object*> objects(const json::object& o, const char* key) {
  std::vector<const json::object*> out;
  if (const auto* a = array_field(o, key))
    for (const auto& v : *a)
      if (v.is_object()) out.push_back(&v.as_object());
  return out;
}

std::optional<long> integer(const json::object& o, const char* key) {
  auto x = num(o, key);
  if (!x) return std::nullopt;
  return std::lround(*x);
}

std::string integer_text(const json::object& o, const char* key) {
  auto x = integer(o, key);
  return x ? std::to_string(*x) : "-";
}

bool is_hex_prefix_of(const std::string& ref, const std::string& commit) {
  return !ref.empty() && ref.size() <= commit.size() && commit.compare(0, ref.size(), ref) == 0 &&
         std::all_of(ref.begin(), ref.end(), [](unsigned char ch) { return std::isxdigit(ch) != 0; });
}

// An end of a range ({"ref", "commit"}) as "v1.0 (fad04d2)", or the short SHA alone when the
// ref is (a prefix of) the SHA itself or absent.
std::string describe_end(const json::object* end) {
  if (!end) return "-";
  const std::string ref = field(*end, "ref", ""), commit = field(*end, "commit", "");
  if (commit.empty()) return ref.empty() ? "-" : ref;
  if (ref.empty() || is_hex_prefix_of(ref, commit)) return short_sha(commit);
  return ref + " (" + short_sha(commit) + ")";
}

// The same end for a table cell: the ref, or the short SHA when the ref is one.
std::string end_label(const json::object* end) {
  if (!end) return "-";
  const std::string ref = field(*end, "ref", ""), commit = field(*end, "commit", "");
  if (ref.empty() || is_hex_prefix_of(ref, commit)) return commit.empty() ? "-" : short_sha(commit);
  return ref;
}

std::string end_sha(const json::object* end) {
  if (!end) return "-";
  const std::string commit = field(*end, "commit", "");
  return commit.empty() ? "-" : short_sha(commit);
}

// "Erin Sato <erin.sato@example.com>", either part alone, or "-".
std::string person(const std::string& name, const std::string& email) {
  if (name.empty() && email.empty()) return "-";
  if (email.empty()) return name;
  if (name.empty()) return "<" + email + ">";
  return name + " <" + email + ">";
}

// "  label      value\n": the reports' label column.
std::string row(const std::string& label, const std::string& value) { return "  " + text::pad(label, 11) + value + "\n"; }

// Every line of `s` (but empty ones) prefixed by `prefix`.
std::string indent(const std::string& s, const std::string& prefix) {
  std::string out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out += (line.empty() ? "" : prefix) + line + "\n";
  return out;
}

// SGR colour of a status word: red for what needs someone, green for good news, yellow while running.
const char* status_colour(const std::string& status) {
  if (status == "passed" || status == "no_regression") return "1;32";
  if (status == "pending" || status == "verifying" || status == "searching") return "1;33";
  return "1;31";
}

// --- bisections -----------------------------------------------------------------------------

// The round being measured: its number and the commits it probes ("60c38cb (10 runs)").
struct Round {
  long number = 0;
  bool running = false;
  std::vector<std::string> probes;
};

std::optional<Round> last_round(const json::object& b) {
  auto steps = objects(b, "steps");
  if (steps.empty()) return std::nullopt;
  const json::object& s = *steps.back();
  Round r;
  r.number = integer(s, "round").value_or(static_cast<long>(steps.size()));
  r.running = field(s, "state", "") == "running";
  for (const auto* q : objects(s, "requests")) {
    std::string probe = short_sha(field(*q, "commit", ""));
    if (probe.empty()) continue;
    if (auto runs = integer(*q, "runs")) probe += " (" + count(*runs, "run", "runs") + ")";
    r.probes.push_back(probe);
  }
  return r;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// The highest index in "commits" (the bad end: index 0 is good), or 0 without commits.
long last_index(const json::object& b) {
  long last = 0, position = 0;
  for (const auto* c : objects(b, "commits")) last = std::max(last, integer(*c, "index").value_or(position++));
  return last;
}

// The candidate commits of a range: every commit after the good end. The server's "range"
// counts both ends in "commits" and the rest in "candidates".
long candidates(const json::object& b) {
  if (const auto* r = object_field(b, "range")) {
    if (auto n = integer(*r, "candidates")) return *n;
    if (auto n = integer(*r, "commits")) return std::max(0L, *n - 1);
  }
  return last_index(b);
}

// The share of the total slowdown the culprits explain, on the log scale (steps multiply):
// sum of ln(1 + culprit) over ln(1 + total). std::nullopt without a positive total or without
// every culprit's effect.
std::optional<double> explained_share(const json::object& b) {
  auto total = num(b, "total_effect_pct");
  auto culprits = objects(b, "culprits");
  if (!total || *total <= 0 || culprits.empty()) return std::nullopt;
  double sum = 0;
  for (const auto* c : culprits) {
    auto e = num(*c, "effect_pct");
    if (!e || *e <= -100) return std::nullopt;
    sum += std::log1p(*e / 100);
  }
  return sum / std::log1p(*total / 100);
}

std::string format_cost(const json::object* cost) {
  if (!cost) return "-";
  std::string s;
  if (auto runs = integer(*cost, "runs")) s = count(*runs, "run", "runs");
  if (auto jobs = integer(*cost, "jobs")) s += (s.empty() ? "" : " in ") + count(*jobs, "job", "jobs");
  if (auto rounds = integer(*cost, "rounds")) s += (s.empty() ? "" : " over ") + count(*rounds, "round", "rounds");
  if (auto wall = num(*cost, "wall_seconds")) s += (s.empty() ? "" : ", ") + format_duration(*wall);
  return s.empty() ? "-" : s;
}

// "42 runs in 5 jobs" for progress lines, or "" when the cost is not known yet.
std::string runs_and_jobs(const json::object& b) {
  const auto* cost = object_field(b, "cost");
  if (!cost) return "";
  auto runs = integer(*cost, "runs");
  if (!runs) return "";
  std::string s = count(*runs, "run", "runs");
  if (auto jobs = integer(*cost, "jobs")) s += " in " + count(*jobs, "job", "jobs");
  return s;
}

std::string culprit_shas(const json::object& b) {
  std::vector<std::string> shas;
  for (const auto* c : objects(b, "culprits")) shas.push_back(short_sha(field(*c, "commit", "")));
  return join(shas, ",");
}

// The status as people read it: "found: 2 culprits", "searching", "no regression ...".
std::string bisection_status_text(const json::object& b) {
  const std::string status = field(b, "status", "unknown");
  if (status == "found") return "found: " + count(static_cast<long>(objects(b, "culprits").size()), "culprit", "culprits");
  if (status == "no_regression") return "no_regression: bad is not slower than good";
  if (status == "verifying") return "verifying: is bad slower than good?";
  return status;
}

// One bisection's progress without the elapsed time (shared by the bisection's and the release's lines).
std::string bisection_progress_body(const json::object& b) {
  std::string s = "bisection " + field(b, "id") + " (" + field(b, "workflow") + "): " + field(b, "status", "unknown");
  const bool finished = bisection_finished(b);
  if (finished) {
    if (field(b, "status", "") == "found") {
      s += ", " + count(static_cast<long>(objects(b, "culprits").size()), "culprit", "culprits");
      const std::string shas = culprit_shas(b);
      if (!shas.empty()) s += " (" + shas + ")";
    }
  } else if (auto r = last_round(b)) {
    s += ", round " + std::to_string(r->number);
    if (r->running && !r->probes.empty()) {
      std::vector<std::string> shas;
      for (const auto& p : r->probes) shas.push_back(p.substr(0, p.find(' ')));
      s += " probing " + join(shas, ", ");
    }
  }
  if (auto rj = runs_and_jobs(b); !rj.empty()) s += ", " + rj;
  if (!finished)
    if (auto n = narrowed_range(b))
      s += ", narrowed to " + std::to_string(n->bad - n->good) + " of " + count(last_index(b), "commit", "commits") + " (" +
           short_sha(n->good_commit) + ".." + short_sha(n->bad_commit) + ")";
  return s;
}

void write_culprit(std::ostringstream& out, const json::object& c, bool colour) {
  const std::string commit = field(c, "commit", "");
  out << "\n  culprit " << paint(commit.empty() ? "-" : short_sha(commit), "1;31", colour) << "  " << field(c, "subject", "")
      << "\n";
  out << "    author   " << person(field(c, "author", ""), field(c, "email", "")) << "\n";
  std::string effect = format_effect(num(c, "effect_pct"), num(c, "ci_low_pct"), num(c, "ci_high_pct"));
  if (const std::string parent = field(c, "parent", ""); !parent.empty()) effect += " against its parent " + short_sha(parent);
  if (auto p = num(c, "p_value")) effect += ", p " + format_p(*p);
  out << "    effect   " << effect << "\n";
  std::string phase = field(c, "phase_summary", "");
  if (phase.empty()) {
    phase = field(c, "phase", "");
    if (auto d = num(c, "phase_delta_ms"); d && !phase.empty()) phase += " " + fmt("%+.0f ms", *d);
  }
  if (!phase.empty()) out << "    phase    " << phase << "\n";
  if (const auto* u = c.if_contains("unsure"); u && u->is_bool() && u->as_bool())
    out << "    unsure   a probe on its path was placed at its run budget, not by the test: worth a second look\n";
}

}  // namespace

bool bisection_finished(const json::object& b) {
  const std::string status = field(b, "status", "");
  return status == "found" || status == "no_regression" || status == "broken" || status == "error" || status == "cancelled";
}

int bisection_exit_code(const json::object& b) {
  const std::string status = field(b, "status", "");
  if (status == "found") return kExitCulpritFound;
  if (status == "no_regression") return kExitRangeClean;
  if (status == "verifying" || status == "searching") return kExitPending;
  return kExitError;  // broken, error, cancelled, and anything this CLI does not know
}

std::optional<Narrowed> narrowed_range(const json::object& b) {
  struct Point {
    long index;
    double median;
    std::string commit;
  };
  std::vector<Point> points;
  long position = 0;
  long last_index = -1;
  for (const auto* c : objects(b, "commits")) {
    const long index = integer(*c, "index").value_or(position);
    ++position;
    last_index = std::max(last_index, index);
    auto median = num(*c, "median_ms");
    if (!median || field(*c, "state", "") == "broken") continue;
    points.push_back({index, *median, field(*c, "commit", "")});
  }
  if (last_index < 1) return std::nullopt;
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.index < b.index; });
  if (points.size() < 2 || points.front().index != 0 || points.back().index != last_index) return std::nullopt;
  const double good_level = points.front().median, bad_level = points.back().median;
  if (good_level == bad_level) return std::nullopt;
  Narrowed n{.good = points.front().index, .bad = points.back().index, .good_commit = points.front().commit,
             .bad_commit = points.back().commit};
  for (const auto& p : points) {
    const bool nearer_bad = std::abs(p.median - bad_level) < std::abs(p.median - good_level);
    if (nearer_bad) {
      n.bad = p.index;
      n.bad_commit = p.commit;
      break;
    }
    n.good = p.index;
    n.good_commit = p.commit;
  }
  return n;
}

std::string format_bisection_progress(const json::object& b, double elapsed_seconds) {
  return bisection_progress_body(b) + ", " + format_duration(elapsed_seconds);
}

std::string format_bisection(const json::object& b, const ReportStyle& style) {
  std::ostringstream out;
  const std::string status = field(b, "status", "unknown");
  const bool finished = bisection_finished(b);
  out << "bisection " << field(b, "id") << "  " << field(b, "workflow") << " in " << field(b, "repo") << "  "
      << paint(bisection_status_text(b), status_colour(status), style.colour) << "\n";

  std::string range = describe_end(object_field(b, "good")) + " .. " + describe_end(object_field(b, "bad"));
  if (long n = candidates(b); n > 0) range += ", " + count(n, "commit", "commits");
  out << row("range", range);
  if (const std::string release = field(b, "release", ""); !release.empty()) out << row("release", release);
  if (auto total = num(b, "total_effect_pct")) {
    std::string t = fmt("%+.1f%%", *total) + " from good to bad";
    if (auto share = explained_share(b)) {
      const bool one = objects(b, "culprits").size() == 1;
      t += std::string("; ") + (one ? "the culprit explains " : "the culprits explain ") + fmt("%.0f%%", 100 * *share) + " of it";
    }
    out << row("total", t);
  }
  if (const std::string message = field(b, "message", ""); !message.empty()) out << row("message", message);
  if (!finished) {
    if (auto r = last_round(b)) {
      std::string line = std::to_string(r->number);
      if (r->running && !r->probes.empty()) line += ": probing " + join(r->probes, ", ");
      else if (!r->running) line += ": done";
      out << row("round", line);
    }
    if (auto n = narrowed_range(b))
      out << row("narrowed", "the step is in " + short_sha(n->good_commit) + ".." + short_sha(n->bad_commit) + ", " +
                                 std::to_string(n->bad - n->good) + " of " + count(last_index(b), "commit", "commits") +
                                 " (estimated from the medians so far)");
  }

  for (const auto* c : objects(b, "culprits")) write_culprit(out, *c, style.colour);

  if (auto parts = objects(b, "parts"); !parts.empty()) {
    out << "\n  parts without a culprit:\n";
    for (const auto* p : parts) {
      out << "    " << short_sha(field(*p, "good", "")) << ".." << short_sha(field(*p, "bad", "")) << "  "
          << field(*p, "state", "") << ": " << field(*p, "reason", "") << "\n";
    }
  }
  if (auto rest = num(b, "remainder_pct")) {
    auto lo = num(b, "remainder_ci_low_pct"), hi = num(b, "remainder_ci_high_pct");
    auto level = num(b, "ci_level");
    out << "  " << fmt("%+.1f%%", *rest) << " of the change left unexplained by the culprits"
        << (lo && hi ? fmt(" [%+.1f, ", *lo) + fmt("%+.1f]", *hi) : std::string())
        << (level ? fmt(" (%.0f%% CI)", 100 * *level) : std::string()) << "\n";
  }

  if (auto broken = objects(b, "broken"); !broken.empty()) {
    out << "\n  broken commits (skipped, never blamed):\n";
    for (const auto* x : broken) {
      out << "    " << short_sha(field(*x, "commit", "")) << "  " << field(*x, "subject", "") << "\n";
      if (const std::string error = field(*x, "error", ""); !error.empty()) out << "             " << error << "\n";
    }
  }

  if (!finished) {
    std::vector<std::vector<std::string>> rows{{"#", "commit", "runs", "median", "state", "author", "subject"}};
    for (const auto* c : objects(b, "commits")) {
      const std::string state = field(*c, "state", "untested");
      if (state == "untested") continue;
      auto median = num(*c, "median_ms");
      rows.push_back({integer_text(*c, "index"), short_sha(field(*c, "commit", "")), integer_text(*c, "runs"),
                      median ? fmt("%.1f ms", *median) : "-", state, field(*c, "author", "-"), field(*c, "subject", "")});
    }
    if (rows.size() > 1) out << "\n  measured so far:\n" << format_table(rows, "    ");
  }

  out << "\n" << row("cost", format_cost(object_field(b, "cost")));
  if (const std::string url = field(b, "dashboard_url", ""); !url.empty()) out << row("dashboard", url);
  return out.str();
}

std::string format_bisections(const json::object& list) {
  auto items = objects(list, "bisections");
  if (items.empty()) return "no bisections\n";
  std::vector<std::vector<std::string>> rows{{"id", "repo", "workflow", "good..bad", "status", "culprits", "runs", "created"}};
  for (const auto* b : items) {
    const std::string shas = culprit_shas(*b);
    const auto* cost = object_field(*b, "cost");
    rows.push_back({field(*b, "id"), field(*b, "repo"), field(*b, "workflow"),
                    end_label(object_field(*b, "good")) + ".." + end_label(object_field(*b, "bad")), field(*b, "status"),
                    shas.empty() ? "-" : shas, cost ? integer_text(*cost, "runs") : "-", format_time(field(*b, "created_at", ""))});
  }
  return format_table(rows, "");
}

// --- releases -------------------------------------------------------------------------------

bool release_decided(const json::object& r) {
  const std::string status = field(r, "status", "");
  return !status.empty() && status != "pending";
}

bool release_settled(const json::object& r) {
  if (!release_decided(r)) return false;
  for (const auto* b : objects(r, "bisections"))
    if (!bisection_finished(*b)) return false;
  return true;
}

int release_exit_code(const json::object& r) {
  const std::string status = field(r, "status", "");
  if (status == "passed") return kExitPassed;
  if (status == "blocked") return kExitBlocked;
  if (status == "pending") return kExitPending;
  return kExitError;  // error, cancelled, and anything this CLI does not know
}

std::string format_release(const json::object& r, const ReportStyle& style) {
  std::ostringstream out;
  const std::string status = field(r, "status", "unknown");
  out << "release " << field(r, "name") << "  (repo " << field(r, "repo") << ")  "
      << paint(status, status_colour(status), style.colour) << "\n";
  if (const std::string reason = field(r, "reason", ""); !reason.empty()) out << "  " << reason << "\n";
  out << row("base", describe_end(object_field(r, "base")));
  out << row("candidate", describe_end(object_field(r, "candidate")));
  const std::string owner = person(field(r, "owner", ""), field(r, "owner_email", ""));
  if (owner != "-") out << row("owner", owner);
  std::string created = format_time(field(r, "created_at", ""));
  if (const std::string by = field(r, "created_by", ""); !by.empty()) created += " by " + by;
  out << row("created", created);
  if (const std::string decided = field(r, "decided_at", ""); !decided.empty()) out << row("decided", format_time(decided));

  const auto* e = object_field(r, "experiment");
  auto rows_of = e ? objects(*e, "workflows") : std::vector<const json::object*>{};
  if (e) {
    std::string line = field(*e, "id") + ": " + field(*e, "status", "unknown");
    if (const std::string verdict = field(*e, "verdict", ""); !verdict.empty()) line += ", verdict " + verdict;
    out << row("experiment", line);
  }
  if (rows_of.empty()) {
    std::vector<std::string> names;
    if (const auto* ws = array_field(r, "workflows"))
      for (const auto& w : *ws) names.push_back(text::str(&w));
    if (!names.empty()) out << row("workflows", join(names, ", "));
  } else {
    std::vector<std::vector<std::string>> rows{{"workflow", "state", "effect [CI]", "p", "threshold", "runs/arm", "verdict"}};
    std::vector<std::string> notes;
    for (const auto* w : rows_of) {
      const std::string name = field(*w, "workflow");
      const std::string state = field(*w, "state", "-");
      std::string verdict = field(*w, "verdict", state == "failed" ? "failed" : "pending");
      if (const auto* cf = w->if_contains("confirmed"); cf && cf->is_bool() && (verdict == "regression" || verdict == "improvement"))
        verdict += cf->as_bool() ? " (confirmed)" : " (unconfirmed)";
      auto p = num(*w, "p_value");
      auto threshold = num(*w, "threshold_pct");
      rows.push_back({name, state, format_effect(num(*w, "effect_pct"), num(*w, "ci_low_pct"), num(*w, "ci_high_pct")),
                      p ? format_p(*p) : "-", threshold ? fmt("%.1f%%", *threshold) : "-", integer_text(*w, "runs_per_arm"), verdict});
      if (const std::string phases = field(*w, "phase_summary", ""); !phases.empty()) notes.push_back(name + ": " + phases);
    }
    out << "\n" << format_table(rows);
    for (const auto& n : notes) out << "    " << n << "\n";
  }

  auto bisections = objects(r, "bisections");
  for (const auto* b : bisections) {
    out << "\n" << indent(format_bisection(*b, style), "  ");
    out << "    details    ttfb-lab bisect status " << field(*b, "id") << "\n";
  }
  if (bisections.empty() && status == "blocked") out << "\n  no bisection started yet\n";

  if (const std::string url = field(r, "dashboard_url", ""); !url.empty()) out << "\n" << row("dashboard", url);
  return out.str();
}

std::string format_release_progress(const json::object& r, double elapsed_seconds, const json::object* experiment,
                                    const std::vector<json::object>& bisections) {
  std::vector<std::string> parts;
  parts.push_back("release " + field(r, "name") + ": " + field(r, "status", "unknown"));
  if (!release_decided(r)) {
    const auto* e = object_field(r, "experiment");
    if (experiment) {
      if (const auto* p = object_field(*experiment, "progress")) {
        auto done = integer(*p, "runs_done"), total = integer(*p, "runs_total");
        if (done && total) parts.back() += ", " + std::to_string(*done) + "/" + std::to_string(*total) + " runs";
      }
    }
    for (const auto* w : e ? objects(*e, "workflows") : std::vector<const json::object*>{}) {
      const std::string name = field(*w, "workflow");
      std::string s = name + " " + field(*w, "state", "-");
      // The look of the adaptive test, from the experiment's own (fuller) document.
      if (experiment)
        for (const auto* ew : objects(*experiment, "workflows")) {
          if (field(*ew, "workflow") != name) continue;
          const auto* result = object_field(*ew, "result");
          const auto* look = result ? object_field(*result, "look") : nullptr;
          if (look) s += " look " + integer_text(*look, "look") + "/" + integer_text(*look, "looks_planned");
        }
      if (auto effect = num(*w, "effect_pct")) s += " " + fmt("%+.1f%%", *effect);
      parts.push_back(s);
    }
  }
  for (const auto* b : objects(r, "bisections")) {
    const json::object* shown = b;
    const auto id = field(*b, "id");
    for (const auto& full : bisections)
      if (field(full, "id") == id) shown = &full;
    parts.push_back(bisection_progress_body(*shown));
  }
  parts.push_back(format_duration(elapsed_seconds));
  return join(parts, "; ");
}

std::string format_releases(const json::object& list) {
  auto items = objects(list, "releases");
  if (items.empty()) return "no releases\n";
  std::vector<std::vector<std::string>> rows{{"name", "repo", "base..candidate", "commits", "status", "bisections", "culprits", "created"}};
  for (const auto* r : items) {
    std::vector<std::string> bisections, culprits;
    for (const auto* b : objects(*r, "bisections")) {
      bisections.push_back(field(*b, "id") + " " + field(*b, "status"));
      if (const std::string shas = culprit_shas(*b); !shas.empty()) culprits.push_back(shas);
    }
    rows.push_back({field(*r, "name"), field(*r, "repo"),
                    end_label(object_field(*r, "base")) + ".." + end_label(object_field(*r, "candidate")),
                    end_sha(object_field(*r, "base")) + ".." + end_sha(object_field(*r, "candidate")), field(*r, "status"),
                    bisections.empty() ? "-" : join(bisections, ", "), culprits.empty() ? "-" : join(culprits, ","),
                    format_time(field(*r, "created_at", ""))});
  }
  return format_table(rows, "");
}

// --- alerts ---------------------------------------------------------------------------------

std::string format_alerts(const json::object& list) {
  auto items = objects(list, "alerts");
  if (items.empty()) return "no alerts\n";
  std::vector<std::vector<std::string>> rows{{"id", "kind", "status", "attempts", "channel", "target", "recipient", "title"}};
  // The line under an alert's row: why it failed, or when a retry is due.
  std::vector<std::string> below{""};
  for (const auto* a : items) {
    const auto* recipient = object_field(*a, "recipient");
    rows.push_back({field(*a, "id"), field(*a, "kind"), field(*a, "status"),
                    integer_text(*a, "attempts") + "/" + integer_text(*a, "max_attempts"), field(*a, "channel"),
                    field(*a, "target"),
                    recipient ? person(field(*recipient, "name", ""), field(*recipient, "email", "")) : "-", field(*a, "title", "")});
    const std::string status = field(*a, "status", ""), error = field(*a, "last_error", "");
    std::string note;
    if (status == "failed" || status == "unknown") {
      note = "last error: " + (error.empty() ? std::string("-") : error);
    } else if (!error.empty()) {
      note = "last error: " + error;
      if (const std::string next = field(*a, "next_attempt_at", ""); !next.empty()) note += "; next attempt " + format_time(next);
    }
    below.push_back(note);
  }
  const std::string table = format_table(rows, "");
  std::string out;
  std::istringstream in(table);
  std::size_t i = 0;
  for (std::string line; std::getline(in, line); ++i) {
    out += line + "\n";
    if (i < below.size() && !below[i].empty()) out += "    " + below[i] + "\n";
  }
  return out;
}

}  // namespace ttfb::cli
