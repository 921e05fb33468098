// The wire side of the worker: parsing the claim answer of docs/worker-protocol.md, the bodies it
// sends, and the retry rule for calls to the server.
#include "worker/protocol.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "worker/host.hpp"
#include "worker/server_api.hpp"

namespace ttfb::worker {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

// The example of docs/worker-protocol.md, comments removed.
const char* kDocJob = R"({"job": {
  "id": 17, "experiment_id": 5, "attempt": 1, "lease_id": "4f1c2a9e7b3d5f608a1b2c3d4e5f6071", "lease_seconds": 30,
  "repo": {"name": "example", "url": "/abs/path/or/url/of/repo"},
  "workflow": {
    "name": "example-train",
    "command": ["python3", "train.py", "--steps", "1"],
    "build_command": ["python3", "-m", "compileall", "-q", "."],
    "workdir": ".",
    "env": {"TRAINER_DEVICE": "cpu"},
    "probe": "fd",
    "first_batch_regex": "",
    "stop_after_first_batch": true,
    "timeout_seconds": 60,
    "build_timeout_seconds": 600,
    "limits": {"memory_mb": 2048, "cpu_seconds": 120, "nofile": 1024, "nproc": 256, "cpus": 1.5}
  },
  "arms": {
    "baseline":  {"commit": "1111111111111111111111111111111111111111", "diff": ""},
    "candidate": {"commit": "2222222222222222222222222222222222222222", "diff": "diff --git a/x b/x\n"}
  },
  "schedule": [
    {"run_index": 0, "arm": "baseline",  "warmup": true},
    {"run_index": 1, "arm": "candidate", "warmup": true},
    {"run_index": 2, "arm": "baseline",  "warmup": false},
    {"run_index": 3, "arm": "candidate", "warmup": false},
    {"run_index": 4, "arm": "candidate", "warmup": false},
    {"run_index": 5, "arm": "baseline",  "warmup": false}
  ]
}})";

TEST(ParseJob, ReadsTheDocumentedExample) {
  Job job = parse_job(kDocJob);
  EXPECT_EQ(job.id, 17);
  EXPECT_EQ(job.experiment_id, 5);
  EXPECT_EQ(job.attempt, 1);
  EXPECT_EQ(job.lease_seconds, 30);
  EXPECT_EQ(job.repo_name, "example");
  EXPECT_EQ(job.repo_url, "/abs/path/or/url/of/repo");
  EXPECT_EQ(job.workflow.name, "example-train");
  EXPECT_EQ(job.workflow.command, (std::vector<std::string>{"python3", "train.py", "--steps", "1"}));
  EXPECT_EQ(job.workflow.build_command.size(), 5u);
  EXPECT_EQ(job.workflow.env.at("TRAINER_DEVICE"), "cpu");
  EXPECT_EQ(job.workflow.probe, "fd");
  EXPECT_TRUE(job.workflow.stop_after_first_batch);
  EXPECT_EQ(job.workflow.timeout_seconds, 60);
  EXPECT_EQ(job.workflow.build_timeout_seconds, 600);
  EXPECT_EQ(job.workflow.limits.memory_mb, 2048u);
  EXPECT_EQ(job.workflow.limits.cpu_seconds, 120u);
  EXPECT_EQ(job.workflow.limits.nofile, 1024u);
  EXPECT_EQ(job.workflow.limits.nproc, 256u);
  EXPECT_DOUBLE_EQ(job.workflow.limits.cpus, 1.5);
  EXPECT_EQ(job.baseline.commit, std::string(40, '1'));
  EXPECT_EQ(job.candidate.diff, "diff --git a/x b/x\n");
  ASSERT_EQ(job.schedule.size(), 6u);
  EXPECT_EQ(job.schedule[1].arm, "candidate");
  EXPECT_TRUE(job.schedule[1].warmup);
  EXPECT_EQ(job.schedule[5].run_index, 5);
  EXPECT_FALSE(job.schedule[5].warmup);
}

TEST(ParseJob, OptionalFieldsTakeDefaults) {
  Job job = parse_job(R"({"job": {"id": 3, "lease_id": "x", "repo": {"url": "/r"},
    "workflow": {"command": ["true"], "build_command": null},
    "arms": {"baseline": {"commit": "a"}, "candidate": {"commit": "b"}},
    "schedule": [{"run_index": 0, "arm": "baseline"}]}})");
  EXPECT_EQ(job.lease_seconds, 30);
  EXPECT_TRUE(job.workflow.build_command.empty());
  EXPECT_EQ(job.workflow.workdir, ".");
  EXPECT_EQ(job.workflow.probe, "fd");
  EXPECT_EQ(job.workflow.timeout_seconds, 60);
  EXPECT_EQ(job.workflow.limits.memory_mb, 0u);
  EXPECT_EQ(job.workflow.limits.cpus, 0.0) << "no CPU quota unless the workflow sets one";
  EXPECT_EQ(job.candidate.diff, "");
  EXPECT_FALSE(job.schedule[0].warmup);
}

void expect_parse_error(const std::string& body, const std::string& words, std::optional<std::int64_t> id) {
  try {
    parse_job(body);
    ADD_FAILURE() << "expected JobParseError for " << body;
  } catch (const JobParseError& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    EXPECT_EQ(e.job_id(), id);
  }
}

TEST(ParseJob, SaysWhatIsWrongAndKeepsTheIdWhenKnown) {
  expect_parse_error("not json", "not JSON", std::nullopt);
  expect_parse_error(R"({"nojob": 1})", "body.job: missing", std::nullopt);
  const std::string good = kDocJob;
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  expect_parse_error(with(R"("command": ["python3", "train.py", "--steps", "1"])", R"("command": [])"),
                     "job.workflow.command: empty", 17);
  expect_parse_error(with(R"("probe": "fd")", R"("probe": "tcp")"), "job.workflow.probe", 17);
  expect_parse_error(with(R"("probe": "fd")", R"("probe": "stdout")"), "first_batch_regex: empty", 17);
  expect_parse_error(with(R"("timeout_seconds": 60)", R"("timeout_seconds": "60")"),
                     "job.workflow.timeout_seconds: expected an integer", 17);
  expect_parse_error(with(R"({"run_index": 4, "arm": "candidate")", R"({"run_index": 3, "arm": "candidate")"),
                     "duplicate 3", 17);
  expect_parse_error(with(R"({"run_index": 4, "arm": "candidate")", R"({"run_index": 4, "arm": "treatment")"),
                     "job.schedule[4].arm", 17);
  expect_parse_error(with(R"("memory_mb": 2048)", R"("memory_mb": -1)"), "memory_mb: expected a number >= 0", 17);
  expect_parse_error(with(R"("cpus": 1.5)", R"("cpus": -1)"), "limits.cpus: expected a number", 17);
  expect_parse_error(with(R"("cpus": 1.5)", R"("cpus": "2")"), "limits.cpus: expected a number", 17);
  expect_parse_error(with(R"("lease_id": "4f1c2a9e7b3d5f608a1b2c3d4e5f6071", )", ""), "job.lease_id: missing", 17);
  // A job that cannot be used can still be failed: its lease is read from what could be read.
  const auto lease = lease_in_claim(with(R"("probe": "fd")", R"("probe": "tcp")"));
  ASSERT_TRUE(lease);
  EXPECT_EQ(lease->id, "4f1c2a9e7b3d5f608a1b2c3d4e5f6071");
  EXPECT_EQ(lease->attempt, 1);
  EXPECT_FALSE(lease_in_claim("not json"));
}

TEST(ParseJob, TheCandidateArmsRuntime) {
  const std::string good = kDocJob;
  const std::string arm = R"("diff": "diff --git a/x b/x\n"})";
  auto candidate = [&](const std::string& extra) {
    std::string s = good;
    s.replace(s.find(arm), arm.size(), R"("diff": "diff --git a/x b/x\n", )" + extra + "}");
    return s;
  };
  Job job = parse_job(candidate(R"("env": {"OMP_NUM_THREADS": "1", "LANG": null}, "command_prefix": ["nice", "-n", "5"],
                                   "interpreter": ["python3", "-X", "importtime"])"));
  EXPECT_EQ(job.candidate.env.at("OMP_NUM_THREADS"), std::optional<std::string>("1"));
  ASSERT_TRUE(job.candidate.env.count("LANG"));
  EXPECT_FALSE(job.candidate.env.at("LANG").has_value());  // null: removed
  EXPECT_EQ(job.candidate.command_prefix, (std::vector<std::string>{"nice", "-n", "5"}));
  EXPECT_EQ(job.candidate.interpreter, (std::vector<std::string>{"python3", "-X", "importtime"}));
  EXPECT_TRUE(job.baseline.env.empty());
  // The probe's descriptor is the worker's, whatever the job says; words are never empty.
  expect_parse_error(candidate(R"("env": {"TTFB_PROBE_FD": "3"})"), "bad variable name 'TTFB_PROBE_FD'", 17);
  expect_parse_error(candidate(R"("env": {"A=B": "1"})"), "bad variable name", 17);
  expect_parse_error(candidate(R"("env": {"X": 1})"), "job.arms.candidate.env.X: expected a string", 17);
  expect_parse_error(candidate(R"("command_prefix": "nice -n 5")"), "command_prefix: expected an array", 17);
  expect_parse_error(candidate(R"("interpreter": [""])"), "an empty word", 17);
}

TEST(ParseJob, AnArmsDependenciesAndWhereTheyGo) {
  const std::string good = kDocJob;
  const std::string arm = R"("diff": "diff --git a/x b/x\n"})";
  auto candidate = [&](const std::string& deps) {
    std::string s = good;
    s.replace(s.find(arm), arm.size(), R"("diff": "diff --git a/x b/x\n", "dependencies": )" + deps + "}");
    return s;
  };
  const std::string sha(40, 'c');
  Job job = parse_job(candidate(R"([{"repo": {"name": "dataload", "url": "/srv/dataload.git"}, "commit": ")" + sha +
                                R"(", "diff": "", "path": "third_party/dataload"}])"));
  ASSERT_EQ(job.candidate.dependencies.size(), 1u);
  const ArmDependency& d = job.candidate.dependencies[0];
  EXPECT_EQ(d.repo_name, "dataload");
  EXPECT_EQ(d.repo_url, "/srv/dataload.git");
  EXPECT_EQ(d.commit, sha);
  EXPECT_EQ(d.path, "third_party/dataload");
  EXPECT_TRUE(job.baseline.dependencies.empty());
  auto with_path = [&](const std::string& path) {
    return candidate(R"([{"repo": {"name": "dataload", "url": "/d"}, "commit": ")" + sha + R"(", "path": ")" + path + R"("}])");
  };
  for (const char* bad : {"../up", "/abs", "a/../b", "a/./b", "a//b", ".git/x", ""})
    expect_parse_error(with_path(bad), "dependencies[0].path: expected a relative path", 17);
  expect_parse_error(candidate(R"({"repo": "dataload"})"), "dependencies: expected an array", 17);
  expect_parse_error(candidate(R"([{"repo": {"name": "d", "url": "/d"}, "path": "x"}])"), "dependencies[0].commit: missing", 17);
}

TEST(Bodies, MatchTheProtocol) {
  HostFacts h{"w1", "box-3", "AMD EPYC 7B13", "6.1.0-18-amd64", 2, "0.1.0"};
  EXPECT_EQ(json::parse(claim_body(h)),
            json::parse(R"({"worker": {"name": "w1", "host": "box-3", "cpu_model": "AMD EPYC 7B13",
                                       "kernel": "6.1.0-18-amd64", "cores": 2, "version": "0.1.0"}})"));
  const JobLease lease{"ab12", 2};
  EXPECT_EQ(json::parse(heartbeat_body("w1", lease, 4, 22)),
            json::parse(R"({"worker": "w1", "lease_id": "ab12", "attempt": 2, "done": 4, "total": 22})"));
  Sample s;
  s.run_index = 2;
  s.arm = "baseline";
  s.ttfb_ms = 143.25;
  s.phases = {{"imports", 61.0}, {"config", 3.25}};
  s.cpu_ms = 120.5;
  s.max_rss_kb = 20480;
  s.wall_ms = 150.5;
  EXPECT_EQ(json::parse(samples_body("w1", lease, {s})), json::parse(R"({"worker": "w1", "lease_id": "ab12", "attempt": 2, "samples": [{
      "run_index": 2, "arm": "baseline", "warmup": false, "ttfb_ms": 143.25,
      "phases": [{"name": "imports", "ms": 61.0}, {"name": "config", "ms": 3.25}],
      "cpu_ms": 120.5, "max_rss_kb": 20480, "exit_status": 0, "signal": 0, "wall_ms": 150.5}]})"));
  EXPECT_EQ(json::parse(complete_body("w1", lease)), json::parse(R"({"worker": "w1", "lease_id": "ab12", "attempt": 2})"));
  EXPECT_EQ(json::parse(fail_body("w1", lease, {"diff_does_not_apply", "error: patch failed", "tail", false})),
            json::parse(R"({"worker": "w1", "lease_id": "ab12", "attempt": 2, "retryable": false,
                            "error": {"code": "diff_does_not_apply", "message": "error: patch failed", "details": "tail"}})"));
}

TEST(Bodies, AFailureNamesItsArmOnlyWhenItHasOne) {
  const JobLease lease{"ab12", 1};
  JobFailure f{"workload_failed", "exited with status 2 (run 0, baseline, warm-up)", "tail", false, "baseline"};
  EXPECT_EQ(json::parse(fail_body("w1", lease, f)),
            json::parse(R"json({"worker": "w1", "lease_id": "ab12", "attempt": 1, "retryable": false,
                                "error": {"code": "workload_failed", "message": "exited with status 2 (run 0, baseline, warm-up)",
                                          "details": "tail", "arm": "baseline"}})json"));
  f.arm = "candidate";
  EXPECT_EQ(json::parse(fail_body("w1", lease, f)).at("error").at("arm").as_string(), "candidate");
  f.arm.clear();
  EXPECT_FALSE(json::parse(fail_body("w1", lease, f)).at("error").as_object().contains("arm"));
}

TEST(Bodies, AFailureWithBytesThatAreNotUtf8IsStillValidJson) {
  // A build that printed Latin-1, cut in the middle of a UTF-8 character: the server must be able
  // to parse the report, or the user sees lease_expired instead of the build's error.
  const std::string details = "compile error: caf\xe9 \xe2\x82";  // é in Latin-1, then a cut euro sign
  const std::string body = fail_body("w1", JobLease{"ab12", 1}, {"build_failed", "the build failed: caf\xe9", details, false});
  json::error_code ec;
  const auto v = json::parse(body, ec);
  ASSERT_FALSE(ec) << "not valid JSON: " << ec.message();
  EXPECT_EQ(std::string(v.at("error").at("message").as_string()), "the build failed: caf\xEF\xBF\xBD");
  EXPECT_EQ(std::string(v.at("error").at("details").as_string()), "compile error: caf\xEF\xBF\xBD \xEF\xBF\xBD");
}

TEST(Bodies, ParsesAnswers) {
  EXPECT_EQ(parse_lease_seconds(R"({"lease_seconds": 30})"), 30);
  EXPECT_EQ(parse_lease_seconds(R"({})"), std::nullopt);
  EXPECT_EQ(parse_lease_seconds("garbage"), std::nullopt);
  EXPECT_EQ(describe_error_body(R"({"error": {"code": "conflict", "message": "lease lost", "details": ""}})"),
            "conflict: lease lost");
  EXPECT_EQ(describe_error_body("<html>bad gateway</html>"), "<html>bad gateway</html>");
}

TEST(HostFacts, CpuModelFromCpuinfo) {
  EXPECT_EQ(cpu_model_from_cpuinfo("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"),
            "AMD EPYC 7B13");
  EXPECT_EQ(cpu_model_from_cpuinfo("processor : 0\nHardware : BCM2835\n"), "BCM2835");
  EXPECT_EQ(cpu_model_from_cpuinfo(""), "unknown");
  HostFacts f = collect_host_facts("w9");
  EXPECT_EQ(f.name, "w9");
  EXPECT_FALSE(f.host.empty());
  EXPECT_FALSE(f.kernel.empty());
  EXPECT_GE(f.cores, 1);
  EXPECT_EQ(f.version, kWorkerVersion);
  EXPECT_EQ(f.cores, static_cast<int>(usable_cpus().size()));
  EXPECT_EQ(collect_host_facts("w9", {1}).cores, 1) << "pinned: the CPUs the workloads get";
}

TEST(CpuList, ParsesTheKernelsListFormat) {
  EXPECT_EQ(parse_cpu_list("3"), (std::vector<int>{3}));
  EXPECT_EQ(parse_cpu_list("0,2"), (std::vector<int>{0, 2}));
  EXPECT_EQ(parse_cpu_list("4-6,1,5"), (std::vector<int>{1, 4, 5, 6}));
  for (const auto& [text, words] : std::vector<std::pair<std::string, std::string>>{
           {"", "'' is not a CPU number"}, {"a", "'a' is not a CPU number"}, {"1,", "'' is not a CPU number"},
           {"3-1", "runs backwards"}, {"-1", "is not a CPU number"}, {"1 ", "'1 ' is not a CPU number"},
           {"99999", "is not a CPU number"}, {"2", "CPU 2 is not one this worker may use (0,1)"}}) {
    try {
      parse_cpu_list(text, {0, 1});
      ADD_FAILURE() << "'" << text << "' was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << text << ": " << e.what();
    }
  }
  const auto mine = usable_cpus();
  ASSERT_FALSE(mine.empty());
  EXPECT_EQ(parse_cpu_list(std::to_string(mine.back()), mine), (std::vector<int>{mine.back()}));
}

TEST(Steal, TheEighthNumberOfTheCpuLinesInMilliseconds) {
  // user nice system idle iowait irq softirq steal guest guest_nice, in ticks of 1/100 s.
  const std::string stat =
      "cpu  100 0 50 1000 2 0 1 30 0 0\n"
      "cpu0 50 0 25 500 1 0 0 10 0 0\n"
      "cpu1 50 0 25 500 1 0 1 20 0 0\n"
      "intr 12345 0 0\n"
      "cpufreq 1 2 3 4 5 6 7 8\n";
  EXPECT_DOUBLE_EQ(*steal_ms_from_stat(stat, {}, 100), 300.0) << "all CPUs: the total line";
  EXPECT_DOUBLE_EQ(*steal_ms_from_stat(stat, {1}, 100), 200.0);
  EXPECT_DOUBLE_EQ(*steal_ms_from_stat(stat, {0, 1}, 100), 300.0);
  EXPECT_DOUBLE_EQ(*steal_ms_from_stat(stat, {1}, 250), 80.0);
  EXPECT_EQ(steal_ms_from_stat(stat, {7}, 100), std::nullopt) << "a CPU the kernel does not list";
  EXPECT_EQ(steal_ms_from_stat("cpu  1 2 3 4 5 6 7\n", {}, 100), std::nullopt) << "a kernel without the column";
  EXPECT_EQ(steal_ms_from_stat("", {}, 100), std::nullopt);
  EXPECT_EQ(steal_ms_from_stat(stat, {}, 0), std::nullopt);
  // This machine's own /proc/stat has the column (Linux >= 2.6.11): readings never go backwards.
  const auto before = steal_ms();
  ASSERT_TRUE(before.has_value());
  EXPECT_GE(*steal_ms(), *before);
  EXPECT_TRUE(steal_ms(usable_cpus()).has_value());
}

RetryPolicy fast_policy(std::chrono::milliseconds budget = 2s) { return RetryPolicy{budget, 10ms, 40ms}; }

TEST(Retries, TransportErrorsAnd5xxAreRetriedUntilAnAnswer) {
  int calls = 0;
  CallResult r = call_with_retries(
      [&]() -> HttpResponse {
        ++calls;
        if (calls == 1) throw TransportError("connection refused");
        if (calls == 2) return {503, R"({"error": {"code": "unavailable", "message": "database away"}})", ""};
        return {200, R"({"accepted": 1, "duplicates": 0})", "application/json"};
      },
      fast_policy());
  EXPECT_EQ(r.status, CallStatus::ok);
  EXPECT_EQ(calls, 3);
}

TEST(Retries, GivesUpWhenTheBudgetIsSpent) {
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  CallResult r = call_with_retries(
      [&]() -> HttpResponse {
        ++calls;
        return {502, "bad gateway", ""};
      },
      fast_policy(300ms));
  EXPECT_EQ(r.status, CallStatus::unreachable);
  EXPECT_GT(calls, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_NE(r.message.find("HTTP 502"), std::string::npos) << r.message;
}

TEST(Retries, ConflictAndClientErrorsAreFinal) {
  int calls = 0;
  auto answer = [&](int status) {
    calls = 0;
    return call_with_retries(
        [&]() -> HttpResponse {
          ++calls;
          return {status, R"({"error": {"code": "x", "message": "m"}})", ""};
        },
        fast_policy());
  };
  EXPECT_EQ(answer(409).status, CallStatus::lease_lost);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(answer(400).status, CallStatus::rejected);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(answer(401).status, CallStatus::rejected);
  EXPECT_EQ(answer(429).status, CallStatus::unreachable);  // retried, then out of budget... quickly
}

TEST(Retries, StopsWhenToldToGiveUp) {
  int calls = 0;
  CallResult r = call_with_retries(
      [&]() -> HttpResponse {
        ++calls;
        throw TransportError("down");
      },
      fast_policy(10s), [&] { return calls >= 2; });
  EXPECT_EQ(r.status, CallStatus::gave_up);
  EXPECT_EQ(calls, 2);
}

TEST(Retries, ClassifiesStatuses) {
  EXPECT_EQ(classify_status(200), CallStatus::ok);
  EXPECT_EQ(classify_status(201), CallStatus::ok);
  EXPECT_EQ(classify_status(204), CallStatus::no_job);
  EXPECT_EQ(classify_status(409), CallStatus::lease_lost);
  EXPECT_EQ(classify_status(404), CallStatus::rejected);
  EXPECT_EQ(classify_status(503), CallStatus::unreachable);
  EXPECT_EQ(classify_status(408), CallStatus::unreachable);
}

}  // namespace
}  // namespace ttfb::worker
