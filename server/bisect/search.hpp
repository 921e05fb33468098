// Bisection as a pure state machine (no database, no workers): which commits of a first-parent
// range to measure next, and what the measurements say, until every part of the range is decided.
// The server drives it with jobs; bench/bisect_bench.cpp drives it with simulated runs.
//
//   ttfb::bisect::Search s(17, ttfb::bisect::SearchOptions{});    // commits 0 (good) .. 16 (bad)
//   while (!s.done()) {
//     for (const auto& r : s.requests()) {
//       if (r.beside < 0) s.add_runs(r.commit, measure(r.commit, r.runs));
//       else s.add_sandwich_runs(r.beside, r.commit, /* both measured side by side */ ...);
//     }
//   }
//   for (const auto& c : s.result().culprits) { /* c.commit, c.effect_pct, c.ci_low_pct, ... */ }
//   for (const auto& p : s.result().parts) { /* every other part: same, faster, unsure, ... */ }
//
// The method (DESIGN.md §5). What it guarantees: the search ends only when every part of the
// range is either a confirmed culprit or decided at its ends (the same, faster, or named as
// unsure with the reason); a part is never dropped because the culprits found already "explain
// enough".
// 1. Verify the end points first: the last commit against the first, with the adaptive design
//    (server/stats/adaptive.hpp). No regression there: the search says so and stops.
// 2. Search a part whose ends differ: probe the commits that split it into `parallel_probes + 1`
//    pieces (several at once when several workers are idle); classify each probe by which end of
//    the part it is nearer to, in standard errors that count the uncertainty of the ends' levels
//    as well as the probe's (a generalised likelihood ratio, classify()), with error kProbeError
//    per probe, and measure it and both ends more while unsure (up to max_runs_per_commit; then
//    the larger likelihood decides and the culprit found that way says "unsure"). Ends that look
//    reversed (the bad end measured faster than the good one) do not flip the rule: the probe
//    still goes to the end it is nearer to.
// 3. Sandwich: the culprit candidate (first bad commit after a good one) is measured anew, side
//    by side with its parent in the same jobs (interleaved, ABBA), a block at a time. The test is
//    the paired t-test on the log ratio of neighbouring runs (server/stats/paired.hpp), at the
//    nominal levels of SearchOptions::sandwich_alpha spent over its looks (every block of
//    runs_per_block pairs up to max_runs_per_commit), on those runs only: the runs that led the
//    search there were picked for looking different, so the culprit's effect comes from the
//    sandwich alone. A step of at least the threshold shown at a look's level: a culprit. The
//    pair shown the same, or no step by the last look: the sandwich failed, a probe (or an end
//    of the part) was put on the wrong side; every probe run in the part is dropped and the part
//    is searched again on fresh runs (at most kMaxReopens times per part; then the part is
//    reported as a failed sandwich).
// 4. Every part beside a culprit (between the culprit and the ends of the part it was found in)
//    is decided like the range's ends: its ends compared with the adaptive design on every run
//    of each, as a probe and in a sandwich (measured more while undecided), with
//    M = max(margin_pct, threshold_pct) as the margin. Different: searched like step 2. The same within M, faster, or not slower by M (the interval's upper end below
//    M at a look: no step of that size to look for): decided. Undecided after
//    max_runs_per_commit runs per end and not looking slower by M: `unsure`; looking slower, it
//    is measured on to the design's max_runs_per_arm (where a hidden step would be), then
//    `unsure` if still undecided. Unsure parts are reported with their numbers, never blamed.
//    With SearchOptions::part_pairs (the server) the ends are measured anew side by side
//    (Request::part) and compared with the paired test at the same looks and levels; a part of one
//    commit goes straight to its sandwich, whose failure then decides the part (same, not slower,
//    faster or unsure) instead of searching it again.
// 5. A commit that cannot be measured (does not build, crashes) is marked broken: it is skipped
//    and reported, and a neighbour is probed instead; it never becomes a culprit. An end of the
//    range that cannot be measured ends the search as "broken"; an end of a part that breaks
//    while it is searched sends the part back to the ends it was narrowed from.
// The result also reports what the culprits leave unexplained: the end-to-end change minus the
// sum of the culprits' changes (log scale), with a normal interval at 1 - alpha from the ends'
// and the sandwiches' standard errors (independent measurements).
#pragma once

#include "server/stats/adaptive.hpp"
#include "server/stats/paired.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ttfb::bisect {

// Chance that one probe is put on the wrong side (the likelihood ratio's bound, see classify()).
inline constexpr double kProbeError = 0.001;
// Failed sandwiches (or ends that broke) after which a part is searched again, per part.
inline constexpr int kMaxReopens = 3;

struct SearchOptions {
  stats::AdaptiveDesign design{.alpha = 0.01, .threshold_pct = 2.0, .runs_per_block = 10, .max_runs_per_arm = 60};
  int parallel_probes = 1;            // commits probed per round (idle workers)
  int max_runs_per_commit = 40;       // an unsure probe is measured up to this many runs; a
                                      // sandwich up to this many pairs
  // How a part beside a culprit is decided (step 4). false: on its ends' runs as probes, topped
  // up (the runs are there already; what a machine whose runs are independent wants). true: on
  // fresh pairs of its ends measured side by side (Request::part), with the paired test: what the
  // server does, because its probe runs are each scaled by a reference run beside them (twice a
  // run's variance, two runs per value), so a pair of the ends side by side shows the same step
  // with a quarter of the runs, and without the bias of runs that were picked for looking like
  // one end.
  bool part_pairs = false;
  // The sandwich's level (two-sided, spent over its looks): the chance that a pair without a step
  // confirms a culprit is at most half of it. Below the design's alpha because a bisection runs
  // many sandwiches (one per culprit, one per part of one commit, one per reopen) and a neutral
  // commit blamed is the error people least forgive; a real step shows at this level within a
  // few more pairs.
  double sandwich_alpha = 0.002;
};

struct Request {
  int commit = 0;
  int runs = 0;
  int beside = -1;  // >= 0: `commit` and `beside` measured side by side, `runs` runs each: a
                    // sandwich of `commit` and its parent (add_sandwich_runs), or the ends of a part
                    // (`part`: add_part_runs); -1: `commit` alone (add_runs)
  bool part = false;
};

struct Culprit {
  int commit = 0;                // index in the range
  int parent = 0;                // the commit it was sandwiched against: commit - 1, or earlier
                                 // when the commits between are broken (then any of them may be it)
  double effect_pct = 0.0;       // commit vs parent: the paired test's geometric mean ratio
  double ci_low_pct = 0.0, ci_high_pct = 0.0;
  double ci_level = 0.99;        // the interval's confidence: 1 - the deciding look's nominal alpha
  double p_value = 1.0;          // the paired test's two-sided p at the deciding look (compare
                                 // with 1 - ci_level, not with the design's alpha)
  int pairs = 0;                 // sandwich pairs the decision used (after the outlier rule)
  double se_log = 0.0;           // the paired test's standard error of the log ratio
  bool unsure = false;           // a probe on its path was classified at its run budget
};

// A part of the range that holds no culprit, and how it was decided.
struct Part {
  int good = 0, bad = 0;         // its ends (indices)
  std::string state;             // "same" (the ends shown the same), "faster" (the bad end is
                                 // faster), "not_slower" (not slower by the margin), "unsure"
                                 // (neither within the budget), "sandwich_failed" (narrowed to a
                                 // pair whose step did not show, kMaxReopens times),
                                 // "unmeasurable" (an end of it cannot be measured)
  std::string reason;            // one sentence with the numbers
  double effect_pct = 0.0, ci_low_pct = 0.0, ci_high_pct = 0.0;  // bad vs good end (a failed
                                 // sandwich: its pair); NaN when not measured
};

struct SearchResult {
  std::string status;            // "found" (one culprit or more), "no_regression" (the ends do not
                                 // differ), "unresolved" (the ends differ, no culprit confirmed:
                                 // see parts), "broken" (an end of the range cannot be measured)
  std::string message;
  std::vector<Culprit> culprits;  // by commit
  std::vector<Part> parts;        // every decided part that holds no culprit, by position
  double total_effect_pct = 0.0;  // last vs first commit (all their runs at the end)
  double total_ci_low_pct = 0.0, total_ci_high_pct = 0.0;
  // What the culprits leave unexplained, (1 + total) / prod(1 + culprit) - 1, and its interval at
  // 1 - alpha; NaN before the search is done or without culprits.
  double remainder_pct = 0.0, remainder_ci_low_pct = 0.0, remainder_ci_high_pct = 0.0;
  double ci_level = 0.99;         // of the total's and the remainder's intervals
  std::vector<int> broken;        // commits that could not be measured
  int runs = 0;                   // measured runs, all commits
  int rounds = 0;                 // batches of requests
  int reopened = 0;               // failed sandwiches whose part was searched again
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
  // A sandwich's runs: `parent` and `commit` measured side by side (Request::beside), run i of
  // each next to the other (they are tested as pairs; the longer list's extra runs are unpaired
  // and ignored).
  void add_sandwich_runs(int parent, int commit, const std::vector<double>& parent_ms,
                         const std::vector<double>& commit_ms);
  // A part's ends measured side by side (Request::part), paired like a sandwich's runs.
  void add_part_runs(int good, int bad, const std::vector<double>& good_ms, const std::vector<double>& bad_ms);
  // The commit cannot be measured (build failure, crash): it is skipped from now on.
  void mark_broken(int commit);

  bool done() const { return done_; }
  // The ends differ: the search proper has started (the server shows "searching").
  bool ends_verified() const { return ends_verified_; }
  const SearchResult& result() const { return result_; }

 private:
  enum class Side { good, bad };
  struct Interval {
    int good = 0, bad = 0;              // ends: good < bad
    int outer_good = 0, outer_bad = 0;  // the ends it was narrowed from (searched again from
                                        // there when its sandwich fails)
    bool verified = true;               // its ends are known to differ (else: measured until decided)
    bool unsure = false;                // a probe on the way here was classified at its budget
    int reopens = 0;                    // times it was searched again
  };
  static Interval whole(int good, int bad, int reopens = 0) { return Interval{good, bad, good, bad, true, false, reopens}; }
  static Interval unverified(int good, int bad) { return Interval{good, bad, good, bad, false, false, 0}; }
  using Pairs = std::pair<std::vector<double>, std::vector<double>>;  // run i of each side by side
  // The paired test at the plan's last look at or below the pairs measured (after the outlier
  // rule on the pairs' ratios); `ready` false below the first look.
  struct PairedLook {
    bool ready = false, final = false;
    int pairs = 0;  // measured, before the outlier rule
    double nominal_alpha = 0.0;
    stats::PairedResult test;
  };
  static PairedLook paired_look(const Pairs* pairs, const std::vector<stats::LookPlan>& plan);
  static int pairs_wanted(const Pairs* pairs, const std::vector<stats::LookPlan>& plan);  // to the next look
  // Appends the whole pairs of two side-by-side lists; returns the runs measured (all of them).
  static int append_pairs(Pairs& to, const std::vector<double>& first_ms, const std::vector<double>& second_ms);
  enum class SandwichOutcome { more, culprit, failed };
  struct SandwichLook {
    SandwichOutcome outcome = SandwichOutcome::more;
    stats::PairedResult test;
    double nominal_alpha = 0.0;
    std::string reason;
  };
  void step();
  void finish();
  std::optional<Side> classify(int probe, const Interval& iv, bool at_budget) const;
  SandwichLook sandwich_look(const Interval& iv) const;
  // A part beside a culprit at its latest look, on its ends' runs (Welch, the adaptive design's
  // rules) or on its side-by-side pairs (the paired test, the same rules at the same levels).
  struct PartLook {
    bool ready = false;             // a first look was possible
    int n = 0;                      // runs per end, or pairs
    bool final = false;             // no look after this one
    stats::Verdict verdict = stats::Verdict::inconclusive;  // regression (different, slower), improvement, no_change, inconclusive
    bool valid = false;
    double diff_ci_high = 0.0;      // log scale
    double effect_pct = 0.0, ci_low_pct = 0.0, ci_high_pct = 0.0, confidence = 0.0;
    std::string reason;             // the look's rules in words, when it decides
    int good_level_runs = 0, bad_level_runs = 0;  // without part_pairs: the ends' level_runs counts
  };
  PartLook part_look(const Interval& iv) const;
  int runs_of(int commit) const;       // measured runs so far (as a probe or an end)
  // The runs of the commit as a probe or end and in its sandwiches: what a part's end is decided
  // on without part_pairs.
  std::vector<double> level_runs(int commit) const;
  bool need(int commit, int runs);     // requests what is missing to reach `runs`; false if none
  int nearest_usable(int commit, const Interval& iv) const;
  bool is_broken(int commit) const { return broken_[static_cast<std::size_t>(commit)]; }
  void add_part(int good, int bad, std::string state, std::string reason, double effect, double low, double high);

  int n_;
  SearchOptions options_;
  stats::AdaptiveDesign part_design_;          // the design with margin max(margin, threshold)
  std::vector<stats::LookPlan> sandwich_plan_;  // the sandwich's looks and nominal levels
  std::vector<stats::LookPlan> part_plan_;      // a part's side-by-side looks (part_design_'s)
  std::map<int, std::vector<double>> runs_;
  std::vector<bool> broken_;
  std::vector<Interval> open_;      // intervals still being searched
  std::vector<Request> pending_;
  std::map<std::pair<int, int>, Pairs> sandwiches_;  // (parent, commit)
  std::map<std::pair<int, int>, Pairs> part_pairs_;  // (good, bad) of a part beside a culprit
  bool ends_verified_ = false;
  bool done_ = false;
  SearchResult result_;
};

}  // namespace ttfb::bisect
