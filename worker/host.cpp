#include "worker/host.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace ttfb::worker {
namespace {

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

int usable_cores() {
  const auto cpus = usable_cpus();
  return cpus.empty() ? static_cast<int>(std::thread::hardware_concurrency()) : static_cast<int>(cpus.size());
}

}  // namespace

std::vector<int> usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  // The CPUs this process may run on (a container's cpuset), not the machine's count.
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

std::vector<int> parse_cpu_list(std::string_view text, const std::vector<int>& allowed) {
  const std::string whole(text);
  auto bad = [&](const std::string& why) -> std::invalid_argument {
    return std::invalid_argument("--cpus '" + whole + "': " + why + " (expected a list like 1 or 0,2 or 2-3)");
  };
  auto number = [&](std::string_view s) {
    int v = -1;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v < 0 || v >= CPU_SETSIZE) {
      throw bad("'" + std::string(s) + "' is not a CPU number");
    }
    return v;
  };
  std::set<int> cpus;
  std::size_t pos = 0;
  while (true) {
    const auto comma = text.find(',', pos);
    const std::string_view part = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    const auto dash = part.find('-');
    const int lo = number(part.substr(0, dash));
    const int hi = dash == std::string_view::npos ? lo : number(part.substr(dash + 1));
    if (hi < lo) throw bad("the range " + std::string(part) + " runs backwards");
    for (int c = lo; c <= hi; ++c) cpus.insert(c);
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  for (int c : cpus) {
    if (!allowed.empty() && !std::binary_search(allowed.begin(), allowed.end(), c)) {
      std::string list;
      for (int a : allowed) list += (list.empty() ? "" : ",") + std::to_string(a);
      throw bad("CPU " + std::to_string(c) + " is not one this worker may use (" + list + ")");
    }
  }
  return {cpus.begin(), cpus.end()};
}

std::optional<double> steal_ms_from_stat(std::string_view stat, const std::vector<int>& cpus, long ticks_per_second) {
  if (ticks_per_second <= 0) return std::nullopt;
  double ticks = 0;
  bool any = false;
  std::size_t pos = 0;
  while (pos < stat.size()) {
    auto nl = stat.find('\n', pos);
    if (nl == std::string_view::npos) nl = stat.size();
    const std::string line(stat.substr(pos, nl - pos));
    pos = nl + 1;
    if (line.rfind("cpu", 0) != 0) continue;
    std::istringstream in(line);
    std::string name;
    in >> name;
    const bool total = name == "cpu";
    if (cpus.empty() != total) continue;  // the total line for all CPUs, else the listed CPUs' lines
    if (!total) {
      const std::string digits = name.substr(3);
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
      if (std::find(cpus.begin(), cpus.end(), std::stoi(digits)) == cpus.end()) continue;
    }
    // user nice system idle iowait irq softirq steal ...
    unsigned long long v[8] = {};
    int n = 0;
    while (n < 8 && in >> v[n]) ++n;
    if (n < 8) return std::nullopt;  // a kernel without the steal column
    ticks += static_cast<double>(v[7]);
    any = true;
  }
  if (!any) return std::nullopt;
  return ticks * 1000.0 / static_cast<double>(ticks_per_second);
}

std::optional<double> steal_ms(const std::vector<int>& cpus) {
  std::ifstream in("/proc/stat");
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return steal_ms_from_stat(text.str(), cpus, ::sysconf(_SC_CLK_TCK));
}

std::string cpu_model_from_cpuinfo(std::string_view cpuinfo) {
  for (const char* wanted : {"model name", "Hardware", "cpu model", "Processor"}) {
    std::size_t pos = 0;
    while (pos < cpuinfo.size()) {
      auto nl = cpuinfo.find('\n', pos);
      if (nl == std::string_view::npos) nl = cpuinfo.size();
      const std::string_view line = cpuinfo.substr(pos, nl - pos);
      pos = nl + 1;
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || trim(line.substr(0, colon)) != wanted) continue;
      const auto value = trim(line.substr(colon + 1));
      if (!value.empty()) return std::string(value);
    }
  }
  return "unknown";
}

HostFacts collect_host_facts(const std::string& worker_name, const std::vector<int>& pinned) {
  HostFacts f;
  f.name = worker_name;
  char host[256] = {0};
  f.host = ::gethostname(host, sizeof host - 1) == 0 ? host : "unknown";
  std::ifstream in("/proc/cpuinfo");
  std::stringstream text;
  text << in.rdbuf();
  f.cpu_model = cpu_model_from_cpuinfo(text.str());
  struct utsname u {};
  f.kernel = ::uname(&u) == 0 ? u.release : "unknown";
  f.cores = pinned.empty() ? usable_cores() : static_cast<int>(pinned.size());
  return f;
}

}  // namespace ttfb::worker
