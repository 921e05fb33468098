// Prometheus metrics of the server (prometheus-cpp), served on /metrics in the text format.
// Request counters and latency are recorded per route template (never per raw path, so label
// cardinality stays bounded); queue gauges are refreshed from PostgreSQL by the scheduler so
// they are right across server replicas (only the replica with ttfb_scheduler_leader = 1
// refreshes them: aggregate them with max, not sum). Alert outcomes, verdicts, runs and job
// durations are counted by the process that saw them: sum those across replicas.
//
// Names follow https://prometheus.io/docs/practices/naming/: `ttfb_` prefix, counters end in
// `_total`, durations are in seconds and end in `_seconds`. Every family gets its series at
// construction (zero), so /metrics lists all of them from the start, rate() sees the first
// increment, and tests/unit/server/metrics_test.cpp checks each one against the conventions.
//
//   ttfb::Metrics metrics;
//   metrics.observe_request("/api/v1/experiments/{id}", "GET", 200, 0.004);
//   metrics.count_runs(12);
//   std::string text = metrics.serialize();  // what GET /metrics answers
#pragma once

#include "server/store/experiments.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "common/version.hpp"

namespace ttfb {

// The server's version as ttfb_build_info{version} reports it: project(VERSION) in CMakeLists.txt.
inline constexpr const char* kServerVersion = kVersion;

class Metrics {
 public:
  Metrics();
  void observe_request(const std::string& route, const std::string& method, int status, double seconds);
  void set_queue_counts(const QueueCounts& counts);
  // Whether this process holds the scheduler's advisory lock (and so refreshes the queue gauges).
  void set_scheduler_leader(bool leader);
  void count_verdict(const std::string& verdict);
  // Runs reported by workers and stored as samples (add_samples' accepted count).
  void count_runs(int accepted);
  // A job completed: time from its first claim to its completion.
  void observe_job_duration(double seconds);
  // One alert delivery outcome: channel webhook|email, status delivered|retry|failed|unknown.
  void count_alert(const std::string& channel, const std::string& status);
  std::string serialize() const;
  // The method as a label: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, or OTHER.
  static std::string method_label(const std::string& method);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Gauge>& experiments_;
  prometheus::Family<prometheus::Gauge>& leader_;
  prometheus::Family<prometheus::Counter>& verdicts_;
  prometheus::Family<prometheus::Counter>& runs_;
  prometheus::Family<prometheus::Histogram>& job_duration_;
  prometheus::Family<prometheus::Counter>& alerts_;
  prometheus::Family<prometheus::Gauge>& build_info_;
};

}  // namespace ttfb
