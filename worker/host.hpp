// Facts about the machine a worker runs on, sent with every claim so that samples can be told
// apart by hardware (and the server can prefer other hosts for confirmation reruns).
//
//   HostFacts facts = collect_host_facts("w1");   // host name, CPU model, kernel, cores
#pragma once

#include <string>
#include <string_view>

#include "worker/protocol.hpp"

namespace ttfb::worker {

HostFacts collect_host_facts(const std::string& worker_name);

// The CPU model named in the text of /proc/cpuinfo ("model name", else "Hardware", "cpu model",
// "Processor"), or "unknown". Exposed for tests.
std::string cpu_model_from_cpuinfo(std::string_view cpuinfo);

}  // namespace ttfb::worker
