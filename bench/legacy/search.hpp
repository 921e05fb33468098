// The bisection search as it was before issue 15 (explained-fraction rule, one extra pass, probes
// classified against ends taken as known, the sandwich a Welch test at alpha per look), kept only
// as the baseline bench/bisect_bench.cpp measures the current search against in the same run.
// The server never uses it: server/bisect/search.hpp is the search.
// Bisection as a pure state machine (no database, no workers): which commits of a first-parent
// range to measure next, and what the measurements say, until every culprit is found. The
// server drives it with jobs; bench/bisect_bench.cpp drives it with simulated runs.
//
//   ttfb::bisect::Search s(17, ttfb::bisect::SearchOptions{});    // commits 0 (good) .. 16 (bad)
//   while (!s.done()) {
//     for (const auto& r : s.requests()) {
//       if (r.beside < 0) s.add_runs(r.commit, measure(r.commit, r.runs));
//       else s.add_sandwich_runs(r.beside, r.commit, /* both measured side by side */ ...);
//     }
//   }
//   for (const auto& c : s.result().culprits) { /* c.commit, c.effect_pct, c.ci_low_pct, ... */ }
//
// The method (DESIGN.md §5):
// 1. Verify the end points first: the last commit against the first, with the adaptive design
//    (server/stats/adaptive.hpp). No regression there: the search says so and stops.
// 2. Search: probe the commits that split the open interval into `parallel_probes + 1` parts
//    (several at once when several workers are idle); classify each probe against BOTH ends of
//    its interval with a sequential probability ratio test between "at the good end's level" and
//    "at the bad end's level" (error kProbeError per probe), and measure it more while unsure
//    (up to max_runs_per_commit; then it goes to the nearer side, and the result says "unsure").
// 3. Sandwich: the culprit candidate (first bad commit after a good one) is measured anew, side
//    by side with its parent in the same jobs (interleaved, like a pre-submit A/B), a block at a
//    time until the step shows (up to max_runs_per_commit runs each), on those runs only:
//    the runs that led the search there were picked for looking different (a busy spell or a
//    lucky block would carry into the verdict, and the effect would be biased upwards), and runs
//    of two commits measured in separate jobs differ by whatever the machine was doing meanwhile. Only a confirmed step is a culprit. A failed
//    sandwich means one of the pair was put on the wrong side: their probe runs are dropped and
//    the interval they were narrowed from is searched again (at most kMaxReopens times).
// 4. More than one culprit: when the culprits found explain less than `explained_fraction` of the
//    end-to-end slowdown, the search continues in the parts of the range on either side of them
//    whose own ends differ, decided like step 1 (measuring both ends more while undecided).
// 5. A commit that cannot be measured (does not build, crashes) is marked broken: it is skipped
//    and reported, and a neighbour is probed instead; it never becomes a culprit.
#pragma once

#include "server/stats/adaptive.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ttfb::bisect::legacy {

// Chance that one probe is put on the wrong side (the SPRT's error per probe, see classify()).
inline constexpr double kProbeError = 0.001;
// Failed sandwiches whose interval is searched again, per search.
inline constexpr int kMaxReopens = 3;

struct SearchOptions {
  stats::AdaptiveDesign design{.alpha = 0.01, .threshold_pct = 2.0, .runs_per_block = 10, .max_runs_per_arm = 60};
  int parallel_probes = 1;            // commits probed per round (idle workers)
  int max_runs_per_commit = 40;       // an unsure probe is measured up to this many runs
  double explained_fraction = 0.8;    // below this share of the total (log scale), keep searching
};

struct Request {
  int commit = 0;
  int runs = 0;
  int beside = -1;  // >= 0: a sandwich, `commit` and its parent `beside` measured side by side,
                    // `runs` runs each (add_sandwich_runs); -1: `commit` alone (add_runs)
};

struct Culprit {
  int commit = 0;                // index in the range
  int parent = 0;                // the commit it was sandwiched against: commit - 1, or earlier
                                 // when the commits between are broken (then any of them may be it)
  double effect_pct = 0.0;       // commit vs parent, Welch on log TTFB
  double ci_low_pct = 0.0, ci_high_pct = 0.0;
  double ci_level = 0.99;        // the interval's confidence: 1 - the design's alpha
  double p_value = 1.0;
  bool unsure = false;           // a probe on its path was classified at its run budget
};

struct SearchResult {
  std::string status;            // "found", "no_regression" (the ends do not differ), "broken"
  std::string message;
  std::vector<Culprit> culprits;  // by commit
  double total_effect_pct = 0.0;  // last vs first commit
  std::vector<int> broken;        // commits that could not be measured
  int runs = 0;                   // measured runs, all commits
  int rounds = 0;                 // batches of requests
  int reopened = 0;               // failed sandwiches whose interval was searched again
};

class Search {
 public:
  // `commits` >= 2: index 0 is the known good end, commits - 1 the bad end.
  Search(int commits, SearchOptions options);

  // What to measure next (empty while waiting for nothing: then done() is true). Calling it
  // starts a round; the requests of one round may run in parallel.
  std::vector<Request> requests();
  // Measured runs of a commit (TTFB ms). Throws std::invalid_argument for an unknown commit.
  void add_runs(int commit, const std::vector<double>& ttfb_ms);
  // A sandwich's runs: `parent` and `commit` measured side by side (Request::beside).
  void add_sandwich_runs(int parent, int commit, const std::vector<double>& parent_ms,
                         const std::vector<double>& commit_ms);
  // The commit cannot be measured (build failure, crash): it is skipped from now on.
  void mark_broken(int commit);

  bool done() const { return done_; }
  // The ends differ: the search proper has started (the server shows "searching").
  bool ends_verified() const { return ends_verified_; }
  const SearchResult& result() const { return result_; }

 private:
  enum class Side { unknown, good, bad };
  struct Interval {
    int good = 0, bad = 0;       // ends: good < bad
    int outer_good = 0, outer_bad = 0;  // the ends it was narrowed from (searched again from
                                        // there when its sandwich fails)
    bool verified = true;        // its ends are known to differ (else: measured until decided)
  };
  static Interval whole(int good, int bad) { return Interval{good, bad, good, bad, true}; }
  static Interval unverified(int good, int bad) { return Interval{good, bad, good, bad, false}; }
  void step();
  std::optional<Side> classify(int probe, const Interval& iv, bool at_budget) const;
  // The sandwich of an adjacent pair: true when decided (its runs are in), else it asks for
  // another block side by side.
  bool sandwiched(const Interval& iv);
  std::optional<stats::WelchResult> sandwich_step(const Interval& iv) const;  // set: a culprit
  int runs_of(int commit) const;       // measured runs so far
  bool need(int commit, int runs);     // requests what is missing to reach `runs`; false if none
  int nearest_usable(int commit, const Interval& iv) const;

  int n_;
  SearchOptions options_;
  std::map<int, std::vector<double>> runs_;
  std::vector<bool> broken_;
  std::vector<Interval> open_;      // intervals still being searched
  std::vector<Request> pending_;
  std::map<std::pair<int, int>, std::pair<std::vector<double>, std::vector<double>>> sandwiches_;  // (parent, commit)
  bool ends_verified_ = false;
  bool unsure_ = false;
  bool done_ = false;
  SearchResult result_;
};

}  // namespace ttfb::bisect::legacy
