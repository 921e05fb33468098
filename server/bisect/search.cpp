#include "server/bisect/search.hpp"

#include "server/stats/comparison.hpp"
#include "server/stats/outliers.hpp"

#include <boost/math/distributions/normal.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace ttfb::bisect {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The Welch comparison of two commits' runs (pooled outlier rule) at the design's alpha.
stats::WelchResult compare(const std::vector<double>& a, const std::vector<double>& b, double alpha) {
  const stats::PooledOutliers o = stats::remove_outliers_pooled(a, b);
  return stats::welch_log_t_test(o.baseline.kept, o.candidate.kept, 1.0 - alpha);
}

std::string pct(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", x);
  return buf;
}

std::string interval(double lo, double hi, double level) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "[%+.1f%%, %+.1f%%] (%.4g%%)", lo, hi, 100.0 * level);
  return buf;
}

double to_pct(double log) { return 100.0 * std::expm1(log); }

}  // namespace

Search::Search(int commits, SearchOptions options) : n_(commits), options_(options) {
  if (commits < 2) throw std::invalid_argument("bisection: a range needs at least 2 commits (good and bad)");
  stats::validate(options_.design);
  if (options_.parallel_probes < 1) throw std::invalid_argument("bisection: parallel_probes must be at least 1");
  if (options_.max_runs_per_commit < options_.design.runs_per_block)
    throw std::invalid_argument("bisection: max_runs_per_commit must be at least runs_per_block");
  part_design_ = options_.design;
  part_design_.margin_pct = std::max(options_.design.margin_pct, options_.design.threshold_pct);
  part_design_.max_runs_per_arm = std::max(options_.design.max_runs_per_arm, options_.max_runs_per_commit);
  if (!(options_.sandwich_alpha > 0.0 && options_.sandwich_alpha < 0.5))
    throw std::invalid_argument("bisection: sandwich_alpha must be in (0, 0.5)");
  sandwich_plan_ = stats::plan_looks(options_.design.spending, options_.sandwich_alpha, options_.design.runs_per_block,
                                     options_.max_runs_per_commit);
  part_plan_ = stats::plan_looks(part_design_);
  broken_.assign(static_cast<std::size_t>(n_), false);
  result_.status = "searching";
  result_.ci_level = 1.0 - options_.design.alpha;
}

void Search::add_runs(int commit, const std::vector<double>& ttfb_ms) {
  if (commit < 0 || commit >= n_) throw std::invalid_argument("bisection: no commit " + std::to_string(commit));
  auto& r = runs_[commit];
  r.insert(r.end(), ttfb_ms.begin(), ttfb_ms.end());
  result_.runs += static_cast<int>(ttfb_ms.size());
}

void Search::mark_broken(int commit) {
  if (commit < 0 || commit >= n_) throw std::invalid_argument("bisection: no commit " + std::to_string(commit));
  if (!broken_[static_cast<std::size_t>(commit)]) {
    broken_[static_cast<std::size_t>(commit)] = true;
    result_.broken.push_back(commit);
  }
}

std::vector<double> Search::level_runs(int commit) const {
  // Every run of the commit measured fresh: its probe runs and its side of each sandwich it is in
  // (the sandwich's runs were not picked for anything; on a machine whose runs are independent
  // they are runs of the commit like any other).
  std::vector<double> out;
  if (const auto it = runs_.find(commit); it != runs_.end()) out = it->second;
  for (const auto& [key, pairs] : sandwiches_) {
    if (key.first == commit) out.insert(out.end(), pairs.first.begin(), pairs.first.end());
    if (key.second == commit) out.insert(out.end(), pairs.second.begin(), pairs.second.end());
  }
  return out;
}

int Search::runs_of(int commit) const {
  auto it = runs_.find(commit);
  return it == runs_.end() ? 0 : static_cast<int>(it->second.size());
}

bool Search::need(int commit, int runs) {
  if (is_broken(commit)) return false;
  const int have = runs_of(commit);
  if (have >= runs) return false;
  pending_.push_back(Request{commit, runs - have});
  return true;
}

std::optional<Search::Side> Search::classify(int probe, const Interval& iv, bool at_budget) const {
  // Which end is the probe at? With z_g the probe's difference from the good end in standard
  // errors of that difference (the probe's and the good end's, Welch) and z_b the same from the
  // bad end, the generalised log likelihood ratio of "at the bad end's level" against "at the
  // good end's level" is
  //   LLR = (z_g^2 - z_b^2) / 2,
  // the profile likelihood of normal means with each end's level estimated from its runs. With
  // the ends' levels known exactly it is Wald's n d (m - (g + b) / 2) / s^2; here the ends'
  // uncertainty widens both z's, so a probe is not classified on ends measured too little, and
  // ends that look reversed do not flip it (it is symmetric in the two ends). The probe is
  // classified once |LLR| > ln((1 - e) / e) for a per-probe error e; until then it and the ends
  // get more runs (up to the budget, where the sign decides and the result says "unsure").
  const double alpha = options_.design.alpha;
  const auto from_good = compare(runs_.at(iv.good), runs_.at(probe), alpha);
  const auto from_bad = compare(runs_.at(iv.bad), runs_.at(probe), alpha);
  if (!from_good.valid || !from_bad.valid) return std::nullopt;
  auto z = [](const stats::WelchResult& w) {
    if (w.se > 0.0) return w.diff_log / w.se;
    return w.diff_log == 0.0 ? 0.0 : std::copysign(1e6, w.diff_log);
  };
  const double zg = z(from_good), zb = z(from_bad);
  const double llr = (zg * zg - zb * zb) / 2.0;
  const double bound = std::log((1.0 - kProbeError) / kProbeError);
  if (llr > bound) return Side::bad;
  if (llr < -bound) return Side::good;
  if (!at_budget) return std::nullopt;
  return llr > 0.0 ? Side::bad : Side::good;
}

int Search::nearest_usable(int commit, const Interval& iv) const {
  for (int d = 0; d < iv.bad - iv.good; ++d) {
    for (int c : {commit - d, commit + d}) {
      if (c > iv.good && c < iv.bad && !is_broken(c)) return c;
    }
  }
  return -1;
}

std::vector<Request> Search::requests() {
  if (done_) return {};
  pending_.clear();
  step();
  if (!pending_.empty()) ++result_.rounds;
  return pending_;
}

Search::PairedLook Search::paired_look(const Pairs* pairs, const std::vector<stats::LookPlan>& plan) {
  // The plan's look at the pairs measured so far (the last look at or below them), and the paired
  // test on the pairs the outlier rule keeps (a burst in one run of a pair is one wild ratio).
  PairedLook look;
  if (pairs == nullptr) return look;
  const auto& [parent_ms, commit_ms] = *pairs;
  const std::size_t n = std::min(parent_ms.size(), commit_ms.size());
  const stats::LookPlan* at = nullptr;
  for (const auto& p : plan) {
    if (static_cast<std::size_t>(p.runs_per_arm) <= n) at = &p;
  }
  if (at == nullptr) return look;
  look.ready = true;
  look.final = at == &plan.back();
  look.pairs = static_cast<int>(n);
  std::vector<double> ratios;
  for (std::size_t i = 0; i < n; ++i) ratios.push_back(commit_ms[i] / parent_ms[i]);
  const stats::OutlierResult o = stats::remove_outliers(ratios);
  std::vector<double> p, c;
  std::size_t skip = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (skip < o.removed_indices.size() && o.removed_indices[skip] == i) {
      ++skip;
      continue;
    }
    p.push_back(parent_ms[i]);
    c.push_back(commit_ms[i]);
  }
  look.nominal_alpha = at->nominal_alpha;
  look.test = stats::paired_log_t_test(p, c, 1.0 - std::clamp(at->nominal_alpha, 1e-12, 0.5));
  return look;
}

int Search::pairs_wanted(const Pairs* pairs, const std::vector<stats::LookPlan>& plan) {
  const int have = pairs == nullptr ? 0 : static_cast<int>(std::min(pairs->first.size(), pairs->second.size()));
  for (const auto& p : plan) {
    if (p.runs_per_arm > have) return p.runs_per_arm - have;
  }
  return plan.empty() ? 0 : plan.front().runs_per_arm;
}

Search::SandwichLook Search::sandwich_look(const Interval& iv) const {
  // The adaptive design's rules at the sandwich's look, at that look's nominal level.
  SandwichLook look;
  const auto it = sandwiches_.find({iv.good, iv.bad});
  const PairedLook at = paired_look(it == sandwiches_.end() ? nullptr : &it->second, sandwich_plan_);
  if (!at.ready) return look;
  look.nominal_alpha = at.nominal_alpha;
  look.test = at.test;
  const auto& t = look.test;
  const double level = t.confidence;
  const double margin = std::log1p(options_.design.margin_pct / 100.0);
  const std::string numbers = pct(t.effect_pct) + " " + interval(t.effect_ci_low_pct, t.effect_ci_high_pct, level) +
                              " over " + std::to_string(t.n) + " pairs";
  if (t.valid && t.p_value < at.nominal_alpha && t.diff_ci_low > 0.0 && t.effect_pct >= options_.design.threshold_pct) {
    look.outcome = SandwichOutcome::culprit;
  } else if (t.valid && t.diff_ci_low > -margin && t.diff_ci_high < margin) {
    look.outcome = SandwichOutcome::failed;
    look.reason = "side by side, the pair is the same within " + pct(options_.design.margin_pct).substr(1) + ": " + numbers;
  } else if (at.final) {
    look.outcome = SandwichOutcome::failed;
    look.reason = "side by side, the pair showed no step of at least " + pct(options_.design.threshold_pct).substr(1) +
                  " by its last look: " + numbers;
  }
  return look;
}

Search::PartLook Search::part_look(const Interval& iv) const {
  PartLook out;
  if (options_.part_pairs) {
    const auto it = part_pairs_.find({iv.good, iv.bad});
    const PairedLook at = paired_look(it == part_pairs_.end() ? nullptr : &it->second, part_plan_);
    if (!at.ready) return out;
    const auto& t = at.test;
    const stats::RulesOutcome r =
        stats::classify(stats::summary_of(t), at.nominal_alpha, part_design_.threshold_pct, part_design_.margin_pct);
    out = PartLook{true, at.pairs, at.final, r.verdict, t.valid, t.diff_ci_high,
                   t.effect_pct, t.effect_ci_low_pct, t.effect_ci_high_pct, t.confidence, ""};
    const std::string numbers = pct(t.effect_pct) + " " + interval(t.effect_ci_low_pct, t.effect_ci_high_pct, t.confidence) +
                                " over " + std::to_string(t.n) + " pairs of its ends side by side";
    const std::string m = pct(part_design_.margin_pct).substr(1);
    if (r.verdict == stats::Verdict::no_change) out.reason = "the same within " + m + ": " + numbers;
    else if (r.verdict == stats::Verdict::improvement) out.reason = "faster at its bad end: " + numbers;
    else if (at.final) out.reason = "neither different nor the same within " + m + " by the last look: " + numbers;
    return out;
  }
  const std::vector<double> good = level_runs(iv.good), bad = level_runs(iv.bad);
  const int n = static_cast<int>(std::min(good.size(), bad.size()));
  if (n >= options_.design.runs_per_block) {
    const auto d = stats::decide_look(good, bad, part_design_);
    const auto& w = d.comparison.decision.welch;
    out = PartLook{true, n, d.final, d.more_runs ? stats::Verdict::inconclusive : d.verdict, w.valid, w.diff_ci_high,
                   w.effect_pct, w.effect_ci_low_pct, w.effect_ci_high_pct, w.confidence, d.reason};
    if (!d.more_runs) out.final = true;
  }
  out.good_level_runs = static_cast<int>(good.size());
  out.bad_level_runs = static_cast<int>(bad.size());
  return out;
}

int Search::append_pairs(Pairs& to, const std::vector<double>& first_ms, const std::vector<double>& second_ms) {
  // Only whole pairs: a run without its partner cannot be paired (a job cut short). Every run
  // counts as measured.
  const std::size_t n = std::min(first_ms.size(), second_ms.size());
  to.first.insert(to.first.end(), first_ms.begin(), first_ms.begin() + static_cast<long>(n));
  to.second.insert(to.second.end(), second_ms.begin(), second_ms.begin() + static_cast<long>(n));
  return static_cast<int>(first_ms.size() + second_ms.size());
}

void Search::add_sandwich_runs(int parent, int commit, const std::vector<double>& parent_ms,
                               const std::vector<double>& commit_ms) {
  if (parent < 0 || commit >= n_ || parent >= commit)
    throw std::invalid_argument("bisection: no sandwich " + std::to_string(parent) + ".." + std::to_string(commit));
  result_.runs += append_pairs(sandwiches_[{parent, commit}], parent_ms, commit_ms);
}

void Search::add_part_runs(int good, int bad, const std::vector<double>& good_ms, const std::vector<double>& bad_ms) {
  if (good < 0 || bad >= n_ || good >= bad)
    throw std::invalid_argument("bisection: no part " + std::to_string(good) + ".." + std::to_string(bad));
  result_.runs += append_pairs(part_pairs_[{good, bad}], good_ms, bad_ms);
}

void Search::add_part(int good, int bad, std::string state, std::string reason, double effect, double low, double high) {
  result_.parts.push_back(Part{good, bad, std::move(state), std::move(reason), effect, low, high});
}

void Search::step() {
  const int block = options_.design.runs_per_block;
  const int budget = options_.max_runs_per_commit;
  if (broken_.front() || broken_.back()) {
    result_.status = "broken";
    result_.message = std::string("the ") + (broken_.front() ? "good" : "bad") + " end of the range cannot be measured";
    done_ = true;
    return;
  }
  // 1. The ends, with the adaptive design: different, or stop.
  if (!ends_verified_) {
    const int n = std::min(runs_of(0), runs_of(n_ - 1));
    if (n >= block) {
      const auto d = stats::decide_look(runs_.at(0), runs_.at(n_ - 1), options_.design);
      const auto& w = d.comparison.decision.welch;
      result_.total_effect_pct = w.effect_pct;
      if (d.verdict == stats::Verdict::regression) {
        ends_verified_ = true;
        open_.push_back(whole(0, n_ - 1));
      } else if (!d.more_runs) {
        result_.status = "no_regression";
        result_.message = "the last commit is not slower than the first: " + d.reason;
        done_ = true;
        return;
      }
    }
    if (!ends_verified_) {
      const int target = std::min(options_.design.max_runs_per_arm, n + block);
      need(0, target);
      need(n_ - 1, target);
      return;
    }
  }

  // 2.-4. Every open part; collect requests for this round.
  std::vector<Interval> next;
  int probes_left = options_.parallel_probes;
  for (Interval iv : open_) {
    // An end that broke while the part was searched (a probe that built once and not again, a
    // sandwich's parent that crashed): back to the ends it was narrowed from, which skip it.
    if (is_broken(iv.good) || is_broken(iv.bad)) {
      if ((iv.good != iv.outer_good || iv.bad != iv.outer_bad) && !is_broken(iv.outer_good) &&
          !is_broken(iv.outer_bad) && iv.reopens < kMaxReopens) {
        next.push_back(whole(iv.outer_good, iv.outer_bad, iv.reopens + 1));
        next.back().verified = iv.verified;
      } else {
        add_part(iv.outer_good, iv.outer_bad, "unmeasurable", "an end of this part cannot be measured", kNaN, kNaN, kNaN);
      }
      continue;
    }
    // A part beside a culprit: is it slower at its bad end than at its good end? Decided like
    // the range's own ends, measuring more while undecided: both ends' runs, or (part_pairs) pairs
    // of its ends side by side. With part_pairs a part of one step is its own sandwich: the pair
    // side by side is the question either way, and its sandwich's runs answer it.
    const int inner = nearest_usable((iv.good + iv.bad) / 2, iv);
    if (!iv.verified && (inner >= 0 || !options_.part_pairs)) {
      const PartLook look = part_look(iv);
      const double margin = std::log1p(part_design_.margin_pct / 100.0);
      const std::string m = pct(part_design_.margin_pct).substr(1);
      const std::string numbers = pct(look.effect_pct) + " " + interval(look.ci_low_pct, look.ci_high_pct, look.confidence);
      const std::string per = options_.part_pairs ? " pairs of its ends" : " runs per end";
      if (look.ready && look.verdict == stats::Verdict::regression) {
        iv.verified = true;
      } else if (look.ready && (look.verdict != stats::Verdict::inconclusive || look.final)) {
        const char* state = look.verdict == stats::Verdict::no_change     ? "same"
                            : look.verdict == stats::Verdict::improvement ? "faster"
                                                                          : "unsure";
        add_part(iv.good, iv.bad, state, look.reason, look.effect_pct, look.ci_low_pct, look.ci_high_pct);
        continue;
      } else if (look.ready && look.valid && look.diff_ci_high < margin) {
        // Not slower by the margin: no step of that size to search for (a futility stop; it
        // can only lower the chance of a false "different").
        add_part(iv.good, iv.bad, "not_slower", "not slower by " + m + " or more: " + numbers + " over " +
                 std::to_string(look.n) + per, look.effect_pct, look.ci_low_pct, look.ci_high_pct);
        continue;
      } else if (look.ready && look.n >= budget && look.valid && look.effect_pct < part_design_.margin_pct) {
        // A commit's budget spent and not even looking slower by the margin: unsure, without
        // the rest of the design's runs (those go to parts that look slower, where a step
        // would be; stopping without a verdict cannot raise the false-positive rate).
        add_part(iv.good, iv.bad, "unsure",
                 "neither different nor the same within " + m + " after " + std::to_string(look.n) + per +
                     ", and not looking slower by that much: " + numbers,
                 look.effect_pct, look.ci_low_pct, look.ci_high_pct);
        continue;
      }
      if (!iv.verified) {
        if (options_.part_pairs) {
          const auto it = part_pairs_.find({iv.good, iv.bad});
          pending_.push_back(Request{iv.bad, pairs_wanted(it == part_pairs_.end() ? nullptr : &it->second, part_plan_),
                                     iv.good, true});
        } else {
          // Topped up to the next look, counting the ends' sandwich runs (level_runs).
          const int have_good = look.good_level_runs, have_bad = look.bad_level_runs;
          const int target = std::min(part_design_.max_runs_per_arm, std::min(have_good, have_bad) + block);
          need(iv.good, runs_of(iv.good) + target - have_good);
          need(iv.bad, runs_of(iv.bad) + target - have_bad);
        }
        next.push_back(iv);
        continue;
      }
    }
    // Adjacent among usable commits: sandwich, then culprit or not.
    if (inner < 0) {
      const SandwichLook look = sandwich_look(iv);
      if (look.outcome == SandwichOutcome::more) {
        const auto it = sandwiches_.find({iv.good, iv.bad});
        pending_.push_back(Request{iv.bad, pairs_wanted(it == sandwiches_.end() ? nullptr : &it->second, sandwich_plan_), iv.good});
        next.push_back(iv);
        continue;
      }
      const auto& t = look.test;
      if (look.outcome == SandwichOutcome::culprit) {
        result_.culprits.push_back(Culprit{iv.bad, iv.good, t.effect_pct, t.effect_ci_low_pct, t.effect_ci_high_pct,
                                           t.confidence, t.p_value, static_cast<int>(t.n), t.se, iv.unsure});
        // 4. The parts beside it, each decided at its own ends.
        if (iv.good > iv.outer_good) next.push_back(unverified(iv.outer_good, iv.good));
        if (iv.outer_bad > iv.bad) next.push_back(unverified(iv.bad, iv.outer_bad));
      } else if (!iv.verified) {
        // A part of one step beside a culprit, decided by its sandwich: no step there.
        // The part's own rules (part_look's) on the sandwich's pairs: its last look decides.
        const stats::RulesOutcome r =
            stats::classify(stats::summary_of(t), look.nominal_alpha, part_design_.threshold_pct, part_design_.margin_pct);
        const char* state = r.verdict == stats::Verdict::no_change                                     ? "same"
                            : r.verdict == stats::Verdict::improvement                                 ? "faster"
                            : t.valid && t.diff_ci_high < std::log1p(part_design_.margin_pct / 100.0) ? "not_slower"
                                                                                                       : "unsure";
        add_part(iv.good, iv.bad, state, "a part of one commit, decided by its sandwich: " + look.reason, t.effect_pct,
                 t.effect_ci_low_pct, t.effect_ci_high_pct);
      } else if (iv.reopens < kMaxReopens) {
        // The sandwich failed: side by side, the pair is at one level, so a probe on the way
        // here was put on the wrong side by runs that misled (a busy spell), or an end of the
        // part was: a part beside a culprit has an end whose probe runs were picked for looking
        // like the other side of that culprit. Every probe run in the part, its ends' too, is
        // dropped (the range's own ends keep theirs: they were measured as ends) and the part
        // is searched again on fresh runs; the pair's sandwich starts over. Dropping only the
        // pair's runs led back to the same wrong pair from the same misleading runs.
        for (auto it = runs_.lower_bound(std::max(iv.outer_good, 1)); it != runs_.end() &&
                                                                        it->first <= std::min(iv.outer_bad, n_ - 2);)
          it = runs_.erase(it);
        sandwiches_.erase({iv.good, iv.bad});
        next.push_back(whole(iv.outer_good, iv.outer_bad, iv.reopens + 1));
        ++result_.reopened;
      } else {
        add_part(iv.outer_good, iv.outer_bad, "sandwich_failed",
                 "narrowed to commits " + std::to_string(iv.good) + ".." + std::to_string(iv.bad) + " " +
                     std::to_string(iv.reopens + 1) + " times, and " + look.reason,
                 t.effect_pct, t.effect_ci_low_pct, t.effect_ci_high_pct);
      }
      continue;
    }
    // Probe points splitting the interval into parallel parts (at least one).
    const int parts = std::max(1, std::min(probes_left, iv.bad - iv.good - 1));
    probes_left = std::max(0, probes_left - parts);
    std::vector<int> probes;
    for (int k = 1; k <= parts; ++k) {
      int p = nearest_usable(iv.good + (iv.bad - iv.good) * k / (parts + 1), iv);
      if (p > 0 && (probes.empty() || p > probes.back())) probes.push_back(p);
    }
    // Ends and probes measured enough to classify?
    bool waiting = need(iv.good, block);
    waiting |= need(iv.bad, block);
    for (int p : probes) waiting |= need(p, block);
    if (waiting) {
      next.push_back(iv);
      continue;
    }
    // Classify the probes in order: the first bad one bounds the interval from above.
    Interval narrowed = iv;
    bool unresolved = false;
    for (int p : probes) {
      const int have = runs_of(p);
      auto side = classify(p, iv, have >= budget);
      if (!side) {
        need(p, std::min(budget, have + block));
        need(iv.good, std::min(budget, have + block));  // the ends keep up with the probe
        need(iv.bad, std::min(budget, have + block));
        unresolved = true;
        break;
      }
      if (have >= budget) narrowed.unsure = true;
      if (*side == Side::good) {
        narrowed.good = p;
      } else {
        narrowed.bad = p;
        break;
      }
    }
    next.push_back(unresolved ? iv : narrowed);
  }
  open_ = std::move(next);
  if (!pending_.empty()) return;
  if (open_.empty()) finish();
}

void Search::finish() {
  std::sort(result_.culprits.begin(), result_.culprits.end(),
            [](const Culprit& a, const Culprit& b) { return a.commit < b.commit; });
  std::sort(result_.parts.begin(), result_.parts.end(), [](const Part& a, const Part& b) { return a.good < b.good; });
  // The end-to-end change on every run of the ends, and what the culprits leave of it.
  const double alpha = options_.design.alpha;
  const auto total = compare(runs_.at(0), runs_.at(n_ - 1), alpha);
  result_.remainder_pct = result_.remainder_ci_low_pct = result_.remainder_ci_high_pct = kNaN;
  if (total.valid) {
    result_.total_effect_pct = total.effect_pct;
    result_.total_ci_low_pct = total.effect_ci_low_pct;
    result_.total_ci_high_pct = total.effect_ci_high_pct;
    if (!result_.culprits.empty()) {
      double rest = total.diff_log, var = total.se * total.se;
      for (const auto& c : result_.culprits) {
        rest -= std::log1p(c.effect_pct / 100.0);
        if (std::isfinite(c.se_log)) var += c.se_log * c.se_log;
      }
      const double z = boost::math::quantile(boost::math::complement(boost::math::normal(), alpha / 2.0));
      result_.remainder_pct = to_pct(rest);
      result_.remainder_ci_low_pct = to_pct(rest - z * std::sqrt(var));
      result_.remainder_ci_high_pct = to_pct(rest + z * std::sqrt(var));
    }
  }
  int unsure = 0;
  for (const auto& p : result_.parts) unsure += p.state != "same" && p.state != "faster" && p.state != "not_slower";
  const std::string unsure_words =
      unsure ? "; " + std::to_string(unsure) + " part(s) could not be decided (see parts)" : "";
  if (result_.culprits.empty()) {
    result_.status = "unresolved";
    result_.message = "the last commit is slower than the first (" + pct(result_.total_effect_pct) +
                      "), but no commit was confirmed as the step" + unsure_words +
                      (result_.broken.empty() ? "" : "; " + std::to_string(result_.broken.size()) + " broken commit(s)");
  } else {
    result_.status = "found";
    result_.message = std::to_string(result_.culprits.size()) + " culprit(s)" +
                      (std::isfinite(result_.remainder_pct)
                           ? ", leaving " + pct(result_.remainder_pct) + " " +
                                 interval(result_.remainder_ci_low_pct, result_.remainder_ci_high_pct, result_.ci_level) +
                                 " of the end-to-end change unexplained"
                           : "") +
                      unsure_words;
  }
  done_ = true;
}

}  // namespace ttfb::bisect
