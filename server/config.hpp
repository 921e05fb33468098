// The server's configuration: listen address, database, scheduler, repositories and workflows,
// read from TOML (toml++). See docs/configuration.md for every key.
//
//   auto cfg = ttfb::load_server_config("configs/server.toml");   // throws ConfigError
//   const ttfb::WorkflowConfig& wf = cfg.workflows.at("example-train");
#pragma once

#include <boost/json/fwd.hpp>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb {

// A configuration problem, with the file (and key) it is in.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RepoConfig {
  std::string name;
  std::string url;             // what workers and the server clone from; never from a client
  std::string default_branch = "main";
  std::string description;
};

struct ResourceLimits {
  int memory_mb = 4096;
  int cpu_seconds = 300;
  int nofile = 1024;
  int nproc = 512;
};

// How results of a workflow are judged. Global defaults in [defaults.policy] of server.toml,
// overridden per workflow in its [policy] table.
struct WorkflowPolicy {
  double alpha = 0.01;           // significance level of the test
  double min_effect_pct = 3.0;   // smaller slowdowns are never called regressions
  double confidence = 0.95;      // of the reported interval on the effect
};

struct WorkflowConfig {
  std::string name;
  std::string repo;
  std::string description;
  std::vector<std::string> command;
  std::vector<std::string> build_command;  // empty: nothing to build
  std::string workdir = ".";
  std::string probe = "fd";                // "fd" | "stdout"
  std::string first_batch_regex;
  bool stop_after_first_batch = true;
  int timeout_seconds = 120;
  int build_timeout_seconds = 900;
  int runs_per_arm = 10;
  int warmup_runs = 1;
  std::vector<std::string> shrink_args;
  std::map<std::string, std::string> shrink_env;
  ResourceLimits limits;
  WorkflowPolicy policy;
  std::string source_file;

  // The workflow as workers receive it (docs/worker-protocol.md): shrink args appended.
  boost::json::object to_job_json() const;
  // The workflow as GET /api/v1/workflows shows it.
  boost::json::object to_api_json() const;
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  unsigned short listen_port = 8080;
  int io_threads = 2;
  int blocking_threads = 4;
  std::size_t body_limit_bytes = 4 * 1024 * 1024;
  int read_timeout_seconds = 30;
  std::string public_url;
  bool open_reads = true;

  std::string database_dsn;
  int database_pool_size = 4;

  int lease_seconds = 30;
  int max_attempts = 3;
  int scheduler_tick_ms = 500;
  int worker_alive_seconds = 60;   // a worker not seen for longer is not counted as live

  std::string git_cache_dir;

  std::map<std::string, RepoConfig> repos;
  std::map<std::string, WorkflowConfig> workflows;
};

// Reads server.toml and every workflow file of its [workflows] dir. ${VAR} in strings is
// replaced from the environment (an unset VAR is an error naming it). Validates references:
// every workflow's repo exists, probe is fd|stdout, stdout needs a regex that compiles, etc.
ServerConfig load_server_config(const std::string& path);

// Parses one workflow file (for tests and tools); `defaults` fills what the file leaves out.
WorkflowConfig load_workflow_file(const std::string& path, const WorkflowPolicy& default_policy = {});

// Replaces ${VAR} from the environment; throws ConfigError naming an unset variable.
std::string expand_env(const std::string& text, const std::string& where);

}  // namespace ttfb
