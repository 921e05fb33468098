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

// Commits at 100 ms, then +20% from `culprit` on (and `second_step` more from `second` on); the
// "imports" phase carries the steps. Each job runs on a machine whose speed drifts from job to
// job by a factor with log-sd `job_drift` (0: a quiet machine), the same for both arms of a job.
struct Sim {
  int culprit = 5;
  int second = 1000;
  double step = 0.20, second_step = 0.0;
  double job_drift = 0.0;
  std::set<int> broken;
  std::mt19937_64 engine{7};
  CommitRuns measure(int commit, int runs, double speed = 1.0) {
    std::normal_distribution<double> z(0.0, 0.02);
    CommitRuns out;
    for (int i = 0; i < runs; ++i) {
      const double level = (commit >= culprit ? 1.0 + step : 1.0) * (commit >= second ? 1.0 + second_step : 1.0);
      const double imports = (20.0 + 100.0 * (level - 1.0)) * std::exp(z(engine)) * speed;
      const double rest = 80.0 * std::exp(z(engine)) * speed;
      out.ttfb_ms.push_back(imports + rest);
      out.phases.runs.push_back({{"imports", imports}, {"model", rest}});
    }
    return out;
  }
  // One job: the commit (beside another when asked), at this job's machine speed.
  ProbeOutcome job(const ProbeJob& j) {
    ProbeOutcome o;
    o.job = j;
    if (broken.count(j.commit)) {
      o.error = "build_failed: SyntaxError";
      return o;
    }
    const double speed = std::exp(std::normal_distribution<double>(0.0, job_drift)(engine));
    if (j.beside >= 0) o.beside = measure(j.beside, j.runs, speed);
    o.runs = measure(j.commit, j.runs, speed);
    return o;
  }
  // Runs the rounds the way the server does: plan from a replay, "measure", record, replay again.
  std::vector<Round> run(int n, const SearchOptions& options, const Seed& seed, int max_rounds = 100,
                         Pairing pairing = Pairing::paired) {
    std::vector<Round> rounds;
    for (int i = 0; i < max_rounds; ++i) {
      Replayed r = replay(n, options, seed, rounds, pairing);
      if (r.search.done()) return rounds;
      Round round;
      round.requests = r.next;
      for (const auto& j : plan_jobs(r.next, pairing)) round.outcomes.push_back(job(j));
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
  EXPECT_GE(rep.at("sandwich_runs").to_number<long>(), 20) << "the culprit and its parent, side by side, a block at least";
  // The interval is the paired test's at the nominal level of the look that decided (alpha
  // spent over the sandwich's looks): above 1 - alpha, and p below 1 - that level.
  EXPECT_GT(c.at("ci_level").as_double(), 0.99);
  EXPECT_LT(c.at("p_value").as_double(), 1.0 - c.at("ci_level").as_double());
  // Every part beside the culprit decided, and what it leaves unexplained with its interval.
  EXPECT_EQ(rep.at("parts").as_array().size(), 2u);
  EXPECT_LE(rep.at("remainder_ci_low_pct").as_double(), rep.at("remainder_pct").as_double());
  EXPECT_GE(rep.at("remainder_ci_high_pct").as_double(), rep.at("remainder_pct").as_double());
  EXPECT_EQ(runs + rep.at("sandwich_runs").to_number<long>(), rep.at("runs").to_number<long>());
  EXPECT_EQ(c.at("runs").to_number<long>(), c.at("parent_runs").to_number<long>());
}

TEST(BisectionReplay, ReplayIsTheLiveSearch) {
  // The same measurements fed to one Search as they come: same requests, same culprit.
  const int n = 9;
  Sim sim;
  sim.culprit = 3;
  const SearchOptions options{.parallel_probes = 1};
  const auto rounds = sim.run(n, options, Seed{}, 100, Pairing::unpaired);
  Search live(n, options);
  for (const auto& round : rounds) {
    std::vector<Request> asked;
    while (asked.empty() && !live.done()) asked = merge_requests(live.requests());
    ASSERT_EQ(asked.size(), round.requests.size());
    for (const auto& o : round.outcomes) {
      if (o.job.sandwich) live.add_sandwich_runs(o.job.beside, o.job.commit, o.beside.ttfb_ms, o.runs.ttfb_ms);
      else live.add_runs(o.job.commit, o.runs.ttfb_ms);
    }
  }
  while (!live.done() && live.requests().empty()) {
  }
  const Replayed r = replay(n, options, Seed{}, rounds, Pairing::unpaired);
  ASSERT_TRUE(live.done());
  ASSERT_EQ(live.result().culprits.size(), r.search.result().culprits.size());
  EXPECT_EQ(live.result().culprits[0].commit, r.search.result().culprits[0].commit);
  // The sandwich's pairs reach the search as measured (the paired test needs the ratio of
  // neighbouring runs), so the culprit's effect is the live search's exactly.
  EXPECT_DOUBLE_EQ(live.result().culprits[0].effect_pct, r.search.result().culprits[0].effect_pct);
  EXPECT_EQ(live.result().runs, r.search.result().runs);
}

TEST(BisectionReplay, ASeedSparesMeasuringTheEnds) {
  const int n = 8;
  Sim sim;
  const SearchOptions options{};
  // Two gate jobs of the ends, ten runs of each arm.
  Seed seed;
  for (int k = 0; k < 2; ++k)
    seed.jobs.push_back(ProbeOutcome{ProbeJob{n - 1, 10, 0, false}, sim.measure(n - 1, 10), sim.measure(0, 10), std::nullopt});
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

TEST(BisectionReplay, AFailedArmNamesTheCommitItMeasured) {
  // A paired probe: baseline = the good end, candidate = the commit probed.
  EXPECT_EQ(failed_commit(ProbeJob{7, 10, 0, false}, "baseline"), 0);
  EXPECT_EQ(failed_commit(ProbeJob{7, 10, 0, false}, "candidate"), 7);
  // A sandwich: baseline = the parent.
  EXPECT_EQ(failed_commit(ProbeJob{7, 10, 6, true}, "baseline"), 6);
  EXPECT_EQ(failed_commit(ProbeJob{7, 10, 6, true}, "candidate"), 7);
  // A single-arm job names its one arm "baseline": it is the commit.
  EXPECT_EQ(failed_commit(ProbeJob{0, 10, -1, false}, "baseline"), 0);
  EXPECT_EQ(failed_commit(ProbeJob{3, 10, -1, false}, "baseline"), 3);
  // No arm (not an arm's failure, or a row from before workers said): the commit probed.
  EXPECT_EQ(failed_commit(ProbeJob{7, 10, 0, false}, ""), 7);
  EXPECT_EQ(failed_commit(ProbeJob{7, 10, 0, false}, "both"), 7);
}

TEST(BisectionReplay, AGoodEndThatCannotRunIsTheBrokenOneNotTheBadEnd) {
  // The first round measures the bad end beside the good end; the job fails in its baseline arm
  // (the good end's tree has no train.py). The good end is broken, not the bad end.
  const int n = 6;
  const SearchOptions options{};
  const Replayed first = replay(n, options, Seed{}, {});
  Round round;
  round.requests = first.next;
  for (const auto& j : plan_jobs(first.next, Pairing::paired)) {
    ProbeOutcome o;
    o.job = j;
    o.error = "workload_failed: can't open file 'train.py' (run 0, baseline, warm-up)";
    o.failed = failed_commit(j, "baseline");
    round.outcomes.push_back(std::move(o));
  }
  ASSERT_EQ(round.outcomes.size(), 1u);
  ASSERT_EQ(round.outcomes[0].job.commit, n - 1);
  ASSERT_EQ(round.outcomes[0].job.beside, 0);
  const Replayed r = replay(n, options, Seed{}, {round});
  ASSERT_TRUE(r.search.done());
  const auto commits = range(n);
  const auto rep = report(r, commits, 0.01);
  EXPECT_EQ(rep.at("status").as_string(), "broken");
  const auto& broken = rep.at("broken").as_array();
  ASSERT_EQ(broken.size(), 1u) << boost::json::serialize(rep);
  EXPECT_EQ(broken[0].as_object().at("commit").as_string(), commits[0].sha);
  EXPECT_EQ(rep.at("commits").as_array()[0].as_object().at("state").as_string(), "broken");
  EXPECT_EQ(rep.at("commits").as_array()[n - 1].as_object().at("state").as_string(), "untested");

  // The same failure recorded without an arm (failed = -1) stays the probed commit's.
  round.outcomes[0].failed = -1;
  const Replayed old = replay(n, options, Seed{}, {round});
  ASSERT_EQ(old.broken.size(), 1u);
  EXPECT_EQ(old.broken.begin()->first, n - 1);
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
  bogus.outcomes = {ProbeOutcome{ProbeJob{3, 10, 0, false}, {}, {}, std::nullopt}};
  EXPECT_THROW(replay(8, SearchOptions{}, Seed{}, {bogus}), std::logic_error);
}

// The server's situation: jobs measured minutes apart on a shared machine, whose speed drifts by
// ~15% (log-sd) between jobs, more than either of the two 8% steps being searched for. Pairing
// each probe with the good end in its job finds both steps, exactly, in every trial; runs taken
// as measured (unpaired) do not.
TEST(BisectionReplay, PairingWithTheGoodEndCancelsDriftBetweenJobs) {
  const int n = 24, trials = 10;
  int paired_exact = 0, unpaired_exact = 0;
  for (int t = 0; t < trials; ++t) {
    for (Pairing pairing : {Pairing::paired, Pairing::unpaired}) {
      Sim sim;
      sim.engine.seed(100 + static_cast<unsigned>(t));
      sim.culprit = 7;
      sim.step = 0.08;
      sim.second = 16;
      sim.second_step = 0.08;
      sim.job_drift = 0.15;
      SearchOptions options{};
      options.part_pairs = pairing == Pairing::paired;  // as the server sets it
      const auto rounds = sim.run(n, options, Seed{}, 200, pairing);
      const Replayed r = replay(n, options, Seed{}, rounds, pairing);
      std::set<int> found;
      for (const auto& c : r.search.result().culprits) found.insert(c.commit);
      const bool exact = r.search.done() && found == std::set<int>{7, 16};
      (pairing == Pairing::paired ? paired_exact : unpaired_exact) += exact ? 1 : 0;
    }
  }
  RecordProperty("paired_exact", paired_exact);
  RecordProperty("unpaired_exact", unpaired_exact);
  EXPECT_EQ(paired_exact, trials);
  EXPECT_LT(unpaired_exact, trials / 2) << "the drift is large enough to matter";
}

TEST(BisectionReplay, APartBesideACulpritIsDecidedOnItsEndsSideBySide) {
  // The server's options: after the +20% culprit, the part beside it that holds a +6% step is
  // compared on jobs of its two ends side by side (not on probe runs scaled by the good end), on
  // a machine whose jobs drift by 15%; both culprits found, and the report counts those runs.
  const int n = 24;
  Sim sim;
  sim.engine.seed(11);
  sim.culprit = 5;
  sim.second = 17;
  sim.second_step = 0.06;
  sim.job_drift = 0.15;
  SearchOptions options{};
  options.part_pairs = true;
  const auto rounds = sim.run(n, options, Seed{}, 200, Pairing::paired);
  const Replayed r = replay(n, options, Seed{}, rounds, Pairing::paired);
  ASSERT_TRUE(r.search.done());
  std::set<int> found;
  for (const auto& c : r.search.result().culprits) found.insert(c.commit);
  EXPECT_EQ(found, (std::set<int>{5, 17})) << r.search.result().message;
  int part_jobs = 0;
  for (const auto& round : rounds) {
    for (const auto& req : round.requests) {
      if (!req.part) continue;
      EXPECT_GE(req.beside, 0);
      EXPECT_GT(req.commit, req.beside + 1) << "a part of one commit is decided by its sandwich";
    }
    for (const auto& o : round.outcomes) {
      if (!o.job.part) continue;
      ++part_jobs;
      EXPECT_FALSE(o.job.sandwich);
      EXPECT_EQ(o.beside.ttfb_ms.size(), o.runs.ttfb_ms.size()) << "both ends side by side";
    }
  }
  EXPECT_GT(part_jobs, 0);
  const auto report_json = report(r, range(n), 0.01);
  EXPECT_GT(report_json.at("part_runs").as_int64(), 0);
  // Every part without a culprit is named; none holds 5 or 17.
  for (const auto& p : r.search.result().parts) EXPECT_FALSE((p.good < 5 && p.bad >= 5) || (p.good < 17 && p.bad >= 17)) << p.state;
}

TEST(BisectionReplay, PairedJobsScaleEachRunByTheGoodEndBesideIt) {
  // A job run at half speed: its commit's runs come out on the level of the first job.
  const int n = 4;
  Round r1;
  r1.requests = {Request{0, 10}, Request{3, 10}};
  ProbeOutcome ends{ProbeJob{3, 10, 0, false}, {}, {}, std::nullopt};
  for (int i = 0; i < 10; ++i) {
    ends.beside.ttfb_ms.push_back(100.0 + (i % 2));
    ends.runs.ttfb_ms.push_back(150.0 + (i % 2));
  }
  r1.outcomes = {ends};
  const Replayed first = replay(n, SearchOptions{}, Seed{}, {r1});
  ASSERT_FALSE(first.search.done());
  EXPECT_NEAR(first.reference_ms, 100.5, 0.01);
  const auto& bad = first.runs.at(3).ttfb_ms;
  ASSERT_EQ(bad.size(), 10u);
  EXPECT_NEAR(bad[0], 150.0 / 100.0 * first.reference_ms, 1e-9);
  EXPECT_NEAR(bad[1], 151.0 / 101.0 * first.reference_ms, 1e-9);
}

TEST(BisectionReplay, PlanPairsEveryCommitWithTheGoodEnd) {
  // The good end's own request is met by the reference runs of the other jobs.
  // A sandwich is one job of the pair.
  auto jobs = plan_jobs({{0, 10}, {3, 10}, {7, 10}, {5, 10, 4}}, Pairing::paired);
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].commit, 3);
  EXPECT_EQ(jobs[0].beside, 0);
  EXPECT_FALSE(jobs[0].sandwich);
  EXPECT_EQ(jobs[0].runs, 10);
  EXPECT_EQ(jobs[1].commit, 7);
  EXPECT_EQ(jobs[2].commit, 5);
  EXPECT_EQ(jobs[2].beside, 4);
  EXPECT_TRUE(jobs[2].sandwich);
  // ... and when they fall short, the first job runs longer.
  jobs = plan_jobs({{0, 30}, {3, 10}}, Pairing::paired);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].runs, 30);
  // The good end alone is one unpaired job.
  jobs = plan_jobs({{0, 10}}, Pairing::paired);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].commit, 0);
  EXPECT_EQ(jobs[0].beside, -1);
  // Unpaired: one job per request, as asked.
  jobs = plan_jobs({{0, 10}, {3, 20}}, Pairing::unpaired);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[1].runs, 20);
  EXPECT_EQ(jobs[1].beside, -1);
}

TEST(BisectionReplay, MergeKeepsTheLargerRequestPerCommitInCommitOrder) {
  const auto m = merge_requests({{5, 10}, {2, 10}, {5, 20}, {2, 4}, {5, 10, 4}});
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].commit, 2);
  EXPECT_EQ(m[0].runs, 10);
  EXPECT_EQ(m[1].commit, 5);
  EXPECT_EQ(m[1].runs, 20);
  EXPECT_EQ(m[1].beside, -1);
  EXPECT_EQ(m[2].commit, 5);
  EXPECT_EQ(m[2].beside, 4) << "a sandwich is not merged with a probe of the same commit";
}

}  // namespace
}  // namespace ttfb::bisect
