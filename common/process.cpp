// run_process: fork/exec with pipes, a poll loop that feeds stdin and drains stdout/stderr into
// bounded buffers, and a process group that is terminated as a whole on timeout or cancel.
//
// The child gets its own process group (setpgid) so that a timeout also stops what it started
// (a shell's children, a build's compilers). The leader is not reaped until the rest of its group
// has been killed: while it is a zombie its pid, which is the group id, cannot be reused.
#include "common/process.hpp"

#include "common/child.hpp"
#include "common/utf8.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <system_error>

extern char** environ;

namespace ttfb {
namespace {

using Clock = std::chrono::steady_clock;

// Output after the child's leader exited is drained for at most this long: a process that left
// the group (setsid) may keep the pipe open forever, and it is not ours to wait for.
constexpr auto kDrainAfterExit = std::chrono::milliseconds(500);
// Without a pidfd (kernels before 5.3) the loop polls the child's state this often.
constexpr int kPollTickMs = 20;

// Keeps the first half and the last half of a stream beyond `max` bytes, counting what it drops:
// the head carries what a tool printed first (often the answer), the tail the error at the end.
class BoundedCapture {
 public:
  explicit BoundedCapture(std::size_t max) : half_(std::max<std::size_t>(max / 2, 1)), max_(max) {}

  void append(const char* data, std::size_t n) {
    if (!overflowed_ && head_.size() + n <= max_) {
      head_.append(data, n);
      return;
    }
    if (!overflowed_) {
      overflowed_ = true;
      if (head_.size() > half_) {
        tail_ = head_.substr(half_);
        head_.resize(half_);
      }
    }
    tail_.append(data, n);
    if (tail_.size() > 2 * half_) {  // amortised: trim only when twice the bound
      const std::size_t cut = tail_.size() - half_;
      dropped_ += cut;
      tail_.erase(0, cut);
    }
  }

  std::size_t dropped() const { return dropped_ + (tail_.size() > half_ ? tail_.size() - half_ : 0); }

  std::string take() {
    if (!overflowed_) return std::move(head_);
    if (tail_.size() > half_) {
      dropped_ += tail_.size() - half_;
      tail_.erase(0, tail_.size() - half_);
    }
    std::string out = std::move(head_);
    if (dropped_ > 0) out += "\n[... " + std::to_string(dropped_) + " bytes dropped ...]\n";
    out += tail_;
    return out;
  }

 private:
  std::size_t half_;
  std::size_t max_;
  bool overflowed_ = false;
  std::string head_;
  std::string tail_;
  std::size_t dropped_ = 0;
};

struct Pipe {
  int read_end = -1;
  int write_end = -1;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  return {fds[0], fds[1]};
}


// True once `pid` has exited; the child is left a zombie (WNOWAIT) so its group id stays ours.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  info.si_pid = 0;
  if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    return errno == ECHILD;  // already reaped by someone else: treat as gone
  }
  return info.si_pid == pid;
}

void write_all_noexcept(int fd, const char* s, std::size_t n) noexcept {
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

void write_str_noexcept(int fd, const char* s) noexcept { write_all_noexcept(fd, s, std::strlen(s)); }

// Moves `fd` onto `target` in the child; clears close-on-exec when they are the same.
void move_fd(int fd, int target) noexcept {
  if (fd == target) {
    ::fcntl(fd, F_SETFD, 0);
  } else {
    ::dup2(fd, target);
  }
}

// Everything the child needs, prepared before fork: the child may only make async-signal-safe
// calls (another thread may hold the allocator's lock at the moment of fork).
struct ChildPlan {
  std::vector<std::string> candidates;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  char** envp_ptr = nullptr;
  const char* cwd = nullptr;
  const char* argv0 = nullptr;
};

[[noreturn]] void run_child(const ChildPlan& plan, int in_fd, int out_fd, int err_fd) noexcept {
  ttfb::start_child_process();

  move_fd(in_fd, 0);
  move_fd(out_fd, 1);
  move_fd(err_fd, 2);
  close_fds_from(3);

  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) {
    const int e = errno;
    write_str_noexcept(2, "ttfb-lab: cannot change directory to ");
    write_str_noexcept(2, plan.cwd);
    write_str_noexcept(2, ": ");
    write_str_noexcept(2, strerrordesc_np(e));
    write_str_noexcept(2, "\n");
    ::_exit(127);
  }
  int last_error = ENOENT;
  for (const auto& path : plan.candidates) {
    ::execve(path.c_str(), plan.argv.data(), plan.envp_ptr);
    // Like execvp: keep searching past entries that are missing or not ours to run.
    if (errno != ENOENT && errno != ENOTDIR && errno != EACCES) {
      last_error = errno;
      break;
    }
    if (errno == EACCES) last_error = EACCES;
  }
  write_str_noexcept(2, "ttfb-lab: cannot execute '");
  write_str_noexcept(2, plan.argv0);
  write_str_noexcept(2, "': ");
  write_str_noexcept(2, last_error == ENOENT ? "command not found" : strerrordesc_np(last_error));
  write_str_noexcept(2, "\n");
  ::_exit(127);
}

// Blocks SIGPIPE in the calling thread while it writes to the child's stdin (a child that exits
// without reading must not kill us), and discards the SIGPIPE that such a write raised.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      timespec zero{};
      while (::sigtimedwait(&set_, nullptr, &zero) == SIGPIPE) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t set_;
  sigset_t old_;
  bool was_pending_ = false;
};

std::string trim(std::string_view s) {
  const auto* ws = " \t\r\n";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

}  // namespace

std::string ProcessResult::output_tail(std::size_t max) const {
  std::string text = trim(err);
  if (text.empty()) text = trim(out);
  if (text.size() <= max) return to_valid_utf8(text);
  std::string_view tail = utf8_suffix(text, max);  // never from the middle of a character
  // Start at a line boundary when one is near, so the message does not open mid-word.
  if (auto nl = tail.find('\n'); nl != std::string_view::npos && nl < max / 4) tail = tail.substr(nl + 1);
  return to_valid_utf8(trim(tail));
}

std::map<std::string, std::string> current_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

std::vector<std::string> exec_candidates(const std::string& argv0, const std::string& search_path) {
  if (argv0.empty()) return {};
  if (argv0.find('/') != std::string::npos) return {argv0};
  const std::string path = search_path.empty() ? "/usr/bin:/bin" : search_path;
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto colon = path.find(':', start);
    if (colon == std::string::npos) colon = path.size();
    std::string dir = path.substr(start, colon - start);
    if (dir.empty()) dir = ".";  // POSIX: an empty PATH entry is the current directory
    out.push_back(dir + "/" + argv0);
    start = colon + 1;
  }
  return out;
}

void close_fds_from(int lowfd) noexcept {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(lowfd), ~0U, 0U) == 0) return;
#endif
  struct rlimit rl {};
  long max_fd = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    max_fd = static_cast<long>(std::min<rlim_t>(rl.rlim_cur, 1 << 20));
  }
  for (long fd = lowfd; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
}

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  if (argv.empty()) throw std::invalid_argument("run_process: empty argv");

  ChildPlan plan;
  std::string search_path;
  if (options.env) {
    for (const auto& [k, v] : *options.env) plan.env_storage.push_back(k + "=" + v);
    for (auto& s : plan.env_storage) plan.envp.push_back(s.data());
    plan.envp.push_back(nullptr);
    plan.envp_ptr = plan.envp.data();
    auto it = options.env->find("PATH");
    search_path = it != options.env->end() ? it->second : "/usr/bin:/bin";
  } else {
    plan.envp_ptr = environ;
    const char* p = std::getenv("PATH");
    search_path = p != nullptr ? p : "/usr/bin:/bin";
  }
  plan.candidates = exec_candidates(argv[0], search_path);
  for (const auto& a : argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  plan.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  plan.argv0 = argv[0].c_str();

  Pipe in = make_pipe();
  Pipe out;
  Pipe err;
  try {
    out = make_pipe();
    err = make_pipe();
  } catch (...) {
    close_fd(in.read_end), close_fd(in.write_end), close_fd(out.read_end), close_fd(out.write_end);
    throw;
  }

  SigpipeGuard sigpipe_guard;
  const auto start = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    for (int* fd : {&in.read_end, &in.write_end, &out.read_end, &out.write_end, &err.read_end, &err.write_end}) {
      close_fd(*fd);
    }
    throw std::system_error(e, std::generic_category(), "fork");
  }
  if (pid == 0) run_child(plan, in.read_end, out.write_end, err.write_end);

  ::setpgid(pid, pid);  // also in the parent: no race with a kill before the child ran setpgid
  close_fd(in.read_end);
  close_fd(out.write_end);
  close_fd(err.write_end);
  for (int fd : {in.write_end, out.read_end, err.read_end}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  BoundedCapture out_capture(options.max_output_bytes);
  BoundedCapture err_capture(options.max_output_bytes);
  std::size_t stdin_written = 0;
  if (options.stdin_data.empty()) close_fd(in.write_end);

  ProcessResult result;
  int pidfd = pidfd_open(pid);
  bool exited = false;
  bool killing = false;  // SIGTERM sent, waiting out the grace period
  bool killed = false;   // SIGKILL sent
  const auto deadline = start + options.timeout;
  Clock::time_point kill_deadline{};
  Clock::time_point drain_deadline{};
  char buf[65536];

  auto start_kill = [&] {
    ::kill(-pid, SIGTERM);
    killing = true;
    kill_deadline = Clock::now() + options.kill_grace;
  };

  while (true) {
    if (!exited && (pidfd < 0 || killing || killed) && has_exited(pid)) exited = true;
    if (exited && drain_deadline == Clock::time_point{}) {
      ::kill(-pid, SIGKILL);  // leftovers of the group (background children) go with the leader
      drain_deadline = Clock::now() + kDrainAfterExit;
    }
    if (exited && ((out.read_end < 0 && err.read_end < 0) || Clock::now() >= drain_deadline)) break;

    const auto now = Clock::now();
    if (!exited && !killing && !killed && now >= deadline) {
      result.timed_out = true;
      start_kill();
    }
    if (!exited && killing && !killed && now >= kill_deadline) {
      ::kill(-pid, SIGKILL);
      killed = true;
    }

    std::vector<pollfd> fds;
    auto add = [&](int fd, short events) {
      if (fd >= 0) fds.push_back(pollfd{fd, events, 0});
    };
    add(out.read_end, POLLIN);
    add(err.read_end, POLLIN);
    add(in.write_end, POLLOUT);
    if (!exited && pidfd >= 0) add(pidfd, POLLIN);
    if (!killing && !killed && !exited) add(options.cancel_fd, POLLIN);

    Clock::time_point wake = exited ? drain_deadline : (killing && !killed ? kill_deadline : deadline);
    if (killed && !exited) wake = Clock::now() + std::chrono::milliseconds(kPollTickMs);
    long long wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count() + 1;
    wait_ms = std::clamp<long long>(wait_ms, 0, 60'000);
    if (pidfd < 0 && !exited) wait_ms = std::min<long long>(wait_ms, kPollTickMs);

    int n = ::poll(fds.data(), fds.size(), static_cast<int>(wait_ms));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "poll");
    }
    for (const auto& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == out.read_end || p.fd == err.read_end) {
        const bool is_out = p.fd == out.read_end;
        ssize_t r = ::read(p.fd, buf, sizeof buf);
        if (r > 0) {
          (is_out ? out_capture : err_capture).append(buf, static_cast<std::size_t>(r));
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          close_fd(is_out ? out.read_end : err.read_end);
        }
      } else if (p.fd == in.write_end) {
        if (p.revents & (POLLERR | POLLHUP)) {
          close_fd(in.write_end);
          continue;
        }
        ssize_t w = ::write(in.write_end, options.stdin_data.data() + stdin_written,
                            options.stdin_data.size() - stdin_written);
        if (w > 0) stdin_written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || stdin_written == options.stdin_data.size()) {
          close_fd(in.write_end);  // EPIPE included: the child does not want the rest
        }
      } else if (p.fd == pidfd) {
        exited = has_exited(pid);
      } else if (p.fd == options.cancel_fd) {
        result.cancelled = true;
        start_kill();
      }
    }
  }

  close_fd(in.write_end);
  close_fd(out.read_end);
  close_fd(err.read_end);
  if (pidfd >= 0) ::close(pidfd);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  result.dropped_bytes = out_capture.dropped() + err_capture.dropped();
  result.out = out_capture.take();
  result.err = err_capture.take();
  return result;
}

void close_fd(int& fd) noexcept {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

int pidfd_open(int pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

}  // namespace ttfb
