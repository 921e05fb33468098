#include "server/bisect/replay.hpp"

#include "server/stats/comparison.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace ttfb::bisect {
namespace {
namespace json = boost::json;

json::value num(double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); }

double median(std::vector<double> xs) {
  if (xs.empty()) return std::nan("");
  std::sort(xs.begin(), xs.end());
  const std::size_t n = xs.size();
  return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2.0;
}

std::string describe(const std::vector<Request>& rs) {
  std::string out;
  for (const auto& r : rs) out += (out.empty() ? "" : ", ") + std::to_string(r.commit) + "x" + std::to_string(r.runs);
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
                 {"effect_pct", num(c.effect_pct)},
                 {"ci_low_pct", num(c.ci_low_pct)},
                 {"ci_high_pct", num(c.ci_high_pct)},
                 {"ci_level", 1.0 - phase_alpha},  // the interval's confidence: 1 - the design's alpha
                 {"p_value", num(c.p_value)},
                 {"unsure", c.unsure},
                 {"phase", nullptr},
                 {"phase_delta_ms", nullptr},
                 {"phase_summary", ""}};
  // Broken commits between the parent and the culprit: the step is in one of them or in it.
  json::array between;
  for (int k = c.parent + 1; k < c.commit; ++k) between.emplace_back(info(commits, k).sha);
  o["broken_between"] = std::move(between);
  const auto p = r.runs.find(c.parent);
  const auto q = r.runs.find(c.commit);
  if (p != r.runs.end() && q != r.runs.end()) {
    o["parent_runs"] = p->second.ttfb_ms.size();
    o["runs"] = q->second.ttfb_ms.size();
    o["parent_median_ms"] = num(median(p->second.ttfb_ms));
    o["median_ms"] = num(median(q->second.ttfb_ms));
    const stats::PhaseAttribution a =
        stats::attribute_phases(p->second.ttfb_ms, q->second.ttfb_ms, p->second.phases, q->second.phases, phase_alpha);
    o["phase_summary"] = a.summary;
    const stats::PhaseEffect* top = nullptr;
    for (const auto& e : a.phases) {
      if (e.significant && (!top || e.delta_ms > top->delta_ms)) top = &e;
    }
    if (top) {
      o["phase"] = top->name;
      o["phase_delta_ms"] = num(top->delta_ms);
      o["phase_share_of_effect"] = num(top->share_of_effect);
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
  std::map<int, int> by_commit;
  for (const auto& r : requests) by_commit[r.commit] = std::max(by_commit[r.commit], r.runs);
  std::vector<Request> out;
  for (const auto& [commit, runs] : by_commit) out.push_back(Request{commit, runs});
  return out;
}

Replayed replay(int commits, const SearchOptions& options, const Seed& seed, const std::vector<Round>& rounds) {
  Replayed r{Search(commits, options), {}, {}, {}, 0};
  auto add = [&](int commit, const CommitRuns& runs) {
    if (runs.ttfb_ms.empty()) return;
    r.search.add_runs(commit, runs.ttfb_ms);
    r.runs[commit].append(runs);
  };
  add(0, seed.good);
  add(commits - 1, seed.bad);
  r.seed_runs = static_cast<int>(seed.good.ttfb_ms.size() + seed.bad.ttfb_ms.size());
  for (std::size_t i = 0; i < rounds.size(); ++i) {
    const auto asked = next_round(r.search);
    const auto& recorded = rounds[i].requests;
    const bool same = asked.size() == recorded.size() &&
                      std::equal(asked.begin(), asked.end(), recorded.begin(),
                                 [](const Request& a, const Request& b) { return a.commit == b.commit && a.runs == b.runs; });
    if (!same)
      throw std::logic_error("bisection replay: round " + std::to_string(i + 1) + " recorded " + describe(recorded) +
                             " but the search asks for " + describe(asked));
    for (const auto& o : rounds[i].outcomes) {
      if (o.error) {
        r.search.mark_broken(o.commit);
        r.broken.emplace(o.commit, *o.error);
      } else {
        add(o.commit, o.runs);
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
                               {"median_ms", n ? num(median(it->second.ttfb_ms)) : json::value(nullptr)},
                               {"state", state}});
  }
  return out;
}

json::object report(const Replayed& r, const std::vector<git::CommitInfo>& commits, double phase_alpha) {
  const SearchResult& s = r.search.result();
  json::object o;
  o["status"] = r.search.done() ? s.status : (r.search.ends_verified() ? "searching" : "verifying");
  o["message"] = s.message;
  o["total_effect_pct"] = r.search.ends_verified() || r.search.done() ? num(s.total_effect_pct) : json::value(nullptr);
  json::array culprits;
  double explained = 0.0;
  for (const auto& c : s.culprits) {
    culprits.push_back(culprit_json(r, c, commits, phase_alpha));
    explained += std::log1p(c.effect_pct / 100.0);
  }
  o["culprits"] = std::move(culprits);
  const double total = std::log1p(s.total_effect_pct / 100.0);
  o["explained_fraction"] = !s.culprits.empty() && total > 0.0 ? num(explained / total) : json::value(nullptr);
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
  return o;
}

}  // namespace ttfb::bisect
