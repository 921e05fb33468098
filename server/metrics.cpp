#include "server/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace ttfb {

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
      verdicts_(prometheus::BuildCounter()
                    .Name("ttfb_verdicts_total")
                    .Help("Experiment verdicts reached by this server process")
                    .Register(*registry_)),
      alerts_(prometheus::BuildCounter()
                  .Name("ttfb_alerts_total")
                  .Help("Alert delivery attempts by this server process, by channel and outcome "
                        "(delivered, retry, failed; unknown: found mid-delivery after a crash)")
                  .Register(*registry_)) {
  for (const char* s : {"queued", "running", "done", "failed", "cancelled"}) jobs_.Add({{"state", s}}).Set(0);
  workers_.Add({}).Set(0);
  for (const char* channel : {"webhook", "email"})
    for (const char* status : {"delivered", "retry", "failed", "unknown"}) alerts_.Add({{"channel", channel}, {"status", status}});
}

void Metrics::observe_request(const std::string& route, const std::string& method, int status, double seconds) {
  requests_.Add({{"route", route}, {"method", method}, {"code", std::to_string(status)}}).Increment();
  // Buckets from 1 ms to 10 s: submissions run git, everything else should be milliseconds.
  static const prometheus::Histogram::BucketBoundaries kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                 0.1,   0.25,   0.5,   1.0,  2.5,   10.0};
  latency_.Add({{"route", route}}, kBuckets).Observe(seconds);
}

void Metrics::set_queue_counts(const QueueCounts& counts) {
  for (const char* s : {"queued", "running", "done", "failed", "cancelled"}) jobs_.Add({{"state", s}}).Set(0);
  for (const auto& [state, n] : counts.jobs_by_state) jobs_.Add({{"state", state}}).Set(static_cast<double>(n));
  for (const auto& [verdict, n] : counts.experiments_by_verdict)
    experiments_.Add({{"verdict", verdict}}).Set(static_cast<double>(n));
  workers_.Add({}).Set(static_cast<double>(counts.live_workers));
}

void Metrics::count_verdict(const std::string& verdict) { verdicts_.Add({{"verdict", verdict}}).Increment(); }

void Metrics::count_alert(const std::string& channel, const std::string& status) {
  alerts_.Add({{"channel", channel}, {"status", status}}).Increment();
}

std::string Metrics::serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace ttfb
