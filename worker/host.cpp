#include "worker/host.hpp"

#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace ttfb::worker {
namespace {

std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  // The CPUs this process may run on (a container's cpuset), not the machine's count.
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::thread::hardware_concurrency());
}

}  // namespace

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

HostFacts collect_host_facts(const std::string& worker_name) {
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
  f.cores = usable_cores();
  return f;
}

}  // namespace ttfb::worker
