// The adaptive design against fixed-n Welch designs, by simulation on TTFB-like skewed noise
// (README "Benchmarks"):
//   1. false-positive rate of A/A experiments (no change) per design, with its Wilson interval,
//      at alpha — including "naive" repeated looks at alpha without spending, to show why
//      spending is needed;
//   2. power and mean runs per arm against injected slowdowns of 1, 2, 5 and 10 %;
//   3. the headline: at 5 %, the runs of the adaptive design against the smallest fixed-n
//      design with at least the same power.
//
//   ttfb_design_bench [--experiments 10000] [--seed 1] [--json]
//
// Noise model: log-normal around 200 ms with log-sd 0.04 (CV about 4 %, what the example
// workflow shows on a 2-core VM), and 3 % of runs hit by a slowdown burst (x U(1.2, 2.0)), the
// heavy right tail that TTFB has. Every design sees the same simulated runs (common random
// numbers), so differences between designs are not sampling noise between them.
#include "server/stats/adaptive.hpp"
#include "server/stats/calibration.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {
using namespace ttfb::stats;
namespace json = boost::json;

constexpr double kAlpha = 0.01;
constexpr double kThresholdPct = 1.0;  // min effect: changes under 1 % are "the same"
constexpr double kSigmaLog = 0.04;
constexpr double kBurstProbability = 0.03;
const std::vector<double> kEffects = {1.0, 2.0, 5.0, 10.0};

struct Noise {
  std::mt19937_64 engine;
  std::normal_distribution<double> z{0.0, 1.0};
  std::uniform_real_distribution<double> u{0.0, 1.0};
  double draw(double median_ms) {
    double x = median_ms * std::exp(kSigmaLog * z(engine));
    if (u(engine) < kBurstProbability) x *= 1.2 + 0.8 * u(engine);
    return x;
  }
};

struct Design {
  std::string name;
  std::vector<LookPlan> plan;
};

struct Tally {
  std::size_t positives = 0;     // ended different (any direction) / regression for effects
  std::size_t regressions = 0;
  double runs = 0.0;             // runs per arm used, summed
  std::size_t experiments = 0;
};

// Runs `experiments` simulated experiments with the given effect through every design.
std::vector<Tally> simulate(const std::vector<Design>& designs, double effect_pct, int experiments, std::uint64_t seed) {
  std::size_t n = 0;
  for (const auto& d : designs) n = std::max(n, static_cast<std::size_t>(d.plan.back().runs_per_arm));
  Noise noise{std::mt19937_64(seed)};
  std::vector<Tally> out(designs.size());
  std::vector<double> b(n), c(n);
  for (int e = 0; e < experiments; ++e) {
    for (auto& x : b) x = noise.draw(200.0);
    for (auto& x : c) x = noise.draw(200.0 * (1.0 + effect_pct / 100.0));
    for (std::size_t i = 0; i < designs.size(); ++i) {
      const auto looks = summarize_looks(b, c, designs[i].plan);
      const RulesOutcome r = apply_rules(looks, designs[i].plan, kThresholdPct, kThresholdPct);
      out[i].positives += r.outcome == Outcome::different;
      out[i].regressions += r.verdict == Verdict::regression;
      out[i].runs += r.runs_per_arm;
      ++out[i].experiments;
    }
  }
  return out;
}

Design adaptive(const std::string& name, Spending s, int block, int max_runs) {
  return Design{name, plan_looks(AdaptiveDesign{.alpha = kAlpha, .threshold_pct = kThresholdPct, .runs_per_block = block,
                                                    .max_runs_per_arm = max_runs, .spending = s})};
}

Design fixed(int n) {
  return Design{"fixed n=" + std::to_string(n), plan_looks(AdaptiveDesign{.alpha = kAlpha, .threshold_pct = kThresholdPct,
                                                                  .runs_per_block = n, .max_runs_per_arm = n})};
}

// Power of a fixed-n design at the effect, on `experiments` simulated experiments.
double fixed_power(int n, double effect_pct, int experiments, std::uint64_t seed) {
  auto o = simulate({fixed(n)}, effect_pct, experiments, seed);
  return static_cast<double>(o[0].regressions) / experiments;
}

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * x);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int experiments = 10000;
  std::uint64_t seed = 1;
  bool as_json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--experiments" && i + 1 < argc) experiments = std::atoi(argv[++i]);
    else if (a == "--seed" && i + 1 < argc) seed = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--json") as_json = true;
    else {
      std::cerr << "usage: ttfb_design_bench [--experiments N] [--seed S] [--json]\n";
      return 2;
    }
  }
  const auto started = std::chrono::steady_clock::now();

  // The designs: the product's default (Pocock spending, blocks of 10 up to 60 per arm), the
  // same with O'Brien-Fleming spending, fixed-n Welch designs, and naive repeated looks.
  std::vector<Design> designs = {adaptive("adaptive pocock 10..60", Spending::pocock, 10, 60),
                                 adaptive("adaptive pocock 5..60", Spending::pocock, 5, 60),
                                 adaptive("adaptive obrien_fleming 10..60", Spending::obrien_fleming, 10, 60),
                                 fixed(10), fixed(30), fixed(60)};
  Design naive = adaptive("naive looks at alpha 10..60", Spending::pocock, 10, 60);
  for (auto& look : naive.plan) look.nominal_alpha = kAlpha;
  designs.push_back(naive);

  json::object report{{"experiments", experiments}, {"alpha", kAlpha}, {"threshold_pct", kThresholdPct},
                      {"noise", "lognormal sigma 0.04 + 3% bursts x U(1.2, 2.0)"}, {"seed", seed}};

  // 1. A/A false positives.
  auto nulls = simulate(designs, 0.0, experiments, seed);
  json::array fpr;
  if (!as_json) {
    std::printf("## A/A false-positive rate (%d experiments per design, alpha %.2f)\n\n", experiments, kAlpha);
    std::printf("| design | false positives | FPR [95%% CI] | mean runs per arm |\n|---|---|---|---|\n");
  }
  for (std::size_t i = 0; i < designs.size(); ++i) {
    const auto& o = nulls[i];
    auto [lo, hi] = wilson_interval(o.positives, o.experiments);
    const double rate = static_cast<double>(o.positives) / o.experiments;
    if (!as_json)
      std::printf("| %s | %zu | %s [%s, %s] | %.1f |\n", designs[i].name.c_str(), o.positives, pct(rate).c_str(),
                  pct(lo).c_str(), pct(hi).c_str(), o.runs / o.experiments);
    fpr.push_back(json::object{{"design", designs[i].name}, {"false_positives", o.positives}, {"fpr", rate},
                               {"ci", json::array{lo, hi}}, {"mean_runs_per_arm", o.runs / o.experiments}});
  }
  report["aa"] = std::move(fpr);

  // 2. Power and runs against injected slowdowns.
  designs.pop_back();  // naive looks are invalid: not compared for power
  std::vector<std::vector<Tally>> by_effect;
  for (std::size_t e = 0; e < kEffects.size(); ++e) by_effect.push_back(simulate(designs, kEffects[e], experiments, seed + 1 + e));
  json::array power;
  if (!as_json) {
    std::printf("\n## Power (share ending as a regression) and mean runs per arm\n\n| design |");
    for (double e : kEffects) std::printf(" +%g%% power | runs |", e);
    std::printf("\n|---|");
    for (std::size_t e = 0; e < kEffects.size(); ++e) std::printf("---|---|");
    std::printf("\n");
  }
  for (std::size_t i = 0; i < designs.size(); ++i) {
    if (!as_json) std::printf("| %s |", designs[i].name.c_str());
    json::array row;
    for (std::size_t e = 0; e < kEffects.size(); ++e) {
      const auto& o = by_effect[e][i];
      const double p = static_cast<double>(o.regressions) / o.experiments;
      if (!as_json) std::printf(" %s | %.1f |", pct(p).c_str(), o.runs / o.experiments);
      row.push_back(json::object{{"effect_pct", kEffects[e]}, {"power", p}, {"mean_runs_per_arm", o.runs / o.experiments}});
    }
    if (!as_json) std::printf("\n");
    power.push_back(json::object{{"design", designs[i].name}, {"by_effect", std::move(row)}});
  }
  report["power"] = std::move(power);

  // 3. The headline at +5 %: each adaptive design's mean runs against the smallest fixed n whose
  // power is at least the adaptive design's (capped at 99%: "100%" of a finite simulation is
  // not a power level), and against the textbook 90%.
  const std::size_t five = 2;
  json::array headline;
  if (!as_json) std::printf("\n## Runs at +5%% against fixed-n designs of equal power\n\n");
  for (std::size_t a = 0; a < 3; ++a) {
    const auto& o = by_effect[five][a];
    const double adaptive_power = static_cast<double>(o.regressions) / o.experiments;
    const double adaptive_runs = o.runs / o.experiments;
    for (double target : {std::min(adaptive_power, 0.99), 0.90}) {
      int lo = 2, hi = 400;
      while (lo < hi) {  // power grows with n: bisect on n
        int mid = (lo + hi) / 2;
        if (fixed_power(mid, 5.0, experiments, seed + 99) >= target) hi = mid;
        else lo = mid + 1;
      }
      headline.push_back(json::object{{"design", designs[a].name}, {"target_power", target}, {"fixed_n", lo},
                                      {"adaptive_power", adaptive_power}, {"adaptive_mean_runs", adaptive_runs},
                                      {"ratio", adaptive_runs / lo}});
      if (!as_json)
        std::printf("+5%%, %s (power %s, %.1f runs per arm on average) vs the smallest fixed-n Welch design with power "
                    ">= %s (n = %d): ratio %.2f\n",
                    designs[a].name.c_str(), pct(adaptive_power).c_str(), adaptive_runs, pct(target).c_str(), lo,
                    adaptive_runs / lo);
    }
  }
  report["headline_5pct"] = std::move(headline);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  report["seconds"] = seconds;
  if (as_json) {
    std::cout << json::serialize(report) << "\n";
  } else {
    std::printf("\n(%.1f s)\n", seconds);
  }
  return 0;
}
