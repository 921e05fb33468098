#include "worker/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>
#include <thread>

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// cpuacct (v1 only) limits nothing: its group is where a run's CPU time is counted while it runs
// (v2 counts it in every group's cpu.stat).
const std::vector<std::string> kWanted = {"memory", "pids", "cpu", "cpuacct"};
constexpr const char* kPrefix = "ttfb-lab-";
constexpr std::uint64_t kCpuPeriodUs = 100'000;
constexpr auto kEmptyWait = 2s;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}

// The blank-separated words of a cgroup file (cgroup.controllers, cgroup.subtree_control).
std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// mountinfo escapes blanks and backslashes as \ooo.
std::string unescape_mount(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])) != 0) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes `value` to a cgroup file; returns 0 or errno (cgroup files answer write() with it).
int write_file(const fs::path& p, const std::string& value) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, value.data(), value.size());
  const int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

void write_or_throw(const fs::path& p, const std::string& value) {
  if (const int err = write_file(p, value); err != 0) {
    throw std::system_error(err, std::generic_category(), "cannot write " + value + " to " + p.string());
  }
}

// "key value" lines (memory.events, pids.events, memory.oom_control).
std::uint64_t keyed_value(const fs::path& p, const std::string& key) {
  std::istringstream in(read_text(p));
  std::string k;
  std::uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

std::uint64_t number_in(const fs::path& p) {
  std::uint64_t v = 0;
  std::ifstream in(p);
  in >> v;
  return v;
}

std::vector<pid_t> procs_of(const fs::path& dir) {
  std::vector<pid_t> pids;
  std::ifstream in(dir / "cgroup.procs");
  long pid = 0;
  while (in >> pid) pids.push_back(static_cast<pid_t>(pid));
  return pids;
}

// Kills everything in `dir` and below, then removes the directories, deepest first.
bool kill_and_remove(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dirs{dir};
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    return a.string().size() > b.string().size();
  });
  const auto deadline = std::chrono::steady_clock::now() + kEmptyWait;
  bool all = true;
  for (const auto& d : dirs) {
    while (true) {
      for (pid_t pid : procs_of(d)) ::kill(pid, SIGKILL);
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline) {
        all = false;
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
  }
  return all;
}

struct Mount {
  int version = 0;
  std::string root;        // the mount's root inside the hierarchy
  std::string point;       // where it is mounted
  std::vector<std::string> controllers;  // v1: from the super options
};

std::vector<Mount> cgroup_mounts() {
  std::vector<Mount> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    const auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const auto head = split(line.substr(0, dash), ' ');
    const auto tail = split(line.substr(dash + 3), ' ');
    if (head.size() < 5 || tail.size() < 3) continue;
    Mount m;
    m.root = unescape_mount(head[3]);
    m.point = unescape_mount(head[4]);
    if (tail[0] == "cgroup2") {
      m.version = 2;
    } else if (tail[0] == "cgroup") {
      m.version = 1;
      m.controllers = split(tail[2], ',');
    } else {
      continue;
    }
    mounts.push_back(std::move(m));
  }
  return mounts;
}

// The directory of the worker's cgroup in a mount, or "" when the mount does not show it.
std::string own_dir(const Mount& m, const std::string& cgroup_path) {
  const fs::path root = fs::path(m.root).lexically_normal();
  const fs::path rel = fs::path(cgroup_path).lexically_normal().lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") return "";
  return (fs::path(m.point) / rel).lexically_normal().string();
}

std::string sanitize(const std::string& name) {
  std::string out;
  for (char c : name.substr(0, 40)) out.push_back(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' ? c : '_');
  return out.empty() ? "worker" : out;
}

// Groups that workers which no longer run left behind: ttfb-lab-<pid>-... with <pid> gone.
void sweep_stale(const fs::path& parent) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0 || !entry.is_directory(ec)) continue;
    const std::string rest = name.substr(std::strlen(kPrefix));
    const auto dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::stol(rest.substr(0, dash));
    if (pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    kill_and_remove(entry.path());
  }
}

// cgroup v2: the controllers `wanted` enabled for the children of `dir`. A group with processes
// cannot have them unless it is the root; when the worker is alone in it, it moves into a leaf.
std::string enable_v2(const fs::path& dir, const std::vector<std::string>& wanted, const std::string& leaf) {
  auto enable = [&]() -> int {
    const auto on = words(read_text(dir / "cgroup.subtree_control"));
    for (const auto& c : wanted) {
      if (contains(on, c)) continue;
      if (const int err = write_file(dir / "cgroup.subtree_control", "+" + c); err != 0) return err;
    }
    return 0;
  };
  int err = enable();
  if (err == EBUSY) {
    const auto procs = procs_of(dir);
    if (procs.size() != 1 || procs[0] != ::getpid()) {
      return "the worker's cgroup " + dir.string() +
             " holds other processes too, and cgroup v2 gives no limits to groups below one with processes: start "
             "the worker in a cgroup of its own (e.g. systemd-run --scope -p Delegate=yes ttfb-lab-worker ...)";
    }
    std::error_code ec;
    fs::create_directory(dir / leaf, ec);
    if (const int e = write_file(dir / leaf / "cgroup.procs", std::to_string(::getpid())); e != 0) {
      return "cannot move the worker into " + (dir / leaf).string() + ": " + std::strerror(e);
    }
    err = enable();
  }
  if (err != 0) return "cannot enable the controllers in " + (dir / "cgroup.subtree_control").string() + ": " + std::strerror(err);
  return "";
}

void write_limits(const Cgroups::Hierarchy& h, const fs::path& dir, const CgroupLimits& limits) {
  for (const auto& c : h.controllers) {
    if (c == "memory" && limits.memory_mb > 0) {
      const std::string bytes = std::to_string(limits.memory_mb * 1024 * 1024);
      if (h.version == 2) {
        write_or_throw(dir / "memory.max", bytes);
        if (fs::exists(dir / "memory.swap.max")) write_or_throw(dir / "memory.swap.max", "0");
      } else {
        write_or_throw(dir / "memory.limit_in_bytes", bytes);
        // Memory plus swap at the same number: a run cannot swap its way past the limit.
        if (fs::exists(dir / "memory.memsw.limit_in_bytes")) write_or_throw(dir / "memory.memsw.limit_in_bytes", bytes);
      }
    } else if (c == "pids" && limits.pids > 0) {
      write_or_throw(dir / "pids.max", std::to_string(limits.pids));
    } else if (c == "cpu" && limits.cpus > 0) {
      const auto quota = static_cast<std::uint64_t>(std::llround(limits.cpus * static_cast<double>(kCpuPeriodUs)));
      if (h.version == 2) {
        write_or_throw(dir / "cpu.max", std::to_string(std::max<std::uint64_t>(quota, 1000)) + " " + std::to_string(kCpuPeriodUs));
      } else {
        write_or_throw(dir / "cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
        write_or_throw(dir / "cpu.cfs_quota_us", std::to_string(std::max<std::uint64_t>(quota, 1000)));
      }
    }
  }
}

}  // namespace

int join_cgroups(const int* procs_fds, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    while (::write(procs_fds[i], "0", 1) < 0) {
      if (errno != EINTR) return errno;
    }
  }
  return 0;
}

std::shared_ptr<Cgroups> Cgroups::detect(const std::string& name, std::string* report) {
  std::map<int, std::pair<std::vector<std::string>, std::string>> own;  // hierarchy id -> controllers, path
  std::string v2_path;
  bool have_v2_path = false;
  {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
      const auto a = line.find(':');
      const auto b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      const std::string controllers = line.substr(a + 1, b - a - 1);
      const std::string path = line.substr(b + 1);
      if (line.substr(0, a) == "0" && controllers.empty()) {
        v2_path = path;
        have_v2_path = true;
      } else {
        own[std::stoi(line.substr(0, a))] = {split(controllers, ','), path};
      }
    }
  }
  const std::string group = kPrefix + std::to_string(::getpid()) + "-" + sanitize(name);
  std::shared_ptr<Cgroups> found(new Cgroups());
  std::vector<std::string> problems;
  std::vector<std::string> left = kWanted;
  const auto mounts = cgroup_mounts();

  // cgroup v2 first: the controllers its hierarchy offers to the worker's group.
  for (const auto& m : mounts) {
    if (m.version != 2 || !have_v2_path) continue;
    const std::string dir = own_dir(m, v2_path);
    if (dir.empty()) continue;
    const auto offered = words(read_text(fs::path(dir) / "cgroup.controllers"));
    std::vector<std::string> use;
    for (const auto& c : left) {
      if (contains(offered, c)) use.push_back(c);
    }
    if (use.empty()) break;
    sweep_stale(dir);
    if (const auto why = enable_v2(dir, use, group + "-self"); !why.empty()) {
      problems.push_back(why);
      break;
    }
    const fs::path base = fs::path(dir) / group;
    std::error_code ec;
    fs::create_directory(base, ec);
    if (ec) {
      problems.push_back("cannot make " + base.string() + ": " + ec.message());
      break;
    }
    if (const auto why = enable_v2(base, use, ""); !why.empty()) {
      problems.push_back(why);
      kill_and_remove(base);
      break;
    }
    found->hierarchies_.push_back(Hierarchy{2, base.string(), use});
    for (const auto& c : use) left.erase(std::find(left.begin(), left.end(), c));
    break;
  }
  // cgroup v1 for the rest.
  for (const auto& m : mounts) {
    if (m.version != 1) continue;
    std::vector<std::string> use;
    for (const auto& c : left) {
      if (contains(m.controllers, c)) use.push_back(c);
    }
    if (use.empty()) continue;
    std::string path;
    for (const auto& [id, entry] : own) {
      if (contains(entry.first, use.front())) path = entry.second;
    }
    const std::string dir = path.empty() ? "" : own_dir(m, path);
    if (dir.empty()) continue;
    sweep_stale(dir);
    const fs::path base = fs::path(dir) / group;
    std::error_code ec;
    fs::create_directory(base, ec);
    if (ec) {
      problems.push_back("cannot make " + base.string() + ": " + ec.message());
      continue;
    }
    found->hierarchies_.push_back(Hierarchy{1, base.string(), use});
    for (const auto& c : use) left.erase(std::find(left.begin(), left.end(), c));
  }

  // A trial run: a child joins the groups the way workloads will.
  if (!found->hierarchies_.empty()) {
    std::string why;
    try {
      auto trial = found->make_run(CgroupLimits{64, 16, 0});
      const pid_t child = ::fork();
      if (child == 0) ::_exit(join_cgroups(trial->procs_fds().data(), trial->procs_fds().size()) == 0 ? 0 : 1);
      int status = 0;
      if (child < 0 || ::waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        why = "a process cannot join the worker's cgroups";
      }
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (!why.empty()) {
      problems.push_back(why);
      found.reset();  // ~Cgroups removes what was made
    }
  }
  if (found && found->hierarchies_.empty()) found.reset();
  if (report != nullptr) {
    std::string r;
    if (found) {
      for (const auto& h : found->hierarchies_) {
        std::string cs;
        for (const auto& c : h.controllers) cs += (cs.empty() ? "" : ", ") + c;
        r += (r.empty() ? "" : "; ") + cs + " (cgroup v" + std::to_string(h.version) + ") under " + h.base;
      }
      if (!left.empty()) {
        std::string cs;
        for (const auto& c : left) cs += (cs.empty() ? "" : ", ") + c;
        r += "; not offered: " + cs;
      }
    } else {
      r = "none: the host offers the worker no cgroup it may manage (only rlimits bound runs)";
    }
    for (const auto& p : problems) r += "; " + p;
    *report = r;
  }
  return found;
}

Cgroups::~Cgroups() {
  for (const auto& h : hierarchies_) kill_and_remove(h.base);
}

bool Cgroups::limits(const std::string& controller) const {
  return std::any_of(hierarchies_.begin(), hierarchies_.end(),
                     [&](const Hierarchy& h) { return contains(h.controllers, controller); });
}

std::unique_ptr<RunCgroup> Cgroups::make_run(const CgroupLimits& limits) const {
  std::unique_ptr<RunCgroup> run(new RunCgroup());
  const std::string leaf = "run-" + std::to_string(next_run_.fetch_add(1));
  for (const auto& h : hierarchies_) {
    const fs::path dir = fs::path(h.base) / leaf;
    kill_and_remove(dir);  // a leftover of the same name (the worker was killed mid-run)
    if (::mkdir(dir.c_str(), 0755) != 0) {
      throw std::system_error(errno, std::generic_category(), "cannot make the run's cgroup " + dir.string());
    }
    run->dirs_.push_back(dir.string());
    Hierarchy mine = h;
    mine.base = dir.string();
    run->hierarchies_.push_back(mine);
    write_limits(h, dir, limits);
    const int fd = ::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot open " + (dir / "cgroup.procs").string());
    run->procs_fds_.push_back(fd);
  }
  return run;
}

RunCgroup::~RunCgroup() {
  for (int fd : procs_fds_) ::close(fd);
  for (const auto& d : dirs_) kill_and_remove(d);
}

void RunCgroup::signal_all() const {
  for (const auto& h : hierarchies_) {
    if (h.version == 2 && write_file(fs::path(h.base) / "cgroup.kill", "1") == 0) continue;
    for (pid_t pid : procs_of(h.base)) ::kill(pid, SIGKILL);
  }
}

bool RunCgroup::kill_all() const {
  const auto deadline = std::chrono::steady_clock::now() + kEmptyWait;
  while (true) {
    bool empty = true;
    for (const auto& d : dirs_) empty = empty && procs_of(d).empty();
    if (empty) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    signal_all();
    std::this_thread::sleep_for(2ms);
  }
}

CgroupUsage RunCgroup::usage() const {
  CgroupUsage u;
  for (const auto& h : hierarchies_) {
    const fs::path d = h.base;
    for (const auto& c : h.controllers) {
      if (c == "memory") {
        u.peak_memory_bytes = number_in(d / (h.version == 2 ? "memory.peak" : "memory.max_usage_in_bytes"));
        u.oom_kills = keyed_value(d / (h.version == 2 ? "memory.events" : "memory.oom_control"), "oom_kill");
      } else if (c == "pids") {
        u.forks_refused = keyed_value(d / "pids.events", "max");
      }
    }
  }
  return u;
}

std::optional<double> RunCgroup::cpu_ms() const {
  for (const auto& h : hierarchies_) {
    const fs::path d = h.base;
    if (h.version == 2) {
      std::ifstream in(d / "cpu.stat");
      std::string key;
      std::uint64_t value = 0;
      while (in >> key >> value) {
        if (key == "usage_usec") return static_cast<double>(value) / 1000.0;
      }
    } else if (contains(h.controllers, "cpuacct")) {
      std::ifstream in(d / "cpuacct.usage");
      std::uint64_t ns = 0;
      if (in >> ns) return static_cast<double>(ns) / 1e6;
    }
  }
  return std::nullopt;
}

}  // namespace ttfb::worker
