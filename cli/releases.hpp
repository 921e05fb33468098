// How the CLI shows release gates, bisections and alerts (issue 4): the reports people read,
// the one-line progress shown while waiting, the list tables and the exit codes, as pure
// functions from the server's JSON (GET /api/v1/releases/{name}, /bisections/{id}, /alerts)
// to text. Missing or null fields print as "-" rather than throw: the server fills numbers in
// as the measurements arrive.
//
//   auto b = get_json(client, "/api/v1/bisections/7");
//   std::cerr << ttfb::cli::format_bisection_progress(b, elapsed_seconds) << "\n";  // while it runs
//   std::cout << ttfb::cli::format_bisection(b, {.colour = isatty(STDOUT_FILENO) != 0});
//   return ttfb::cli::bisection_exit_code(b);   // 0 no regression, 1 culprit(s), 2 error, 3 running
#pragma once

#include "cli/report.hpp"

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb::cli {

// Exit codes of `release gate` / `release status` and of `bisect` / `bisect status` (documented
// in their --help; CI jobs gate releases on them). kExitError (2) is shared with the other commands:
// a gate in error or cancelled, a broken, failed or cancelled bisection, a rejected request, an
// unreachable server, --timeout reached.
constexpr int kExitPassed = 0;           // release: the gate passed
constexpr int kExitBlocked = 1;          // release: the gate is blocked
constexpr int kExitRangeClean = 0;       // bisect: no regression between good and bad
constexpr int kExitCulpritFound = 1;     // bisect: one or more culprits
constexpr int kExitPending = 3;          // `status` without --wait: not decided yet (like inconclusive)

struct ReportStyle {
  bool colour = false;                   // ANSI colours: only when stdout is a terminal
};

// --- bisections -------------------------------------------------------------------------------

// "found", "no_regression", "broken", "error", "cancelled" are final; "verifying", "searching" not.
bool bisection_finished(const boost::json::object& bisection);
int bisection_exit_code(const boost::json::object& bisection);

// The report: range and its size, status, each culprit (SHA, subject, author, effect vs its
// parent with CI and p, the phase that moved), the total effect and the share the culprits
// explain, broken commits skipped, the cost; while running, the commits measured so far.
// Works on a BisectionSummary too (no commits, no steps).
std::string format_bisection(const boost::json::object& bisection, const ReportStyle& style = {});

// Where a running search stands, estimated from the medians measured so far: `good` is the last
// commit (by index) whose median is nearer the good end's before the first one nearer the bad
// end's, which is `bad`; the culprit is in (good, bad]. std::nullopt without "commits", without
// both ends measured, or when the ends' medians are equal. An estimate for the progress line only:
// the server classifies probes with a sequential test, not by nearest median.
struct Narrowed {
  long good = 0;
  long bad = 0;
  std::string good_commit, bad_commit;
};
std::optional<Narrowed> narrowed_range(const boost::json::object& bisection);

// One line: "bisection 7 (example-train): searching, round 3 probing 60c38cb, 42 runs in 5 jobs,
// narrowed to 2 of 16 commits (1a2b3c4..60c38cb), 35 s".
std::string format_bisection_progress(const boost::json::object& bisection, double elapsed_seconds);

// GET /api/v1/bisections: id, repo, workflow, good..bad, status, culprits, runs, created.
std::string format_bisections(const boost::json::object& list);

// --- releases ---------------------------------------------------------------------------------

// The gate is decided (not "pending").
bool release_decided(const boost::json::object& release);
// Decided, and every bisection it started has finished: nothing more will change.
bool release_settled(const boost::json::object& release);
// passed 0, blocked 1, error/cancelled 2, pending 3.
int release_exit_code(const boost::json::object& release);

// The report: range, gate status and reason, owner, each workflow's verdict line (effect, CI,
// p, threshold, confirmed) with the phase that moved, each bisection's report, the dashboard URL.
std::string format_release(const boost::json::object& release, const ReportStyle& style = {});

// One line: the gate's status, then while it is measured each workflow's state (with its look
// when `experiment`, the gate's GET /api/v1/experiments/{id}, is given), then each bisection's
// status, round, runs and narrowed range. `bisections` holds the full GET /api/v1/bisections/{id}
// of bisections that are running (the release only carries summaries, without commits).
std::string format_release_progress(const boost::json::object& release, double elapsed_seconds,
                                    const boost::json::object* experiment = nullptr,
                                    const std::vector<boost::json::object>& bisections = {});

// GET /api/v1/releases: name, repo, base..candidate (short SHAs), status, bisections, culprits, created.
std::string format_releases(const boost::json::object& list);

// --- alerts -----------------------------------------------------------------------------------

// GET /api/v1/alerts: id, kind, channel, target, recipient, status, attempts (of max), title;
// a failed or unknown alert's last error on the line below it.
std::string format_alerts(const boost::json::object& list);

}  // namespace ttfb::cli
