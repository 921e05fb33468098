#include "server/config.hpp"

#include "common/text.hpp"

#include <boost/json.hpp>
#include <toml++/toml.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <regex>
#include <set>
#include <system_error>
#include <utility>

namespace ttfb {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;

std::string where_of(const std::string& file, const std::string& key) { return file + ": " + key; }

std::string get_string(const toml::table& t, const std::string& key, const std::string& fallback,
                       const std::string& file) {
  auto node = t[key];
  if (!node) return fallback;
  auto v = node.value<std::string>();
  if (!v) throw ConfigError(where_of(file, key) + " must be a string");
  return expand_env(*v, where_of(file, key));
}

template <typename T>
T get_number(const toml::table& t, const std::string& key, T fallback, const std::string& file, T min_value) {
  auto node = t[key];
  if (!node) return fallback;
  std::optional<T> v;
  if constexpr (std::is_floating_point_v<T>) {
    v = node.value<double>();
  } else if (const auto wide = node.value<int64_t>()) {
    // A 64-bit integer from the file must fit the setting's type: 4294967297 threads is not 1.
    if (!std::in_range<T>(*wide))
      throw ConfigError(where_of(file, key) + " is out of range (" + std::to_string(std::numeric_limits<T>::min()) +
                        " to " + std::to_string(std::numeric_limits<T>::max()) + ")");
    v = static_cast<T>(*wide);
  }
  if (!v) throw ConfigError(where_of(file, key) + " must be a number");
  if (*v < min_value) throw ConfigError(where_of(file, key) + " must be at least " + std::to_string(min_value));
  return *v;
}

bool get_bool(const toml::table& t, const std::string& key, bool fallback, const std::string& file) {
  auto node = t[key];
  if (!node) return fallback;
  auto v = node.value<bool>();
  if (!v) throw ConfigError(where_of(file, key) + " must be true or false");
  return *v;
}

std::vector<std::string> get_string_array(const toml::table& t, const std::string& key, const std::string& file) {
  std::vector<std::string> out;
  auto node = t[key];
  if (!node) return out;
  const toml::array* arr = node.as_array();
  if (!arr) throw ConfigError(where_of(file, key) + " must be an array of strings, e.g. [\"python3\", \"train.py\"]");
  for (const auto& el : *arr) {
    auto s = el.value<std::string>();
    if (!s) throw ConfigError(where_of(file, key) + " must contain only strings");
    out.push_back(expand_env(*s, where_of(file, key)));
  }
  return out;
}

const toml::table* get_table(const toml::table& t, const std::string& key, const std::string& file) {
  auto node = t[key];
  if (!node) return nullptr;
  const toml::table* tab = node.as_table();
  if (!tab) throw ConfigError(where_of(file, key) + " must be a table");
  return tab;
}

WorkflowPolicy read_policy(const toml::table* t, WorkflowPolicy p, const std::string& file) {
  if (!t) return p;
  p.alpha = get_number<double>(*t, "alpha", p.alpha, file, 1e-9);
  if (t->contains("min_effect_pct"))
    throw ConfigError(where_of(file, "policy.min_effect_pct") +
                      " is gone: it was both the smallest change called and the margin of \"no change\"; set "
                      "detection_floor_pct (the smallest change called a regression, e.g. 1) and equivalence_margin_pct "
                      "(how close \"no change\" must be shown to be, e.g. 2)");
  p.detection_floor_pct = get_number<double>(*t, "detection_floor_pct", p.detection_floor_pct, file, 0.0);
  p.equivalence_margin_pct = get_number<double>(*t, "equivalence_margin_pct", p.equivalence_margin_pct, file, 0.0);
  p.rerun_alpha = get_number<double>(*t, "rerun_alpha", p.rerun_alpha, file, 1e-9);
  p.cpu_time_alpha_share = get_number<double>(*t, "cpu_time_alpha_share", p.cpu_time_alpha_share, file, 0.0);
  p.tail_alpha_share = get_number<double>(*t, "tail_alpha_share", p.tail_alpha_share, file, 0.0);
  p.confidence = get_number<double>(*t, "confidence", p.confidence, file, 0.5);
  p.fp_budget_per_week = get_number<double>(*t, "fp_budget_per_week", p.fp_budget_per_week, file, 1e-9);
  if (t->contains("experiments_per_week"))
    throw ConfigError(where_of(file, "policy.experiments_per_week") +
                      " is gone: the budget is counted per workflow-test; set tests_per_week (how many workflow-tests "
                      "a week the budget is shared by: a gate over W workflows counts W)");
  p.tests_per_week = get_number<double>(*t, "tests_per_week", p.tests_per_week, file, 1e-9);
  p.runs_per_block = get_number<int>(*t, "runs_per_block", p.runs_per_block, file, 2);
  p.max_runs_per_arm = get_number<int>(*t, "max_runs_per_arm", p.max_runs_per_arm, file, 2);
  p.spending = get_string(*t, "spending", p.spending, file);
  p.confirm = get_bool(*t, "confirm", p.confirm, file);
  p.max_rerun_runs_per_arm = get_number<int>(*t, "max_rerun_runs_per_arm", p.max_rerun_runs_per_arm, file, 2);
  p.calibration_runs_per_arm = get_number<int>(*t, "calibration_runs_per_arm", p.calibration_runs_per_arm, file, 5);
  p.calibration_batches = get_number<int>(*t, "calibration_batches", p.calibration_batches, file, 1);
  p.recalibrate_after_days = get_number<int>(*t, "recalibrate_after_days", p.recalibrate_after_days, file, 1);
  p.recalibrate_after_experiments =
      get_number<int>(*t, "recalibrate_after_experiments", p.recalibrate_after_experiments, file, 1);
  if (p.alpha >= 0.5) throw ConfigError(where_of(file, "policy.alpha") + " must be below 0.5");
  if (p.rerun_alpha >= 0.5) throw ConfigError(where_of(file, "policy.rerun_alpha") + " must be below 0.5");
  if (p.cpu_time_alpha_share >= 1.0)
    throw ConfigError(where_of(file, "policy.cpu_time_alpha_share") +
                      " must be below 1: it is the share of alpha spent on CPU time, the rest is TTFB's (0: TTFB alone)");
  if (p.cpu_time_alpha_share + p.tail_alpha_share >= 1.0)
    throw ConfigError(where_of(file, "policy.tail_alpha_share") +
                      " and cpu_time_alpha_share must together be below 1: the rest of alpha is TTFB's");
  if (p.confidence >= 1.0) throw ConfigError(where_of(file, "policy.confidence") + " must be below 1");
  if (p.max_runs_per_arm < p.runs_per_block)
    throw ConfigError(where_of(file, "policy.max_runs_per_arm") + " (" + std::to_string(p.max_runs_per_arm) +
                      ") must be at least policy.runs_per_block (" + std::to_string(p.runs_per_block) + ")");
  if (p.spending != "pocock" && p.spending != "obrien_fleming")
    throw ConfigError(where_of(file, "policy.spending") + " must be \"pocock\" or \"obrien_fleming\", not \"" + p.spending + "\"");
  return p;
}

bool starts_with_any(const std::string& s, std::initializer_list<const char*> prefixes) {
  for (const char* p : prefixes)
    if (s.rfind(p, 0) == 0) return true;
  return false;
}

RepoAlerts read_repo_alerts(const toml::table* t, const std::string& key, const std::string& file) {
  RepoAlerts a;
  if (!t) return a;
  a.webhook_url = get_string(*t, "webhook_url", "", file);
  if (!a.webhook_url.empty() && !starts_with_any(a.webhook_url, {"http://", "https://"}))
    throw ConfigError(where_of(file, key + ".webhook_url") + " must start with http:// or https://");
  a.webhook_timeout_seconds = get_number<int>(*t, "webhook_timeout_seconds", a.webhook_timeout_seconds, file, 1);
  a.smtp_url = get_string(*t, "smtp_url", "", file);
  if (!a.smtp_url.empty() && !starts_with_any(a.smtp_url, {"smtp://", "smtps://"}))
    throw ConfigError(where_of(file, key + ".smtp_url") + " must start with smtp:// or smtps://");
  a.smtp_username = get_string(*t, "smtp_username", "", file);
  a.smtp_password = get_string(*t, "smtp_password", "", file);
  a.smtp_timeout_seconds = get_number<int>(*t, "smtp_timeout_seconds", a.smtp_timeout_seconds, file, 1);
  a.email_from = get_string(*t, "email_from", a.email_from, file);
  if (!is_plain_email_address(a.email_from))
    throw ConfigError(where_of(file, key + ".email_from") + " must be a plain address like ttfb-lab@example.com, not '" +
                      a.email_from + "'");
  a.email_cc = get_string_array(*t, "email_cc", file);
  for (const auto& cc : a.email_cc)
    if (!is_plain_email_address(cc))
      throw ConfigError(where_of(file, key + ".email_cc") + " must hold plain addresses, not '" + cc + "'");
  return a;
}

AlertsConfig read_alerts(const toml::table* t, const std::string& file) {
  AlertsConfig a;
  if (!t) return a;
  a.enabled = get_bool(*t, "enabled", a.enabled, file);
  a.max_attempts = get_number<int>(*t, "max_attempts", a.max_attempts, file, 1);
  a.backoff_initial_seconds = get_number<double>(*t, "backoff_initial_seconds", a.backoff_initial_seconds, file, 0.0);
  a.backoff_max_seconds = get_number<double>(*t, "backoff_max_seconds", a.backoff_max_seconds, file, 0.0);
  a.poll_ms = get_number<int>(*t, "poll_ms", a.poll_ms, file, 10);
  if (a.backoff_initial_seconds <= 0)
    throw ConfigError(where_of(file, "alerts.backoff_initial_seconds") + " must be positive");
  if (a.backoff_max_seconds < a.backoff_initial_seconds)
    throw ConfigError(where_of(file, "alerts.backoff_max_seconds") + " must be at least alerts.backoff_initial_seconds");
  return a;
}

BisectConfig read_bisect(const toml::table* t, const std::string& file) {
  BisectConfig b;
  if (!t) return b;
  b.max_parallel_probes = get_number<int>(*t, "max_parallel_probes", b.max_parallel_probes, file, 1);
  b.max_runs_per_commit = get_number<int>(*t, "max_runs_per_commit", b.max_runs_per_commit, file, 2);
  if (t->contains("explained_fraction"))
    throw ConfigError(where_of(file, "bisect.explained_fraction") +
                      " no longer exists: a bisection now decides every part of the range beside each culprit, "
                      "however much the culprits found explain (README \"Release gates, bisection and alerts\"); "
                      "remove the key");
  b.alpha = get_number<double>(*t, "alpha", b.alpha, file, 1e-9);
  b.threshold_pct = get_number<double>(*t, "threshold_pct", b.threshold_pct, file, 0.0);
  if (b.alpha >= 0.5) throw ConfigError(where_of(file, "bisect.alpha") + " must be below 0.5");
  b.sandwich_alpha = get_number<double>(*t, "sandwich_alpha", b.sandwich_alpha, file, 1e-9);
  if (b.sandwich_alpha >= 0.5) throw ConfigError(where_of(file, "bisect.sandwich_alpha") + " must be below 0.5");
  if (b.max_parallel_probes > 64) throw ConfigError(where_of(file, "bisect.max_parallel_probes") + " must be at most 64");
  return b;
}

toml::table parse_file(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    throw ConfigError(path + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column) +
                      ": " + std::string(e.description()));
  }
}

}  // namespace

bool is_plain_email_address(const std::string& s) {
  auto at = s.find('@');
  return at != std::string::npos && at > 0 && at + 1 < s.size() && s.find('@', at + 1) == std::string::npos &&
         s.find_first_of(" \t\r\n<>,;\"()") == std::string::npos;
}

std::string expand_env(const std::string& text, const std::string& where) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "${") == 0) {
      auto end = text.find('}', i + 2);
      if (end == std::string::npos) throw ConfigError(where + ": unterminated ${ in '" + text + "'");
      std::string var = text.substr(i + 2, end - i - 2);
      const char* value = std::getenv(var.c_str());
      if (!value) throw ConfigError(where + ": environment variable " + var + " is not set");
      out += value;
      i = end + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

WorkflowConfig load_workflow_file(const std::string& path, const WorkflowPolicy& default_policy) {
  toml::table t = parse_file(path);
  WorkflowConfig w;
  w.source_file = path;
  w.name = get_string(t, "name", fs::path(path).stem().string(), path);
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,99}");
  if (!std::regex_match(w.name, kName)) throw ConfigError(where_of(path, "name") + " '" + w.name + "' may use only letters, digits, '.', '_' and '-'");
  w.repo = get_string(t, "repo", "", path);
  if (w.repo.empty()) throw ConfigError(where_of(path, "repo") + " is required (the name of a repository in server.toml)");
  w.description = get_string(t, "description", "", path);
  w.command = get_string_array(t, "command", path);
  if (w.command.empty()) throw ConfigError(where_of(path, "command") + " is required, e.g. [\"python3\", \"train.py\"]");
  w.build_command = get_string_array(t, "build_command", path);
  w.workdir = get_string(t, "workdir", ".", path);
  if (fs::path(w.workdir).is_absolute() || w.workdir.find("..") != std::string::npos)
    throw ConfigError(where_of(path, "workdir") + " must be a relative path inside the repository");
  w.probe = get_string(t, "probe", "fd", path);
  if (w.probe != "fd" && w.probe != "stdout") throw ConfigError(where_of(path, "probe") + " must be \"fd\" or \"stdout\", not \"" + w.probe + "\"");
  w.first_batch_regex = get_string(t, "first_batch_regex", "", path);
  if (w.probe == "stdout") {
    if (w.first_batch_regex.empty()) throw ConfigError(where_of(path, "first_batch_regex") + " is required when probe = \"stdout\"");
    try {
      std::regex re(w.first_batch_regex);
    } catch (const std::regex_error& e) {
      throw ConfigError(where_of(path, "first_batch_regex") + " does not compile: " + e.what());
    }
  }
  w.stop_after_first_batch = get_bool(t, "stop_after_first_batch", true, path);
  w.timeout_seconds = get_number<int>(t, "timeout_seconds", w.timeout_seconds, path, 1);
  w.build_timeout_seconds = get_number<int>(t, "build_timeout_seconds", w.build_timeout_seconds, path, 1);
  w.network = get_string(t, "network", "none", path);
  if (w.network != "none" && w.network != "host")
    throw ConfigError(where_of(path, "network") + " must be \"none\" (loopback only, the default) or \"host\", not \"" + w.network + "\"");
  if (t.contains("runs_per_arm"))
    throw ConfigError(where_of(path, "runs_per_arm") +
                      " is gone: runs come in blocks now; set [policy] runs_per_block (runs per arm in each block) "
                      "and max_runs_per_arm (the budget)");
  w.warmup_runs = get_number<int>(t, "warmup_runs", w.warmup_runs, path, 0);
  if (const auto* shrink = get_table(t, "shrink", path)) {
    w.shrink_args = get_string_array(*shrink, "args", path);
    if (const auto* env = get_table(*shrink, "env", path)) {
      for (const auto& [k, v] : *env) {
        auto s = v.value<std::string>();
        if (!s) throw ConfigError(where_of(path, "shrink.env." + std::string(k.str())) + " must be a string");
        w.shrink_env[std::string(k.str())] = expand_env(*s, where_of(path, "shrink.env"));
      }
    }
  }
  if (const auto* lim = get_table(t, "limits", path)) {
    w.limits.memory_mb = get_number<int>(*lim, "memory_mb", w.limits.memory_mb, path, 16);
    w.limits.cpu_seconds = get_number<int>(*lim, "cpu_seconds", w.limits.cpu_seconds, path, 1);
    w.limits.nofile = get_number<int>(*lim, "nofile", w.limits.nofile, path, 16);
    w.limits.nproc = get_number<int>(*lim, "nproc", w.limits.nproc, path, 1);
    w.limits.cpus = get_number<double>(*lim, "cpus", w.limits.cpus, path, 0.0);
    if (!(w.limits.cpus <= 4096)) throw ConfigError(where_of(path, "cpus") + " must be at most 4096");
  }
  w.policy = read_policy(get_table(t, "policy", path), default_policy, path);
  if (auto node = t["dependencies"]) {
    const toml::array* arr = node.as_array();
    if (!arr || !arr->is_array_of_tables())
      throw ConfigError(where_of(path, "dependencies") + " must be an array of tables: [[dependencies]] repo = \"...\" path = \"...\"");
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const toml::table& d = *arr->get(i)->as_table();
      const std::string where = "dependencies[" + std::to_string(i) + "]";
      WorkflowDependency dep;
      dep.repo = get_string(d, "repo", "", path);
      if (dep.repo.empty()) throw ConfigError(where_of(path, where + ".repo") + " is required (a repository of server.toml)");
      if (dep.repo == w.repo)
        throw ConfigError(where_of(path, where + ".repo") + " is the workflow's own repository '" + w.repo + "'");
      dep.path = get_string(d, "path", "", path);
      if (!is_plain_relative_path(dep.path) || dep.path.size() > 1000 || dep.path == ".git" || dep.path.starts_with(".git/"))
        throw ConfigError(where_of(path, where + ".path") + " must be a relative path inside the workflow's repository "
                          "without '..' or '.' parts, not .git (e.g. \"third_party/" + dep.repo + "\"), not '" + dep.path + "'");
      dep.ref = get_string(d, "ref", "", path);
      for (const auto& k : d)
        if (k.first != "repo" && k.first != "path" && k.first != "ref")
          throw ConfigError(where_of(path, where + "." + std::string(k.first.str())) + " is not a dependency's key (repo, path, ref)");
      for (const auto& other : w.dependencies) {
        if (other.repo == dep.repo) throw ConfigError(where_of(path, where) + ": repository '" + dep.repo + "' is listed twice");
        if (other.path == dep.path || dep.path.starts_with(other.path + "/") || other.path.starts_with(dep.path + "/"))
          throw ConfigError(where_of(path, where + ".path") + " '" + dep.path + "' overlaps '" + other.path + "' of '" + other.repo + "'");
      }
      w.dependencies.push_back(std::move(dep));
    }
  }
  return w;
}

const WorkflowDependency* WorkflowConfig::dependency(const std::string& repo_name) const {
  for (const auto& d : dependencies)
    if (d.repo == repo_name) return &d;
  return nullptr;
}

ServerConfig load_server_config(const std::string& path) {
  if (!fs::exists(path)) throw ConfigError("configuration file " + path + " does not exist");
  toml::table t = parse_file(path);
  ServerConfig c;
  if (const auto* s = get_table(t, "server", path)) {
    std::string listen = get_string(*s, "listen", "127.0.0.1:8080", path);
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw ConfigError(where_of(path, "server.listen") + " must be HOST:PORT");
    c.listen_host = listen.substr(0, colon);
    try {
      int port = std::stoi(listen.substr(colon + 1));
      if (port < 0 || port > 65535) throw std::out_of_range("port");
      c.listen_port = static_cast<unsigned short>(port);
    } catch (const std::exception&) {
      throw ConfigError(where_of(path, "server.listen") + " has a bad port: '" + listen + "'");
    }
    c.io_threads = get_number<int>(*s, "threads", c.io_threads, path, 1);
    c.blocking_threads = get_number<int>(*s, "blocking_threads", c.blocking_threads, path, 1);
    c.body_limit_bytes = static_cast<std::size_t>(get_number<int64_t>(*s, "body_limit_bytes", static_cast<int64_t>(c.body_limit_bytes), path, 1024));
    c.read_timeout_seconds = get_number<int>(*s, "read_timeout_seconds", c.read_timeout_seconds, path, 1);
    c.public_url = get_string(*s, "public_url", "", path);
    c.open_reads = get_bool(*s, "open_reads", c.open_reads, path);
    c.tls_cert_file = get_string(*s, "tls_cert_file", "", path);
    c.tls_key_file = get_string(*s, "tls_key_file", "", path);
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
      throw ConfigError(where_of(path, "server.tls_cert_file") + " and server.tls_key_file go together: set both for HTTPS, or neither");
  }
  if (c.public_url.empty())
    c.public_url = std::string(c.tls_cert_file.empty() ? "http" : "https") + "://" + c.listen_host + ":" + std::to_string(c.listen_port);
  if (const auto* d = get_table(t, "database", path)) {
    c.database_dsn = get_string(*d, "dsn", "", path);
    c.database_pool_size = get_number<int>(*d, "pool_size", c.database_pool_size, path, 1);
  }
  if (c.database_dsn.empty()) throw ConfigError(where_of(path, "database.dsn") + " is required");
  if (const auto* s = get_table(t, "scheduler", path)) {
    c.lease_seconds = get_number<int>(*s, "lease_seconds", c.lease_seconds, path, 2);
    c.max_attempts = get_number<int>(*s, "max_attempts", c.max_attempts, path, 1);
    c.scheduler_tick_ms = get_number<int>(*s, "tick_ms", c.scheduler_tick_ms, path, 10);
    c.worker_alive_seconds = get_number<int>(*s, "worker_alive_seconds", c.worker_alive_seconds, path, 1);
    c.auto_recalibrate = get_bool(*s, "auto_recalibrate", c.auto_recalibrate, path);
  }
  c.alerts = read_alerts(get_table(t, "alerts", path), path);
  c.bisect = read_bisect(get_table(t, "bisect", path), path);
  fs::path base = fs::path(path).parent_path();
  if (const auto* g = get_table(t, "git", path)) c.git_cache_dir = get_string(*g, "cache_dir", "", path);
  if (c.git_cache_dir.empty()) throw ConfigError(where_of(path, "git.cache_dir") + " is required");

  if (const auto* repos = get_table(t, "repos", path)) {
    for (const auto& [name, node] : *repos) {
      const toml::table* r = node.as_table();
      std::string key = "repos." + std::string(name.str());
      if (!r) throw ConfigError(where_of(path, key) + " must be a table");
      RepoConfig rc;
      rc.name = std::string(name.str());
      rc.url = get_string(*r, "url", "", path);
      if (rc.url.empty()) throw ConfigError(where_of(path, key + ".url") + " is required");
      rc.default_branch = get_string(*r, "default_branch", "main", path);
      rc.description = get_string(*r, "description", "", path);
      rc.alerts = read_repo_alerts(get_table(*r, "alerts", path), key + ".alerts", path);
      c.repos[rc.name] = rc;
    }
  }
  WorkflowPolicy default_policy;
  int default_warmup = 1;
  if (const auto* d = get_table(t, "defaults", path)) {
    default_policy = read_policy(get_table(*d, "policy", path), default_policy, path);
    if (d->contains("runs_per_arm"))
      throw ConfigError(where_of(path, "defaults.runs_per_arm") +
                        " is gone: set [defaults.policy] runs_per_block and max_runs_per_arm");
    default_warmup = get_number<int>(*d, "warmup_runs", default_warmup, path, 0);
  }
  std::string wf_dir = "workflows";
  if (const auto* w = get_table(t, "workflows", path)) wf_dir = get_string(*w, "dir", wf_dir, path);
  fs::path dir = fs::path(wf_dir).is_absolute() ? fs::path(wf_dir) : base / wf_dir;
  std::error_code dir_ec;
  if (!fs::is_directory(dir, dir_ec))
    throw ConfigError(where_of(path, "workflows.dir") + ": " + dir.string() + " is not a directory" +
                      (dir_ec ? " (" + dir_ec.message() + ")" : ""));
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, dir_ec), end; !dir_ec && it != end; it.increment(dir_ec)) {
    if (it->path().extension() == ".toml") files.push_back(it->path());
  }
  if (dir_ec) throw ConfigError(where_of(path, "workflows.dir") + ": cannot list " + dir.string() + ": " + dir_ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    // Defaults come from server.toml; a workflow's own keys win.
    toml::table raw = parse_file(f.string());
    WorkflowConfig w = load_workflow_file(f.string(), default_policy);
    if (!raw.contains("warmup_runs")) w.warmup_runs = default_warmup;
    if (!c.repos.count(w.repo)) throw ConfigError(f.string() + ": repo '" + w.repo + "' is not defined in " + path);
    for (const auto& d : w.dependencies)
      if (!c.repos.count(d.repo))
        throw ConfigError(f.string() + ": dependency repo '" + d.repo + "' is not defined in " + path);
    if (c.workflows.count(w.name)) throw ConfigError(f.string() + ": workflow '" + w.name + "' is defined twice");
    c.workflows[w.name] = std::move(w);
  }
  return c;
}

json::object WorkflowConfig::to_job_json() const {
  json::array cmd;
  for (const auto& a : command) cmd.emplace_back(a);
  for (const auto& a : shrink_args) cmd.emplace_back(a);
  json::array build;
  for (const auto& a : build_command) build.emplace_back(a);
  json::object env;
  for (const auto& [k, v] : shrink_env) env[k] = v;
  json::object limits_json{{"memory_mb", limits.memory_mb},
                           {"cpu_seconds", limits.cpu_seconds},
                           {"nofile", limits.nofile},
                           {"nproc", limits.nproc}};
  if (limits.cpus > 0) limits_json["cpus"] = limits.cpus;
  return json::object{
      {"name", name},
      {"command", std::move(cmd)},
      {"build_command", std::move(build)},
      {"workdir", workdir},
      {"env", std::move(env)},
      {"probe", probe},
      {"first_batch_regex", first_batch_regex},
      {"stop_after_first_batch", stop_after_first_batch},
      {"timeout_seconds", timeout_seconds},
      {"build_timeout_seconds", build_timeout_seconds},
      {"network", network},
      {"limits", limits_json},
  };
}

json::object WorkflowConfig::to_api_json() const {
  json::object o = to_job_json();
  o["repo"] = repo;
  o["description"] = description;
  json::array shrink;
  for (const auto& a : shrink_args) shrink.emplace_back(a);
  o["shrink_args"] = std::move(shrink);
  o["warmup_runs"] = warmup_runs;
  json::array deps;
  for (const auto& d : dependencies) deps.push_back(json::object{{"repo", d.repo}, {"path", d.path}, {"ref", d.ref}});
  o["dependencies"] = std::move(deps);
  o["policy"] = json::object{{"alpha", policy.alpha},
                             {"detection_floor_pct", policy.detection_floor_pct},
                             {"equivalence_margin_pct", policy.equivalence_margin_pct},
                             {"confidence", policy.confidence},
                             {"fp_budget_per_week", policy.fp_budget_per_week},
                             {"tests_per_week", policy.tests_per_week},
                             {"runs_per_block", policy.runs_per_block},
                             {"max_runs_per_arm", policy.max_runs_per_arm},
                             {"spending", policy.spending},
                             {"confirm", policy.confirm},
                             {"rerun_alpha", policy.rerun_alpha},
                             {"cpu_time_alpha_share", policy.cpu_time_alpha_share},
                             {"tail_alpha_share", policy.tail_alpha_share},
                             {"max_rerun_runs_per_arm", policy.max_rerun_runs_per_arm},
                             {"calibration_runs_per_arm", policy.calibration_runs_per_arm},
                             {"calibration_batches", policy.calibration_batches},
                             {"recalibrate_after_days", policy.recalibrate_after_days},
                             {"recalibrate_after_experiments", policy.recalibrate_after_experiments}};
  return o;
}

}  // namespace ttfb
