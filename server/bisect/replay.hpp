// A bisection as the server runs it: rounds of probe jobs, replayed through the search to rebuild
// its state (the server keeps no search in memory, so a restart or another scheduler replica
// carries on where the last one stopped), and the report people read. No database here: the
// server's driver (server/scheduler/bisections.hpp) loads the rounds and saves what comes out.
//
//   std::vector<ttfb::bisect::Round> rounds = ...;       // from bisections.steps + samples
//   auto r = ttfb::bisect::replay(commits.size(), options, seed, rounds);
//   if (r.search.done()) save(ttfb::bisect::report(r, commits, alpha));
//   else plan_jobs(r.next);                              // one probe job per request
#pragma once

#include "common/git.hpp"
#include "server/bisect/search.hpp"
#include "server/stats/phases.hpp"

#include <boost/json.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ttfb::bisect {

// The measured runs of one commit, with the phases each run reported.
struct CommitRuns {
  std::vector<double> ttfb_ms;
  stats::PhaseRuns phases;
  void append(const CommitRuns& more);
};

// What one probe job gave: the runs of its commit, or why it could not measure it.
struct ProbeOutcome {
  int commit = 0;
  CommitRuns runs;
  std::optional<std::string> error;  // set: the commit is broken (does not build, crashes)
};

struct Round {
  std::vector<Request> requests;       // what the search asked for (merged: one per commit)
  std::vector<ProbeOutcome> outcomes;  // by job id
};

// Runs taken from elsewhere before the first round: the end points' runs of a release gate's
// own experiment (base = commit 0, candidate = the last), so the ends are not measured again.
struct Seed {
  CommitRuns good, bad;
};

struct Replayed {
  Search search;
  std::map<int, CommitRuns> runs;          // every commit measured so far, seed included
  std::map<int, std::string> broken;       // commit -> the error that broke it
  std::vector<Request> next;               // the next round (empty when the search is done)
  int seed_runs = 0;                       // runs the seed contributed (reused, not measured)
};

// One request per commit (the search may ask twice for a commit in one round: the larger wins),
// in commit order.
std::vector<Request> merge_requests(const std::vector<Request>& requests);

// Feeds the seed, then every round's outcomes, through a new Search, checking that it asks for
// what each round recorded (else std::logic_error: the rounds do not belong to this search), and
// asks it for the next round. Throws std::invalid_argument for a commit outside the range.
Replayed replay(int commits, const SearchOptions& options, const Seed& seed, const std::vector<Round>& rounds);

// The result as GET /api/v1/bisections/{id} shows it (docs/api.md): status, message,
// total_effect_pct, culprits (commit, parent, subject, author, email, effect with CI and p,
// unsure, the phase that moved most with its delta and the phase summary), broken commits with
// their errors, and one row per commit of the range (runs, median, state untested | measured |
// broken | culprit). `commits` is the range, index 0 = good. `phase_alpha` is the search's alpha:
// the level of the culprit-vs-parent phase attribution, and 1 - it the effect interval's
// confidence ("ci_level").
boost::json::object report(const Replayed& r, const std::vector<git::CommitInfo>& commits, double phase_alpha);

// Where a running search stands, for the same page: the commits table only (no verdicts).
boost::json::array commit_table(const Replayed& r, const std::vector<git::CommitInfo>& commits);

}  // namespace ttfb::bisect
