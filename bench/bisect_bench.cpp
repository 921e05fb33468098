// Bisection in simulation (README "Benchmarks"), TTFB-like noise (log-normal CV 4% plus 3% of
// runs in bursts x U(1.2, 2.0)), everything measured in the same run:
// 1. One culprit (2%, 5% or 10% slower) at a random place in ranges of 16, 64 and 256 commits: our
//    search (server/bisect/search.hpp) against the search before issue 15 (bench/legacy/, the
//    same settings: "runs vs before" is the ratio of mean runs) and plain binary search with a
//    fixed number of repeats per commit (each probe sent to the end whose mean it is closer to).
//    Accuracy: exactly the culprit and nothing else.
// 2. Several culprits in 64 commits (+20% with +4% or +5%, three of +5% or +10%, two adjacent,
//    two apart): the share of ranges where every culprit is found and nothing else, and the
//    neutral commits blamed over all trials; on a quiet machine and on one whose speed drifts
//    between jobs (every job's runs slower or faster by a factor exp(N(0, 0.10)), as separate
//    jobs on a shared 2-core machine do), there as the server runs it (server/bisect/replay.hpp:
//    every probe job pairs its commit with the good end and scales each run by the good end's run
//    beside it) and unpaired.
// 3. One culprit on the drifting machine: paired, unpaired, fixed repeats.
//
//   ttfb_bisect_bench [--trials 200] [--seed 1] [--json] [--only single|multi|drift]
#include "bench/legacy/search.hpp"
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
  int neutral = 0;  // commits blamed that are not culprits
};

// A search driven directly (each request measured at once, sandwiches side by side). `culprits`:
// the exact set that counts as correct; neutral = commits blamed that are not culprits.
template <class SearchT, class Options>
Outcome direct(Range& r, int commits, const std::vector<int>& culprits, Options o) {
  SearchT s(commits, o);
  while (!s.done()) {
    for (const auto& q : s.requests()) {
      if (q.beside < 0) {
        s.add_runs(q.commit, r.measure(q.commit, q.runs, r.job_speed()));
      } else {
        const double speed = r.job_speed();
        const auto parent = r.measure(q.beside, q.runs, speed);
        if constexpr (requires { q.part; }) {
          if (q.part) {
            s.add_part_runs(q.beside, q.commit, parent, r.measure(q.commit, q.runs, speed));
            continue;
          }
        }
        s.add_sandwich_runs(q.beside, q.commit, parent, r.measure(q.commit, q.runs, speed));
      }
    }
  }
  const auto& res = s.result();
  Outcome out{true, res.runs, res.rounds, 0};
  std::vector<int> found;
  for (const auto& c : res.culprits) found.push_back(c.commit);
  out.correct = found == culprits;
  for (int c : found) out.neutral += std::find(culprits.begin(), culprits.end(), c) == culprits.end();
  return out;
}

Outcome ours(Range& r, int commits, const std::vector<int>& culprits, int parallel, int budget) {
  bisect::SearchOptions o;
  o.design.threshold_pct = 1.0;
  o.max_runs_per_commit = budget;
  o.parallel_probes = parallel;
  return direct<bisect::Search>(r, commits, culprits, o);
}

// The search before issue 15, as the server ran it then (explained_fraction 1.0: look beside
// each culprit once).
Outcome legacy(Range& r, int commits, const std::vector<int>& culprits, int parallel, int budget) {
  bisect::legacy::SearchOptions o;
  o.design.threshold_pct = 1.0;
  o.max_runs_per_commit = budget;
  o.parallel_probes = parallel;
  o.explained_fraction = 1.0;
  return direct<bisect::legacy::Search>(r, commits, culprits, o);
}

// The server's way: rounds of probe jobs replayed through the search (paired or not); every job
// at its own machine speed. `culprits`: the exact set that counts as correct.
Outcome server(Range& r, int commits, const std::vector<int>& culprits, bisect::Pairing pairing, int budget) {
  bisect::SearchOptions o;
  o.design.threshold_pct = 1.0;
  o.max_runs_per_commit = budget;
  o.part_pairs = pairing == bisect::Pairing::paired;  // as the server sets it
  std::vector<bisect::Round> rounds;
  for (int i = 0; i < 200; ++i) {
    const bisect::Replayed rp = bisect::replay(commits, o, bisect::Seed{}, rounds, pairing);
    if (rp.search.done()) {
      std::vector<int> found;
      for (const auto& c : rp.search.result().culprits) found.push_back(c.commit);
      if (found != culprits && std::getenv("TTFB_BISECT_BENCH_MISSES")) {
        // What a miss looked like (to stderr): the true culprits, what was blamed, and every part.
        std::string line = "miss: true";
        for (int c : culprits) line += " " + std::to_string(c);
        line += "; blamed";
        for (const auto& c : rp.search.result().culprits)
          line += " " + std::to_string(c.parent) + ".." + std::to_string(c.commit) + " (" + std::to_string(c.effect_pct) +
                  "%, p " + std::to_string(c.p_value) + ", " + std::to_string(c.pairs) + " pairs)";
        for (const auto& p : rp.search.result().parts)
          line += "; part " + std::to_string(p.good) + ".." + std::to_string(p.bad) + " " + p.state + ": " + p.reason;
        std::fprintf(stderr, "%s\n", line.c_str());
      }
      Outcome out{found == culprits, rp.search.result().runs, rp.search.result().rounds, 0};
      for (int c : found) out.neutral += std::find(culprits.begin(), culprits.end(), c) == culprits.end();
      return out;
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

// Culprits placed at random, distinct, in commit order (adjacent: the second right after the first).
std::vector<int> place_culprits(std::mt19937_64& place, int commits, int count, bool adjacent) {
  std::vector<int> at;
  if (adjacent) {
    const int c = 1 + static_cast<int>(place() % static_cast<std::uint64_t>(commits - 2));
    return {c, c + 1};
  }
  while (static_cast<int>(at.size()) < count) {
    const int c = 1 + static_cast<int>(place() % static_cast<std::uint64_t>(commits - 1));
    if (std::find(at.begin(), at.end(), c) == at.end()) at.push_back(c);
  }
  std::sort(at.begin(), at.end());
  return at;
}

int main(int argc, char** argv) {
  int trials = 200;
  std::uint64_t seed = 1;
  bool as_json = false;
  std::string only;  // one table alone: single, multi or drift
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--trials" && i + 1 < argc) trials = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--json") as_json = true;
    else if (a == "--only" && i + 1 < argc && std::string("single multi drift").find(argv[i + 1]) != std::string::npos)
      only = argv[++i];
    else {
      std::cerr << "usage: ttfb_bisect_bench [--trials N] [--seed S] [--json] [--only single|multi|drift]\n";
      return 2;
    }
  }
  struct Method {
    std::string name;
    int kind, param, budget;  // kind 0: ours, 2: the search before (param = parallel probes); 1: fixed repeats
    int before = -1;          // index of the row of the search before with the same settings
  };
  const std::vector<Method> methods = {{"ours, 1 probe per round", 0, 1, 40, 3},
                                       {"ours, 3 probes per round", 0, 3, 40, 4},
                                       {"ours, 3 probes, up to 60 runs per commit", 0, 3, 60, 5},
                                       {"before issue 15, 1 probe per round", 2, 1, 40},
                                       {"before issue 15, 3 probes per round", 2, 3, 40},
                                       {"before issue 15, 3 probes, up to 60 runs", 2, 3, 60},
                                       {"binary search, 10 repeats", 1, 10, 0},
                                       {"binary search, 20 repeats", 1, 20, 0},
                                       {"binary search, 30 repeats", 1, 30, 0}};
  json::array rows;
  const auto table = [&](const char* name) { return only.empty() || only == name; };
  if (table("single") && !as_json) {
    std::printf("## Bisection: %d trials per cell, one culprit at a random commit\n\n", trials);
    std::printf("| commits | slowdown | method | accuracy | mean runs | runs vs before | mean rounds |\n"
                "|---|---|---|---|---|---|---|\n");
  }
  for (int commits : {16, 64, 256}) {
    if (!table("single")) break;
    for (double effect : {2.0, 5.0, 10.0}) {
      std::vector<double> mean_runs(methods.size(), 0.0);
      std::vector<std::string> lines(methods.size());
      for (std::size_t mi = 0; mi < methods.size(); ++mi) {
        const auto& m = methods[mi];
        std::mt19937_64 place(seed * 1000 + static_cast<std::uint64_t>(commits));
        int correct = 0;
        double runs = 0, rounds = 0;
        for (int t = 0; t < trials; ++t) {
          const int culprit = 1 + static_cast<int>(place() % static_cast<std::uint64_t>(commits - 1));
          Range r;
          r.engine.seed(seed + static_cast<std::uint64_t>(t) * 7919 + static_cast<std::uint64_t>(commits));
          for (int c = 0; c < commits; ++c) r.level.push_back(200.0 * (c >= culprit ? 1.0 + effect / 100.0 : 1.0));
          const Outcome o = m.kind == 0   ? ours(r, commits, {culprit}, m.param, m.budget)
                            : m.kind == 2 ? legacy(r, commits, {culprit}, m.param, m.budget)
                                          : fixed_repeats(r, commits, culprit, m.param);
          correct += o.correct;
          runs += o.runs;
          rounds += o.rounds;
        }
        mean_runs[mi] = runs / trials;
        const double acc = static_cast<double>(correct) / trials;
        json::object row{{"commits", commits}, {"effect_pct", effect}, {"method", m.name}, {"accuracy", acc},
                         {"mean_runs", runs / trials}, {"mean_rounds", rounds / trials}};
        rows.push_back(row);
        char buf[256];
        std::snprintf(buf, sizeof buf, "| %d | +%g%% | %s | %.1f%% | %.0f | %%s | %.1f |\n", commits, effect, m.name.c_str(),
                      100 * acc, runs / trials, rounds / trials);
        lines[mi] = buf;
      }
      for (std::size_t mi = 0; mi < methods.size(); ++mi) {
        std::string ratio = "";
        if (methods[mi].before >= 0) {
          const double x = mean_runs[mi] / mean_runs[static_cast<std::size_t>(methods[mi].before)];
          char buf[32];
          std::snprintf(buf, sizeof buf, "%.2fx", x);
          ratio = buf;
          rows[rows.size() - methods.size() + mi].as_object()["runs_vs_before"] = x;
        }
        if (!as_json) std::printf(lines[mi].c_str(), ratio.c_str());
      }
    }
  }

  // Several culprits in one range, on a quiet machine and on one that drifts between jobs.
  struct Scenario {
    std::string name;
    std::vector<double> effects;  // in the order of the culprits' commits
    bool adjacent = false;
    bool shuffle = false;         // sizes in random order along the range
  };
  const std::vector<Scenario> scenarios = {{"+20% and +4%", {20.0, 4.0}, false, true},
                                           {"+20% and +5%", {20.0, 5.0}, false, true},
                                           {"three of +5%", {5.0, 5.0, 5.0}},
                                           {"three of +10%", {10.0, 10.0, 10.0}},
                                           {"two adjacent, +5% each", {5.0, 5.0}, true},
                                           {"two of +5%", {5.0, 5.0}}};
  struct Multi {
    std::string name;
    int kind;  // 0: ours (3 probes), 2: before issue 15 (3 probes), 3: ours as the server runs it (paired)
    double drift;
  };
  const std::vector<Multi> multi = {{"ours, 3 probes per round", 0, 0.0},
                                    {"before issue 15, 3 probes per round", 2, 0.0},
                                    {"ours as the server runs it, drifting jobs", 3, 0.10},
                                    {"ours, unpaired, drifting jobs", 0, 0.10}};
  const int multi_trials = std::max(1, trials / 2);
  if (table("multi") && !as_json) {
    std::printf("\n## Several culprits in 64 commits: %d trials per cell (drifting jobs: log-sd 0.10 per job)\n\n",
                multi_trials);
    std::printf("| culprits | method | all found | neutral blamed | mean runs | mean rounds |\n|---|---|---|---|---|---|\n");
  }
  const int commits = 64;
  for (const auto& sc : scenarios) {
    if (!table("multi")) break;
    for (const auto& m : multi) {
      std::mt19937_64 place(seed * 1000 + 17);
      int correct = 0, neutral = 0;
      double runs = 0, rounds = 0;
      for (int t = 0; t < multi_trials; ++t) {
        const std::vector<int> at = place_culprits(place, commits, static_cast<int>(sc.effects.size()), sc.adjacent);
        std::vector<double> effects = sc.effects;
        if (sc.shuffle && place() % 2) std::reverse(effects.begin(), effects.end());
        Range r;
        r.drift = m.drift;
        r.engine.seed(seed + static_cast<std::uint64_t>(t) * 7919 + 5);
        for (int c = 0; c < commits; ++c) {
          double level = 200.0;
          for (std::size_t k = 0; k < at.size(); ++k) level *= c >= at[k] ? 1.0 + effects[k] / 100.0 : 1.0;
          r.level.push_back(level);
        }
        const Outcome o = m.kind == 3   ? server(r, commits, at, bisect::Pairing::paired, 40)
                          : m.kind == 2 ? legacy(r, commits, at, 3, 40)
                                        : ours(r, commits, at, 3, 40);
        correct += o.correct;
        neutral += o.neutral;
        runs += o.runs;
        rounds += o.rounds;
      }
      const double acc = static_cast<double>(correct) / multi_trials;
      if (!as_json)
        std::printf("| %s | %s | %.1f%% | %d | %.0f | %.1f |\n", sc.name.c_str(), m.name.c_str(), 100 * acc, neutral,
                    runs / multi_trials, rounds / multi_trials);
      rows.push_back(json::object{{"commits", commits}, {"scenario", sc.name}, {"drift", m.drift}, {"method", m.name},
                                  {"all_found", acc}, {"neutral_blamed", neutral}, {"mean_runs", runs / multi_trials},
                                  {"mean_rounds", rounds / multi_trials}});
    }
  }

  // One culprit on a drifting machine: pairing with the good end against none and fixed repeats.
  struct Drifting {
    std::string name;
    int kind, param;  // kind 0: the server's search (param 1: paired); 1: fixed repeats
  };
  const std::vector<Drifting> drifting = {{"ours as the server runs it (paired with the good end)", 0, 1},
                                          {"ours, unpaired", 0, 0},
                                          {"binary search, 30 repeats", 1, 30}};
  const int drift_trials = std::max(1, trials / 4);
  if (table("drift") && !as_json) {
    std::printf("\n## One culprit on a machine that drifts between jobs (log-sd 0.10 per job): %d trials per cell\n\n",
                drift_trials);
    std::printf("| commits | slowdown | method | accuracy | mean runs | mean rounds |\n|---|---|---|---|---|---|\n");
  }
  for (double effect : {5.0, 10.0}) {
    if (!table("drift")) break;
    for (const auto& m : drifting) {
      std::mt19937_64 place(seed * 1000 + 17);
      int correct = 0;
      double runs = 0, rounds = 0;
      for (int t = 0; t < drift_trials; ++t) {
        const std::vector<int> at = place_culprits(place, commits, 1, false);
        Range r;
        r.drift = 0.10;
        r.engine.seed(seed + static_cast<std::uint64_t>(t) * 7919 + 5);
        for (int c = 0; c < commits; ++c) r.level.push_back(200.0 * (c >= at[0] ? 1.0 + effect / 100.0 : 1.0));
        const Outcome o = m.kind == 1 ? fixed_repeats(r, commits, at[0], m.param)
                                      : server(r, commits, at, m.param ? bisect::Pairing::paired : bisect::Pairing::unpaired, 40);
        correct += o.correct;
        runs += o.runs;
        rounds += o.rounds;
      }
      const double acc = static_cast<double>(correct) / drift_trials;
      if (!as_json)
        std::printf("| %d | +%g%% | %s | %.1f%% | %.0f | %.1f |\n", commits, effect, m.name.c_str(), 100 * acc,
                    runs / drift_trials, rounds / drift_trials);
      rows.push_back(json::object{{"commits", commits}, {"culprits", 1}, {"effect_pct", effect}, {"drift", 0.10},
                                  {"method", m.name}, {"accuracy", acc}, {"mean_runs", runs / drift_trials},
                                  {"mean_rounds", rounds / drift_trials}});
    }
  }
  if (as_json) std::cout << json::serialize(json::object{{"trials", trials}, {"rows", std::move(rows)}}) << "\n";
  return 0;
}
