// A bisection as the server runs it: rounds of probe jobs, replayed through the search to rebuild
// its state (the server keeps no search in memory, so a restart or another scheduler replica
// carries on where the last one stopped), and the report people read. No database here: the
// server's driver (server/scheduler/bisections.hpp) loads the rounds and saves what comes out.
//
//   std::vector<ttfb::bisect::Round> rounds = ...;       // from bisections.steps + samples
//   auto r = ttfb::bisect::replay(commits.size(), options, seed, rounds);
//   if (r.search.done()) save(ttfb::bisect::report(r, commits, alpha));
//   else for (auto j : plan_jobs(r.next, Pairing::paired)) insert_probe_job(j);
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
  CommitRuns from(int first) const;  // runs `first`.. (a sandwich's fresh runs)
};

// One probe job of a round: `commit`, `runs` runs, interleaved (ABBA, so run i of each arm are
// neighbours) with `beside` when that is set.
struct ProbeJob {
  int commit = 0;
  int runs = 0;
  int beside = -1;        // the good end (0), as the reference of a paired probe; the parent, for
                          // a sandwich; -1: the commit alone
  bool sandwich = false;  // the runs are the sandwich's (Search::add_sandwich_runs)
  bool part = false;      // the runs are a part's ends side by side (Search::add_part_runs):
                          // `beside` is its good end
};

// What one probe job gave: the runs of its commit and of the commit beside it, or why it could
// not measure the commit.
struct ProbeOutcome {
  ProbeJob job;
  CommitRuns runs;                   // of job.commit
  CommitRuns beside;                 // of job.beside, run i next to runs[i]
  std::optional<std::string> error;  // set: a commit of the job is broken (does not build, crashes)
  int failed = -1;                   // the commit whose arm failed; -1: job.commit
};

// The commit of `job` that its failed arm measured: a probe job's baseline is job.beside (the
// good end, or a sandwich's parent) when it has one, else job.commit (a single-arm job names its
// one arm "baseline"); its candidate is job.commit. An arm it does not name ("", or a failure
// recorded before workers said which arm failed) is job.commit's.
inline int failed_commit(const ProbeJob& job, const std::string& arm) {
  if (arm == "baseline" && job.beside >= 0) return job.beside;
  return job.commit;
}

struct Round {
  std::vector<Request> requests;       // what the search asked for (merged: one per commit and kind)
  std::vector<ProbeOutcome> outcomes;  // by job id
};

// Runs taken from elsewhere before the first round: a release gate's own jobs of the ends, each
// job's baseline (the good end) as `reference` and its candidate as the runs of the bad end, so
// the ends are not measured again.
struct Seed {
  std::vector<ProbeOutcome> jobs;
};

// How probe jobs measure a commit.
//  - paired (what the server does): every probe job runs its commit interleaved with the good end,
//    and each run is scaled by the good end's run beside it, onto one level (the geometric mean
//    of the first reference runs). A commit measured in a job when the machine was busy and one
//    measured when it was idle compare as if measured side by side: on a shared 2-core machine,
//    separate jobs of the same commit drift by up to 30%, more than the steps being searched for.
//  - unpaired: one commit per job, runs taken as measured (a quiet machine; the benchmark's
//    comparison).
// Sandwiches are side by side either way.
enum class Pairing { unpaired, paired };

// The jobs that measure a round's (merged) requests. A sandwich request is one job of the pair.
// A part's request is one job of its two ends side by side.
// Paired: one job per other commit, each beside the good end; the good end's own request is met
// by the reference runs of those jobs (the first runs longer if they fall short), and by a job of
// its own only when nothing else is asked for. Unpaired: one job per commit.
std::vector<ProbeJob> plan_jobs(const std::vector<Request>& requests, Pairing pairing);

struct Replayed {
  Search search;
  std::map<int, CommitRuns> runs;          // every commit measured so far, seed included (paired:
                                           // scaled onto the reference level)
  std::map<std::pair<int, int>, std::pair<CommitRuns, CommitRuns>> sandwiches;  // (parent, commit): their runs side by side
  int part_runs = 0;                       // runs of parts' ends side by side (Request::part)
  std::map<int, std::string> broken;       // commit -> the error that broke it
  std::vector<Request> next;               // the next round (empty when the search is done)
  int seed_runs = 0;                       // runs the seed contributed (reused, not measured)
  double reference_ms = 0.0;               // paired: the level runs are scaled to (0 until known)
};

// One request per commit and kind (alone, a sandwich beside a parent, or a part's ends side by
// side: the search may ask twice in one round, and the larger wins), in commit order.
std::vector<Request> merge_requests(const std::vector<Request>& requests);

// Feeds the seed, then every round's outcomes, through a new Search (paired: scaled by their
// reference runs, which also count as runs of the good end), checking that it asks for what each
// round recorded (else std::logic_error: the rounds do not belong to this search), and asks it for
// the next round. Throws std::invalid_argument for a commit outside the range.
Replayed replay(int commits, const SearchOptions& options, const Seed& seed, const std::vector<Round>& rounds,
                Pairing pairing = Pairing::paired);

// The result as GET /api/v1/bisections/{id} shows it (docs/openapi.json): status, message,
// total_effect_pct (with total_ci_*), the remainder the culprits leave (remainder_pct with
// remainder_ci_*, at ci_level), parts (every decided part without a culprit), culprits (commit, parent, subject, author, email, effect with CI and p,
// unsure, the phase that moved most with its delta and the phase summary), broken commits with
// their errors, and one row per commit of the range (runs, median, state untested | measured |
// broken | culprit). `commits` is the range, index 0 = good. `phase_alpha` is the search's alpha:
// the level of the culprit-vs-parent phase attribution. A culprit's effect interval is at
// "ci_level" (1 - the search's alpha).
boost::json::object report(const Replayed& r, const std::vector<git::CommitInfo>& commits, double phase_alpha);

// Where a running search stands, for the same page: the commits table only (no verdicts).
boost::json::array commit_table(const Replayed& r, const std::vector<git::CommitInfo>& commits);

}  // namespace ttfb::bisect
