// Bisection in simulation (README "Benchmarks"): ranges of 16, 64 and 256 commits with one
// culprit (2%, 5% or 10% slower) at a random place, TTFB-like noise (log-normal CV 4% plus 3% of
// runs in bursts x U(1.2, 2.0)). Our search (server/bisect/search.hpp) against plain binary search
// with a fixed number of repeats per commit (each probe sent to the end whose mean it is
// closer to): accuracy (exactly the culprit), total runs, rounds.
//
// Then the same on a machine whose speed drifts between jobs (every job's runs slower or faster
// by a factor exp(N(0, 0.10)), as separate jobs on a shared 2-core machine do): the search as the
// server runs it (server/bisect/replay.hpp: every probe job pairs its commit with the good end
// and scales each run by the good end's run beside it; the reference runs count), the same
// search without pairing, and fixed repeats. Two culprits of +5% each in a range of 64 commits
// are in the same table: accuracy there means both found and nothing else.
//
//   ttfb_bisect_bench [--trials 200] [--seed 1] [--json]
#include "server/bisect/replay.hpp"
#include "server/bisect/search.hpp"
#include "server/stats/outliers.hpp"
#include "server/stats/welch.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {
namespace json = boost::json;
using namespace ttfb;

struct Range {
  std::vector<double> level;
  std::mt19937_64 engine;
  double drift = 0.0;  // log-sd of a job's speed factor
  double job_speed() { return drift > 0.0 ? std::exp(std::normal_distribution<double>(0.0, drift)(engine)) : 1.0; }
  std::vector<double> measure(int commit, int runs, double speed = 1.0) {
    std::normal_distribution<double> z(0.0, 0.04);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> out;
    for (int i = 0; i < runs; ++i) {
      double x = level[static_cast<std::size_t>(commit)] * speed * std::exp(z(engine));
      if (u(engine) < 0.03) x *= 1.2 + 0.8 * u(engine);
      out.push_back(x);
    }
    return out;
  }
};

struct Outcome {
  bool correct = false;
  int runs = 0, rounds = 0;
};

Outcome ours(Range& r, int commits, int culprit, int parallel, int budget) {
  bisect::SearchOptions o;
  o.design.threshold_pct = 1.0;
  o.max_runs_per_commit = budget;
  o.parallel_probes = parallel;
  bisect::Search s(commits, o);
  while (!s.done()) {
    for (const auto& q : s.requests()) {
      if (q.beside < 0) {
        s.add_runs(q.commit, r.measure(q.commit, q.runs));
      } else {
        const auto parent = r.measure(q.beside, q.runs);
        s.add_sandwich_runs(q.beside, q.commit, parent, r.measure(q.commit, q.runs));
      }
    }
  }
  const auto& res = s.result();
  return Outcome{res.culprits.size() == 1 && res.culprits[0].commit == culprit, res.runs, res.rounds};
}

// The server's way: rounds of probe jobs replayed through the search (paired or not); every job
// at its own machine speed. `culprits`: the exact set that counts as correct.
Outcome server(Range& r, int commits, const std::vector<int>& culprits, bisect::Pairing pairing, int budget) {
  bisect::SearchOptions o;
  o.design.threshold_pct = 1.0;
  o.max_runs_per_commit = budget;
  o.explained_fraction = 1.0;
  std::vector<bisect::Round> rounds;
  for (int i = 0; i < 200; ++i) {
    const bisect::Replayed rp = bisect::replay(commits, o, bisect::Seed{}, rounds, pairing);
    if (rp.search.done()) {
      std::vector<int> found;
      for (const auto& c : rp.search.result().culprits) found.push_back(c.commit);
      return Outcome{found == culprits, rp.search.result().runs, rp.search.result().rounds};
    }
    bisect::Round round;
    round.requests = rp.next;
    for (const auto& j : bisect::plan_jobs(rp.next, pairing)) {
      const double speed = r.job_speed();
      bisect::ProbeOutcome out;
      out.job = j;
      if (j.beside >= 0) out.beside.ttfb_ms = r.measure(j.beside, j.runs, speed);
      out.runs.ttfb_ms = r.measure(j.commit, j.runs, speed);
      round.outcomes.push_back(std::move(out));
    }
    rounds.push_back(std::move(round));
  }
  return Outcome{};
}

Outcome fixed_repeats(Range& r, int commits, int culprit, int repeats) {
  Outcome o;
  const auto good = r.measure(0, repeats, r.job_speed());
  const auto bad = r.measure(commits - 1, repeats, r.job_speed());
  o.runs += 2 * repeats;  // both ends measured once
  int lo = 0, hi = commits - 1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    const auto m = r.measure(mid, repeats, r.job_speed());
    o.runs += repeats;
    ++o.rounds;
    // The probe goes to the end whose (log) mean it is closer to: the best a fixed number of
    // repeats can do without a notion of "unsure".
    // (With the same pooled outlier rule as ours, so bursts do not decide it.)
    const auto g = stats::remove_outliers_pooled(good, m), b = stats::remove_outliers_pooled(m, bad);
    const auto to_good = stats::welch_log_t_test(g.baseline.kept, g.candidate.kept, 0.95);
    const auto to_bad = stats::welch_log_t_test(b.baseline.kept, b.candidate.kept, 0.95);
    if (to_good.diff_log > to_bad.diff_log) hi = mid;
    else lo = mid;
  }
  o.correct = hi == culprit;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 200;
  std::uint64_t seed = 1;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) trials = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--json") as_json = true;
    else {
      std::cerr << "usage: ttfb_bisect_bench [--trials N] [--seed S] [--json]\n";
      return 2;
    }
  }
  struct Method {
    std::string name;
    int kind, param, budget;  // kind 0: ours (param = parallel probes); 1: fixed repeats (param = repeats)
  };
  const std::vector<Method> methods = {{"ours, 1 probe per round", 0, 1, 40},
                                       {"ours, 3 probes per round", 0, 3, 40},
                                       {"ours, 3 probes, up to 60 runs per commit", 0, 3, 60},
                                       {"binary search, 10 repeats", 1, 10, 0},
                                       {"binary search, 20 repeats", 1, 20, 0},
                                       {"binary search, 30 repeats", 1, 30, 0}};
  json::array rows;
  if (!as_json) {
    std::printf("## Bisection: %d trials per cell, culprit at a random commit\n\n", trials);
    std::printf("| commits | slowdown | method | accuracy | mean runs | mean rounds |\n|---|---|---|---|---|---|\n");
  }
  for (int commits : {16, 64, 256}) {
    for (double effect : {2.0, 5.0, 10.0}) {
      for (const auto& m : methods) {
        std::mt19937_64 place(seed * 1000 + static_cast<std::uint64_t>(commits));
        int correct = 0;
        double runs = 0, rounds = 0;
        for (int t = 0; t < trials; ++t) {
          const int culprit = 1 + static_cast<int>(place() % static_cast<std::uint64_t>(commits - 1));
          Range r;
          r.engine.seed(seed + static_cast<std::uint64_t>(t) * 7919 + static_cast<std::uint64_t>(commits));
          for (int c = 0; c < commits; ++c) r.level.push_back(200.0 * (c >= culprit ? 1.0 + effect / 100.0 : 1.0));
          const Outcome o = m.kind == 0 ? ours(r, commits, culprit, m.param, m.budget) : fixed_repeats(r, commits, culprit, m.param);
          correct += o.correct;
          runs += o.runs;
          rounds += o.rounds;
        }
        const double acc = static_cast<double>(correct) / trials;
        if (!as_json)
          std::printf("| %d | +%g%% | %s | %.1f%% | %.0f | %.1f |\n", commits, effect, m.name.c_str(), 100 * acc,
                      runs / trials, rounds / trials);
        rows.push_back(json::object{{"commits", commits}, {"effect_pct", effect}, {"method", m.name},
                                    {"accuracy", acc}, {"mean_runs", runs / trials}, {"mean_rounds", rounds / trials}});
      }
    }
  }
  // A drifting machine: one culprit of +5% or +10%, and two of +5% each.
  struct Drifting {
    std::string name;
    int kind, param;  // kind 0: the server's search (param 1: paired); 1: fixed repeats
  };
  const std::vector<Drifting> drifting = {{"ours as the server runs it (paired with the good end)", 0, 1},
                                          {"ours, unpaired", 0, 0},
                                          {"binary search, 30 repeats", 1, 30}};
  const int drift_trials = std::max(1, trials / 4);
  if (!as_json) {
    std::printf("\n## Bisection on a machine that drifts between jobs (log-sd 0.10 per job): %d trials per cell\n\n",
                drift_trials);
    std::printf("| commits | culprits | method | accuracy | mean runs | mean rounds |\n|---|---|---|---|---|---|\n");
  }
  struct Case {
    int commits;
    int culprits;
    double effect;
  };
  for (const Case& k : {Case{64, 1, 5.0}, Case{64, 1, 10.0}, Case{64, 2, 5.0}}) {
    for (const auto& m : drifting) {
      if (m.kind == 1 && k.culprits > 1) continue;  // plain binary search finds one step at most
      std::mt19937_64 place(seed * 1000 + 17);
      int correct = 0;
      double runs = 0, rounds = 0;
      for (int t = 0; t < drift_trials; ++t) {
        std::vector<int> at;
        while (static_cast<int>(at.size()) < k.culprits) {
          const int c = 1 + static_cast<int>(place() % static_cast<std::uint64_t>(k.commits - 1));
          if (std::find(at.begin(), at.end(), c) == at.end()) at.push_back(c);
        }
        std::sort(at.begin(), at.end());
        Range r;
        r.drift = 0.10;
        r.engine.seed(seed + static_cast<std::uint64_t>(t) * 7919 + 5);
        for (int c = 0; c < k.commits; ++c) {
          double level = 200.0;
          for (int a : at) level *= c >= a ? 1.0 + k.effect / 100.0 : 1.0;
          r.level.push_back(level);
        }
        const Outcome o = m.kind == 1 ? fixed_repeats(r, k.commits, at[0], m.param)
                                      : server(r, k.commits, at, m.param ? bisect::Pairing::paired : bisect::Pairing::unpaired, 40);
        correct += o.correct;
        runs += o.runs;
        rounds += o.rounds;
      }
      const double acc = static_cast<double>(correct) / drift_trials;
      if (!as_json)
        std::printf("| %d | %d x +%g%% | %s | %.1f%% | %.0f | %.1f |\n", k.commits, k.culprits, k.effect, m.name.c_str(),
                    100 * acc, runs / drift_trials, rounds / drift_trials);
      rows.push_back(json::object{{"commits", k.commits}, {"culprits", k.culprits}, {"effect_pct", k.effect},
                                  {"drift", 0.10}, {"method", m.name}, {"accuracy", acc},
                                  {"mean_runs", runs / drift_trials}, {"mean_rounds", rounds / drift_trials}});
    }
  }
  if (as_json) std::cout << json::serialize(json::object{{"trials", trials}, {"rows", std::move(rows)}}) << "\n";
  return 0;
}
