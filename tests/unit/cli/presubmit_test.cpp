// What `ttfb-lab presubmit` writes for CI and what `hook install` installs (cli/presubmit.hpp):
// the Markdown summary, the JUnit report, the pre-push hook run by a real shell; and the
// progress line's effect estimate.
#include "cli/presubmit.hpp"
#include "cli/report.hpp"
#include "common/process.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ttfb::cli {
namespace {
namespace json = boost::json;

json::object experiment(const std::string& verdict, double effect) {
  return json::parse(R"({"id": 12, "status": "done", "verdict": ")" + verdict + R"(", "title": "Add a | pipe",
    "workflows": [{"workflow": "example-train", "state": "done", "verdict": ")" + verdict + R"(",
      "result": {"effect_pct": )" + std::to_string(effect) + R"(, "ci_low_pct": 22.6, "ci_high_pct": 48.4,
                 "p_value": 1.2e-7, "threshold_pct": 6.38, "confirmed": true, "reason": "slower by <a lot>",
                 "phase_summary": "imports +71.5 ms", "look": {"look": 1, "looks_planned": 6}}}]})")
      .as_object();
}

TEST(PresubmitReport, MarkdownTableWithTheVerdictAndTheLink) {
  const std::string md = markdown_summary(experiment("regression", 34.9), "http://lab/#/experiments/12");
  EXPECT_NE(md.find("### ttfb-lab: start-up regression (experiment 12)"), std::string::npos) << md;
  EXPECT_NE(md.find("| example-train | **regression** (confirmed) | +34.9% [+22.6, +48.4] |"), std::string::npos) << md;
  EXPECT_NE(md.find("6.4%"), std::string::npos);
  EXPECT_NE(md.find("Add a \\| pipe"), std::string::npos) << "a pipe would break the table";
  EXPECT_NE(md.find("(http://lab/#/experiments/12)"), std::string::npos);
  EXPECT_NE(markdown_summary(experiment("no_change", 0.4), "").find("no start-up regression"), std::string::npos);
}

TEST(PresubmitReport, JUnitFailsARegressionSkipsInconclusiveAndEscapes) {
  std::string xml = junit_report(experiment("regression", 34.9), "http://lab/#/experiments/12");
  EXPECT_NE(xml.find(R"(tests="1" failures="1" errors="0" skipped="0")"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<failure message=\"time to first batch +34.9% [+22.6, +48.4]\">"), std::string::npos) << xml;
  EXPECT_NE(xml.find("slower by &lt;a lot&gt;"), std::string::npos) << "text is escaped";
  xml = junit_report(experiment("inconclusive", 3.0), "");
  EXPECT_NE(xml.find(R"(failures="0" errors="0" skipped="1")"), std::string::npos) << xml;
  xml = junit_report(experiment("no_change", 0.2), "");
  EXPECT_NE(xml.find(R"(failures="0" errors="0" skipped="0")"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("<failure"), std::string::npos);
}

TEST(PresubmitReport, ProgressShowsTheCurrentEffectEstimate) {
  json::object e = experiment("regression", 34.9);
  e["status"] = "running";
  const std::string line = format_progress(e, 12.0);
  EXPECT_NE(line.find("example-train +34.9% look 1/6"), std::string::npos) << line;
  EXPECT_NE(line.find("12 s"), std::string::npos) << line;
}

// The hook, run by /bin/sh with a stand-in CLI that exits as told and records its arguments.
class HookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ttfb-hook-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    fake_ = (dir_ / "fake-cli").string();
    std::ofstream(fake_) << "#!/bin/sh\necho \"$@\" >> " << (dir_ / "calls").string() << "\nexit ${FAKE_EXIT:-0}\n";
    ::chmod(fake_.c_str(), 0755);
    hook_ = (dir_ / "pre-push").string();
    std::ofstream(hook_) << pre_push_hook(fake_);
    ::chmod(hook_.c_str(), 0755);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  ProcessResult push(const std::string& refs, const std::string& fake_exit, const std::string& skip = "0") {
    ProcessOptions o;
    auto env = current_environment();
    env["FAKE_EXIT"] = fake_exit;
    env["TTFB_LAB_SKIP"] = skip;
    o.env = env;
    o.stdin_data = refs;
    return run_process({"/bin/sh", hook_, "origin", "/remote.git"}, o);
  }
  std::string calls() {
    std::ifstream in(dir_ / "calls");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::filesystem::path dir_;
  std::string fake_, hook_;
};

const std::string kSha(40, 'a');
const std::string kZero(40, '0');

TEST_F(HookTest, RefusesAConfirmedRegressionAndAnErrorLetsTheRestThrough) {
  const std::string refs = "refs/heads/main " + kSha + " refs/heads/main " + kZero + "\n";
  EXPECT_EQ(push(refs, "0").exit_code, 0);
  EXPECT_EQ(calls(), "presubmit --commit " + kSha + " --hook\n");
  auto r = push(refs, "1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("push refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("TTFB_LAB_SKIP=1"), std::string::npos) << "says how to push anyway";
  EXPECT_EQ(push(refs, "2").exit_code, 1);
  EXPECT_EQ(push(refs, "3").exit_code, 0) << "inconclusive is not a reason to refuse";
}

TEST_F(HookTest, SkipsOnPurposeAndIgnoresDeletions) {
  const std::string refs = "refs/heads/main " + kSha + " refs/heads/main " + kZero + "\n";
  auto r = push(refs, "1", "1");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("skipped on purpose"), std::string::npos);
  EXPECT_EQ(calls(), "") << "not measured";
  EXPECT_EQ(push("(delete) " + kZero + " refs/heads/old " + kSha + "\n", "1").exit_code, 0);
  EXPECT_EQ(calls(), "");
  EXPECT_TRUE(is_our_hook(pre_push_hook("/x")));
  EXPECT_FALSE(is_our_hook("#!/bin/sh\nexec lint\n"));
}

}  // namespace
}  // namespace ttfb::cli
