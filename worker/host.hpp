// Facts about the machine a worker runs on, sent with every claim so that samples can be told
// apart by hardware (and the server can prefer other hosts for confirmation reruns).
//
//   HostFacts facts = collect_host_facts("w1");   // host name, CPU model, kernel, cores
//   std::vector<int> cpus = parse_cpu_list("2-3");  // --cpus: the CPUs workloads are pinned to
//   auto before = steal_ms(cpus); /* run */ auto after = steal_ms(cpus);  // steal during the run
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "worker/protocol.hpp"

namespace ttfb::worker {

// `cores` is the number of CPUs workloads run on: `pinned` when given (--cpus), else the CPUs
// this process may use.
HostFacts collect_host_facts(const std::string& worker_name, const std::vector<int>& pinned = {});

// The CPUs this process may run on (its affinity: a container's cpuset, a taskset), ascending.
std::vector<int> usable_cpus();

// A CPU list as the kernel writes them (cpuset.cpus, taskset -c): "3", "0,2", "0-3,6". Returns
// the CPUs ascending, without repeats. Throws std::invalid_argument saying what is wrong: not a
// list, a range backwards, a CPU this process may not use (`allowed`, when not empty).
std::vector<int> parse_cpu_list(std::string_view text, const std::vector<int>& allowed = {});

// Steal time of the given CPUs so far (all CPUs when empty), in ms: the time the hypervisor gave
// their virtual CPUs to something else, the 8th number of their lines of /proc/stat. The
// difference of two readings is the steal during a run. nullopt when the kernel reports none (no
// such column, or /proc/stat unreadable).
std::optional<double> steal_ms(const std::vector<int>& cpus = {});
// The same from the text of /proc/stat, with clock ticks of `ticks_per_second`. Exposed for tests.
std::optional<double> steal_ms_from_stat(std::string_view stat, const std::vector<int>& cpus, long ticks_per_second);

// The CPU model named in the text of /proc/cpuinfo ("model name", else "Hardware", "cpu model",
// "Processor"), or "unknown". Exposed for tests.
std::string cpu_model_from_cpuinfo(std::string_view cpuinfo);

}  // namespace ttfb::worker
