// Prometheus metrics of the server (prometheus-cpp), served on /metrics in the text format.
// Request counters and latency are recorded per route template (never per raw path, so label
// cardinality stays bounded); queue gauges are refreshed from PostgreSQL by the scheduler so
// they are right across server replicas. Alert outcomes are counted by the process that
// delivered them (ttfb_alerts_total{channel,status}).
#pragma once

#include "server/store/experiments.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace ttfb {

class Metrics {
 public:
  Metrics();
  void observe_request(const std::string& route, const std::string& method, int status, double seconds);
  void set_queue_counts(const QueueCounts& counts);
  void count_verdict(const std::string& verdict);
  // One alert delivery outcome: channel webhook|email, status delivered|retry|failed|unknown.
  void count_alert(const std::string& channel, const std::string& status);
  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Gauge>& experiments_;
  prometheus::Family<prometheus::Counter>& verdicts_;
  prometheus::Family<prometheus::Counter>& alerts_;
};

}  // namespace ttfb
