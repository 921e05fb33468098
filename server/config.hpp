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

// Where a repository's alerts go ([repos.X.alerts]; docs/alerts.md). Each channel is on when its
// URL is set (after ${VAR} expansion: an empty value means "off"). Only the outbox row's
// message and recipient are stored in PostgreSQL; URLs and credentials are read from here when
// the message is sent, so secrets stay out of the database and the API.
struct RepoAlerts {
  std::string webhook_url;              // http:// or https://; "" = no webhook
  int webhook_timeout_seconds = 10;     // the whole request, connect to last byte
  std::string smtp_url;                 // smtp:// or smtps://, e.g. smtp://127.0.0.1:2525; "" = no e-mail
  std::string smtp_username;            // "" = no SMTP AUTH
  std::string smtp_password;
  int smtp_timeout_seconds = 30;        // the whole SMTP conversation
  std::string email_from = "ttfb-lab@localhost";
  std::vector<std::string> email_cc;    // copied on every e-mail of the repository
};

struct RepoConfig {
  std::string name;
  std::string url;             // what workers and the server clone from; never from a client
  std::string default_branch = "main";
  std::string description;
  RepoAlerts alerts;
};

struct ResourceLimits {
  int memory_mb = 4096;
  int cpu_seconds = 300;
  int nofile = 1024;
  int nproc = 512;
  double cpus = 0;  // the run's CPU quota in CPUs (cgroup cpu); 0: none
};

// How results of a workflow are judged and how many runs it may take. Global defaults in
// [defaults.policy] of server.toml, overridden key by key in a workflow's [policy] table.
// docs/configuration.md explains each key; server/stats/adaptive.hpp and calibration.hpp the
// statistics behind them.
struct WorkflowPolicy {
  double alpha = 0.1;            // two-sided level of the first stage over all its looks (a screen:
                                 // a regression found there is only an alert once a rerun reproduces it)
  double rerun_alpha = 0.05;     // one-sided level of the confirmation rerun
  double cpu_time_alpha_share = 0.15;  // of alpha, spent on CPU time to the first batch (0: none)
  double tail_alpha_share = 0.05;      // of alpha, spent on the slow tail (stats/tail.hpp; 0: none)
  double detection_floor_pct = 1.0;     // smallest change ever called a regression or improvement
  double equivalence_margin_pct = 2.0;  // "no change" means shown to be within +/- this
  double confidence = 0.95;      // of the interval `ttfb-lab compare` reports (one fixed look)
  double fp_budget_per_week = 1.0;     // false alarms allowed a week ...
  double tests_per_week = 200.0;        // ... over this many workflow-tests a week (a gate of W workflows is W)
  int runs_per_block = 10;       // runs per arm in each block (a job); a look after each block
  int max_runs_per_arm = 60;     // the budget: no block beyond this many runs per arm
  std::string spending = "pocock";  // alpha spending: pocock | obrien_fleming
  bool confirm = true;           // rerun significant results as an independent batch
  int max_rerun_runs_per_arm = 120;  // the rerun is sized by power, up to this many runs per arm
  int calibration_runs_per_arm = 30;  // runs per arm of each A/A batch of a calibration
  int calibration_batches = 4;        // A/A batches (jobs) per calibration
  int recalibrate_after_days = 7;     // a calibration older than this is stale ...
  int recalibrate_after_experiments = 500;  // ... and so is one followed by this many experiments
};

// Another configured repository a workflow uses (a data-loading library, a launcher), put in
// place in each run's copy of the workflow's revision: the tree of `repo` at `ref` (its default
// branch when empty), or a dependency experiment's candidate of it, at `path` (relative to the
// workflow repository's root). How the workload finds it is the workflow's business (e.g.
// env PYTHONPATH = "third_party/dataload", or a path Python already searches).
struct WorkflowDependency {
  std::string repo;
  std::string path;
  std::string ref;
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
  std::string network = "none";   // "none": loopback only in the worker's sandbox | "host"
  int warmup_runs = 1;            // per arm, at the start of every block
  std::vector<std::string> shrink_args;
  std::map<std::string, std::string> shrink_env;
  ResourceLimits limits;
  WorkflowPolicy policy;
  std::vector<WorkflowDependency> dependencies;  // [[dependencies]]
  std::string source_file;

  const WorkflowDependency* dependency(const std::string& repo_name) const;

  // The workflow as workers receive it (docs/worker-protocol.md): shrink args appended.
  boost::json::object to_job_json() const;
  // The workflow as GET /api/v1/workflows shows it.
  boost::json::object to_api_json() const;
};

// The alert outbox's dispatcher ([alerts]; docs/alerts.md).
struct AlertsConfig {
  bool enabled = true;                  // false: enqueue_alert stores nothing, no dispatcher runs
  int max_attempts = 8;                 // delivery attempts before an alert is `failed`
  double backoff_initial_seconds = 2.0; // wait after the first failed attempt; doubles each time ...
  double backoff_max_seconds = 300.0;   // ... up to this
  int poll_ms = 500;                    // how often the dispatcher looks for due alerts
};

// Bisection limits ([bisect]), used by the bisection driver.
struct BisectConfig {
  int max_parallel_probes = 4;          // commits measured at once (1..64)
  int max_runs_per_commit = 40;         // runs a probe commit may take before it is called unsure (>= 2)
  double alpha = 0.01;                  // level of a bisection's probe and culprit tests (its own, not
                                        // the workflows' first-stage screen)
  double threshold_pct = 3.0;           // the smallest step a bisection attributes to a commit
  double sandwich_alpha = 0.001;        // level of the culprit test (the sandwich): a commit without
                                        // a step is blamed with at most half this chance
};

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  unsigned short listen_port = 8080;
  int io_threads = 2;
  int blocking_threads = 4;
  std::size_t body_limit_bytes = 4 * 1024 * 1024;
  int read_timeout_seconds = 30;
  std::string public_url;
  bool open_reads = false;  // reads need a token unless the configuration opens them
  std::string tls_cert_file;  // with tls_key_file: HTTPS only (PEM; the file may hold the chain)
  std::string tls_key_file;

  std::string database_dsn;
  int database_pool_size = 4;

  int lease_seconds = 30;
  int max_attempts = 3;
  int scheduler_tick_ms = 500;
  int worker_alive_seconds = 60;   // a worker not seen for longer is not counted as live
  bool auto_recalibrate = true;    // redo stale calibrations at low priority

  std::string git_cache_dir;

  AlertsConfig alerts;
  BisectConfig bisect;

  std::map<std::string, RepoConfig> repos;
  std::map<std::string, WorkflowConfig> workflows;
};

// Reads server.toml and every workflow file of its [workflows] dir. ${VAR} in strings is
// replaced from the environment (an unset VAR is an error naming it). Validates references:
// every workflow's repo exists, probe is fd|stdout, stdout needs a regex that compiles, etc.
ServerConfig load_server_config(const std::string& path);

// Parses one workflow file (for tests and tools); `defaults` fills what the file leaves out.
WorkflowConfig load_workflow_file(const std::string& path, const WorkflowPolicy& default_policy = {});

// A plain e-mail address for SMTP envelopes and headers: "name@domain", one '@', no spaces,
// brackets, quotes or line breaks (a line break would let the value add mail headers).
bool is_plain_email_address(const std::string& s);

// Replaces ${VAR} from the environment; throws ConfigError naming an unset variable.
std::string expand_env(const std::string& text, const std::string& where);

}  // namespace ttfb
