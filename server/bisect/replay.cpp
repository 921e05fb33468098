#include "server/bisect/replay.hpp"

#include "common/json_number.hpp"
#include "server/stats/comparison.hpp"
#include "server/stats/outliers.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>
#include <tuple>

namespace ttfb::bisect {
namespace {
namespace json = boost::json;

double median(std::vector<double> xs) {
  if (xs.empty()) return std::nan("");
  std::sort(xs.begin(), xs.end());
  const std::size_t n = xs.size();
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2.0;
}

std::string describe(const std::vector<Request>& rs) {
  std::string out;
  for (const auto& r : rs)
    out += (out.empty() ? "" : ", ") + (r.beside >= 0 ? std::to_string(r.beside) + (r.part ? "~" : "|") : "") + std::to_string(r.commit) + "x" +
           std::to_string(r.runs);
  return "[" + out + "]";
}

const git::CommitInfo& info(const std::vector<git::CommitInfo>& commits, int i) {
  if (i < 0 || static_cast<std::size_t>(i) >= commits.size())
    throw std::invalid_argument("bisection: commit index " + std::to_string(i) + " outside the range");
  return commits[static_cast<std::size_t>(i)];
}

// The phase that moved most between parent and culprit, and the attribution's summary.
json::object culprit_json(const Replayed& r, const Culprit& c, const std::vector<git::CommitInfo>& commits,
                          double phase_alpha) {
  const auto& ci = info(commits, c.commit);
  json::object o{{"index", c.commit},
                 {"commit", ci.sha},
                 {"subject", ci.subject},
                 {"author", ci.author_name},
                 {"email", ci.author_email},
                 {"date", ci.date},
                 {"parent", info(commits, c.parent).sha},
                 {"parent_index", c.parent},
                 {"effect_pct", json_number(c.effect_pct)},
                 {"ci_low_pct", json_number(c.ci_low_pct)},
                 {"ci_high_pct", json_number(c.ci_high_pct)},
                 {"ci_level", c.ci_level},
                 {"p_value", json_number(c.p_value)},
                 {"unsure", c.unsure},
                 {"phase", nullptr},
                 {"phase_delta_ms", nullptr},
                 {"phase_summary", ""}};
  // Broken commits between the parent and the culprit: the step is in one of them or in it.
  json::array between;
  for (int k = c.parent + 1; k < c.commit; ++k) between.emplace_back(info(commits, k).sha);
  o["broken_between"] = std::move(between);
  const auto s = r.sandwiches.find({c.parent, c.commit});
  if (s != r.sandwiches.end()) {
    // The sandwich's runs, the ones the effect is measured on.
    const CommitRuns& parent = s->second.first;
    const CommitRuns& culprit = s->second.second;
    o["parent_runs"] = parent.ttfb_ms.size();
    o["runs"] = culprit.ttfb_ms.size();
    o["parent_median_ms"] = json_number(median(parent.ttfb_ms));
    o["median_ms"] = json_number(median(culprit.ttfb_ms));
    const stats::PhaseAttribution a =
        stats::attribute_phases(parent.ttfb_ms, culprit.ttfb_ms, parent.phases, culprit.phases, phase_alpha);
    o["phase_summary"] = a.summary;
    const stats::PhaseEffect* top = nullptr;
    for (const auto& e : a.phases) {
      if (e.significant && (!top || e.delta_ms > top->delta_ms)) top = &e;
    }
    if (top) {
      o["phase"] = top->name;
      o["phase_delta_ms"] = json_number(top->delta_ms);
      o["phase_share_of_effect"] = json_number(top->share_of_effect);
    }
  }
  return o;
}

// The search's next round. A step that only narrows an interval asks for nothing yet (the
// narrowed interval's probes come with the next step), so step until it asks or is done.
std::vector<Request> next_round(Search& search) {
  for (int i = 0; i < 100000; ++i) {
    auto rs = search.requests();
    if (!rs.empty() || search.done()) return merge_requests(rs);
  }
  throw std::logic_error("bisection: the search neither asks for runs nor ends");
}

}  // namespace

void CommitRuns::append(const CommitRuns& more) {
  ttfb_ms.insert(ttfb_ms.end(), more.ttfb_ms.begin(), more.ttfb_ms.end());
  phases.runs.insert(phases.runs.end(), more.phases.runs.begin(), more.phases.runs.end());
}

std::vector<Request> merge_requests(const std::vector<Request>& requests) {
  std::map<std::tuple<int, int, bool>, int> by_commit;  // (commit, beside, part) -> runs
  for (const auto& r : requests) {
    int& runs = by_commit[{r.commit, r.beside, r.part}];
    runs = std::max(runs, r.runs);
  }
  std::vector<Request> out;
  for (const auto& [key, runs] : by_commit) out.push_back(Request{std::get<0>(key), runs, std::get<1>(key), std::get<2>(key)});
  return out;
}

std::vector<ProbeJob> plan_jobs(const std::vector<Request>& requests, Pairing pairing) {
  std::vector<ProbeJob> jobs, sandwiches;
  int good_runs = 0, paired_runs = 0;
  for (const auto& r : requests) {
    if (r.beside >= 0) {
      sandwiches.push_back(ProbeJob{r.commit, r.runs, r.beside, !r.part, r.part});
    } else if (pairing == Pairing::unpaired) {
      jobs.push_back(ProbeJob{r.commit, r.runs, -1, false});
    } else if (r.commit == 0) {
      good_runs = std::max(good_runs, r.runs);
    } else {
      jobs.push_back(ProbeJob{r.commit, r.runs, 0, false});
      paired_runs += r.runs;
    }
  }
  if (jobs.empty()) {
    if (good_runs > 0) jobs.push_back(ProbeJob{0, good_runs, -1, false});
  } else if (good_runs > paired_runs) {
    jobs.front().runs += good_runs - paired_runs;
  }
  jobs.insert(jobs.end(), sandwiches.begin(), sandwiches.end());
  return jobs;
}

namespace {

// A job's level: the geometric mean of its runs that the outlier rule keeps. A burst in one run
// (x1.2-2.0) would otherwise move the level of every run scaled by it: one burst in ten reference
// runs shifts a plain geometric mean by up to 7%, more than the steps being searched for.
double geomean(const std::vector<double>& xs) {
  const stats::OutlierResult o = stats::remove_outliers(xs);
  double s = 0.0;
  for (double x : o.kept) s += std::log(x);
  return std::exp(s / static_cast<double>(o.kept.size()));
}

CommitRuns scaled(const CommitRuns& runs, const std::vector<double>& factors) {
  CommitRuns out;
  for (std::size_t i = 0; i < factors.size(); ++i) {
    out.ttfb_ms.push_back(runs.ttfb_ms[i] * factors[i]);
    if (i < runs.phases.runs.size()) {
      auto phases = runs.phases.runs[i];
      for (auto& [name, ms] : phases) ms *= factors[i];
      out.phases.runs.push_back(std::move(phases));
    }
  }
  return out;
}

}  // namespace

Replayed replay(int commits, const SearchOptions& options, const Seed& seed, const std::vector<Round>& rounds,
                Pairing pairing) {
  Replayed r{Search(commits, options), {}, {}, 0, {}, {}, 0, 0.0};
  auto add = [&](int commit, const CommitRuns& runs) {
    if (runs.ttfb_ms.empty()) return;
    r.search.add_runs(commit, runs.ttfb_ms);
    r.runs[commit].append(runs);
  };
  // One job's runs, onto the reference level when paired. Returns the runs it added.
  auto feed = [&](const ProbeOutcome& o) -> std::size_t {
    const ProbeJob& j = o.job;
    if (j.beside < 0 || (pairing == Pairing::unpaired && !j.sandwich && !j.part)) {
      if (pairing == Pairing::paired && j.commit == 0 && !o.runs.ttfb_ms.empty()) {
        // The good end alone: scaled so that the geometric mean of its runs is the level.
        const double g = geomean(o.runs.ttfb_ms);
        if (r.reference_ms == 0.0) r.reference_ms = g;
        add(0, scaled(o.runs, std::vector<double>(o.runs.ttfb_ms.size(), r.reference_ms / g)));
      } else {
        add(0, o.beside);  // unpaired: a seed job's good end, as measured
        add(j.commit, o.runs);
      }
      return o.beside.ttfb_ms.size() + o.runs.ttfb_ms.size();
    }
    // Pairs: run i of the commit beside run i of the other, scaled by it onto a level; the other
    // by its job's geometric mean. A run without its partner (a job cut short) is dropped.
    const std::size_t n = std::min(o.beside.ttfb_ms.size(), o.runs.ttfb_ms.size());
    if (n == 0) return 0;
    const std::vector<double> refs(o.beside.ttfb_ms.begin(), o.beside.ttfb_ms.begin() + static_cast<long>(n));
    const double g = geomean(refs);
    auto pair_up = [&](double level) {
      std::vector<double> by_pair;
      for (double x : refs) by_pair.push_back(level / x);
      return std::pair{scaled(o.beside, std::vector<double>(n, level / g)), scaled(o.runs, by_pair)};
    };
    if (j.part) {
      // A part's ends side by side: tested as pairs, like a sandwich.
      r.search.add_part_runs(j.beside, j.commit, refs,
                             std::vector<double>(o.runs.ttfb_ms.begin(), o.runs.ttfb_ms.begin() + static_cast<long>(n)));
      r.part_runs += static_cast<int>(2 * n);
    } else if (j.sandwich) {
      // The search tests the pairs as measured (the log ratio of neighbouring runs cancels the
      // machine's state during the pair). What people read (medians, phases) is put onto the
      // level of the parent in the sandwich's first job: a sandwich of several jobs would
      // otherwise carry the machine's drift between them.
      auto& [p, c] = r.sandwiches[{j.beside, j.commit}];
      const auto [parent, commit] = pair_up(p.ttfb_ms.empty() ? g : geomean(p.ttfb_ms));
      r.search.add_sandwich_runs(j.beside, j.commit, refs,
                                 std::vector<double>(o.runs.ttfb_ms.begin(), o.runs.ttfb_ms.begin() + static_cast<long>(n)));
      p.append(parent);
      c.append(commit);
    } else {
      if (r.reference_ms == 0.0) r.reference_ms = g;
      const auto [reference, commit] = pair_up(r.reference_ms);
      add(0, reference);
      add(j.commit, commit);
    }
    return 2 * n;
  };
  for (const auto& job : seed.jobs) r.seed_runs += static_cast<int>(feed(job));
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    const auto asked = next_round(r.search);
    const auto& recorded = rounds[i].requests;
    const bool same = asked.size() == recorded.size() &&
                      std::equal(asked.begin(), asked.end(), recorded.begin(),
                                 [](const Request& a, const Request& b) {
                                   return a.commit == b.commit && a.runs == b.runs && a.beside == b.beside && a.part == b.part;
                                 });
    if (!same)
      throw std::logic_error("bisection replay: round " + std::to_string(i + 1) + " recorded " + describe(recorded) +
                             " but the search asks for " + describe(asked));
    for (const auto& o : rounds[i].outcomes) {
      if (o.error) {
        const int failed = o.failed >= 0 ? o.failed : o.job.commit;
        r.search.mark_broken(failed);
        r.broken.emplace(failed, *o.error);
      } else {
        feed(o);
      }
    }
  }
  r.next = next_round(r.search);
  return r;
}

json::array commit_table(const Replayed& r, const std::vector<git::CommitInfo>& commits) {
  std::set<int> culprits;
  if (r.search.done()) {
    for (const auto& c : r.search.result().culprits) culprits.insert(c.commit);
  }
  json::array out;
  for (std::size_t i = 0; i < commits.size(); ++i) {
    const int k = static_cast<int>(i);
    const auto it = r.runs.find(k);
    const std::size_t n = it == r.runs.end() ? 0 : it->second.ttfb_ms.size();
    std::string state = n ? "measured" : "untested";
    if (r.broken.count(k)) state = "broken";
    if (culprits.count(k)) state = "culprit";
    out.push_back(json::object{{"index", k},
                               {"commit", commits[i].sha},
                               {"subject", commits[i].subject},
                               {"author", commits[i].author_name},
                               {"email", commits[i].author_email},
                               {"runs", n},
                               {"median_ms", n ? json_number(median(it->second.ttfb_ms)) : json::value(nullptr)},
                               {"state", state}});
  }
  return out;
}

json::object report(const Replayed& r, const std::vector<git::CommitInfo>& commits, double phase_alpha) {
  const SearchResult& s = r.search.result();
  json::object o;
  o["status"] = r.search.done() ? s.status : (r.search.ends_verified() ? "searching" : "verifying");
  o["message"] = s.message;
  o["total_effect_pct"] = r.search.ends_verified() || r.search.done() ? json_number(s.total_effect_pct) : json::value(nullptr);
  json::array culprits;
  double explained = 0.0;
  for (const auto& c : s.culprits) {
    culprits.push_back(culprit_json(r, c, commits, phase_alpha));
    explained += std::log1p(c.effect_pct / 100.0);
  }
  o["culprits"] = std::move(culprits);
  const double total = std::log1p(s.total_effect_pct / 100.0);
  o["explained_fraction"] = !s.culprits.empty() && total > 0.0 ? json_number(explained / total) : json::value(nullptr);
  const bool finished = r.search.done() && s.status != "broken" && s.status != "no_regression";
  o["total_ci_low_pct"] = finished ? json_number(s.total_ci_low_pct) : json::value(nullptr);
  o["total_ci_high_pct"] = finished ? json_number(s.total_ci_high_pct) : json::value(nullptr);
  o["ci_level"] = s.ci_level;
  o["remainder_pct"] = finished ? json_number(s.remainder_pct) : json::value(nullptr);
  o["remainder_ci_low_pct"] = finished ? json_number(s.remainder_ci_low_pct) : json::value(nullptr);
  o["remainder_ci_high_pct"] = finished ? json_number(s.remainder_ci_high_pct) : json::value(nullptr);
  json::array parts;
  for (const auto& p : s.parts) {
    parts.push_back(json::object{{"good_index", p.good},
                                 {"good", info(commits, p.good).sha},
                                 {"bad_index", p.bad},
                                 {"bad", info(commits, p.bad).sha},
                                 {"commits", p.bad - p.good},
                                 {"state", p.state},
                                 {"reason", p.reason},
                                 {"effect_pct", json_number(p.effect_pct)},
                                 {"ci_low_pct", json_number(p.ci_low_pct)},
                                 {"ci_high_pct", json_number(p.ci_high_pct)}});
  }
  o["parts"] = std::move(parts);
  json::array broken;
  for (const auto& [k, error] : r.broken) {
    const auto& ci = info(commits, k);
    broken.push_back(json::object{{"index", k}, {"commit", ci.sha}, {"subject", ci.subject}, {"author", ci.author_name},
                                  {"error", error}});
  }
  o["broken"] = std::move(broken);
  o["commits"] = commit_table(r, commits);
  o["runs"] = s.runs;
  o["measured_runs"] = s.runs - r.seed_runs;
  o["reused_runs"] = r.seed_runs;
  o["rounds"] = s.rounds;
  int sandwich_runs = 0;
  for (const auto& [pair, runs] : r.sandwiches)
    sandwich_runs += static_cast<int>(runs.first.ttfb_ms.size() + runs.second.ttfb_ms.size());
  o["sandwich_runs"] = sandwich_runs;
  o["part_runs"] = r.part_runs;
  o["reopened"] = s.reopened;
  o["reference_ms"] = r.reference_ms > 0.0 ? json::value(r.reference_ms) : json::value(nullptr);
  return o;
}

}  // namespace ttfb::bisect
