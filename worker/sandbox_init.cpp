// ttfb-lab-sandbox-init: the first process inside a workload's sandbox (bubblewrap runs it as
// PID 1 of the sandbox's PID namespace, --as-pid-1). It exists so that the sandbox's set-up is
// not part of TTFB, and so that the worker learns the workload's own exit status:
//
//   worker                                   init (inside bwrap, every mount in place)
//     fork, exec bwrap ...                     "ready"  ──────────▶  (set-up is over)
//     stamp CLOCK_MONOTONIC, "go"  ──────▶     fork; child: limits, user, exec the workload
//     "term" / "kill"              ──────▶     kill(-1, SIGTERM / SIGKILL): every process of the sandbox
//                                  ◀──────     "exit STATUS UTIME_US STIME_US MAXRSS_KB" (wait4 of the workload)
//   then init exits, and with PID 1 gone the kernel kills whatever is left in the namespace
//   (daemons, setsid escapes, a fork bomb's remains).
//
// Messages travel on one SOCK_SEQPACKET socket (--control-fd), one message per write. A closed
// control socket (the worker died) kills the sandbox. Init makes itself non-dumpable, so the
// workload (another uid when the worker is root, the same uid otherwise) cannot take its fds
// through /proc.
//
//   ttfb-lab-sandbox-init --control-fd 4 [--probe-fd 3] [--uid U --gid G --home DIR]
//       [--as BYTES] [--cpu SECONDS] [--nofile N] [--nproc N] -- COMMAND ARGS...
//
// Only what a static binary needs: no iostream, no exceptions after start-up; small and fast to
// exec.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/child.hpp"

namespace {

// SIGXCPU arrives at the soft CPU limit; the hard limit (SIGKILL) this much later (as in
// worker/sandbox.cpp without the sandbox).
constexpr rlim_t kCpuHardMarginSeconds = 2;

struct Options {
  int control_fd = -1;
  int probe_fd = -1;
  long uid = -1;
  long gid = -1;
  const char* home = nullptr;
  unsigned long long as_bytes = 0;
  unsigned long long cpu_seconds = 0;
  unsigned long long nofile = 0;
  unsigned long long nproc = 0;
  char** argv = nullptr;
};

void write_str(int fd, const char* s) {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    const ssize_t w = ::write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void die(const char* what, const char* arg, int err) {
  write_str(2, "ttfb-lab sandbox: ");
  write_str(2, what);
  if (arg != nullptr) {
    write_str(2, " ");
    write_str(2, arg);
  }
  if (err != 0) {
    write_str(2, ": ");
    write_str(2, strerrordesc_np(err));
  }
  write_str(2, "\n");
  ::_exit(127);
}

unsigned long long number(const char* s, const char* option) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') die("bad number for", option, 0);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  int i = 1;
  for (; i < argc; ++i) {
    const char* a = argv[i];
    if (std::strcmp(a, "--") == 0) {
      ++i;
      break;
    }
    if (i + 1 >= argc) die("option without a value:", a, 0);
    const char* v = argv[++i];
    if (std::strcmp(a, "--control-fd") == 0) o.control_fd = static_cast<int>(number(v, a));
    else if (std::strcmp(a, "--probe-fd") == 0) o.probe_fd = static_cast<int>(number(v, a));
    else if (std::strcmp(a, "--uid") == 0) o.uid = static_cast<long>(number(v, a));
    else if (std::strcmp(a, "--gid") == 0) o.gid = static_cast<long>(number(v, a));
    else if (std::strcmp(a, "--home") == 0) o.home = v;
    else if (std::strcmp(a, "--as") == 0) o.as_bytes = number(v, a);
    else if (std::strcmp(a, "--cpu") == 0) o.cpu_seconds = number(v, a);
    else if (std::strcmp(a, "--nofile") == 0) o.nofile = number(v, a);
    else if (std::strcmp(a, "--nproc") == 0) o.nproc = number(v, a);
    else die("unknown option", a, 0);
  }
  if (o.control_fd < 0) die("--control-fd is required", nullptr, 0);
  if (i >= argc) die("no command given after --", nullptr, 0);
  if ((o.uid < 0) != (o.gid < 0)) die("--uid and --gid go together", nullptr, 0);
  o.argv = argv + i;
  return o;
}

void set_limit(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit current {};
  if (::getrlimit(resource, &current) != 0) return;
  // Without privileges a hard limit cannot be raised: never ask for more than there is.
  if (current.rlim_max != RLIM_INFINITY) {
    hard = hard < current.rlim_max ? hard : current.rlim_max;
    soft = soft < current.rlim_max ? soft : current.rlim_max;
  }
  if (soft > hard) soft = hard;
  struct rlimit next {soft, hard};
  ::setrlimit(resource, &next);
}

void close_from(int lowfd) {
  if (::syscall(SYS_close_range, static_cast<unsigned>(lowfd), ~0U, 0U) == 0) return;
  for (int fd = lowfd; fd < 65536; ++fd) ::close(fd);
}

// The workload: between fork and exec, in the child.
[[noreturn]] void exec_workload(const Options& o) {
  ttfb::start_child_process();
  // Only 0, 1, 2 and the probe (always fd 3 when there is one) go on.
  if (o.probe_fd < 0) ::close(3);
  close_from(o.probe_fd >= 0 ? 4 : 3);

  if (o.as_bytes > 0) set_limit(RLIMIT_AS, o.as_bytes, o.as_bytes);
  if (o.cpu_seconds > 0) set_limit(RLIMIT_CPU, o.cpu_seconds, o.cpu_seconds + kCpuHardMarginSeconds);
  if (o.nofile > 0) set_limit(RLIMIT_NOFILE, o.nofile, o.nofile);
  if (o.nproc > 0) set_limit(RLIMIT_NPROC, o.nproc, o.nproc);
  set_limit(RLIMIT_CORE, 0, 0);

  if (o.uid >= 0) {
    const gid_t gid = static_cast<gid_t>(o.gid);
    if (::setgroups(1, &gid) != 0) die("cannot drop supplementary groups", nullptr, errno);
    if (::setgid(gid) != 0) die("cannot switch group", nullptr, errno);
    if (::setuid(static_cast<uid_t>(o.uid)) != 0) die("cannot switch user", nullptr, errno);
  }
  if (::geteuid() == 0 || o.uid >= 0) {
    // No capability survives into the workload (bwrap gave init the few it needs to switch user;
    // a switch away from root clears them, staying root does not).
    struct __user_cap_header_struct header {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] {};
    ::syscall(SYS_capset, &header, data);
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  }
  ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);  // no setuid binary can give privileges back
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);         // after setuid, which clears it: init died -> so does this

  ::execvp(o.argv[0], o.argv);
  const int e = errno;
  if (e == ENOENT) {
    write_str(2, "ttfb-lab sandbox: command not found: ");
    write_str(2, o.argv[0]);
    write_str(2, " (PATH is the scrubbed one: /usr/local/bin:/usr/bin:/bin unless the workflow sets it)\n");
    ::_exit(127);
  }
  die("cannot execute", o.argv[0], e);
}

void send(int fd, const char* message) {
  while (::send(fd, message, std::strlen(message), MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::fcntl(o.control_fd, F_SETFD, FD_CLOEXEC);
  // Whatever bwrap left open beyond ours.
  close_from((o.control_fd > 3 ? o.control_fd : 3) + 1);

  // The private HOME is a tmpfs bwrap made for root: hand it to the user the workload runs as.
  if (o.uid >= 0 && o.home != nullptr && ::chown(o.home, static_cast<uid_t>(o.uid), static_cast<gid_t>(o.gid)) != 0) {
    die("cannot give the home directory to the workload's user:", o.home, errno);
  }

  // SIGCHLD through a signalfd, so that one poll waits for the worker and for children.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) die("signalfd", nullptr, errno);

  send(o.control_fd, "ready");
  char buf[64];
  for (;;) {
    const ssize_t n = ::recv(o.control_fd, buf, sizeof buf - 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 1;  // the worker went away before "go"
    buf[n] = '\0';
    if (std::strcmp(buf, "go") == 0) break;
    if (std::strcmp(buf, "term") == 0 || std::strcmp(buf, "kill") == 0) return 1;
  }

  const pid_t child = ::fork();
  if (child < 0) die("cannot fork the workload", nullptr, errno);
  if (child == 0) {
    ::close(sfd);
    ::close(o.control_fd);
    exec_workload(o);
  }
  ::close(0);  // init keeps no stdin and no probe: their ends belong to the workload
  if (o.probe_fd >= 0) ::close(o.probe_fd);

  bool control_open = true;
  for (;;) {
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {o.control_fd, POLLIN, 0}};
    if (::poll(fds, control_open ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll", nullptr, errno);
    }
    if (fds[0].revents != 0) {
      struct signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) > 0) {
      }
      // Reap everything: the workload, and orphans re-parented to us (PID 1).
      for (;;) {
        int status = 0;
        struct rusage ru {};
        const pid_t pid = ::wait4(-1, &status, WNOHANG, &ru);
        if (pid <= 0) break;
        if (pid != child) continue;
        char message[160];
        std::snprintf(message, sizeof message, "exit %d %lld %lld %ld", status,
                      static_cast<long long>(ru.ru_utime.tv_sec) * 1000000 + ru.ru_utime.tv_usec,
                      static_cast<long long>(ru.ru_stime.tv_sec) * 1000000 + ru.ru_stime.tv_usec, ru.ru_maxrss);
        send(o.control_fd, message);
        return 0;  // PID 1 exits: the kernel kills what the workload left behind
      }
    }
    if (control_open && fds[1].revents != 0) {
      const ssize_t n = ::recv(o.control_fd, buf, sizeof buf - 1, MSG_DONTWAIT);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        ::kill(-1, SIGKILL);  // the worker is gone: so is the sandbox
        return 1;
      }
      buf[n] = '\0';
      // kill(-1, ...) from PID 1: every process of the namespace but init itself, whatever group
      // or session it moved to.
      if (std::strcmp(buf, "term") == 0) ::kill(-1, SIGTERM);
      if (std::strcmp(buf, "kill") == 0) ::kill(-1, SIGKILL);
    }
  }
}
