// Unit tests of the alert texts (server/alerts/compose.hpp): for each kind, the title and text
// byte for byte against strings written out by hand, the dedup key, recipient, url and fields;
// and how each shows what was not measured (NaN), a missing phase, an untitled change, the three
// shapes of an author, and a release with two regressed workflows.
#include "server/alerts/compose.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ttfb::alerts {
namespace {
namespace json = boost::json;

constexpr const char* kPublicUrl = "http://lab.example.com";
constexpr double kNaN = kNotMeasured;

std::vector<std::string> keys_of(const json::object& o) {
  std::vector<std::string> out;
  for (const auto& kv : o) out.emplace_back(kv.key());
  return out;
}

// ------------------------------------------------------------------------------------------------
// presubmit_regression

PresubmitRegressionFacts presubmit() {
  PresubmitRegressionFacts f;
  f.experiment_id = 12;
  f.repo = "example";
  f.workflow = "example-train";
  f.title = "eager import";
  f.candidate_ref = "feature/eager";
  f.base_ref = "main";
  f.change_url = "https://git.example.com/c/34";
  f.author = "Ada Lovelace <ada@example.com>";
  f.submitted_by = "ci-bot";
  f.effect_pct = 38.24;
  f.ci_low_pct = 30.07;
  f.ci_high_pct = 46.01;
  f.confidence = 0.99;
  f.p_value = 0.0012;
  f.phase_summary = "import +812 ms (91% of the effect)";
  return f;
}

TEST(AlertComposePresubmit, TitleTextAndKeys) {
  const AlertEvent e = presubmit_regression_alert(presubmit(), kPublicUrl);
  EXPECT_EQ(e.kind, "presubmit_regression");
  EXPECT_EQ(e.repo, "example");
  EXPECT_EQ(e.change, "experiment:12");
  EXPECT_EQ(e.workflow, "example-train");
  EXPECT_EQ(e.recipient_name, "Ada Lovelace");
  EXPECT_EQ(e.recipient_email, "ada@example.com");
  EXPECT_EQ(e.url, "http://lab.example.com/#/experiments/12");
  EXPECT_EQ(e.title, "example-train: time to first batch +38.2% with \"eager import\"");
  EXPECT_EQ(e.text,
            "\"eager import\" makes example-train's time to first batch +38.2% slower than main [+30.1, +46.0] "
            "(99% CI, p = 0.0012), confirmed by an independent rerun. Where: import +812 ms (91% of the effect). "
            "http://lab.example.com/#/experiments/12");
}

TEST(AlertComposePresubmit, Fields) {
  const json::object f = presubmit_regression_alert(presubmit(), kPublicUrl).fields;
  EXPECT_EQ(keys_of(f), (std::vector<std::string>{"experiment_id", "effect_pct", "ci_low_pct", "ci_high_pct", "p_value",
                                                  "phase_summary", "change_url", "base", "candidate_runtime",
                                                  "decided_by", "cpu_effect_pct"}));
  EXPECT_EQ(f.at("experiment_id").as_int64(), 12);
  EXPECT_DOUBLE_EQ(f.at("effect_pct").as_double(), 38.24);
  EXPECT_DOUBLE_EQ(f.at("ci_low_pct").as_double(), 30.07);
  EXPECT_DOUBLE_EQ(f.at("ci_high_pct").as_double(), 46.01);
  EXPECT_DOUBLE_EQ(f.at("p_value").as_double(), 0.0012);
  EXPECT_EQ(f.at("phase_summary").as_string(), "import +812 ms (91% of the effect)");
  EXPECT_EQ(f.at("change_url").as_string(), "https://git.example.com/c/34");
  EXPECT_EQ(f.at("base").as_string(), "main");
}

// An infra owner's experiment: the base revision run another way. Without a title the change is
// named by what the candidate ran with; with one, the text says it after the numbers.
TEST(AlertComposePresubmit, ARuntimeExperimentSaysWhatTheCandidateRanWith) {
  auto in = presubmit();
  in.title = "";
  in.candidate_ref.reset();
  in.runtime_words = "env OMP_NUM_THREADS=1; prefix nice -n 10";
  AlertEvent e = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(e.title, "example-train: time to first batch +38.2% with \"main run with env OMP_NUM_THREADS=1; prefix nice -n 10\"");
  EXPECT_EQ(e.fields.at("candidate_runtime").as_string(), "env OMP_NUM_THREADS=1; prefix nice -n 10");
  in.title = "one OpenMP thread";
  e = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_NE(e.text.find("(91% of the effect). The candidate ran with env OMP_NUM_THREADS=1; prefix nice -n 10. http"),
            std::string::npos)
      << e.text;
  EXPECT_EQ(presubmit_regression_alert(presubmit(), kPublicUrl).text.find("ran with"), std::string::npos);
}

TEST(AlertComposePresubmit, WhatWasNotMeasuredIsLeftOutOfTheWordsAndNullInTheFields) {
  auto in = presubmit();
  in.ci_low_pct = kNaN;
  in.ci_high_pct = kNaN;
  in.confidence = kNaN;
  in.p_value = kNaN;
  const AlertEvent e = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(e.text,
            "\"eager import\" makes example-train's time to first batch +38.2% slower than main, "
            "confirmed by an independent rerun. Where: import +812 ms (91% of the effect). "
            "http://lab.example.com/#/experiments/12");
  EXPECT_TRUE(e.fields.at("ci_low_pct").is_null());
  EXPECT_TRUE(e.fields.at("ci_high_pct").is_null());
  EXPECT_TRUE(e.fields.at("p_value").is_null());
  EXPECT_DOUBLE_EQ(e.fields.at("effect_pct").as_double(), 38.24);

  in.p_value = 0.0012;  // p without an interval
  EXPECT_NE(presubmit_regression_alert(in, kPublicUrl).text.find("slower than main (p = 0.0012), confirmed"), std::string::npos);
  in.ci_low_pct = 30.07;
  in.ci_high_pct = 46.01;  // an interval of unknown level
  EXPECT_NE(presubmit_regression_alert(in, kPublicUrl).text.find("slower than main [+30.1, +46.0] (CI, p = 0.0012), confirmed"),
            std::string::npos);

  in.effect_pct = kNaN;
  const AlertEvent no_effect = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(no_effect.title, "example-train: time to first batch slower with \"eager import\"");
  EXPECT_NE(no_effect.text.find("time to first batch slower than main"), std::string::npos) << no_effect.text;
  EXPECT_TRUE(no_effect.fields.at("effect_pct").is_null());
  EXPECT_EQ(no_effect.text.find("nan"), std::string::npos) << no_effect.text;
}

TEST(AlertComposePresubmit, WhenCpuTimeDecidedTheAlertLeadsWithItAndGivesTtfbBeside) {
  auto in = presubmit();
  in.cpu_effect_pct = 2.14;
  in.cpu_ci_low_pct = 1.22;
  in.cpu_ci_high_pct = 3.06;
  in.cpu_confidence = 0.95;
  in.cpu_p_value = 0.001;
  in.effect_pct = 1.4;
  in.ci_low_pct = -0.6;
  in.ci_high_pct = 3.4;
  in.confidence = 0.95;
  const AlertEvent e = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(e.title, "example-train: CPU time to first batch +2.1% with \"eager import\"");
  EXPECT_EQ(e.text,
            "\"eager import\" makes example-train's start-up use +2.1% more CPU time before its first batch than main "
            "[+1.2, +3.1] (95% CI, p = 0.001), confirmed by an independent rerun; its time to first batch changed "
            "+1.4% [-0.6, +3.4] (95% CI) through the waits for a core. Where: import +812 ms (91% of the effect). "
            "http://lab.example.com/#/experiments/12");
  EXPECT_EQ(e.fields.at("decided_by").as_string(), "cpu_time");
  EXPECT_DOUBLE_EQ(e.fields.at("cpu_effect_pct").as_double(), 2.14);
  EXPECT_DOUBLE_EQ(e.fields.at("effect_pct").as_double(), 1.4) << "effect_pct stays TTFB's";
  EXPECT_EQ(presubmit_regression_alert(presubmit(), kPublicUrl).fields.at("decided_by").as_string(), "ttfb");
}

TEST(AlertComposePresubmit, NoPhaseLeavesOutWhere) {
  auto in = presubmit();
  in.phase_summary = "";
  const AlertEvent e = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(e.text,
            "\"eager import\" makes example-train's time to first batch +38.2% slower than main [+30.1, +46.0] "
            "(99% CI, p = 0.0012), confirmed by an independent rerun. http://lab.example.com/#/experiments/12");
  EXPECT_EQ(e.fields.at("phase_summary").as_string(), "");
}

// A fixed design (`submit --runs N`) has no rerun: its alert never says "confirmed".
TEST(AlertComposePresubmit, AFixedDesignIsNotCalledConfirmed) {
  auto in = presubmit();
  in.phase_summary = "";
  in.confirmed_by_rerun = false;
  in.runs_per_arm = 20;
  const AlertEvent e = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(e.text,
            "\"eager import\" makes example-train's time to first batch +38.2% slower than main [+30.1, +46.0] "
            "(99% CI, p = 0.0012), from one fixed look at 20 runs per arm, not confirmed by a rerun. "
            "http://lab.example.com/#/experiments/12");
  EXPECT_EQ(e.text.find("confirmed by an"), std::string::npos) << e.text;
}

TEST(AlertComposePresubmit, UntitledChangeIsNamedByItsCandidateRefThenYourChange) {
  auto in = presubmit();
  in.title = "";
  const AlertEvent by_ref = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(by_ref.title, "example-train: time to first batch +38.2% with \"feature/eager\"");
  EXPECT_EQ(by_ref.text.rfind("\"feature/eager\" makes example-train's time to first batch +38.2% slower than main", 0), 0u)
      << by_ref.text;

  in.candidate_ref = std::nullopt;
  const AlertEvent anonymous = presubmit_regression_alert(in, kPublicUrl);
  EXPECT_EQ(anonymous.title, "example-train: time to first batch +38.2% with \"your change\"");
  EXPECT_EQ(anonymous.text.rfind("\"your change\" makes example-train's time to first batch +38.2% slower than main", 0), 0u)
      << anonymous.text;

  in.title = "a title wins over the ref";
  in.candidate_ref = "feature/eager";
  EXPECT_EQ(presubmit_regression_alert(in, kPublicUrl).title,
            "example-train: time to first batch +38.2% with \"a title wins over the ref\"");
}

TEST(AlertComposePresubmit, RecipientFromTheAuthorsThreeShapesOrTheSubmitter) {
  auto in = presubmit();
  struct Case {
    std::string author, name, email;
  };
  const std::vector<Case> cases = {
      {"Ada Lovelace <ada@example.com>", "Ada Lovelace", "ada@example.com"},
      {"Ada Lovelace   <ada@example.com>", "Ada Lovelace", "ada@example.com"},  // spaces before '<' trimmed
      {"ada@example.com", "", "ada@example.com"},
      {"Ada Lovelace", "Ada Lovelace", ""},
      {"ada at example.com", "ada at example.com", ""},  // has no '@'
      {"", "ci-bot", ""},                                // nobody named: the submitter
  };
  for (const auto& c : cases) {
    in.author = c.author;
    const AlertEvent e = presubmit_regression_alert(in, kPublicUrl);
    EXPECT_EQ(e.recipient_name, c.name) << "author: " << c.author;
    EXPECT_EQ(e.recipient_email, c.email) << "author: " << c.author;
  }
}

// ------------------------------------------------------------------------------------------------
// culprit

CulpritFacts culprit() {
  CulpritFacts f;
  f.bisection_id = 7;
  f.repo = "example";
  f.workflow = "example-train";
  f.commit = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
  f.subject = "Import torch eagerly";
  f.author_name = "Ada Lovelace";
  f.author_email = "ada@example.com";
  f.effect_pct = 38.24;
  f.ci_low_pct = 30.07;
  f.ci_high_pct = 46.01;
  f.ci_level = 0.99;
  f.p_value = 0.0012;
  f.phase = "import";
  f.phase_delta_ms = 812.4;
  f.phase_summary = "import +812 ms (91% of the effect)";
  f.good_commit = "0123456789abcdef0123456789abcdef01234567";
  f.bad_commit = "fedcba9876543210fedcba9876543210fedcba98";
  f.range_commits = 9;
  return f;
}

TEST(AlertComposeCulprit, TitleTextAndKeys) {
  const AlertEvent e = culprit_alert(culprit(), kPublicUrl);
  EXPECT_EQ(e.kind, "culprit");
  EXPECT_EQ(e.repo, "example");
  EXPECT_EQ(e.change, "commit:1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d");
  EXPECT_EQ(e.workflow, "example-train");
  EXPECT_EQ(e.recipient_name, "Ada Lovelace");
  EXPECT_EQ(e.recipient_email, "ada@example.com");
  EXPECT_EQ(e.url, "http://lab.example.com/#/bisections/7");
  EXPECT_EQ(e.title, "example-train: time to first batch +38.2% from 1a2b3c4 \"Import torch eagerly\"");
  EXPECT_EQ(e.text,
            "Your commit 1a2b3c4 \"Import torch eagerly\" made example-train's time to first batch +38.2% slower "
            "[+30.1, +46.0] (99% CI, p = 0.0012, measured against its parent). It is mostly import (+812 ms). "
            "Found by bisecting 0123456..fedcba9 (8 commits). http://lab.example.com/#/bisections/7");
}

TEST(AlertComposeCulprit, Fields) {
  const json::object f = culprit_alert(culprit(), kPublicUrl).fields;
  EXPECT_EQ(keys_of(f), (std::vector<std::string>{"bisection_id", "commit", "subject", "author", "email", "effect_pct",
                                                  "ci_low_pct", "ci_high_pct", "p_value", "phase", "phase_delta_ms",
                                                  "phase_summary"}));
  EXPECT_EQ(f.at("bisection_id").as_int64(), 7);
  EXPECT_EQ(f.at("commit").as_string(), "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d");
  EXPECT_EQ(f.at("subject").as_string(), "Import torch eagerly");
  EXPECT_EQ(f.at("author").as_string(), "Ada Lovelace");
  EXPECT_EQ(f.at("email").as_string(), "ada@example.com");
  EXPECT_DOUBLE_EQ(f.at("effect_pct").as_double(), 38.24);
  EXPECT_DOUBLE_EQ(f.at("ci_low_pct").as_double(), 30.07);
  EXPECT_DOUBLE_EQ(f.at("ci_high_pct").as_double(), 46.01);
  EXPECT_DOUBLE_EQ(f.at("p_value").as_double(), 0.0012);
  EXPECT_EQ(f.at("phase").as_string(), "import");
  EXPECT_DOUBLE_EQ(f.at("phase_delta_ms").as_double(), 812.4);
  EXPECT_EQ(f.at("phase_summary").as_string(), "import +812 ms (91% of the effect)");
}

TEST(AlertComposeCulprit, NotMeasuredIntervalLevelAndPAreLeftOut) {
  auto in = culprit();
  in.ci_low_pct = kNaN;
  in.ci_level = kNaN;
  in.p_value = kNaN;
  const AlertEvent e = culprit_alert(in, kPublicUrl);
  EXPECT_EQ(e.text,
            "Your commit 1a2b3c4 \"Import torch eagerly\" made example-train's time to first batch +38.2% slower "
            "(measured against its parent). It is mostly import (+812 ms). "
            "Found by bisecting 0123456..fedcba9 (8 commits). http://lab.example.com/#/bisections/7");
  EXPECT_TRUE(e.fields.at("ci_low_pct").is_null());
  EXPECT_DOUBLE_EQ(e.fields.at("ci_high_pct").as_double(), 46.01) << "each end is its own field";
  EXPECT_TRUE(e.fields.at("p_value").is_null());

  in = culprit();
  in.effect_pct = kNaN;
  const AlertEvent no_effect = culprit_alert(in, kPublicUrl);
  EXPECT_EQ(no_effect.title, "example-train: time to first batch slower from 1a2b3c4 \"Import torch eagerly\"");
  in.phase_delta_ms = kNaN;
  EXPECT_NE(culprit_alert(in, kPublicUrl).text.find("It is mostly import. Found by"), std::string::npos)
      << "a phase whose size was not measured is named without a number";
  EXPECT_TRUE(no_effect.fields.at("effect_pct").is_null());
}

TEST(AlertComposeCulprit, NoPhaseLeavesOutItIsMostly) {
  auto in = culprit();
  in.phase = std::nullopt;
  in.phase_delta_ms = kNaN;
  in.phase_summary = "";
  const AlertEvent e = culprit_alert(in, kPublicUrl);
  EXPECT_EQ(e.text,
            "Your commit 1a2b3c4 \"Import torch eagerly\" made example-train's time to first batch +38.2% slower "
            "[+30.1, +46.0] (99% CI, p = 0.0012, measured against its parent). "
            "Found by bisecting 0123456..fedcba9 (8 commits). http://lab.example.com/#/bisections/7");
  EXPECT_TRUE(e.fields.at("phase").is_null());
  EXPECT_TRUE(e.fields.at("phase_delta_ms").is_null());
  EXPECT_EQ(e.fields.at("phase_summary").as_string(), "");
}

// ------------------------------------------------------------------------------------------------
// release_blocked

RegressedWorkflow train() {
  RegressedWorkflow w;
  w.workflow = "example-train";
  w.effect_pct = 38.24;
  w.ci_low_pct = 30.07;
  w.ci_high_pct = 46.01;
  w.confidence = 0.99;
  w.p_value = 0.0012;
  w.phase_summary = "import +812 ms";
  return w;
}

ReleaseBlockedFacts release() {
  ReleaseBlockedFacts f;
  f.release_id = 3;
  f.name = "v1.1";
  f.repo = "example";
  f.base_ref = "v1.0";
  f.candidate_ref = "v1.1";
  f.owner = "Grace Hopper";
  f.owner_email = "grace@example.com";
  f.regressed = {train()};
  return f;
}

TEST(AlertComposeRelease, OneWorkflowTitleTextAndKeys) {
  const AlertEvent e = release_blocked_alert(release(), kPublicUrl);
  EXPECT_EQ(e.kind, "release_blocked");
  EXPECT_EQ(e.repo, "example");
  EXPECT_EQ(e.change, "release:v1.1");
  EXPECT_EQ(e.workflow, "");
  EXPECT_EQ(e.recipient_name, "Grace Hopper");
  EXPECT_EQ(e.recipient_email, "grace@example.com");
  EXPECT_EQ(e.url, "http://lab.example.com/#/releases/v1.1");
  EXPECT_EQ(e.title, "release v1.1 blocked: 1 workflow(s) start slower");
  EXPECT_EQ(e.text,
            "Release gate v1.1 (v1.0..v1.1) is blocked: time to first batch regressed, confirmed by a rerun:\n"
            "- example-train +38.2% [+30.1, +46.0] (99% CI) (import +812 ms)\n"
            "Bisecting to the guilty commits now; their authors will be told. http://lab.example.com/#/releases/v1.1");
}

TEST(AlertComposeRelease, TwoWorkflowsAreTwoBulletLines) {
  auto in = release();
  RegressedWorkflow eval;
  eval.workflow = "example-eval";
  eval.effect_pct = 12.0;  // interval and p not measured, no phase
  eval.confidence = 0.99;
  in.regressed.push_back(eval);
  const AlertEvent e = release_blocked_alert(in, kPublicUrl);
  EXPECT_EQ(e.title, "release v1.1 blocked: 2 workflow(s) start slower");
  EXPECT_EQ(e.text,
            "Release gate v1.1 (v1.0..v1.1) is blocked: time to first batch regressed, confirmed by a rerun:\n"
            "- example-train +38.2% [+30.1, +46.0] (99% CI) (import +812 ms)\n"
            "- example-eval +12.0%\n"
            "Bisecting to the guilty commits now; their authors will be told. http://lab.example.com/#/releases/v1.1");

  const json::object& f = e.fields;
  EXPECT_EQ(keys_of(f), (std::vector<std::string>{"release", "range", "release_id", "workflows"}));
  EXPECT_EQ(f.at("release").as_string(), "v1.1");
  EXPECT_EQ(f.at("range").as_string(), "v1.0..v1.1");
  EXPECT_EQ(f.at("release_id").as_int64(), 3);
  const json::array& wfs = f.at("workflows").as_array();
  ASSERT_EQ(wfs.size(), 2u);
  const json::object& w0 = wfs[0].as_object();
  EXPECT_EQ(keys_of(w0), (std::vector<std::string>{"workflow", "effect_pct", "ci_low_pct", "ci_high_pct", "p_value"}));
  EXPECT_EQ(w0.at("workflow").as_string(), "example-train");
  EXPECT_DOUBLE_EQ(w0.at("effect_pct").as_double(), 38.24);
  EXPECT_DOUBLE_EQ(w0.at("ci_low_pct").as_double(), 30.07);
  EXPECT_DOUBLE_EQ(w0.at("ci_high_pct").as_double(), 46.01);
  EXPECT_DOUBLE_EQ(w0.at("p_value").as_double(), 0.0012);
  const json::object& w1 = wfs[1].as_object();
  EXPECT_EQ(w1.at("workflow").as_string(), "example-eval");
  EXPECT_DOUBLE_EQ(w1.at("effect_pct").as_double(), 12.0);
  EXPECT_TRUE(w1.at("ci_low_pct").is_null());
  EXPECT_TRUE(w1.at("ci_high_pct").is_null());
  EXPECT_TRUE(w1.at("p_value").is_null());
}

TEST(AlertComposeRelease, EffectLineLeavesOutWhatWasNotMeasured) {
  RegressedWorkflow w = train();
  EXPECT_EQ(effect_line(w), "example-train +38.2% [+30.1, +46.0] (99% CI)") << "the phase is not part of it";
  w.confidence = kNaN;
  EXPECT_EQ(effect_line(w), "example-train +38.2% [+30.1, +46.0]");
  w.confidence = 0.95;
  EXPECT_EQ(effect_line(w), "example-train +38.2% [+30.1, +46.0] (95% CI)");
  w.ci_high_pct = kNaN;
  EXPECT_EQ(effect_line(w), "example-train +38.2%") << "no interval with one end, nor its level";
  w.effect_pct = kNaN;
  EXPECT_EQ(effect_line(w), "example-train");
  w = train();
  w.effect_pct = kNaN;
  EXPECT_EQ(effect_line(w), "example-train [+30.1, +46.0] (99% CI)");
  w.effect_pct = -3.26;
  EXPECT_EQ(effect_line(w), "example-train -3.3% [+30.1, +46.0] (99% CI)");
}

}  // namespace
}  // namespace ttfb::alerts
