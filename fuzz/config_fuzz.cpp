// Fuzz target: the TOML configuration (server/config.hpp): ttfb::load_server_config and
// ttfb::load_workflow_file on one document, written once per input to a file in a private
// temporary directory (the loaders take a path) beside an empty workflows/ directory.
// ConfigError for bad input is the contract; any other exception, or a crash, is a finding.
// Asserts of what is accepted: the limits the loaders promise (threads >= 1, lease >= 2 s,
// runs_per_block >= 2 <= max_runs_per_arm, alpha < 0.5, probe fd|stdout, a stdout probe's regex
// compiles, a relative workdir without "..", every workflow's repository defined), that each
// integer read is the file's integer (not silently wrapped), and that the workflow's JSON for
// workers and for the API serialises. Input: the TOML text.
//
// Inputs with a byte above 0x7F are skipped: toml++ 3.3 (Debian 12) reaches TOML_UNREACHABLE
// (__builtin_unreachable) in is_non_ascii_horizontal_whitespace() for some non-ASCII characters
// where a key or whitespace may start (fuzz/corpus/config/regression-toml-nonascii-bare-key;
// marzer/tomlplusplus#190, fixed in 3.4). Debian's build happens to report a parse error there
// (checked with ttfb-lab-server), and the loaders only copy and compare strings.
#include "fuzz/check.hpp"
#include "server/config.hpp"

#include <boost/json.hpp>
#include <toml++/toml.h>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

namespace fs = std::filesystem;

namespace {

std::string g_dir;   // the private temporary directory
std::string g_file;  // g_dir/server.toml: the input

void remove_dir() {
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

// The integer at `path` in the document, when it is one ("server.threads").
std::optional<std::int64_t> file_int(const toml::table& t, std::string_view path) {
  return t.at_path(path).value_exact<std::int64_t>();
}

void check_int(const toml::table& t, std::string_view path, long long value) {
  const auto v = file_int(t, path);
  FUZZ_CHECK(!v || *v == value, "%.*s = %lld in the file, %lld in the configuration", static_cast<int>(path.size()),
             path.data(), static_cast<long long>(*v), value);
}

void check_workflow(const ttfb::WorkflowConfig& w, const toml::table* t) {
  FUZZ_CHECK(!w.name.empty() && !w.repo.empty() && !w.command.empty(), "a workflow without name, repo or command");
  FUZZ_CHECK(w.probe == "fd" || w.probe == "stdout", "probe '%s'", w.probe.c_str());
  if (w.probe == "stdout") {
    try {
      std::regex re(w.first_batch_regex);
    } catch (const std::regex_error&) {
      FUZZ_CHECK(false, "an accepted first_batch_regex does not compile");
    }
  }
  FUZZ_CHECK(!fs::path(w.workdir).is_absolute() && w.workdir.find("..") == std::string::npos, "workdir '%s'",
             w.workdir.c_str());
  FUZZ_CHECK(w.timeout_seconds >= 1 && w.build_timeout_seconds >= 1 && w.warmup_runs >= 0, "a time limit below its minimum");
  FUZZ_CHECK(w.limits.memory_mb >= 16 && w.limits.cpu_seconds >= 1 && w.limits.nofile >= 16 && w.limits.nproc >= 1,
             "a resource limit below its minimum");
  FUZZ_CHECK(w.limits.cpus >= 0 && w.limits.cpus <= 4096, "limits.cpus %g out of range", w.limits.cpus);
  const auto& p = w.policy;
  FUZZ_CHECK(p.alpha > 0 && p.alpha < 0.5 && p.confidence >= 0.5 && p.confidence < 1, "alpha or confidence out of range");
  FUZZ_CHECK(p.runs_per_block >= 2 && p.max_runs_per_arm >= p.runs_per_block, "runs_per_block %d, max_runs_per_arm %d",
             p.runs_per_block, p.max_runs_per_arm);
  FUZZ_CHECK(p.spending == "pocock" || p.spending == "obrien_fleming", "spending '%s'", p.spending.c_str());
  if (t) {
    check_int(*t, "timeout_seconds", w.timeout_seconds);
    check_int(*t, "build_timeout_seconds", w.build_timeout_seconds);
    check_int(*t, "warmup_runs", w.warmup_runs);
    check_int(*t, "limits.memory_mb", w.limits.memory_mb);
    check_int(*t, "limits.cpu_seconds", w.limits.cpu_seconds);
    check_int(*t, "limits.nofile", w.limits.nofile);
    check_int(*t, "limits.nproc", w.limits.nproc);
    check_int(*t, "policy.runs_per_block", p.runs_per_block);
    check_int(*t, "policy.max_runs_per_arm", p.max_runs_per_arm);
  }
  (void)boost::json::serialize(w.to_job_json());
  (void)boost::json::serialize(w.to_api_json());
}

void check_server(const ttfb::ServerConfig& c, const toml::table& t) {
  FUZZ_CHECK(c.io_threads >= 1 && c.blocking_threads >= 1 && c.read_timeout_seconds >= 1, "a server count below 1");
  FUZZ_CHECK(c.body_limit_bytes >= 1024, "body_limit_bytes %zu", c.body_limit_bytes);
  FUZZ_CHECK(c.lease_seconds >= 2 && c.max_attempts >= 1 && c.scheduler_tick_ms >= 10, "a scheduler value below its minimum");
  FUZZ_CHECK(!c.database_dsn.empty() && !c.git_cache_dir.empty(), "no database or git cache");
  FUZZ_CHECK(c.bisect.max_parallel_probes >= 1 && c.bisect.max_parallel_probes <= 64, "max_parallel_probes %d",
             c.bisect.max_parallel_probes);
  check_int(t, "server.threads", c.io_threads);
  check_int(t, "server.blocking_threads", c.blocking_threads);
  check_int(t, "server.body_limit_bytes", static_cast<long long>(c.body_limit_bytes));
  check_int(t, "server.read_timeout_seconds", c.read_timeout_seconds);
  check_int(t, "database.pool_size", c.database_pool_size);
  check_int(t, "scheduler.lease_seconds", c.lease_seconds);
  check_int(t, "scheduler.max_attempts", c.max_attempts);
  check_int(t, "scheduler.tick_ms", c.scheduler_tick_ms);
  check_int(t, "alerts.max_attempts", c.alerts.max_attempts);
  check_int(t, "alerts.poll_ms", c.alerts.poll_ms);
  check_int(t, "bisect.max_parallel_probes", c.bisect.max_parallel_probes);
  check_int(t, "bisect.max_runs_per_commit", c.bisect.max_runs_per_commit);
  for (const auto& [name, r] : c.repos) FUZZ_CHECK(!r.url.empty(), "repository '%s' without a url", name.c_str());
  for (const auto& [name, w] : c.workflows) {
    FUZZ_CHECK(c.repos.count(w.repo) == 1, "workflow '%s' names an undefined repository", name.c_str());
    check_workflow(w, nullptr);
  }
}

template <typename F>
void expect_value_or_config_error(F&& load) {
  try {
    load();
  } catch (const ttfb::ConfigError&) {
    // The contract for bad input.
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string pattern = (fs::temp_directory_path() / "ttfb-config-fuzz-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  g_dir = pattern;
  g_file = g_dir + "/server.toml";
  fs::create_directory(g_dir + "/workflows");
  std::atexit(remove_dir);
  // ${VAR} in the seeds (tests/data/config/good/server.toml) resolves; others are ConfigErrors.
  ::setenv("TTFB_TEST_DBNAME", "ttfb_fuzz", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (std::size_t i = 0; i < size; ++i)
    if (data[i] > 0x7F) return -1;  // toml++ 3.3's unreachable, see the top of this file; -1: not kept
  {
    std::ofstream out(g_file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  // The fuzzer's own reading of the document, to compare integers with.
  toml::table doc;
  bool parsed = true;
  try {
    doc = toml::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const toml::parse_error&) {
    parsed = false;
  }
  expect_value_or_config_error([&] {
    const auto w = ttfb::load_workflow_file(g_file);
    FUZZ_CHECK(parsed, "a workflow file toml++ cannot parse was accepted");
    check_workflow(w, &doc);
  });
  expect_value_or_config_error([&] {
    const auto c = ttfb::load_server_config(g_file);
    FUZZ_CHECK(parsed, "a server configuration toml++ cannot parse was accepted");
    check_server(c, doc);
  });
  return 0;
}
