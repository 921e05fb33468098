// Unit tests of the server's Prometheus metrics (server/metrics.hpp): every family that /metrics
// serves follows https://prometheus.io/docs/practices/naming/ (ttfb_ prefix, counters end in
// _total, time in _seconds, base units only, HELP and TYPE for each), the gauges say what the
// scheduler last counted, and every metric the Grafana dashboard (configs/grafana/ttfb-lab.json)
// queries exists with the labels it selects on.
#include "server/metrics.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ttfb {
namespace {
namespace json = boost::json;

// One family of the text exposition format, as a scraper reads it.
struct Family {
  std::string help;
  std::string type;                              // counter, gauge, histogram, summary, untyped
  std::set<std::string> labels;                  // label names over all its series
  std::vector<std::pair<std::string, double>> samples;  // (series line up to the value, value)
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Parses the text format: # HELP and # TYPE lines, then samples `name{labels} value`. A sample
// is filed under its family: its own name, or for histograms and summaries the name without
// _bucket, _sum or _count. A sample of no declared family is filed under "" (an error).
std::map<std::string, Family> parse_exposition(const std::string& text) {
  std::map<std::string, Family> families;
  std::istringstream in(text);
  std::string line;
  static const std::regex kComment(R"(# (HELP|TYPE) (\S+) ?(.*))");
  static const std::regex kSample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
  static const std::regex kLabel(R"(([a-zA-Z_][a-zA-Z0-9_]*)=\"(?:[^\"\\]|\\.)*\")");
  std::smatch m;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::regex_match(line, m, kComment)) {
      Family& f = families[m[2].str()];
      (m[1] == "HELP" ? f.help : f.type) = m[3].str();
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      families[""].samples.emplace_back(line, 0);
      continue;
    }
    const std::string name = m[1].str();
    std::string family = name;
    if (!families.count(name) || families[name].type.empty()) {
      family = "";
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (!ends_with(name, suffix)) continue;
        std::string base = name.substr(0, name.size() - std::string(suffix).size());
        if (families.count(base) && (families[base].type == "histogram" || families[base].type == "summary")) family = base;
      }
    }
    Family& f = families[family];
    const std::string labels = m[3].str();
    for (std::sregex_iterator it(labels.begin(), labels.end(), kLabel), end; it != end; ++it) f.labels.insert((*it)[1]);
    f.samples.emplace_back(line.substr(0, line.rfind(' ')), std::stod(m[4]));
  }
  return families;
}

// The naming conventions, one message per broken rule (empty: all kept).
std::vector<std::string> convention_violations(const std::map<std::string, Family>& families) {
  std::vector<std::string> bad;
  static const std::regex kName("^ttfb_[a-z0-9_]+$");
  // Non-base units, as whole words of the name: Prometheus wants seconds, bytes and ratios.
  static const std::set<std::string> kNonBaseUnits{"ms",      "milliseconds", "us",  "microseconds", "ns",
                                                   "nanoseconds", "minutes", "hours", "days",  "kb",
                                                   "kib",     "kilobytes",    "mb",  "megabytes",    "gb",
                                                   "gigabytes", "percent",    "pct"};
  static const std::regex kTime("duration|latency|time|wait|took|elapsed", std::regex::icase);
  for (const auto& [name, f] : families) {
    if (name.empty()) {
      for (const auto& s : f.samples) bad.push_back("sample of no declared family: " + s.first);
      continue;
    }
    const std::string who = name + " (" + (f.type.empty() ? "no type" : f.type) + "): ";
    if (!std::regex_match(name, kName)) bad.push_back(who + "name must match ^ttfb_[a-z0-9_]+$");
    if (f.help.empty()) bad.push_back(who + "no # HELP line (or an empty one)");
    if (f.type.empty()) bad.push_back(who + "no # TYPE line");
    if (f.samples.empty()) bad.push_back(who + "no samples");
    for (const char* unit : {"_ms", "_milliseconds", "_kb"})
      if (name.find(unit) != std::string::npos) bad.push_back(who + "contains " + unit + ": use base units (seconds, bytes)");
    std::istringstream words(name);
    for (std::string word; std::getline(words, word, '_');)
      if (kNonBaseUnits.count(word)) bad.push_back(who + "unit '" + word + "' is not a base unit (seconds, bytes, ratio)");
    const bool distribution = f.type == "histogram" || f.type == "summary";
    if (f.type == "counter" && !ends_with(name, "_total")) bad.push_back(who + "a counter's name must end in _total");
    if (f.type != "counter" && ends_with(name, "_total")) bad.push_back(who + "only counters end in _total");
    if (distribution && !ends_with(name, "_seconds") && !ends_with(name, "_bytes") && !ends_with(name, "_ratio"))
      bad.push_back(who + "a histogram or summary needs its unit as suffix (_seconds, _bytes, _ratio)");
    if (distribution && (std::regex_search(name, kTime) || std::regex_search(f.help, kTime)) && !ends_with(name, "_seconds"))
      bad.push_back(who + "a histogram or summary of time must be in seconds and end in _seconds");
    if (!distribution)
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (ends_with(name, suffix)) bad.push_back(who + "the suffix " + suffix + " is reserved for histograms and summaries");
    if (ends_with(name, "_info")) {
      if (f.type != "gauge") bad.push_back(who + "an _info metric is a gauge");
      for (const auto& s : f.samples)
        if (s.second != 1) bad.push_back(who + "an _info metric has the value 1");
    }
  }
  return bad;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

// A Metrics with something recorded on each family, as a server that has done some work.
Metrics busy_metrics() {
  Metrics m;
  m.observe_request("/api/v1/experiments/{id}", "GET", 200, 0.004);
  m.observe_request("/api/v1/experiments", "POST", 201, 1.2);
  m.observe_request("/api/v1/worker/claim", "POST", 500, 0.02);
  QueueCounts counts;
  counts.jobs_by_state = {{"queued", 3}, {"running", 2}, {"done", 40}};
  counts.experiments_by_verdict = {{"pending", 1}, {"regression", 2}, {"no_change", 7}};
  counts.live_workers = 2;
  m.set_queue_counts(counts);
  m.set_scheduler_leader(true);
  m.count_verdict("regression");
  m.count_runs(12);
  m.observe_job_duration(95.5);
  m.count_alert("webhook", "delivered");
  return m;
}

// Every family the server exports, with the labels of its series (le: histogram buckets).
const std::map<std::string, std::set<std::string>> kExpectedFamilies{
    {"ttfb_http_requests_total", {"route", "method", "code"}},
    {"ttfb_http_request_duration_seconds", {"route", "le"}},
    {"ttfb_jobs", {"state"}},
    {"ttfb_workers_live", {}},
    {"ttfb_experiments", {"verdict"}},
    {"ttfb_scheduler_leader", {}},
    {"ttfb_verdicts_total", {"verdict"}},
    {"ttfb_runs_total", {}},
    {"ttfb_job_duration_seconds", {"le"}},
    {"ttfb_alerts_total", {"channel", "status"}},
    {"ttfb_build_info", {"version"}},
};

TEST(MetricsConventions, EveryFamilyFollowsPrometheusNaming) {
  const std::string text = busy_metrics().serialize();
  const auto families = parse_exposition(text);
  EXPECT_EQ(convention_violations(families), std::vector<std::string>{}) << joined(convention_violations(families)) << text;
}

TEST(MetricsConventions, ExportsExactlyTheDocumentedFamilies) {
  const auto families = parse_exposition(busy_metrics().serialize());
  std::map<std::string, std::set<std::string>> got;
  for (const auto& [name, f] : families) got[name] = f.labels;
  EXPECT_EQ(got, kExpectedFamilies) << "a family was added, removed or relabelled: update kExpectedFamilies, the "
                                       "README's metrics paragraph and configs/grafana/ttfb-lab.json";
}

TEST(MetricsConventions, EveryFamilyIsThereBeforeAnythingHappens) {
  // Series that exist from the start let rate() see the first increment and dashboards show 0,
  // not "no data"; only the request families wait for their first request (their labels are the
  // route and code answered).
  const auto families = parse_exposition(Metrics().serialize());
  EXPECT_EQ(convention_violations(families), std::vector<std::string>{}) << joined(convention_violations(families));
  for (const auto& [name, labels] : kExpectedFamilies) {
    if (name.rfind("ttfb_http_", 0) == 0) continue;
    EXPECT_TRUE(families.count(name)) << name << " is missing from a fresh server's /metrics";
  }
}

TEST(MetricsConventions, TheCheckCatchesBrokenNames) {
  auto bad = [](const std::string& text) { return convention_violations(parse_exposition(text)); };
  EXPECT_EQ(bad("# HELP ttfb_ok_total fine\n# TYPE ttfb_ok_total counter\nttfb_ok_total 1\n"), std::vector<std::string>{});
  EXPECT_FALSE(bad("# HELP ttfb_claims claims\n# TYPE ttfb_claims counter\nttfb_claims 1\n").empty())
      << "a counter without _total must be refused";
  EXPECT_FALSE(bad("# HELP ttfb_jobs_total jobs\n# TYPE ttfb_jobs_total gauge\nttfb_jobs_total 1\n").empty())
      << "a gauge with _total must be refused";
  EXPECT_FALSE(bad("# HELP ttfb_claim_ms x\n# TYPE ttfb_claim_ms gauge\nttfb_claim_ms 1\n").empty());
  EXPECT_FALSE(bad("# HELP ttfb_rss_kb x\n# TYPE ttfb_rss_kb gauge\nttfb_rss_kb 1\n").empty());
  EXPECT_FALSE(bad("# HELP ttfb_wait_milliseconds x\n# TYPE ttfb_wait_milliseconds gauge\nttfb_wait_milliseconds 1\n").empty());
  EXPECT_FALSE(bad("# HELP ttfb_claim_duration time to claim\n# TYPE ttfb_claim_duration histogram\n"
                   "ttfb_claim_duration_bucket{le=\"+Inf\"} 1\nttfb_claim_duration_sum 1\nttfb_claim_duration_count 1\n")
                   .empty())
      << "a histogram of time without _seconds must be refused";
  EXPECT_FALSE(bad("# TYPE ttfb_up gauge\nttfb_up 1\n").empty()) << "no HELP";
  EXPECT_FALSE(bad("# HELP ttfb_up up\nttfb_up 1\n").empty()) << "no TYPE";
  EXPECT_FALSE(bad("# HELP http_up up\n# TYPE http_up gauge\nhttp_up 1\n").empty()) << "no ttfb_ prefix";
  EXPECT_FALSE(bad("# HELP ttfb_build_info v\n# TYPE ttfb_build_info gauge\nttfb_build_info{version=\"1\"} 2\n").empty());
}

TEST(Metrics, BuildInfoCarriesTheVersion) {
  const auto families = parse_exposition(Metrics().serialize());
  const auto& info = families.at("ttfb_build_info");
  ASSERT_EQ(info.samples.size(), 1u);
  EXPECT_EQ(info.samples[0].first, "ttfb_build_info{version=\"" + std::string(kServerVersion) + "\"}");
  EXPECT_EQ(info.samples[0].second, 1);
}

double sample(const std::map<std::string, Family>& families, const std::string& family, const std::string& series) {
  for (const auto& [s, v] : families.at(family).samples)
    if (s == series) return v;
  ADD_FAILURE() << "no series " << series << " in " << family;
  return -1;
}

TEST(Metrics, QueueGaugesDropToZeroWhenAStateEmpties) {
  Metrics m;
  QueueCounts busy;
  busy.jobs_by_state = {{"queued", 4}, {"running", 1}};
  busy.experiments_by_verdict = {{"pending", 2}};
  busy.live_workers = 3;
  m.set_queue_counts(busy);
  QueueCounts idle;  // GROUP BY returns no row for a state without jobs
  idle.jobs_by_state = {{"done", 5}};
  idle.experiments_by_verdict = {{"no_change", 2}};
  m.set_queue_counts(idle);
  const auto f = parse_exposition(m.serialize());
  EXPECT_EQ(sample(f, "ttfb_jobs", "ttfb_jobs{state=\"queued\"}"), 0);
  EXPECT_EQ(sample(f, "ttfb_jobs", "ttfb_jobs{state=\"running\"}"), 0);
  EXPECT_EQ(sample(f, "ttfb_jobs", "ttfb_jobs{state=\"done\"}"), 5);
  EXPECT_EQ(sample(f, "ttfb_experiments", "ttfb_experiments{verdict=\"pending\"}"), 0) << "the last pending one finished";
  EXPECT_EQ(sample(f, "ttfb_experiments", "ttfb_experiments{verdict=\"no_change\"}"), 2);
  EXPECT_EQ(sample(f, "ttfb_workers_live", "ttfb_workers_live"), 0);
}

TEST(Metrics, CountsRunsJobsAndLeadership) {
  Metrics m;
  m.count_runs(12);
  m.count_runs(0);  // a resend of duplicates only
  m.observe_job_duration(95.5);
  m.observe_job_duration(4000);
  m.set_scheduler_leader(true);
  const auto f = parse_exposition(m.serialize());
  EXPECT_EQ(sample(f, "ttfb_runs_total", "ttfb_runs_total"), 12);
  EXPECT_EQ(sample(f, "ttfb_job_duration_seconds", "ttfb_job_duration_seconds_count"), 2);
  EXPECT_EQ(sample(f, "ttfb_job_duration_seconds", "ttfb_job_duration_seconds_sum"), 4095.5);
  EXPECT_EQ(sample(f, "ttfb_job_duration_seconds", "ttfb_job_duration_seconds_bucket{le=\"120\"}"), 1);
  EXPECT_EQ(sample(f, "ttfb_scheduler_leader", "ttfb_scheduler_leader"), 1);
}

// The PromQL of the dashboard: every "expr" (panel targets) and every templating query.
void collect_queries(const json::value& v, const std::string& key, std::vector<std::string>& out) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.as_object()) collect_queries(x, std::string(k), out);
  } else if (v.is_array()) {
    for (const auto& x : v.as_array()) collect_queries(x, key, out);
  } else if (v.is_string() && (key == "expr" || key == "query" || key == "definition")) {
    out.emplace_back(v.as_string());
  }
}

json::value load_dashboard() {
  const std::string path = TTFB_LAB_SOURCE_DIR "/configs/grafana/ttfb-lab.json";
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  json::error_code ec;
  json::value v = json::parse(text.str(), ec);
  EXPECT_FALSE(ec) << path << ": " << ec.message();
  return v;
}

TEST(MetricsDashboard, IsAnImportableGrafanaDashboard) {
  const json::value d = load_dashboard();
  ASSERT_TRUE(d.is_object());
  const auto& o = d.as_object();
  EXPECT_EQ(o.at("uid"), "ttfb-lab");
  EXPECT_GE(o.at("schemaVersion").to_number<int>(), 36);
  bool has_input = false;
  for (const auto& in : o.at("__inputs").as_array())
    has_input |= in.as_object().at("name") == "DS_PROMETHEUS" && in.as_object().at("pluginId") == "prometheus";
  EXPECT_TRUE(has_input) << "the DS_PROMETHEUS input lets Grafana ask for the data source on import";
  std::set<long> ids;
  for (const auto& p : o.at("panels").as_array()) {
    const auto& panel = p.as_object();
    const std::string title(panel.at("title").as_string());
    EXPECT_TRUE(ids.insert(panel.at("id").to_number<long>()).second) << "duplicate panel id: " << title;
    if (panel.at("type") == "row") continue;
    EXPECT_EQ(panel.at("datasource").as_object().at("uid"), "${DS_PROMETHEUS}") << title;
    EXPECT_FALSE(panel.at("targets").as_array().empty()) << title;
  }
}

TEST(MetricsDashboard, QueriesOnlyMetricsAndLabelsTheServerExports) {
  const auto families = parse_exposition(busy_metrics().serialize());
  std::vector<std::string> queries;
  collect_queries(load_dashboard(), "", queries);
  ASSERT_GE(queries.size(), 10u);
  static const std::regex kMetric(R"(\bttfb_[a-z0-9_]+)");
  static const std::regex kSelector(R"((ttfb_[a-z0-9_]+)\{([^}]*)\})");
  static const std::regex kMatcher(R"(([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=))");
  static const std::regex kGrouping(R"(\b(?:by|without)\s*\(([^)]*)\))");
  static const std::regex kLabelName(R"([a-zA-Z_][a-zA-Z0-9_]*)");
  // Labels Prometheus adds to every scraped series.
  static const std::set<std::string> kTargetLabels{"job", "instance"};
  // A name as it appears in PromQL to its family: histograms are queried through their series.
  auto family_of = [&](std::string name) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!ends_with(name, suffix)) continue;
      std::string base = name.substr(0, name.size() - std::string(suffix).size());
      if (families.count(base) && families.at(base).type == "histogram") return base;
    }
    return name;
  };
  std::set<std::string> used;
  for (const auto& q : queries) {
    std::set<std::string> labels_here = kTargetLabels;
    for (std::sregex_iterator it(q.begin(), q.end(), kMetric), end; it != end; ++it) {
      const std::string family = family_of(it->str());
      used.insert(family);
      if (!families.count(family)) {
        ADD_FAILURE() << "the dashboard queries " << it->str() << ", which /metrics does not export: " << q;
        continue;
      }
      labels_here.insert(families.at(family).labels.begin(), families.at(family).labels.end());
    }
    for (std::sregex_iterator it(q.begin(), q.end(), kSelector), end; it != end; ++it) {
      const std::string family = family_of((*it)[1]);
      if (!families.count(family)) continue;
      std::set<std::string> allowed = kTargetLabels;
      allowed.insert(families.at(family).labels.begin(), families.at(family).labels.end());
      const std::string matchers = (*it)[2];
      for (std::sregex_iterator mt(matchers.begin(), matchers.end(), kMatcher); mt != end; ++mt)
        EXPECT_TRUE(allowed.count((*mt)[1])) << (*it)[1] << " has no label " << (*mt)[1] << ": " << q;
    }
    for (std::sregex_iterator it(q.begin(), q.end(), kGrouping), end; it != end; ++it) {
      const std::string names = (*it)[1];
      for (std::sregex_iterator lt(names.begin(), names.end(), kLabelName); lt != end; ++lt)
        EXPECT_TRUE(labels_here.count(lt->str())) << "no metric of the query has the label " << lt->str() << ": " << q;
    }
  }
  // The dashboard shows every family (ttfb_build_info in the version panel).
  for (const auto& [name, labels] : kExpectedFamilies) EXPECT_TRUE(used.count(name)) << name << " is on no panel";
}

}  // namespace
}  // namespace ttfb
