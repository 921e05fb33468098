#include "bench/legacy/search.hpp"

#include "server/stats/comparison.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace ttfb::bisect::legacy {
namespace {

// The Welch comparison of two commits' runs at the design's alpha (one look: bisection's
// decisions are re-verified by the sandwich, and each probe is judged against both ends).
stats::WelchResult compare(const std::vector<double>& a, const std::vector<double>& b, double alpha) {
  const stats::PooledOutliers o = stats::remove_outliers_pooled(a, b);
  return stats::welch_log_t_test(o.baseline.kept, o.candidate.kept, 1.0 - alpha);
}

}  // namespace

Search::Search(int commits, SearchOptions options) : n_(commits), options_(options) {
  if (commits < 2) throw std::invalid_argument("bisection: a range needs at least 2 commits (good and bad)");
  stats::validate(options_.design);
  if (options_.parallel_probes < 1) throw std::invalid_argument("bisection: parallel_probes must be at least 1");
  if (options_.max_runs_per_commit < options_.design.runs_per_block)
    throw std::invalid_argument("bisection: max_runs_per_commit must be at least runs_per_block");
  broken_.assign(static_cast<std::size_t>(n_), false);
  result_.status = "searching";
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

int Search::runs_of(int commit) const {
  auto it = runs_.find(commit);
  return it == runs_.end() ? 0 : static_cast<int>(it->second.size());
}

bool Search::need(int commit, int runs) {
  const int have = runs_of(commit);
  if (have >= runs) return false;
  pending_.push_back(Request{commit, runs - have});
  return true;
}

std::optional<Search::Side> Search::classify(int probe, const Interval& iv, bool at_budget) const {
  // A sequential probability ratio test between "the probe is at the good end's level" and "at
  // the bad end's level" (Wald): with d the log step between the ends, m the probe's mean log
  // and s its per-run standard deviation, the log likelihood ratio of n runs is
  //   LLR = n d (m - (good + bad) / 2) / s^2,
  // and the probe is classified once |LLR| > ln((1 - e) / e) for a per-probe error e; until then
  // it gets more runs (up to the budget, where the sign decides and the result says "unsure").
  const double alpha = options_.design.alpha;
  const auto from_good = compare(runs_.at(iv.good), runs_.at(probe), alpha);
  const auto to_bad = compare(runs_.at(probe), runs_.at(iv.bad), alpha);
  if (!from_good.valid || !to_bad.valid) return std::nullopt;
  const double d = from_good.diff_log + to_bad.diff_log;        // bad - good
  const double offset = (from_good.diff_log - to_bad.diff_log) / 2.0;  // m - midpoint
  const double s = std::max(from_good.candidate.sd_log, 1e-6);
  const double n = static_cast<double>(from_good.candidate.n);
  const double llr = n * d * offset / (s * s);
  const double bound = std::log((1.0 - kProbeError) / kProbeError);
  if (d > 0.0 && llr > bound) return Side::bad;
  if (d > 0.0 && llr < -bound) return Side::good;
  if (!at_budget) return std::nullopt;
  return offset > 0.0 ? Side::bad : Side::good;
}

int Search::nearest_usable(int commit, const Interval& iv) const {
  for (int d = 0; d < iv.bad - iv.good; ++d) {
    for (int c : {commit - d, commit + d}) {
      if (c > iv.good && c < iv.bad && !broken_[static_cast<std::size_t>(c)]) return c;
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

bool Search::sandwiched(const Interval& iv) {
  // iv.good and iv.bad are adjacent among the usable commits: iv.bad is the candidate. A block
  // side by side at a time until the step shows on them (each look at the design's alpha: the
  // search brought the pair here on strong evidence already) or the budget is spent (then it is
  // not called a culprit).
  const auto it = sandwiches_.find({iv.good, iv.bad});
  const int budget = options_.max_runs_per_commit;
  const int have = it == sandwiches_.end() ? 0 : static_cast<int>(std::min(it->second.first.size(), it->second.second.size()));
  if (have >= std::min(budget, options_.design.runs_per_block) && (have >= budget || sandwich_step(iv))) return true;
  pending_.push_back(Request{iv.bad, std::min(options_.design.runs_per_block, budget - have), iv.good});
  return false;
}

std::optional<stats::WelchResult> Search::sandwich_step(const Interval& iv) const {
  const auto& [parent_ms, commit_ms] = sandwiches_.at({iv.good, iv.bad});
  const auto w = compare(parent_ms, commit_ms, options_.design.alpha);
  if (w.valid && w.p_value < options_.design.alpha && w.effect_ci_low_pct > 0.0 && w.effect_pct >= options_.design.threshold_pct)
    return w;
  return std::nullopt;
}

void Search::add_sandwich_runs(int parent, int commit, const std::vector<double>& parent_ms,
                               const std::vector<double>& commit_ms) {
  if (parent < 0 || commit >= n_ || parent >= commit)
    throw std::invalid_argument("bisection: no sandwich " + std::to_string(parent) + ".." + std::to_string(commit));
  auto& [p, c] = sandwiches_[{parent, commit}];
  p.insert(p.end(), parent_ms.begin(), parent_ms.end());
  c.insert(c.end(), commit_ms.begin(), commit_ms.end());
  result_.runs += static_cast<int>(parent_ms.size() + commit_ms.size());
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

  // 2./3. Search every open interval; collect requests for this round.
  std::vector<Interval> next;
  int probes_left = options_.parallel_probes;
  for (Interval iv : open_) {
    // A part left beside a culprit: is it slower at its bad end than at its good end? Decided
    // like the range's own ends, measuring both more while undecided.
    if (!iv.verified) {
      const int n = std::min(runs_of(iv.good), runs_of(iv.bad));
      if (n >= block) {
        const auto d = stats::decide_look(runs_.at(iv.good), runs_.at(iv.bad), options_.design);
        if (d.verdict == stats::Verdict::regression) {
          iv.verified = true;
        } else if (!d.more_runs) {
          continue;  // nothing more there
        }
      }
      if (!iv.verified) {
        const int target = std::min(options_.design.max_runs_per_arm, n + block);
        need(iv.good, target);
        need(iv.bad, target);
        next.push_back(iv);
        continue;
      }
    }
    // Adjacent among usable commits: sandwich, then culprit or not.
    const int inner = nearest_usable((iv.good + iv.bad) / 2, iv);
    if (inner < 0) {
      if (!sandwiched(iv)) {
        next.push_back(iv);
        continue;
      }
      if (const auto w = sandwich_step(iv)) {
        result_.culprits.push_back(Culprit{iv.bad, iv.good, w->effect_pct, w->effect_ci_low_pct, w->effect_ci_high_pct,
                                           1.0 - options_.design.alpha, w->p_value, unsure_});
      } else if (result_.reopened < kMaxReopens) {
        // The sandwich failed: side by side, the pair is at one level, so one of them was put
        // on the wrong side by runs that misled (a busy spell). Their probe runs are dropped and
        // the interval they were narrowed from is searched again; they are measured afresh when
        // probed.
        for (int c : {iv.good, iv.bad}) {
          if (c != iv.outer_good && c != iv.outer_bad) runs_.erase(c);
        }
        next.push_back(whole(iv.outer_good, iv.outer_bad));
        ++result_.reopened;
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
      if (have >= budget) unsure_ = true;
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
  // Every interval ended (candidates sandwiched): enough explained, or search the rest?
  if (open_.empty()) {
    std::sort(result_.culprits.begin(), result_.culprits.end(),
              [](const Culprit& a, const Culprit& b) { return a.commit < b.commit; });
    double explained = 0.0;
    for (const auto& c : result_.culprits) explained += std::log1p(c.effect_pct / 100.0);
    const double total = std::log1p(result_.total_effect_pct / 100.0);
    if (!result_.culprits.empty() && explained < options_.explained_fraction * total) {
      // Look for more on both sides of each culprit: the parts whose ends look apart on the runs
      // so far, measured until that is decided.
      auto looks_slower = [&](int a, int b) {
        if (runs_of(a) == 0 || runs_of(b) == 0) return true;  // dropped by a failed sandwich: measure
        const auto w = compare(runs_.at(a), runs_.at(b), options_.design.alpha);
        return w.valid && w.effect_pct >= options_.design.threshold_pct;
      };
      std::vector<Interval> more;
      int start = 0;
      for (const auto& c : result_.culprits) {
        if (c.parent > start && looks_slower(start, c.parent)) more.push_back(unverified(start, c.parent));
        start = c.commit;
      }
      if (n_ - 1 > start && looks_slower(start, n_ - 1)) more.push_back(unverified(start, n_ - 1));
      std::set<std::pair<int, int>> searched;
      for (const auto& iv : more) {
        if (searched.insert({iv.good, iv.bad}).second) open_.push_back(iv);
      }
      options_.explained_fraction = 0.0;  // one extra pass: what it finds is what there is
      if (!open_.empty()) {
        step();
        return;
      }
    }
    if (result_.culprits.empty()) {
      result_.status = "broken";
      result_.message = "the regression between the ends could not be pinned to a commit (broken or unsure commits)";
    } else {
      result_.status = "found";
      result_.message = std::to_string(result_.culprits.size()) + " culprit(s)";
    }
    done_ = true;
  }
}

}  // namespace ttfb::bisect::legacy
