// The server's way of running a bisection (server/bisect/replay.hpp): rounds recorded, replayed
// through a new Search every time. Replaying must give the same search as running it live; a
// seed saves measuring the ends; a broken commit is reported with its error; the report names
// culprits with their commits and authors.
#include "server/bisect/replay.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <stdexcept>

namespace ttfb::bisect {
namespace {

std::vector<git::CommitInfo> range(int n) {
  std::vector<git::CommitInfo> out;
  for (int i = 0; i < n; ++i) {
    char sha[41];
    std::snprintf(sha, sizeof sha, "%040x", i + 1);
    out.push_back(git::CommitInfo{sha, "commit " + std::to_string(i), "Author " + std::to_string(i),
                                  "a" + std::to_string(i) + "@example.com", "2026-11-23T12:00:00+00:00"});
  }
  return out;
}

// Commits at 100 ms, then +20% from `culprit` on; the "imports" phase carries the step.
struct Sim {
  int culprit = 5;
  std::set<int> broken;
  std::mt19937_64 engine{7};
  CommitRuns measure(int commit, int runs) {
    std::normal_distribution<double> z(0.0, 0.02);
    CommitRuns out;
    for (int i = 0; i < runs; ++i) {
      const double imports = (commit >= culprit ? 40.0 : 20.0) * std::exp(z(engine));
      const double rest = 80.0 * std::exp(z(engine));
      out.ttfb_ms.push_back(imports + rest);
      out.phases.runs.push_back({{"imports", imports}, {"model", rest}});
    }
    return out;
  }
  // Runs the rounds the way the server does: plan from a replay, "measure", record, replay again.
  std::vector<Round> run(int n, const SearchOptions& options, const Seed& seed, int max_rounds = 100) {
    std::vector<Round> rounds;
    for (int i = 0; i < max_rounds; ++i) {
      Replayed r = replay(n, options, seed, rounds);
      if (r.search.done()) return rounds;
      Round round;
      round.requests = r.next;
      for (const auto& q : r.next) {
        ProbeOutcome o;
        o.commit = q.commit;
        if (broken.count(q.commit)) {
          o.error = "build_failed: SyntaxError";
        } else {
          o.runs = measure(q.commit, q.runs);
        }
        round.outcomes.push_back(std::move(o));
      }
      rounds.push_back(std::move(round));
    }
    ADD_FAILURE() << "the bisection did not end in " << max_rounds << " rounds";
    return rounds;
  }
};

TEST(BisectionReplay, FindsTheCulpritRoundByRoundAndReportsIt) {
  const int n = 12;
  Sim sim;
  const SearchOptions options{.parallel_probes = 2};
  const auto rounds = sim.run(n, options, Seed{});
  const Replayed r = replay(n, options, Seed{}, rounds);
  ASSERT_TRUE(r.search.done());
  EXPECT_TRUE(r.next.empty());
  const auto commits = range(n);
  const boost::json::object rep = report(r, commits, 0.01);
  EXPECT_EQ(rep.at("status").as_string(), "found");
  const auto& culprits = rep.at("culprits").as_array();
  ASSERT_EQ(culprits.size(), 1u);
  const auto& c = culprits[0].as_object();
  EXPECT_EQ(c.at("commit").as_string(), commits[5].sha);
  EXPECT_EQ(c.at("parent").as_string(), commits[4].sha);
  EXPECT_EQ(c.at("author").as_string(), "Author 5");
  EXPECT_EQ(c.at("email").as_string(), "a5@example.com");
  EXPECT_NEAR(c.at("effect_pct").as_double(), 20.0, 4.0);
  EXPECT_LT(c.at("ci_low_pct").as_double(), c.at("effect_pct").as_double());
  EXPECT_EQ(c.at("phase").as_string(), "imports");
  EXPECT_NEAR(c.at("phase_delta_ms").as_double(), 20.0, 3.0);
  EXPECT_EQ(rep.at("rounds").as_int64(), static_cast<long>(rounds.size()));
  EXPECT_EQ(rep.at("reused_runs").as_int64(), 0);
  // The commits table: the culprit marked, every measured commit with its runs.
  const auto& table = rep.at("commits").as_array();
  ASSERT_EQ(table.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(table[5].as_object().at("state").as_string(), "culprit");
  EXPECT_EQ(table[0].as_object().at("state").as_string(), "measured");
  long runs = 0;
  for (const auto& row : table) runs += row.as_object().at("runs").to_number<long>();
  EXPECT_EQ(runs, rep.at("runs").to_number<long>());
}

TEST(BisectionReplay, ReplayIsTheLiveSearch) {
  // The same measurements fed to one Search as they come: same requests, same result.
  const int n = 9;
  Sim sim;
  sim.culprit = 3;
  const SearchOptions options{.parallel_probes = 1};
  const auto rounds = sim.run(n, options, Seed{});
  Search live(n, options);
  for (const auto& round : rounds) {
    std::vector<Request> asked;
    while (asked.empty() && !live.done()) asked = merge_requests(live.requests());
    ASSERT_EQ(asked.size(), round.requests.size());
    for (const auto& o : round.outcomes) live.add_runs(o.commit, o.runs.ttfb_ms);
  }
  while (!live.done() && live.requests().empty()) {
  }
  const Replayed r = replay(n, options, Seed{}, rounds);
  ASSERT_TRUE(live.done());
  ASSERT_EQ(live.result().culprits.size(), r.search.result().culprits.size());
  EXPECT_EQ(live.result().culprits[0].commit, r.search.result().culprits[0].commit);
  EXPECT_DOUBLE_EQ(live.result().culprits[0].effect_pct, r.search.result().culprits[0].effect_pct);
  EXPECT_EQ(live.result().runs, r.search.result().runs);
}

TEST(BisectionReplay, ASeedSparesMeasuringTheEnds) {
  const int n = 8;
  Sim sim;
  const SearchOptions options{};
  const Seed seed{sim.measure(0, 20), sim.measure(n - 1, 20)};
  const Replayed first = replay(n, options, seed, {});
  for (const auto& q : first.next) {
    EXPECT_NE(q.commit, 0) << "the seeded ends are not measured again first";
    EXPECT_NE(q.commit, n - 1);
  }
  const auto rounds = sim.run(n, options, seed);
  const Replayed r = replay(n, options, seed, rounds);
  const auto rep = report(r, range(n), 0.01);
  EXPECT_EQ(rep.at("status").as_string(), "found");
  EXPECT_EQ(rep.at("reused_runs").as_int64(), 40);
  EXPECT_EQ(rep.at("measured_runs").as_int64() + 40, rep.at("runs").as_int64());
  EXPECT_EQ(rep.at("culprits").as_array()[0].as_object().at("commit").as_string(), range(n)[5].sha);
}

TEST(BisectionReplay, ABrokenCommitIsReportedWithItsErrorAndNeverBlamed) {
  const int n = 10;
  Sim sim;
  sim.culprit = 5;
  sim.broken = {4};
  const SearchOptions options{};
  const auto rounds = sim.run(n, options, Seed{});
  const Replayed r = replay(n, options, Seed{}, rounds);
  const auto commits = range(n);
  const auto rep = report(r, commits, 0.01);
  const auto& culprits = rep.at("culprits").as_array();
  ASSERT_EQ(culprits.size(), 1u) << boost::json::serialize(rep);
  const auto& c = culprits[0].as_object();
  EXPECT_EQ(c.at("commit").as_string(), commits[5].sha);
  // Its parent is the last commit that could be measured; the broken one between is named.
  EXPECT_EQ(c.at("parent").as_string(), commits[3].sha);
  ASSERT_EQ(c.at("broken_between").as_array().size(), 1u);
  EXPECT_EQ(c.at("broken_between").as_array()[0].as_string(), commits[4].sha);
  const auto& broken = rep.at("broken").as_array();
  ASSERT_EQ(broken.size(), 1u);
  EXPECT_EQ(broken[0].as_object().at("commit").as_string(), commits[4].sha);
  EXPECT_EQ(broken[0].as_object().at("error").as_string(), "build_failed: SyntaxError");
  EXPECT_EQ(rep.at("commits").as_array()[4].as_object().at("state").as_string(), "broken");
}

TEST(BisectionReplay, NoRegressionBetweenTheEndsStopsAfterVerifying) {
  const int n = 6;
  Sim sim;
  sim.culprit = 100;  // never
  const auto rounds = sim.run(n, SearchOptions{}, Seed{});
  const Replayed r = replay(n, SearchOptions{}, Seed{}, rounds);
  const auto rep = report(r, range(n), 0.01);
  EXPECT_EQ(rep.at("status").as_string(), "no_regression");
  EXPECT_TRUE(rep.at("culprits").as_array().empty());
  for (const auto& round : rounds)
    for (const auto& q : round.requests) EXPECT_TRUE(q.commit == 0 || q.commit == n - 1) << "only the ends";
}

TEST(BisectionReplay, RoundsThatDoNotBelongToTheSearchAreRefused) {
  Round bogus;
  bogus.requests = {Request{3, 10}};
  bogus.outcomes = {ProbeOutcome{3, {}, std::nullopt}};
  EXPECT_THROW(replay(8, SearchOptions{}, Seed{}, {bogus}), std::logic_error);
}

TEST(BisectionReplay, MergeKeepsTheLargerRequestPerCommitInCommitOrder) {
  const auto m = merge_requests({{5, 10}, {2, 10}, {5, 20}, {2, 4}});
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].commit, 2);
  EXPECT_EQ(m[0].runs, 10);
  EXPECT_EQ(m[1].commit, 5);
  EXPECT_EQ(m[1].runs, 20);
}

}  // namespace
}  // namespace ttfb::bisect
