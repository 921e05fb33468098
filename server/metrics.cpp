#include "server/metrics.hpp"

#include <set>

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <span>
#include <sstream>
#include <utility>
#include <vector>

namespace ttfb {
namespace {

constexpr const char* kJobStates[] = {"queued", "running", "done", "failed", "cancelled"};
// Experiments without a verdict yet are "pending"; the rest use stats::to_string(Verdict).
constexpr const char* kExperimentVerdicts[] = {"pending", "regression", "improvement", "no_change", "inconclusive", "error"};

// Request latency from 1 ms to 10 s: submissions run git, everything else should be milliseconds.
const prometheus::Histogram::BucketBoundaries kRequestBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                              0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
// Job duration from 5 s to 4 h: a job is a block of runs of a training start-up, seconds to
// minutes each, and a retried job counts from its first claim.
const prometheus::Histogram::BucketBoundaries kJobBuckets{5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400};

// Sets one gauge per label value from `counts`, and to 0 the known values that `counts` lacks
// (a GROUP BY drops a state that has no rows left; its gauge must not keep the old number).
// Each series is set once, so a scrape never sees a transient 0.
void set_counts(prometheus::Family<prometheus::Gauge>& family, const char* label, std::span<const char* const> known,
                const std::vector<std::pair<std::string, long>>& counts) {
  for (const char* value : known) {
    bool present = std::any_of(counts.begin(), counts.end(), [&](const auto& c) { return c.first == value; });
    if (!present) family.Add({{label, value}}).Set(0);
  }
  for (const auto& [value, n] : counts) family.Add({{label, value}}).Set(static_cast<double>(n));
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("ttfb_http_requests_total")
                    .Help("HTTP requests answered, by route template, method and status code")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("ttfb_http_request_duration_seconds")
                   .Help("Time from a request's arrival to its answer, by route template")
                   .Register(*registry_)),
      jobs_(prometheus::BuildGauge().Name("ttfb_jobs").Help("Jobs by state").Register(*registry_)),
      workers_(prometheus::BuildGauge()
                   .Name("ttfb_workers_live")
                   .Help("Workers seen within the liveness window")
                   .Register(*registry_)),
      experiments_(prometheus::BuildGauge()
                       .Name("ttfb_experiments")
                       .Help("Experiments by verdict (pending: no verdict yet)")
                       .Register(*registry_)),
      leader_(prometheus::BuildGauge()
                  .Name("ttfb_scheduler_leader")
                  .Help("1 when this server process runs the scheduler (and refreshes the queue gauges), else 0")
                  .Register(*registry_)),
      verdicts_(prometheus::BuildCounter()
                    .Name("ttfb_verdicts_total")
                    .Help("Experiment verdicts reached by this server process")
                    .Register(*registry_)),
      runs_(prometheus::BuildCounter()
                .Name("ttfb_runs_total")
                .Help("Runs reported by workers and stored as samples by this server process "
                      "(warm-up runs included, resent duplicates not)")
                .Register(*registry_)),
      job_duration_(prometheus::BuildHistogram()
                        .Name("ttfb_job_duration_seconds")
                        .Help("Time from a job's first claim by a worker to its completion, for jobs completed "
                              "through this server process")
                        .Register(*registry_)),
      alerts_(prometheus::BuildCounter()
                  .Name("ttfb_alerts_total")
                  .Help("Alert delivery attempts by this server process, by channel and outcome "
                        "(delivered, retry, failed; unknown: found mid-delivery after a crash)")
                  .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("ttfb_build_info")
                      .Help("Always 1; the server's version in the version label")
                      .Register(*registry_)) {
  set_counts(jobs_, "state", kJobStates, {});
  set_counts(experiments_, "verdict", kExperimentVerdicts, {});
  workers_.Add({}).Set(0);
  leader_.Add({}).Set(0);
  for (const char* verdict : kExperimentVerdicts)
    if (std::string(verdict) != "pending") verdicts_.Add({{"verdict", verdict}});
  runs_.Add({});
  job_duration_.Add({}, kJobBuckets);
  for (const char* channel : {"webhook", "email"})
    for (const char* status : {"delivered", "retry", "failed", "unknown"}) alerts_.Add({{"channel", channel}, {"status", status}});
  build_info_.Add({{"version", kServerVersion}}).Set(1);
}

std::string Metrics::method_label(const std::string& method) {
  static const std::set<std::string> kKnown{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
  return kKnown.count(method) ? method : "OTHER";
}

void Metrics::observe_request(const std::string& route, const std::string& method, int status, double seconds) {
  // Labels come from a closed set: the route template, one of seven methods (a client's made-up
  // method is OTHER), a status code. A request cannot add a series.
  requests_.Add({{"route", route}, {"method", method_label(method)}, {"code", std::to_string(status)}}).Increment();
  latency_.Add({{"route", route}}, kRequestBuckets).Observe(seconds);
}

void Metrics::set_queue_counts(const QueueCounts& counts) {
  set_counts(jobs_, "state", kJobStates, counts.jobs_by_state);
  set_counts(experiments_, "verdict", kExperimentVerdicts, counts.experiments_by_verdict);
  workers_.Add({}).Set(static_cast<double>(counts.live_workers));
}

void Metrics::set_scheduler_leader(bool leader) { leader_.Add({}).Set(leader ? 1 : 0); }

void Metrics::count_verdict(const std::string& verdict) { verdicts_.Add({{"verdict", verdict}}).Increment(); }

void Metrics::count_runs(int accepted) {
  if (accepted > 0) runs_.Add({}).Increment(accepted);
}

void Metrics::observe_job_duration(double seconds) { job_duration_.Add({}, kJobBuckets).Observe(seconds); }

void Metrics::count_alert(const std::string& channel, const std::string& status) {
  alerts_.Add({{"channel", channel}, {"status", status}}).Increment();
}

std::string Metrics::serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace ttfb
