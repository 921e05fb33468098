#include "worker/sandbox.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "common/child.hpp"
#include "common/process.hpp"
#include "common/text.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kScrubbedPath = "/usr/local/bin:/usr/bin:/bin";
// After the leader exits, leftovers of its group are killed; their output is drained this long.
constexpr auto kDrainAfterExit = 500ms;
// In the child, fds are first duplicated to numbers >= this one, so that moving them onto 0..4
// cannot clobber one another.
constexpr int kHighFd = 5;
// SIGXCPU arrives at the soft CPU limit; the hard limit (SIGKILL) this much later.
constexpr rlim_t kCpuHardMarginSeconds = 2;
// The fd of the control socket in bwrap and in init (after 0, 1, 2 and the probe's 3).
constexpr int kControlFdInChild = 4;
// bwrap takes a few ms to get ready; this long and it is stuck (e.g. a hung NFS mount in /usr).
constexpr auto kSandboxSetupTimeout = std::chrono::seconds(30);

// The last `max` bytes of a stream.
class TailBuffer {
 public:
  explicit TailBuffer(std::size_t max) : max_(max) {}
  void append(const char* data, std::size_t n) {
    text_.append(data, n);
    if (text_.size() > 2 * max_) text_.erase(0, text_.size() - max_);
  }
  std::string take() {
    if (text_.size() > max_) text_.erase(0, text_.size() - max_);
    return std::move(text_);
  }

 private:
  std::size_t max_;
  std::string text_;
};


bool has_exited(pid_t pid) {
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
  return info.si_pid == pid;
}

void write_str(int fd, const char* s) noexcept {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void child_fail(const char* what, const char* arg, int err) noexcept {
  write_str(2, "ttfb-lab sandbox: ");
  write_str(2, what);
  if (arg != nullptr) {
    write_str(2, " ");
    write_str(2, arg);
  }
  write_str(2, ": ");
  write_str(2, strerrordesc_np(err));
  write_str(2, "\n");
  ::_exit(127);
}

// Everything the child needs, built before fork (the child may only make async-signal-safe calls).
struct ChildPlan {
  std::vector<std::string> candidates;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  const char* cwd = nullptr;
  const char* argv0 = nullptr;
  ResourceLimits limits;
  std::optional<RunAsUser> run_as;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int probe_fd = -1;
  int control_fd = -1;  // the sandbox: init's end of the control socket, fd 4 in the child
  std::vector<int> cgroup_fds;  // cgroup.procs of the run's groups: joined first
  bool pin = false;             // sched_setaffinity to `cpus`
  cpu_set_t cpus{};
};

void set_limit(int resource, rlim_t soft, rlim_t hard) noexcept {
  struct rlimit current {};
  if (::getrlimit(resource, &current) != 0) return;
  // Without privileges a hard limit cannot be raised: never ask for more than there is.
  if (current.rlim_max != RLIM_INFINITY) {
    hard = std::min(hard, current.rlim_max);
    soft = std::min(soft, current.rlim_max);
  }
  soft = std::min(soft, hard);
  struct rlimit next {soft, hard};
  ::setrlimit(resource, &next);
}

[[noreturn]] void run_child(const ChildPlan& plan) noexcept {
  if (const int err = join_cgroups(plan.cgroup_fds.data(), plan.cgroup_fds.size()); err != 0) {
    child_fail("cannot join the run's cgroup", nullptr, err);
  }
  if (plan.pin && ::sched_setaffinity(0, sizeof plan.cpus, &plan.cpus) != 0) {
    child_fail("cannot pin the run to the worker's --cpus", nullptr, errno);
  }
  ttfb::start_child_process();

  // Copy the fds to >= 5 first, then onto 0..4: no target can be a source still needed.
  const int sources[5] = {plan.stdin_fd, plan.stdout_fd, plan.stderr_fd, plan.probe_fd, plan.control_fd};
  int high[5] = {-1, -1, -1, -1, -1};
  for (int i = 0; i < 5; ++i) {
    if (sources[i] >= 0) high[i] = ::fcntl(sources[i], F_DUPFD, kHighFd);
  }
  for (int i = 0; i < 5; ++i) {
    if (high[i] >= 0) ::dup2(high[i], i);
  }
  if (sources[3] < 0) ::close(3);
  close_fds_from(sources[4] >= 0 ? 5 : (sources[3] >= 0 ? 4 : 3));

  if (plan.limits.memory_mb > 0) {
    const rlim_t bytes = static_cast<rlim_t>(plan.limits.memory_mb) * 1024 * 1024;
    set_limit(RLIMIT_AS, bytes, bytes);
  }
  if (plan.limits.cpu_seconds > 0) {
    set_limit(RLIMIT_CPU, plan.limits.cpu_seconds, plan.limits.cpu_seconds + kCpuHardMarginSeconds);
  }
  if (plan.limits.nofile > 0) set_limit(RLIMIT_NOFILE, plan.limits.nofile, plan.limits.nofile);
  if (plan.limits.nproc > 0) set_limit(RLIMIT_NPROC, plan.limits.nproc, plan.limits.nproc);
  set_limit(RLIMIT_CORE, 0, 0);

  if (plan.run_as) {
    const gid_t gid = plan.run_as->gid;
    if (::setgroups(1, &gid) != 0) child_fail("cannot drop supplementary groups for", plan.run_as->name.c_str(), errno);
    if (::setgid(gid) != 0) child_fail("cannot switch group for", plan.run_as->name.c_str(), errno);
    if (::setuid(plan.run_as->uid) != 0) child_fail("cannot switch to user", plan.run_as->name.c_str(), errno);
  }
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);  // no setuid binary can give the workload root back
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);         // after setuid, which clears it: the worker died -> so does this

  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) child_fail("cannot change directory to", plan.cwd, errno);

  int last_error = ENOENT;
  for (const auto& path : plan.candidates) {
    ::execve(path.c_str(), plan.argv.data(), const_cast<char**>(plan.envp.data()));
    if (errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
      last_error = errno;
      break;
    }
    if (errno == EACCES) last_error = EACCES;
  }
  if (last_error == ENOENT) {
    write_str(2, "ttfb-lab sandbox: command not found: ");
    write_str(2, plan.argv0);
    write_str(2, " (PATH is the scrubbed one: /usr/local/bin:/usr/bin:/bin unless the workflow sets it)\n");
    ::_exit(127);
  }
  child_fail("cannot execute", plan.argv0, last_error);
}

// The per-run HOME and TMPDIR, owned by the run-as user and removed afterwards.
class ScratchDir {
 public:
  ScratchDir(const std::string& root, const std::optional<RunAsUser>& run_as) {
    std::string base = root;
    if (base.empty()) {
      const char* t = std::getenv("TMPDIR");
      base = t != nullptr && *t != '\0' ? t : "/tmp";
    }
    fs::create_directories(base);
    std::string pattern = base + "/run-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "cannot create a scratch directory in " + base);
    }
    path_ = pattern;
    home_ = path_ + "/home";
    tmp_ = path_ + "/tmp";
    fs::create_directory(home_);
    fs::create_directory(tmp_);
    if (run_as) {
      for (const auto& p : {path_, home_, tmp_}) {
        if (::chown(p.c_str(), run_as->uid, run_as->gid) != 0) {
          throw std::system_error(errno, std::generic_category(), "cannot give " + p + " to user " + run_as->name);
        }
      }
    }
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // best effort: a leftover scratch dir costs disk, not correctness
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& home() const { return home_; }
  const std::string& tmp() const { return tmp_; }

 private:
  std::string path_;
  std::string home_;
  std::string tmp_;
};

std::string describe_status(int exit_status, int sig) {
  if (sig != 0) {
    std::string s = "was killed by signal " + std::to_string(sig);
    if (const char* name = sigabbrev_np(sig)) s += std::string(" (SIG") + name + ")";
    if (sig == SIGXCPU) s += ": it reached its CPU time limit";
    return s;
  }
  return "exited with status " + std::to_string(exit_status);
}

std::string seconds_text(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// `name` in the worker's own PATH (bwrap), or "" when it is not there.
std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  for (const auto& candidate : exec_candidates(name, path != nullptr ? path : "")) {
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string bwrap_binary(const SandboxOptions& options) {
  static std::once_flag once;
  static std::string found;
  if (!options.bwrap.empty()) return find_in_path(options.bwrap);
  std::call_once(once, [] { found = find_in_path("bwrap"); });
  return found;
}

// cwd as the workload sees it: the same place under kSandboxWorktree.
std::string sandbox_cwd(const WorkloadSpec& spec, const std::string& root) {
  if (root.empty()) return kSandboxHome;
  if (spec.cwd.empty()) return kSandboxWorktree;
  const fs::path rel = fs::path(spec.cwd).lexically_normal().lexically_relative(fs::path(root).lexically_normal());
  if (rel.empty() || *rel.begin() == "..") {
    throw std::invalid_argument("the workload's directory " + spec.cwd + " is not inside its sandbox's worktree " + root);
  }
  return (fs::path(kSandboxWorktree) / rel).lexically_normal().string();
}

// bwrap's command line: namespaces, the file system described in sandbox.hpp, then init and the
// workload.
std::vector<std::string> bwrap_argv(const WorkloadSpec& spec, const ResourceLimits& l, const std::string& bwrap,
                                    const std::string& init) {
  const SandboxOptions& o = spec.sandbox;
  const bool root = ::geteuid() == 0;
  std::vector<std::string> a{bwrap,
                             "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                             "--hostname", "ttfb-sandbox", "--die-with-parent", "--new-session", "--as-pid-1"};
  if (!o.host_network) a.push_back("--unshare-net");
  if (root) {
    // No user namespace: bwrap, as root, can reach directories only root can enter. Init keeps
    // just what it needs to hand the workload to its user; the workload keeps nothing.
    a.insert(a.end(), {"--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_CHOWN"});
  } else {
    a.insert(a.end(), {"--unshare-user", "--disable-userns"});
  }
  a.insert(a.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* dir : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st {};
    if (::lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      const fs::path target = fs::read_symlink(dir, ec);
      if (!ec) a.insert(a.end(), {"--symlink", target.string(), dir});
    } else if (S_ISDIR(st.st_mode)) {
      a.insert(a.end(), {"--ro-bind", dir, dir});
    }
  }
  const auto mb = [](std::uint64_t n) { return std::to_string(n * 1024 * 1024); };
  a.insert(a.end(), {"--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev",
                     "--perms", "1777", "--size", mb(o.shm_mb), "--tmpfs", "/dev/shm",
                     "--perms", "1777", "--size", mb(o.tmp_mb), "--tmpfs", "/tmp",
                     "--perms", "0755", "--dir", "/ttfb",
                     "--perms", "0700", "--size", mb(o.home_mb), "--tmpfs", kSandboxHome});
  const std::string root_dir = o.worktree.empty() ? spec.cwd : o.worktree;
  if (!root_dir.empty()) {
    a.insert(a.end(), {o.worktree_writable ? "--bind" : "--ro-bind", fs::absolute(root_dir).string(), kSandboxWorktree});
  }
  a.insert(a.end(), {"--ro-bind", init, kSandboxInit, "--chdir", sandbox_cwd(spec, root_dir), "--", kSandboxInit,
                     "--control-fd", std::to_string(kControlFdInChild)});
  if (spec.probe == ProbeMode::fd) a.insert(a.end(), {"--probe-fd", std::to_string(kProbeFdInChild)});
  if (spec.run_as) {
    a.insert(a.end(), {"--uid", std::to_string(spec.run_as->uid), "--gid", std::to_string(spec.run_as->gid), "--home",
                       kSandboxHome});
  }
  if (l.memory_mb > 0) a.insert(a.end(), {"--as", std::to_string(l.memory_mb * 1024 * 1024)});
  if (l.cpu_seconds > 0) a.insert(a.end(), {"--cpu", std::to_string(l.cpu_seconds)});
  if (l.nofile > 0) a.insert(a.end(), {"--nofile", std::to_string(l.nofile)});
  if (l.nproc > 0) a.insert(a.end(), {"--nproc", std::to_string(l.nproc)});
  a.push_back("--");
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

// One message on the control socket (SOCK_SEQPACKET: one send, one message).
void send_control(int fd, const char* message) {
  if (fd >= 0) ::send(fd, message, std::strlen(message), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

std::size_t kill_adopted_processes() {
  std::size_t killed = 0;
  const pid_t self = ::getpid();
  // Killing an adopted process orphans its own children, which are adopted next: repeat.
  for (int round = 0; round < 20; ++round) {
    std::size_t found = 0;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      if (!std::getline(stat, line)) continue;
      const auto paren = line.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream rest(line.substr(paren + 1));
      char state = 0;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (ppid != self) continue;
      ++found;
      if (state != 'Z') ::kill(static_cast<pid_t>(std::stol(name)), SIGKILL);
    }
    while (::waitpid(-1, nullptr, WNOHANG) > 0) ++killed;
    if (found == 0) break;
    std::this_thread::sleep_for(10ms);
  }
  return killed;
}

std::string_view to_string(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::first_batch: return "first_batch";
    case RunOutcome::completed: return "completed";
    case RunOutcome::workload_failed: return "workload_failed";
    case RunOutcome::workload_timeout: return "workload_timeout";
    case RunOutcome::no_first_batch: return "no_first_batch";
    case RunOutcome::cancelled: return "cancelled";
  }
  return "unknown";
}

RunAsUser lookup_user(const std::string& name) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  const int rc = ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) throw std::runtime_error("unknown user '" + name + "'");
  return RunAsUser{pw.pw_uid, pw.pw_gid, name};
}

std::string probe_identity(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "";
  return std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
         std::to_string(static_cast<unsigned long long>(st.st_ino));
}

std::map<std::string, std::string> workload_environment(const WorkloadSpec& spec, const std::string& home,
                                                        const std::string& tmpdir, int probe_fd) {
  std::map<std::string, std::string> env{
      {"PATH", kScrubbedPath}, {"HOME", home}, {"LANG", "C.UTF-8"}, {"TMPDIR", tmpdir}};
  for (const auto& [k, v] : spec.env) env[k] = v;
  for (const auto& k : spec.env_unset) env.erase(k);
  // Ours, not the workflow's: a stale value would make the probe helpers write to a wrong fd.
  env.erase("TTFB_PROBE_FD");
  env.erase("TTFB_PROBE_ID");
  if (probe_fd >= 0) env["TTFB_PROBE_FD"] = std::to_string(probe_fd);
  return env;
}

std::string default_sandbox_init() {
  if (const char* e = std::getenv("TTFB_LAB_SANDBOX_INIT"); e != nullptr && *e != '\0') return e;
  std::error_code ec;
  const fs::path beside = fs::read_symlink("/proc/self/exe", ec).parent_path() / "ttfb-lab-sandbox-init";
  if (!ec && ::access(beside.c_str(), X_OK) == 0) return beside.string();
#ifdef TTFB_LAB_SANDBOX_INIT_BUILD_PATH
  return TTFB_LAB_SANDBOX_INIT_BUILD_PATH;
#else
  return beside.string();
#endif
}

std::string check_sandbox(const SandboxOptions& options, const std::optional<RunAsUser>& run_as) {
  if (bwrap_binary(options).empty()) {
    return "bubblewrap (bwrap) is not installed or not in PATH: install it (apt-get install bubblewrap), or run "
           "with --no-sandbox on a machine where diffs are trusted";
  }
  const std::string init = options.init.empty() ? default_sandbox_init() : options.init;
  if (::access(init.c_str(), X_OK) != 0) {
    return "the sandbox's launcher " + init + " is missing (it is built beside ttfb-lab-worker); set TTFB_LAB_SANDBOX_INIT";
  }
  WorkloadSpec spec;
  spec.argv = {"/bin/true"};
  spec.probe = ProbeMode::none;
  spec.timeout = std::chrono::seconds(30);
  spec.run_as = run_as;
  spec.sandbox = options;
  RunResult r;
  try {
    r = run_workload(spec);
  } catch (const std::exception& e) {
    return std::string("cannot start a sandbox: ") + e.what();
  }
  if (r.outcome == RunOutcome::completed) return "";
  std::string why = last_line(r.output_tail);
  return "bubblewrap cannot make a sandbox here (" + (why.empty() ? r.message : why) +
         "): it needs user namespaces (sysctl kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0) "
         "unless the worker runs as root; or run with --no-sandbox on a machine where diffs are trusted";
}

RunResult run_workload(const WorkloadSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty()) throw std::invalid_argument("the workload command is empty");
  std::optional<StdoutMatcher> matcher;
  if (spec.probe == ProbeMode::stdout_regex) matcher.emplace(spec.first_batch_regex);  // may throw regex_error

  const bool sandboxed = spec.sandbox.enabled;
  // The run's cgroup, when the host has one: memory and processes of the whole run.
  const Cgroups* cgroups = spec.sandbox.cgroups.get();
  ResourceLimits limits = spec.limits;
  if (limits.nproc == 0) limits.nproc = kDefaultNproc;
  std::unique_ptr<RunCgroup> cgroup;
  if (cgroups != nullptr) {
    cgroup = cgroups->make_run(CgroupLimits{limits.memory_mb, limits.nproc, limits.cpus});
    if (cgroups->limits("memory")) limits.memory_mb = 0;  // the cgroup's limit, not the address space's
    // pids.max counts this run alone; RLIMIT_NPROC would count every process of the user, other
    // workers' runs as the same user included.
    if (cgroups->limits("pids")) limits.nproc = 0;
  }
  const std::uint64_t process_limit = spec.limits.nproc > 0 ? spec.limits.nproc : kDefaultNproc;
  std::optional<ScratchDir> scratch;
  if (!sandboxed) scratch.emplace(spec.scratch_root, spec.run_as);
  ChildPlan plan;
  const int probe_number = spec.probe == ProbeMode::fd ? kProbeFdInChild : -1;
  auto env = sandboxed ? workload_environment(spec, kSandboxHome, "/tmp", probe_number)
                       : workload_environment(spec, scratch->home(), scratch->tmp(), probe_number);
  std::vector<std::string> argv = spec.argv;
  if (sandboxed) {
    const std::string bwrap = bwrap_binary(spec.sandbox);
    if (bwrap.empty()) throw std::system_error(ENOENT, std::generic_category(), "bwrap (bubblewrap) is not in PATH");
    argv = bwrap_argv(spec, limits, bwrap, spec.sandbox.init.empty() ? default_sandbox_init() : spec.sandbox.init);
    plan.candidates = {bwrap};
    // Limits, user and directory are init's business, inside.
  } else {
    plan.candidates = exec_candidates(spec.argv[0], env.at("PATH"));
    plan.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
    plan.limits = limits;
    plan.run_as = spec.run_as;
  }
  if (cgroup) plan.cgroup_fds = cgroup->procs_fds();
  if (!spec.sandbox.cpus.empty()) {
    plan.pin = true;
    CPU_ZERO(&plan.cpus);
    for (int c : spec.sandbox.cpus) {
      if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &plan.cpus);
    }
  }
  for (const auto& a : argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  plan.argv0 = spec.argv[0].c_str();

  // Parent ends are non-blocking and close-on-exec; child ends close-on-exec too (the child
  // dup2s them into place), so a concurrent fork elsewhere cannot inherit them.
  int out_read = -1, out_write = -1, err_read = -1, err_write = -1, probe_read = -1, probe_write = -1;
  int devnull = -1, control = -1, control_child = -1;
  auto close_all = [&] {
    for (int* fd : {&out_read, &out_write, &err_read, &err_write, &probe_read, &probe_write, &devnull, &control,
                    &control_child}) {
      ttfb::close_fd(*fd);
    }
  };
  auto make_pipe = [&](int& r, int& w) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      const int e = errno;
      close_all();
      throw std::system_error(e, std::generic_category(), "pipe2");
    }
    r = fds[0];
    w = fds[1];
  };
  if (spec.probe == ProbeMode::stdout_regex) {
    struct termios raw {};
    ::cfmakeraw(&raw);  // no "\n" -> "\r\n", no echo: the bytes the workload wrote
    if (::openpty(&out_read, &out_write, nullptr, &raw, nullptr) == 0) {
      ::fcntl(out_read, F_SETFD, FD_CLOEXEC);
      ::fcntl(out_write, F_SETFD, FD_CLOEXEC);
    } else {
      make_pipe(out_read, out_write);  // no pty available: lines may arrive late (buffered)
    }
  } else {
    make_pipe(out_read, out_write);
  }
  make_pipe(err_read, err_write);
  if (spec.probe == ProbeMode::fd) make_pipe(probe_read, probe_write);
  if (sandboxed) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
      const int e = errno;
      close_all();
      throw std::system_error(e, std::generic_category(), "socketpair");
    }
    control = sv[0];
    control_child = sv[1];
  }
  devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  plan.stdin_fd = devnull;
  plan.stdout_fd = out_write;
  plan.stderr_fd = err_write;
  plan.probe_fd = probe_write;
  plan.control_fd = control_child;
  // The probe pipe's identity, the same in every process that holds it: a helper writes only to
  // a descriptor that is this pipe, so a process started by spawn, forkserver or a launcher that
  // closes descriptors, where the number may be another file, stays silent.
  if (probe_write >= 0) env["TTFB_PROBE_ID"] = probe_identity(probe_write);
  for (const auto& [k, v] : env) plan.env_storage.push_back(k + "=" + v);
  for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
  plan.envp.push_back(nullptr);

  // Without the sandbox TTFB counts from here, just before fork/exec; in it, from "go".
  const auto forked_at = MonoClock::now();
  auto start = forked_at;
  // CPU time of the run's group when TTFB's clock starts (bwrap's and init's set-up are not the
  // workload's): the workload's CPU time to its first batch is the group's then, minus this.
  std::optional<double> cpu_at_start = cgroup ? cgroup->cpu_ms() : std::nullopt;
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    close_all();
    throw std::system_error(e, std::generic_category(), "fork");
  }
  if (pid == 0) run_child(plan);

  ::setpgid(pid, pid);  // also here: a kill right after fork must reach the group
  ttfb::close_fd(out_write);
  ttfb::close_fd(err_write);
  ttfb::close_fd(probe_write);
  ttfb::close_fd(devnull);
  ttfb::close_fd(control_child);
  for (int fd : {out_read, err_read, probe_read, control}) {
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }

  ProbeParser parser;
  TailBuffer tail(spec.tail_bytes);
  RunResult result;
  int pidfd = ttfb::pidfd_open(pid);
  bool ready = !sandboxed;  // the sandbox said "ready" and was told "go"
  bool exited = false;
  bool first_batch = false;
  bool timed_out = false;
  bool setup_timed_out = false;
  bool cancelled = false;
  bool stopping = false;  // SIGTERM sent
  bool killed = false;    // SIGKILL sent
  // The workload's own wait status and usage, as init reported them (sandbox only).
  std::optional<int> leader_status;
  double leader_cpu_ms = 0;
  long leader_rss_kb = 0;
  auto deadline = sandboxed ? forked_at + kSandboxSetupTimeout : start + spec.timeout;
  MonoClock::time_point kill_deadline{};
  MonoClock::time_point drain_deadline{};
  char buf[65536];

  auto kill_all = [&] {
    send_control(control, "kill");  // every process of the sandbox
    ::kill(-pid, SIGKILL);          // bwrap itself (and, without a sandbox, the group)
  };
  auto stop_group = [&] {
    if (stopping || killed) return;
    if (!ready) {  // nothing of the workload runs yet
      kill_all();
      killed = true;
      return;
    }
    if (sandboxed) {
      send_control(control, "term");
    } else {
      ::kill(-pid, SIGTERM);
    }
    stopping = true;
    kill_deadline = MonoClock::now() + spec.kill_grace;
  };
  auto on_first_batch = [&] {
    first_batch = true;
    if (cgroup && cpu_at_start) {
      if (const auto now = cgroup->cpu_ms()) result.cpu_to_first_batch_ms = std::max(0.0, *now - *cpu_at_start);
    }
    if (spec.stop_after_first_batch) {
      result.stopped_after_first_batch = true;
      stop_group();
    }
  };
  auto read_control = [&] {
    char message[256];
    while (control >= 0) {
      const ssize_t n = ::recv(control, message, sizeof message - 1, MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {
        ttfb::close_fd(control);
        return;
      }
      message[n] = '\0';
      if (!ready && std::strcmp(message, "ready") == 0) {
        start = MonoClock::now();  // TTFB counts from here: just before the workload's fork/exec
        if (cgroup) cpu_at_start = cgroup->cpu_ms();
        send_control(control, "go");
        ready = true;
        result.setup_ms = to_ms(start - forked_at);
        deadline = start + spec.timeout;
      } else if (std::strncmp(message, "exit ", 5) == 0) {
        int status = 0;
        long long utime_us = 0, stime_us = 0;
        long rss = 0;
        if (std::sscanf(message + 5, "%d %lld %lld %ld", &status, &utime_us, &stime_us, &rss) == 4) {
          leader_status = status;
          leader_cpu_ms = static_cast<double>(utime_us + stime_us) / 1000.0;
          leader_rss_kb = rss;
          exited = true;
        }
      }
    }
  };

  while (true) {
    if (!exited && (pidfd < 0 || stopping || killed) && has_exited(pid)) exited = true;
    if (exited && drain_deadline == MonoClock::time_point{}) {
      read_control();         // the exit message may have arrived with bwrap's end
      ::kill(-pid, SIGKILL);  // what the leader left behind goes with it
      if (cgroup) cgroup->signal_all();  // and what left its group (setsid)
      drain_deadline = MonoClock::now() + kDrainAfterExit;
    }
    if (exited && ((out_read < 0 && err_read < 0 && probe_read < 0) || MonoClock::now() >= drain_deadline)) break;

    const auto now = MonoClock::now();
    if (!exited && !stopping && !killed && now >= deadline) {
      if (!ready) {
        setup_timed_out = true;
      } else {
        timed_out = !first_batch;  // after first_batch the measurement stands; the rest is cut short
      }
      stop_group();
    }
    if (!exited && stopping && !killed && now >= kill_deadline) {
      kill_all();
      killed = true;
    }

    std::vector<pollfd> fds;
    auto add = [&](int fd) {
      if (fd >= 0) fds.push_back(pollfd{fd, POLLIN, 0});
    };
    add(probe_read);  // first: its timestamps matter most
    add(control);
    add(out_read);
    add(err_read);
    if (!exited) add(pidfd);
    if (!exited && !cancelled) add(spec.cancel_fd);

    MonoClock::time_point wake;
    if (exited) {
      wake = drain_deadline;
    } else if (stopping && !killed) {
      wake = kill_deadline;
    } else if (killed) {
      wake = MonoClock::now() + 20ms;
    } else {
      wake = deadline;
    }
    long long wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - MonoClock::now()).count() + 1;
    wait_ms = std::clamp<long long>(wait_ms, 0, 60'000);
    if (pidfd < 0 && !exited) wait_ms = std::min<long long>(wait_ms, 20);

    if (::poll(fds.data(), fds.size(), static_cast<int>(wait_ms)) < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      kill_all();
      ::waitpid(pid, nullptr, 0);
      close_all();
      if (pidfd >= 0) ::close(pidfd);
      throw std::system_error(e, std::generic_category(), "poll");
    }
    const auto read_at = MonoClock::now();  // one stamp for everything this wake-up delivered
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == control) {
        read_control();
      } else if (p.fd == probe_read || p.fd == out_read || p.fd == err_read) {
        ssize_t r = ::read(p.fd, buf, sizeof buf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {  // EOF; EIO on a pty whose other side is closed
          ttfb::close_fd(p.fd == probe_read ? probe_read : (p.fd == out_read ? out_read : err_read));
          continue;
        }
        const std::string_view bytes(buf, static_cast<std::size_t>(r));
        if (p.fd == probe_read) {
          const bool before = parser.first_batch_seen();
          parser.feed(bytes, read_at);
          if (!before && parser.first_batch_seen()) on_first_batch();
        } else {
          tail.append(buf, bytes.size());
          if (p.fd == out_read && matcher && !matcher->first_batch_seen()) {
            matcher->feed(bytes, read_at);
            if (matcher->first_batch_seen()) on_first_batch();
          }
        }
      } else if (p.fd == pidfd) {
        exited = exited || has_exited(pid);
      } else if (p.fd == spec.cancel_fd) {
        cancelled = true;
        stop_group();
      }
    }
  }
  const auto end = MonoClock::now();
  close_all();
  if (pidfd >= 0) ::close(pidfd);

  int status = 0;
  struct rusage usage {};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  if (cgroup) {
    cgroup->kill_all();  // nothing of the run outlives it
    result.cgroup = cgroup->usage();
  }
  // A last line without a newline still counts, stamped when its bytes arrived.
  if (!parser.first_batch_seen()) {
    parser.finish();
    if (parser.first_batch_seen()) first_batch = true;
  }
  if (matcher && !matcher->first_batch_seen()) {
    matcher->finish();
    if (matcher->first_batch_seen()) first_batch = true;
  }

  result.wall_ms = to_ms(end - start);
  if (leader_status) {
    status = *leader_status;  // the workload's, not bwrap's (which would turn a signal into 128 + n)
    result.cpu_ms = leader_cpu_ms;
    result.max_rss_kb = leader_rss_kb;
  } else {
    result.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000.0 +
                    (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000.0;
    result.max_rss_kb = usage.ru_maxrss;
  }
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    result.exit_status = WEXITSTATUS(status);
  }
  result.ignored_probe_lines = parser.ignored_lines();
  result.output_tail = tail.take();

  const std::string status_text = describe_status(result.exit_status, result.signal);
  if (cancelled) {
    result.outcome = RunOutcome::cancelled;
    result.message = "the run was stopped by the worker";
  } else if (!ready || setup_timed_out) {
    // bwrap failed (or hung) before the workload existed: its words are in the output.
    result.outcome = RunOutcome::workload_failed;
    result.message = setup_timed_out ? "the sandbox did not get ready within " + seconds_text(kSandboxSetupTimeout)
                                     : "the sandbox could not start (bwrap " + status_text + ")";
    if (const auto line = last_line(result.output_tail); !line.empty()) result.message += ": " + line;
  } else if (first_batch) {
    result.outcome = RunOutcome::first_batch;
    if (matcher) {
      result.ttfb_ms = to_ms(matcher->first_batch_at() - start);
    } else if (auto timings = compute_timings(start, parser.events())) {
      result.ttfb_ms = timings->ttfb_ms;
      result.phases = std::move(timings->phases);
    }
    result.message = "first_batch after " + std::to_string(result.ttfb_ms) + " ms";
  } else if (timed_out) {
    result.outcome = RunOutcome::workload_timeout;
    result.message = spec.probe == ProbeMode::none
                         ? "the command did not finish within " + seconds_text(spec.timeout) + " and was killed"
                         : "the workload did not reach first_batch within " + seconds_text(spec.timeout) +
                               " and was killed";
  } else if (spec.probe == ProbeMode::none) {
    result.outcome = result.exit_status == 0 ? RunOutcome::completed : RunOutcome::workload_failed;
    result.message = "the command " + status_text;
  } else if (result.exit_status == 0) {
    result.outcome = RunOutcome::no_first_batch;
    result.message = spec.probe == ProbeMode::fd
                         ? "the workload exited with status 0 without writing first_batch to the fd in TTFB_PROBE_FD"
                         : "the workload exited with status 0 and no line of its stdout matched first_batch_regex '" +
                               spec.first_batch_regex + "'";
  } else {
    result.outcome = RunOutcome::workload_failed;
    result.message = "the workload " + status_text + " before first_batch";
  }
  if (result.outcome != RunOutcome::first_batch && result.outcome != RunOutcome::completed &&
      result.outcome != RunOutcome::cancelled) {
    if (result.cgroup.oom_kills > 0) {
      result.message += "; the kernel killed " + std::to_string(result.cgroup.oom_kills) +
                        " of its processes at the run's memory limit of " + std::to_string(spec.limits.memory_mb) +
                        " MiB (all its processes together; [limits] memory_mb)";
    }
    if (result.cgroup.forks_refused > 0) {
      result.message += "; " + std::to_string(result.cgroup.forks_refused) + " forks were refused at its limit of " +
                        std::to_string(process_limit) + " processes ([limits] nproc)";
    }
  }
  return result;
}

}  // namespace ttfb::worker
