#include "server/config.hpp"
#include "server/scheduler/plan.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ttfb {
namespace {

const std::string kData = TTFB_LAB_TEST_DATA "/config";

TEST(Config, ReadsServerReposWorkflowsDefaultsAndOverrides) {
  setenv("TTFB_TEST_DBNAME", "ttfb_x", 1);
  ServerConfig c = load_server_config(kData + "/good/server.toml");
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 9123);
  EXPECT_EQ(c.io_threads, 3);
  EXPECT_EQ(c.database_dsn, "host=/tmp dbname=ttfb_x");  // ${VAR} expanded
  EXPECT_EQ(c.public_url, "http://127.0.0.1:9123");
  ASSERT_EQ(c.repos.count("demo"), 1u);
  EXPECT_EQ(c.repos.at("demo").default_branch, "trunk");
  ASSERT_EQ(c.workflows.count("fast"), 1u);
  const WorkflowConfig& w = c.workflows.at("fast");
  EXPECT_EQ(w.policy.runs_per_block, 12) << "from [defaults.policy]";
  EXPECT_EQ(w.policy.max_runs_per_arm, 48) << "from [defaults.policy]";
  EXPECT_DOUBLE_EQ(w.policy.fp_budget_per_week, 2.0) << "from [defaults.policy]";
  EXPECT_EQ(w.policy.spending, "pocock") << "the built-in default";
  EXPECT_EQ(w.warmup_runs, 2) << "the workflow's own key wins";
  EXPECT_DOUBLE_EQ(w.policy.alpha, 0.05) << "from [defaults.policy]";
  EXPECT_DOUBLE_EQ(w.policy.detection_floor_pct, 5.0) << "the workflow's override";
  EXPECT_DOUBLE_EQ(w.policy.equivalence_margin_pct, 2.5) << "the server's default";
  EXPECT_EQ(w.probe, "stdout");
  auto job = w.to_job_json();
  const auto& cmd = job.at("command").as_array();
  ASSERT_EQ(cmd.size(), 3u);
  EXPECT_EQ(cmd[2].as_string(), "--tiny") << "shrink args are appended";
  EXPECT_EQ(job.at("env").as_object().at("SEED").as_string(), "1");
  // [limits] cpus (a cgroup CPU quota) reaches the worker; left out it is not sent at all.
  EXPECT_DOUBLE_EQ(w.limits.cpus, 1.5);
  EXPECT_DOUBLE_EQ(job.at("limits").as_object().at("cpus").to_number<double>(), 1.5);
  EXPECT_EQ(job.at("limits").as_object().at("memory_mb").as_int64(), 4096) << "the default";
  WorkflowConfig plain = w;
  plain.limits.cpus = 0;
  EXPECT_FALSE(plain.to_job_json().at("limits").as_object().contains("cpus"));
}

TEST(Config, UnsetVariableIsNamed) {
  unsetenv("TTFB_TEST_DBNAME");
  try {
    load_server_config(kData + "/good/server.toml");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("TTFB_TEST_DBNAME"), std::string::npos) << e.what();
  }
}

// The server's [server] table alone, in a throwaway file.
ServerConfig server_config_with(const std::string& server_table) {
  const auto dir = std::filesystem::temp_directory_path() / ("ttfb-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "workflows");
  std::ofstream(dir / "server.toml") << "[server]\n" << server_table << "\n[database]\ndsn = \"dbname=x\"\n[git]\ncache_dir = \"/tmp/x\"\n"
                                     << "[workflows]\ndir = \"" << (dir / "workflows").string() << "\"\n";
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  return load_server_config((dir / "server.toml").string());
}

TEST(Config, TlsFilesGoTogetherAndMakeThePublicUrlHttps) {
  const ServerConfig tls = server_config_with("listen = \"0.0.0.0:8443\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"");
  EXPECT_EQ(tls.tls_cert_file, "/c.pem");
  EXPECT_EQ(tls.public_url, "https://0.0.0.0:8443");
  const ServerConfig plain = server_config_with("listen = \"127.0.0.1:8080\"");
  EXPECT_EQ(plain.public_url, "http://127.0.0.1:8080");
  EXPECT_FALSE(plain.open_reads) << "reads need a token unless a configuration opens them";
  try {
    server_config_with("tls_cert_file = \"/c.pem\"");
    FAIL() << "a certificate without its key must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("go together"), std::string::npos) << e.what();
  }
}

TEST(Config, NumbersThatDoNotFitTheirSettingAreRefusedNotWrapped) {
  // Found by config_fuzz: 4294967297 threads became 1.
  for (const char* table : {"threads = 4294967297", "read_timeout_seconds = -2147461248039", "threads = 9223372036854775807"}) {
    try {
      server_config_with(table);
      ADD_FAILURE() << table << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
    }
  }
}

TEST(Config, AWorkflowsDirThatCannotBeReadIsAConfigError) {
  // A path longer than PATH_MAX made std::filesystem throw its own exception type.
  const auto dir = std::filesystem::temp_directory_path() / ("ttfb-config-long-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "server.toml") << "[database]\ndsn = \"dbname=x\"\n[workflows]\ndir = \"/" << std::string(5000, 'a') << "\"\n";
  EXPECT_THROW(load_server_config((dir / "server.toml").string()), ConfigError);
  std::filesystem::remove_all(dir);
}

void expect_config_error(const std::string& file, const std::string& text) {
  try {
    load_workflow_file(kData + "/bad/" + file);
    FAIL() << file << ": expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << "the message names the file: " << e.what();
  }
}

TEST(Config, BadWorkflowsSayWhatIsWrong) {
  expect_config_error("bad_probe.toml", "probe must be \"fd\" or \"stdout\"");
  expect_config_error("stdout_no_regex.toml", "first_batch_regex is required");
  expect_config_error("syntax.toml", ":1:");
  expect_config_error("command_not_array.toml", "command must be an array of strings");
  expect_config_error("negative_cpus.toml", "cpus must be at least");
  expect_config_error("min_effect_pct.toml", "policy.min_effect_pct is gone");
  expect_config_error("min_effect_pct.toml", "set detection_floor_pct");
  expect_config_error("cpu_share_one.toml", "policy.cpu_time_alpha_share");
  expect_config_error("cpu_share_one.toml", "must be below 1");
  expect_config_error("cpu_share_negative.toml", "cpu_time_alpha_share");
  expect_config_error("shares_too_large.toml", "must together be below 1");
}

TEST(Config, TheSharesOfAlphaDefaultTo15And5PercentAndAreFrozenIntoEachDesign) {
  WorkflowConfig w = load_workflow_file(kData + "/good/workflows/fast.toml");
  EXPECT_DOUBLE_EQ(w.policy.cpu_time_alpha_share, 0.15);
  EXPECT_DOUBLE_EQ(w.policy.tail_alpha_share, 0.05);
  EXPECT_DOUBLE_EQ(w.to_api_json().at("policy").at("cpu_time_alpha_share").as_double(), 0.15);
  EXPECT_DOUBLE_EQ(w.to_api_json().at("policy").at("tail_alpha_share").as_double(), 0.05);
  EXPECT_DOUBLE_EQ(design_snapshot(w, std::nullopt, std::nullopt, std::nullopt).at("tail_alpha_share").as_double(), 0.05);
  w.policy.cpu_time_alpha_share = 0.0;
  EXPECT_DOUBLE_EQ(design_snapshot(w, std::nullopt, std::nullopt, std::nullopt).at("cpu_time_alpha_share").as_double(), 0.0);
}

TEST(Config, MissingFileIsAClearError) {
  EXPECT_THROW(load_server_config(kData + "/nope.toml"), ConfigError);
}

TEST(Config, TheShippedConfigsLoad) {
  setenv("TTFB_LAB_DIR", "/tmp/ttfb-lab-test", 1);
  setenv("TTFB_LAB_DSN", "dbname=x", 1);
  setenv("TTFB_LAB_LISTEN", "127.0.0.1:8080", 1);
  setenv("TTFB_LAB_PUBLIC_URL", "http://127.0.0.1:8080", 1);
  setenv("TTFB_LAB_WEBHOOK_URL", "http://127.0.0.1:8089/hook", 1);
  setenv("TTFB_LAB_SMTP_URL", "smtp://127.0.0.1:8025", 1);
  ServerConfig c = load_server_config(TTFB_LAB_SOURCE_DIR "/configs/lab/server.toml");
  EXPECT_EQ(c.workflows.count("example-train"), 1u);
  EXPECT_EQ(c.workflows.at("example-train").repo, "example");
  EXPECT_EQ(c.repos.at("example").alerts.webhook_url, "http://127.0.0.1:8089/hook");
  EXPECT_EQ(c.repos.at("example").alerts.smtp_url, "smtp://127.0.0.1:8025");
}

// A workflow file of `body` (after name/repo/command) in a fresh directory, loaded.
WorkflowConfig workflow_with(const std::string& body) {
  const auto dir = std::filesystem::temp_directory_path() / ("ttfb-config-deps-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto file = dir / "uses-deps.toml";
  std::ofstream(file) << "name = \"uses-deps\"\nrepo = \"trainer\"\ncommand = [\"python3\", \"train.py\"]\n" << body;
  return load_workflow_file(file.string());
}

std::string dependency_error(const std::string& body) {
  try {
    workflow_with(body);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Config, DependenciesArePlacedAtAPlainRelativePathAndShownInTheApi) {
  const WorkflowConfig w = workflow_with(
      "[[dependencies]]\nrepo = \"dataload\"\npath = \"third_party/dataload\"\n"
      "[[dependencies]]\nrepo = \"launcher\"\npath = \"launch\"\nref = \"v2\"\n");
  ASSERT_EQ(w.dependencies.size(), 2u);
  EXPECT_EQ(w.dependencies[0].repo, "dataload");
  EXPECT_EQ(w.dependencies[0].path, "third_party/dataload");
  EXPECT_EQ(w.dependencies[0].ref, "");
  EXPECT_EQ(w.dependencies[1].ref, "v2");
  ASSERT_NE(w.dependency("launcher"), nullptr);
  EXPECT_EQ(w.dependency("launcher")->path, "launch");
  EXPECT_EQ(w.dependency("nope"), nullptr);
  const boost::json::object shown = w.to_api_json();
  const auto& api = shown.at("dependencies").as_array();
  ASSERT_EQ(api.size(), 2u);
  EXPECT_EQ(api[1].at("ref").as_string(), "v2");
  // Workers learn of dependencies through the arms, not the workflow.
  EXPECT_FALSE(w.to_job_json().contains("dependencies"));
  EXPECT_TRUE(workflow_with("").dependencies.empty());
}

TEST(Config, ADependencyOutsideTheRunsCopyOrOverlappingAnotherIsRefused) {
  for (const char* path : {"../up", "/abs", "a/../b", "a/./b", "a//b", ".git", ".git/hooks", ""}) {
    const std::string e = dependency_error(std::string("[[dependencies]]\nrepo = \"dataload\"\npath = \"") + path + "\"\n");
    EXPECT_NE(e.find("dependencies[0].path must be a relative path"), std::string::npos) << path << ": " << e;
  }
  EXPECT_NE(dependency_error("[[dependencies]]\npath = \"x\"\n").find("dependencies[0].repo is required"), std::string::npos);
  EXPECT_NE(dependency_error("[[dependencies]]\nrepo = \"trainer\"\npath = \"x\"\n").find("the workflow's own repository"),
            std::string::npos);
  EXPECT_NE(dependency_error("[[dependencies]]\nrepo = \"a\"\npath = \"x\"\n[[dependencies]]\nrepo = \"a\"\npath = \"y\"\n")
                .find("listed twice"),
            std::string::npos);
  EXPECT_NE(dependency_error("[[dependencies]]\nrepo = \"a\"\npath = \"x\"\n[[dependencies]]\nrepo = \"b\"\npath = \"x/y\"\n")
                .find("overlaps"),
            std::string::npos);
  EXPECT_NE(dependency_error("[[dependencies]]\nrepo = \"a\"\npath = \"x\"\npythonpath = true\n").find("not a dependency's key"),
            std::string::npos);
  EXPECT_NE(dependency_error("dependencies = \"dataload\"\n").find("must be an array of tables"), std::string::npos);
}

TEST(Config, ADependencyRepositoryMustBeConfigured) {
  const auto dir = std::filesystem::temp_directory_path() / ("ttfb-config-deprepo-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "wf");
  std::ofstream(dir / "wf" / "w.toml") << "repo = \"trainer\"\ncommand = [\"python3\"]\n[[dependencies]]\nrepo = \"dataload\"\npath = \"dl\"\n";
  const std::string head = "[database]\ndsn = \"dbname=x\"\n[git]\ncache_dir = \"/tmp/x\"\n[workflows]\ndir = \"" + (dir / "wf").string() +
                           "\"\n[repos.trainer]\nurl = \"/tmp/trainer\"\n";
  std::ofstream(dir / "server.toml") << head;
  try {
    load_server_config((dir / "server.toml").string());
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dependency repo 'dataload' is not defined"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "server.toml") << head << "[repos.dataload]\nurl = \"/tmp/dataload\"\n";
  const ServerConfig c = load_server_config((dir / "server.toml").string());
  EXPECT_EQ(c.workflows.at("w").dependencies.at(0).repo, "dataload");
  std::filesystem::remove_all(dir);
}

TEST(Plan, EveryArmCarriesTheDependenciesAndOnlyTheCandidateTheChange) {
  ServerConfig config;
  config.repos["trainer"] = RepoConfig{"trainer", "/srv/trainer.git"};
  config.repos["dataload"] = RepoConfig{"dataload", "/srv/dataload.git"};
  config.repos["launcher"] = RepoConfig{"launcher", "/srv/launcher.git"};
  const std::string a(40, 'a'), b(40, 'b'), c(40, 'c'), d(40, 'd');
  const auto snapshot = boost::json::parse(R"({"dependencies": [
      {"repo": "dataload", "path": "third_party/dataload", "ref": "main", "commit": ")" + a + R"("},
      {"repo": "launcher", "path": "launch", "ref": "v2", "commit": ")" + b + R"("}]})").as_object();
  const DependencyChange change{"dataload", std::nullopt, c, ""};
  const ArmDependencies deps = arm_dependencies(config, snapshot, &change);
  ASSERT_EQ(deps.baseline.size(), 2u);
  ASSERT_EQ(deps.candidate.size(), 2u);
  EXPECT_EQ(deps.baseline[0].commit, a);
  EXPECT_EQ(deps.candidate[0].commit, c);
  EXPECT_EQ(deps.baseline[0].url, "/srv/dataload.git");
  EXPECT_EQ(deps.baseline[1].commit, b);
  EXPECT_EQ(deps.candidate[1].commit, b) << "the dependency not changed is the same on both arms";
  // A diff instead: the baseline's commit, patched, on the candidate only.
  const DependencyChange patch{"dataload", std::nullopt, "", "--- a/x\n+++ b/x\n"};
  const ArmDependencies patched = arm_dependencies(config, snapshot, &patch);
  EXPECT_EQ(patched.candidate[0].commit, a);
  EXPECT_EQ(patched.candidate[0].diff, patch.diff);
  EXPECT_EQ(patched.baseline[0].diff, "");

  WorkflowConfig wf;
  wf.name = "w";
  wf.repo = "trainer";
  wf.command = {"python3", "train.py"};
  const auto payload = job_payload(config.repos.at("trainer"), wf, d, d, "", 1, 4, {}, deps);
  const auto& arms = payload.at("arms").as_object();
  const auto& base_deps = arms.at("baseline").at("dependencies").as_array();
  const auto& cand_deps = arms.at("candidate").at("dependencies").as_array();
  ASSERT_EQ(base_deps.size(), 2u);
  EXPECT_EQ(base_deps[0].at("repo").at("name").as_string(), "dataload");
  EXPECT_EQ(base_deps[0].at("repo").at("url").as_string(), "/srv/dataload.git");
  EXPECT_EQ(base_deps[0].at("path").as_string(), "third_party/dataload");
  EXPECT_EQ(base_deps[0].at("commit").as_string(), a);
  EXPECT_EQ(cand_deps[0].at("commit").as_string(), c);
  // Without dependencies the arms are as they always were.
  EXPECT_FALSE(job_payload(config.repos.at("trainer"), wf, d, d, "", 1, 4).at("arms").at("baseline").as_object().contains(
      "dependencies"));
  // A snapshot whose dependency was never resolved, or whose repository is gone, is an error.
  EXPECT_THROW(arm_dependencies(config, boost::json::parse(R"({"dependencies": [{"repo": "dataload", "path": "x", "ref": ""}]})").as_object()),
               std::invalid_argument);
  config.repos.erase("launcher");
  EXPECT_THROW(arm_dependencies(config, snapshot), std::invalid_argument);
}

TEST(Plan, ScheduleWarmsUpThenInterleavesABBA) {
  auto s = interleaved_schedule(1, 4);
  ASSERT_EQ(s.size(), 10u);
  std::string order;
  for (const auto& r : s) {
    const auto& o = r.as_object();
    order += o.at("arm").as_string() == "baseline" ? (o.at("warmup").as_bool() ? 'a' : 'A') : (o.at("warmup").as_bool() ? 'b' : 'B');
    EXPECT_EQ(o.at("run_index").as_int64(), static_cast<long>(&r - &s[0]));
  }
  EXPECT_EQ(order, "abABBAABBA");
}

}  // namespace
}  // namespace ttfb
