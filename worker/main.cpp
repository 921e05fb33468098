// ttfb-lab-worker: claims jobs from a ttfb-lab server, runs both revisions of a workflow in a
// sandbox, reports TTFB samples. See worker/worker.hpp for the loop, docs/worker-protocol.md for
// the wire protocol.
//
//   ttfb-lab-worker --server http://127.0.0.1:8080 --name w1 --cache-dir /var/cache/ttfb-lab/w1
//                   [--token T | env TTFB_LAB_WORKER_TOKEN] [--run-as-user nobody]
//                   [--poll-interval-ms 1000] [--once] [--no-sandbox] [--no-cgroups] [--cpus 1]
//
// Builds and workloads run in bubblewrap sandboxes (worker/sandbox.hpp, docs/security.md); the
// worker checks at start-up that it can make one and refuses to start otherwise. --no-sandbox
// runs them as plain child processes, for machines without user namespaces where every diff is
// trusted; it is logged loudly at start-up. Each run (and build) also gets a cgroup of its own
// where the host lets the worker make one (worker/cgroup.hpp); start-up logs what is limited.
//
// Exit status: 0 normal end (signal, or --once after its job or when there is none); 1 runtime
// failure (server rejects the token, cache directory in use, no working sandbox, server
// unreachable with --once);
// 2 bad command line.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "worker/host.hpp"
#include "worker/protocol.hpp"
#include "worker/server_api.hpp"
#include "worker/worker.hpp"

namespace {

namespace po = boost::program_options;
using ttfb::worker::StopFlag;

constexpr const char* kTokenEnv = "TTFB_LAB_WORKER_TOKEN";

StopFlag* g_stop = nullptr;
std::atomic<int> g_signals{0};

// First SIGINT/SIGTERM: stop the current job cleanly (fail it as retryable) and exit. Second one:
// exit at once, the default way.
extern "C" void on_signal(int sig) {
  if (g_signals.fetch_add(1) >= 1) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  if (g_stop != nullptr) g_stop->raise(StopFlag::kShutdown);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls wake up and look at the stop flag
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a server that closes a connection is an error, not a death
}

// Children (and the sandbox's fd shuffling) assume 0, 1 and 2 are open.
void ensure_standard_fds() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0) ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
  }
}

// The token must not stay where a workload could read it: other users can read a process's
// command line (/proc/PID/cmdline), so it is overwritten; the environment variable is removed so
// that no child (git included) inherits it.
void hide_token(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* a = argv[i];
    if (std::strncmp(a, "--token=", 8) == 0) {
      std::memset(a + 8, 'x', std::strlen(a + 8));
    } else if (std::strcmp(a, "--token") == 0 && i + 1 < argc) {
      std::memset(argv[i + 1], 'x', std::strlen(argv[i + 1]));
    }
  }
  // Overwrite the value in place too: unsetenv only unlinks it, /proc/PID/environ still shows it.
  if (char* value = std::getenv(kTokenEnv)) std::memset(value, 'x', std::strlen(value));
  ::unsetenv(kTokenEnv);
}

std::string current_user_name() {
  struct passwd* pw = ::getpwuid(::geteuid());
  return pw != nullptr ? pw->pw_name : std::to_string(::geteuid());
}

}  // namespace

int main(int argc, char** argv) {
  ensure_standard_fds();
  po::options_description desc(
      "ttfb-lab-worker: claims jobs from a ttfb-lab server and measures time to first batch.\n"
      "Each worker process needs its own --cache-dir.\n\nOptions");
  std::string server, token, name, cache_dir, run_as_user, log_level, cpus;
  long poll_interval_ms = 1000;
  std::size_t max_worktrees = 32;
  desc.add_options()
      ("help,h", "show this help")
      ("version", "print the version")
      ("server", po::value(&server)->value_name("URL"), "server base URL, e.g. http://127.0.0.1:8080 (required)")
      ("token", po::value(&token)->value_name("T"), "worker token (scope worker); default: env TTFB_LAB_WORKER_TOKEN")
      ("name", po::value(&name)->value_name("NAME"), "this worker's name, unique in the fleet (required)")
      ("cache-dir", po::value(&cache_dir)->value_name("DIR"), "mirrors, worktrees and builds; one per worker process (required)")
      ("run-as-user", po::value(&run_as_user)->value_name("USER"),
       "user that builds and workloads run as; needs root; default when root: nobody")
      ("poll-interval-ms", po::value(&poll_interval_ms)->default_value(1000), "wait between claims when there is no job")
      ("max-worktrees", po::value(&max_worktrees)->default_value(32), "worktrees kept in the cache (least recently used go)")
      ("once", "run at most one job, then exit (0 also when there was no job)")
      ("no-sandbox", "run builds and workloads WITHOUT the bubblewrap sandbox (only where every diff is trusted)")
      ("no-cgroups", "set no per-run cgroup limits even where the host offers them (rlimits only)")
      ("cpus", po::value(&cpus)->value_name("LIST"),
       "pin every build and run to these CPUs, e.g. 1 or 2-3 (give each measuring worker its own; default: not pinned)")
      ("log-level", po::value(&log_level)->default_value("info"), "trace, debug, info, warn, error");

  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "ttfb-lab-worker: " << e.what() << "\n\n" << desc << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "ttfb-lab-worker " << ttfb::worker::kWorkerVersion << "\n";
    return 0;
  }
  if (token.empty()) {
    if (const char* t = std::getenv(kTokenEnv)) token = t;
  }
  hide_token(argc, argv);
  std::string missing;
  if (server.empty()) missing += " --server";
  if (name.empty()) missing += " --name";
  if (cache_dir.empty()) missing += " --cache-dir";
  if (!missing.empty()) {
    std::cerr << "ttfb-lab-worker: missing required option(s):" << missing << "\n\n" << desc << "\n";
    return 2;
  }
  if (token.empty()) {
    std::cerr << "ttfb-lab-worker: no worker token: pass --token or set " << kTokenEnv << "\n";
    return 2;
  }
  if (poll_interval_ms <= 0) {
    std::cerr << "ttfb-lab-worker: --poll-interval-ms must be > 0\n";
    return 2;
  }

  const auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    std::cerr << "ttfb-lab-worker: unknown --log-level '" << log_level << "' (trace, debug, info, warn, error)\n";
    return 2;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(level);

  ttfb::worker::WorkerOptions options;
  if (!cpus.empty()) {
    try {
      options.sandbox.cpus = ttfb::worker::parse_cpu_list(cpus, ttfb::worker::usable_cpus());
    } catch (const std::invalid_argument& e) {
      std::cerr << "ttfb-lab-worker: " << e.what() << "\n";
      return 2;
    }
  }
  options.name = name;
  options.cache_dir = cache_dir;
  options.poll_interval = std::chrono::milliseconds(poll_interval_ms);
  options.once = vm.count("once") > 0;
  options.max_worktrees = max_worktrees;
  try {
    const bool root = ::geteuid() == 0;
    if (root) {
      const std::string user = run_as_user.empty() ? "nobody" : run_as_user;
      if (user == "root") {
        spdlog::warn("--run-as-user root: workloads from diffs run as root");
      } else {
        options.run_as = ttfb::worker::lookup_user(user);
      }
    } else if (!run_as_user.empty() && run_as_user != current_user_name()) {
      std::cerr << "ttfb-lab-worker: --run-as-user " << run_as_user << " needs the worker to run as root\n";
      return 2;
    }

    if (vm.count("no-sandbox")) {
      options.sandbox.enabled = false;
      spdlog::warn("--no-sandbox: builds and workloads from diffs run WITHOUT a sandbox: they see this host's "
                   "network, processes and files{}", options.run_as ? " as user " + options.run_as->name : " as this worker's user");
    } else if (const std::string problem = ttfb::worker::check_sandbox(options.sandbox, options.run_as); !problem.empty()) {
      spdlog::critical("no sandbox for workloads: {}", problem);
      return 1;
    }

    // Per-run cgroups where the host lets this worker make them (worker/cgroup.hpp).
    if (vm.count("no-cgroups")) {
      spdlog::info("cgroups: none (--no-cgroups): memory and processes are bounded per process by rlimits only");
    } else {
      std::string report;
      options.sandbox.cgroups = ttfb::worker::Cgroups::detect(name, &report);
      if (options.sandbox.cgroups) {
        spdlog::info("cgroups: {}", report);
      } else {
        spdlog::warn("cgroups: {}", report);
      }
    }

    // Processes that escape a workload's process group (setsid) are re-parented to us when their
    // parent dies, and killed between runs (kill_adopted_processes).
    if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) spdlog::warn("cannot become a child subreaper: escaped workload processes may survive");
    StopFlag stop;
    g_stop = &stop;
    install_signal_handlers();
    ttfb::worker::HttpServerApi api(server, token, name, ttfb::worker::RetryPolicy{}, &stop);
    ttfb::worker::Worker worker(options, api, stop);
    const int rc = worker.run();
    g_stop = nullptr;
    return rc;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
