// The bisection search (server/bisect/search.hpp) driven by simulated commits: a range with a
// step of known size at a known commit, with log-normal noise. Seeded, so every run is the same.
#include "server/bisect/search.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <stdexcept>

namespace ttfb::bisect {
namespace {

struct Range {
  std::vector<double> level;  // median TTFB of each commit
  std::set<int> broken;
  std::map<int, std::pair<int, double>> misleading;  // commit -> its first N runs come out this much slower
  std::map<int, double> alone;  // commit -> slower by this much when measured alone, never side by side
  std::mt19937_64 engine{1};
  std::vector<double> measure(int commit, int runs, bool side_by_side = false) {
    std::normal_distribution<double> z(0.0, 0.03);
    std::vector<double> out;
    for (int i = 0; i < runs; ++i) {
      double ms = level[static_cast<std::size_t>(commit)] * std::exp(z(engine));
      if (!side_by_side && alone.count(commit)) ms *= 1.0 + alone.at(commit);
      auto it = misleading.find(commit);
      if (it != misleading.end() && it->second.first > 0) {
        --it->second.first;
        ms *= 1.0 + it->second.second;
      }
      out.push_back(ms);
    }
    return out;
  }
};

Range with_steps(int commits, std::vector<std::pair<int, double>> steps, std::uint64_t seed = 1) {
  Range r;
  r.engine.seed(seed);
  double ms = 200.0;
  for (int c = 0; c < commits; ++c) {
    for (const auto& [at, pct] : steps)
      if (at == c) ms *= 1.0 + pct / 100.0;
    r.level.push_back(ms);
  }
  return r;
}

SearchResult run(Search& s, Range& r, int max_rounds = 200) {
  for (int round = 0; round < max_rounds && !s.done(); ++round) {
    for (const auto& q : s.requests()) {
      if (r.broken.count(q.commit)) {
        s.mark_broken(q.commit);
      } else if (q.beside >= 0) {
        const auto parent = r.measure(q.beside, q.runs, true);
        if (q.part) s.add_part_runs(q.beside, q.commit, parent, r.measure(q.commit, q.runs, true));
        else s.add_sandwich_runs(q.beside, q.commit, parent, r.measure(q.commit, q.runs, true));
      } else {
        s.add_runs(q.commit, r.measure(q.commit, q.runs));
      }
    }
  }
  EXPECT_TRUE(s.done()) << "the search must end";
  return s.result();
}

TEST(Bisection, FindsTheOneCulpritAndItsEffect) {
  for (int culprit : {1, 7, 15, 16}) {
    Range r = with_steps(17, {{culprit, 10.0}}, static_cast<std::uint64_t>(culprit));
    Search s(17, SearchOptions{});
    SearchResult res = run(s, r);
    EXPECT_EQ(res.status, "found") << res.message;
    ASSERT_EQ(res.culprits.size(), 1u) << "culprit " << culprit;
    EXPECT_EQ(res.culprits[0].commit, culprit);
    EXPECT_NEAR(res.culprits[0].effect_pct, 10.0, 3.0);
    EXPECT_GT(res.culprits[0].ci_low_pct, 0.0);
    EXPECT_GT(res.runs, 0);
    EXPECT_GT(res.rounds, 0);
  }
}

TEST(Bisection, NoRegressionBetweenTheEndsStopsEarly) {
  Range r = with_steps(33, {});
  Search s(33, SearchOptions{});
  SearchResult res = run(s, r);
  EXPECT_EQ(res.status, "no_regression");
  EXPECT_TRUE(res.culprits.empty());
  EXPECT_LE(res.runs, 2 * 60) << "only the ends were measured";
}

TEST(Bisection, TwoCulpritsAreBothFound) {
  Range r = with_steps(33, {{9, 8.0}, {24, 12.0}}, 3);
  Search s(33, SearchOptions{});
  SearchResult res = run(s, r);
  ASSERT_EQ(res.culprits.size(), 2u) << res.message;
  EXPECT_EQ(res.culprits[0].commit, 9);
  EXPECT_EQ(res.culprits[1].commit, 24);
}

TEST(Bisection, ABrokenCommitIsSkippedAndReportedNotBlamed) {
  Range r = with_steps(17, {{11, 10.0}}, 4);
  r.broken = {8, 10};
  Search s(17, SearchOptions{});
  SearchResult res = run(s, r);
  ASSERT_EQ(res.culprits.size(), 1u) << res.message;
  // Commit 10 cannot be measured: the step is pinned between 9 and 11, on the first usable commit.
  EXPECT_EQ(res.culprits[0].commit, 11);
  ASSERT_FALSE(res.broken.empty()) << "the search ran into a broken commit and says so";
  for (int c : res.broken) EXPECT_TRUE(c == 8 || c == 10) << c;
  EXPECT_EQ(res.status, "found");
}

TEST(Bisection, ParallelProbesTakeFewerRounds) {
  Range a = with_steps(65, {{40, 10.0}}, 5), b = with_steps(65, {{40, 10.0}}, 5);
  Search one(65, SearchOptions{});
  SearchOptions three;
  three.parallel_probes = 3;
  Search par(65, three);
  SearchResult r1 = run(one, a), r3 = run(par, b);
  ASSERT_EQ(r1.culprits.size(), 1u);
  ASSERT_EQ(r3.culprits.size(), 1u);
  EXPECT_EQ(r3.culprits[0].commit, 40);
  EXPECT_LT(r3.rounds, r1.rounds);
}

TEST(Bisection, AFailedSandwichSearchesTheIntervalAgain) {
  // Commit 11's first block happens to run 20% slow (a busy machine), so the search takes it for
  // bad and sandwiches it against 10; with more runs, 11 is as fast as 10 and the sandwich fails.
  // The step is still between 11 and the bad end: searched again, the real culprit is found.
  Range r = with_steps(17, {{12, 20.0}}, 4);
  r.misleading[11] = {10, 0.20};
  Search s(17, SearchOptions{});
  SearchResult res = run(s, r);
  EXPECT_EQ(res.status, "found") << res.message;
  ASSERT_EQ(res.culprits.size(), 1u);
  EXPECT_EQ(res.culprits[0].commit, 12);
  EXPECT_EQ(res.culprits[0].parent, 11);
  EXPECT_EQ(res.reopened, 1);
}

// Every part of the range is decided: three culprits, one of them small beside a large one, and
// two adjacent. The search before issue 15 stopped once the culprits found "explained" 80% of the
// end-to-end change, so the +4% beside the +20% was never looked for. A +4% part at 3% noise is
// decided "slower" on 40 runs per end in about 99% of ranges, not always: over 20 seeds per case
// (80 searches) every culprit and nothing else must be found in at least 78, and no commit
// without a step may ever be blamed.
TEST(Bisection, EveryCulpritIsFoundWhateverTheOthersExplain) {
  struct Case {
    int commits;
    std::vector<std::pair<int, double>> steps;
  };
  int searches = 0, exact = 0, culprits = 0, covered = 0;
  for (const Case& k : {Case{33, {{6, 20.0}, {19, 4.0}}}, Case{33, {{5, 5.0}, {14, 5.0}, {27, 5.0}}},
                        Case{33, {{20, 6.0}, {21, 6.0}}}, Case{49, {{3, 4.0}, {30, 25.0}, {31, 4.0}}}}) {
    std::set<int> want;
    std::map<int, double> size;
    for (const auto& [at, pct] : k.steps) want.insert(at), size[at] = pct;
    for (std::uint64_t seed = 1; seed <= 20; ++seed) {
      Range r = with_steps(k.commits, k.steps, seed);
      Search s(k.commits, SearchOptions{});
      SearchResult res = run(s, r, 400);
      std::set<int> got;
      std::string parts;
      for (const auto& p : res.parts)
        parts += "; part " + std::to_string(p.good) + ".." + std::to_string(p.bad) + " " + p.state + ": " + p.reason;
      for (const auto& c : res.culprits) {
        got.insert(c.commit);
        ASSERT_TRUE(want.count(c.commit)) << "a commit without a step blamed: " << c.commit << " (seed " << seed << ")";
        ++culprits;
        // The sandwich's interval (at its deciding look's level) holds the step's true size.
        covered += c.ci_low_pct <= size.at(c.commit) && size.at(c.commit) <= c.ci_high_pct;
      }
      ++searches;
      exact += got == want;
      if (got != want) std::cerr << "missed: " << res.message << " (seed " << seed << ")" << parts << "\n";
      EXPECT_EQ(res.status, "found") << res.message;
    }
  }
  EXPECT_GE(exact, searches - 2) << exact << " of " << searches << " searches found every culprit";
  EXPECT_GE(covered, culprits - 2) << covered << " of " << culprits << " culprits' intervals hold the true step";
}

// The parts beside a culprit are decided and reported, and what the culprits leave unexplained
// is an interval around 0 when they are all there is.
TEST(Bisection, ThePartsBesideACulpritAreDecidedAndReported) {
  Range r = with_steps(33, {{13, 10.0}}, 21);
  Search s(33, SearchOptions{});
  SearchResult res = run(s, r);
  ASSERT_EQ(res.culprits.size(), 1u) << res.message;
  EXPECT_EQ(res.culprits[0].commit, 13);
  // The parts beside it: 0..12 and 13..32, each decided at its ends (same within the margin, or
  // named unsure), never left out.
  ASSERT_EQ(res.parts.size(), 2u) << res.message;
  EXPECT_EQ(res.parts[0].good, 0);
  EXPECT_EQ(res.parts[0].bad, 12);
  EXPECT_EQ(res.parts[1].good, 13);
  EXPECT_EQ(res.parts[1].bad, 32);
  for (const auto& p : res.parts) {
    EXPECT_TRUE(p.state == "same" || p.state == "not_slower" || p.state == "unsure") << p.state << ": " << p.reason;
    EXPECT_FALSE(p.reason.empty());
    EXPECT_LT(p.ci_low_pct, 3.0);
  }
  EXPECT_TRUE(std::isfinite(res.remainder_pct));
  EXPECT_LT(res.remainder_ci_low_pct, 0.0) << res.message;
  EXPECT_GT(res.remainder_ci_high_pct, 0.0) << res.message;
  EXPECT_NEAR(res.total_effect_pct, 10.0, 2.0);
  EXPECT_NE(res.message.find("unexplained"), std::string::npos) << res.message;
  // The culprit's interval is the paired test's at its deciding look (a level above 1 - alpha).
  EXPECT_GE(res.culprits[0].ci_level, 0.99);
  EXPECT_LT(res.culprits[0].p_value, 1.0 - res.culprits[0].ci_level);
  EXPECT_GE(res.culprits[0].pairs, 8);
}

// A slowdown that shows only in runs measured alone (the machine, not the code) makes every
// sandwich fail: after its reopens the part is reported as a failed sandwich, and the search is
// unresolved, not "broken" and not a culprit.
TEST(Bisection, ASandwichThatKeepsFailingIsReportedAsSuch) {
  Range r = with_steps(17, {}, 6);
  for (int c = 9; c < 17; ++c) r.alone[c] = 0.15;
  Search s(17, SearchOptions{});
  SearchResult res = run(s, r, 400);
  EXPECT_EQ(res.status, "unresolved") << res.message;
  EXPECT_TRUE(res.culprits.empty());
  EXPECT_TRUE(res.broken.empty());
  EXPECT_EQ(res.reopened, kMaxReopens);
  ASSERT_EQ(res.parts.size(), 1u);
  EXPECT_EQ(res.parts[0].state, "sandwich_failed");
  EXPECT_NE(res.parts[0].reason.find("side by side"), std::string::npos) << res.parts[0].reason;
  EXPECT_NE(res.message.find("no commit was confirmed"), std::string::npos) << res.message;
}

TEST(Bisection, PartsSideBySideAreDecidedOnTheirOwnPairs) {
  // part_pairs (the server's setting): a part beside a culprit asks for its two ends side by
  // side, never for a part of one commit (its sandwich decides that), and the second culprit in
  // it is found; adjacent culprits both found.
  for (const auto& steps : std::vector<std::vector<std::pair<int, double>>>{{{6, 15.0}, {21, 6.0}}, {{9, 8.0}, {10, 8.0}}}) {
    Range r = with_steps(33, steps, 5);
    SearchOptions o;
    o.part_pairs = true;
    Search s(33, o);
    int part_requests = 0;
    for (int round = 0; round < 300 && !s.done(); ++round) {
      for (const auto& q : s.requests()) {
        if (q.part) {
          ++part_requests;
          EXPECT_GT(q.commit, q.beside + 1) << "a part of one commit goes to its sandwich";
          s.add_part_runs(q.beside, q.commit, r.measure(q.beside, q.runs, true), r.measure(q.commit, q.runs, true));
        } else if (q.beside >= 0) {
          const auto parent = r.measure(q.beside, q.runs, true);
          s.add_sandwich_runs(q.beside, q.commit, parent, r.measure(q.commit, q.runs, true));
        } else {
          s.add_runs(q.commit, r.measure(q.commit, q.runs));
        }
      }
    }
    ASSERT_TRUE(s.done());
    std::set<int> found, want;
    for (const auto& c : s.result().culprits) found.insert(c.commit);
    for (const auto& [at, pct] : steps) want.insert(at);
    EXPECT_EQ(found, want) << s.result().message;
    if (steps[1].first > steps[0].first + 1) {
      EXPECT_GT(part_requests, 0);
    }
    for (const auto& p : s.result().parts) {
      EXPECT_FALSE(p.reason.empty());
      EXPECT_NE(p.state, "sandwich_failed") << p.reason;
    }
  }
  EXPECT_THROW(Search(5, SearchOptions{}).add_part_runs(3, 2, {1.0}, {1.0}), std::invalid_argument);
}

TEST(Bisection, RejectsBadInput) {
  EXPECT_THROW(Search(1, SearchOptions{}), std::invalid_argument);
  SearchOptions o;
  o.parallel_probes = 0;
  EXPECT_THROW(Search(5, o), std::invalid_argument);
  Search s(5, SearchOptions{});
  EXPECT_THROW(s.add_runs(5, {1.0}), std::invalid_argument);
  EXPECT_THROW(s.mark_broken(-1), std::invalid_argument);
}

}  // namespace
}  // namespace ttfb::bisect
