// The CLI's release gate, bisection and alert reports (cli/releases.hpp) on documents shaped as
// the server sends them: a blocked and a passed gate, a gate still measured (numbers null), a
// running bisection, one that found two culprits and skipped a broken commit, a broken one, and
// the lists. The assertions are on what people act on (culprit SHA, author, e-mail, effect with
// its CI, phase, cost) and on the exit codes CI jobs gate on, not on whole-string snapshots.
#include "cli/releases.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ttfb::cli {
namespace {
namespace json = boost::json;

json::object parse(const char* s) { return json::parse(s).as_object(); }

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

#define EXPECT_HAS(text, needle) EXPECT_TRUE(has(text, needle)) << "missing \"" << (needle) << "\" in:\n" << (text)
#define EXPECT_LACKS(text, needle) EXPECT_FALSE(has(text, needle)) << "unexpected \"" << (needle) << "\" in:\n" << (text)

// A bisection summary as a blocked gate carries it: one culprit found.
constexpr const char* kFoundSummary = R"json({"id": 7, "repo": "example", "workflow": "example-train",
  "good": {"ref": "v1.0", "commit": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e"},
  "bad": {"ref": "v1.1", "commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809"},
  "release": "v1.1", "status": "found", "message": "1 culprit explains the slowdown",
  "total_effect_pct": 38.0,
  "culprits": [{"commit": "60c38cb5e1f2a3b4c5d6e7f8091a2b3c4d5e6f70", "subject": "eager import of the tokenizer",
    "author": "Erin Sato", "email": "erin.sato@example.com", "parent": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    "effect_pct": 37.5, "ci_low_pct": 31.0, "ci_high_pct": 44.0, "p_value": 2e-8, "unsure": false,
    "phase": "imports", "phase_delta_ms": 410.0, "phase_summary": "imports +410 ms (95% of the effect)"}],
  "cost": {"runs": 180, "jobs": 14, "rounds": 5, "wall_seconds": 95.2},
  "url": "http://127.0.0.1:8080/api/v1/bisections/7", "dashboard_url": "http://127.0.0.1:8080/#/bisections/7",
  "created_at": "2026-11-23T12:09:30Z", "finished_at": "2026-11-23T12:11:05Z"})json";

json::object blocked_release() {
  auto r = parse(R"json({"id": 3, "name": "v1.1", "repo": "example",
    "base": {"ref": "v1.0", "commit": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e"},
    "candidate": {"ref": "v1.1", "commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809"},
    "owner": "Release Captain", "owner_email": "rc@example.com", "status": "blocked",
    "reason": "example-train regressed +38.2% [+33.1, +43.5] (confirmed)", "workflows": ["example-train"],
    "experiment": {"id": 12, "status": "done", "verdict": "regression", "url": "http://127.0.0.1:8080/api/v1/experiments/12",
      "workflows": [{"workflow": "example-train", "state": "done", "verdict": "regression", "confirmed": true,
        "effect_pct": 38.2, "ci_low_pct": 33.1, "ci_high_pct": 43.5, "p_value": 1e-9, "threshold_pct": 5.0,
        "phase_summary": "imports +410 ms (95% of the effect)", "runs_per_arm": 20}]},
    "bisections": [],
    "url": "http://127.0.0.1:8080/api/v1/releases/v1.1", "dashboard_url": "http://127.0.0.1:8080/#/releases/v1.1",
    "created_by": "ci", "created_at": "2026-11-23T12:00:00Z", "decided_at": "2026-11-23T12:09:12Z"})json");
  r["bisections"].as_array().push_back(parse(kFoundSummary));
  return r;
}

json::object passed_release() {
  return parse(R"json({"id": 4, "name": "v1.2", "repo": "example",
    "base": {"ref": "v1.1", "commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809"},
    "candidate": {"ref": "v1.2", "commit": "0b5e55ed1a2b3c4d5e6f708192a3b4c5d6e7f809"},
    "owner": "", "owner_email": "", "status": "passed", "reason": "no workflow regressed",
    "workflows": ["example-train", "example-eval"],
    "experiment": {"id": 15, "status": "done", "verdict": "no_change", "url": "http://127.0.0.1:8080/api/v1/experiments/15",
      "workflows": [
        {"workflow": "example-train", "state": "done", "verdict": "no_change", "confirmed": null, "effect_pct": 0.4,
         "ci_low_pct": -1.2, "ci_high_pct": 2.0, "p_value": 0.61, "threshold_pct": 5.0, "phase_summary": null, "runs_per_arm": 30},
        {"workflow": "example-eval", "state": "done", "verdict": "improvement", "confirmed": true, "effect_pct": -6.1,
         "ci_low_pct": -8.0, "ci_high_pct": -4.2, "p_value": 3e-6, "threshold_pct": 4.0, "phase_summary": "data -52 ms", "runs_per_arm": 20}]},
    "bisections": [], "url": "http://127.0.0.1:8080/api/v1/releases/v1.2", "dashboard_url": "http://127.0.0.1:8080/#/releases/v1.2",
    "created_by": "ci", "created_at": "2026-11-24T08:00:00Z", "decided_at": "2026-11-24T08:06:40Z"})json");
}

// Just created: the experiment is queued, every number is null, nothing decided.
json::object pending_release() {
  return parse(R"json({"id": 5, "name": "v1.3", "repo": "example",
    "base": {"ref": "v1.2", "commit": "0b5e55ed1a2b3c4d5e6f708192a3b4c5d6e7f809"},
    "candidate": {"ref": "main", "commit": "c0ffee0000000000000000000000000000000001"},
    "owner": "Release Captain", "owner_email": null, "status": "pending", "reason": "", "workflows": ["example-train"],
    "experiment": {"id": 16, "status": "running", "verdict": null, "url": null,
      "workflows": [{"workflow": "example-train", "state": "running", "verdict": null, "confirmed": null,
        "effect_pct": null, "ci_low_pct": null, "ci_high_pct": null, "p_value": null, "threshold_pct": null,
        "phase_summary": null, "runs_per_arm": null}]},
    "bisections": [], "url": null, "dashboard_url": null, "created_by": "ci", "created_at": "2026-11-25T09:00:00Z",
    "decided_at": null})json");
}

// GET /api/v1/bisections/{id} in round 3: ends measured (~800 vs ~1100 ms), commit 8 looks bad,
// commit 6 good, commit 7 is being probed; commit 4 did not build.
json::object running_bisection() {
  return parse(R"json({"id": 8, "repo": "example", "workflow": "example-train",
    "good": {"ref": "v1.0", "commit": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e"},
    "bad": {"ref": "v1.1", "commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809"},
    "release": null, "status": "searching", "message": "", "total_effect_pct": 37.9, "culprits": [],
    "cost": {"runs": 42, "jobs": 5, "rounds": 3, "wall_seconds": null},
    "url": "http://127.0.0.1:8080/api/v1/bisections/8", "dashboard_url": "http://127.0.0.1:8080/#/bisections/8",
    "created_at": "2026-11-23T12:09:30Z", "finished_at": null,
    "range": {"commits": 17, "candidates": 16},
    "broken": [{"commit": "4444444aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "wip: half a refactor",
                "error": "build_failed: exit 1 (ModuleNotFoundError: tokenizers)"}],
    "commits": [
      {"index": 0, "commit": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e", "subject": "release v1.0", "author": "Ann", "email": "ann@example.com", "runs": 10, "median_ms": 812.5, "state": "measured"},
      {"index": 1, "commit": "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "docs", "author": "Ann", "email": "ann@example.com", "runs": 0, "median_ms": null, "state": "untested"},
      {"index": 4, "commit": "4444444aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "wip: half a refactor", "author": "Bo", "email": "bo@example.com", "runs": 0, "median_ms": null, "state": "broken"},
      {"index": 6, "commit": "6666666aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "faster shuffling", "author": "Cy", "email": "cy@example.com", "runs": 10, "median_ms": 815.0, "state": "measured"},
      {"index": 7, "commit": "7777777aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "tokenizer options", "author": "Erin Sato", "email": "erin.sato@example.com", "runs": 0, "median_ms": null, "state": "untested"},
      {"index": 8, "commit": "8888888aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "subject": "bump pins", "author": "Dee", "email": "dee@example.com", "runs": 10, "median_ms": 1101.0, "state": "measured"},
      {"index": 16, "commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809", "subject": "release v1.1", "author": "Ann", "email": "ann@example.com", "runs": 12, "median_ms": 1120.0, "state": "measured"}],
    "steps": [
      {"round": 1, "requests": [{"commit": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e", "runs": 10}, {"commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809", "runs": 12}], "state": "done", "started_at": "2026-11-23T12:09:31Z", "finished_at": "2026-11-23T12:09:50Z"},
      {"round": 2, "requests": [{"commit": "8888888aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "runs": 10}, {"commit": "4444444aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "runs": 10}], "state": "done", "started_at": "2026-11-23T12:09:50Z", "finished_at": "2026-11-23T12:10:02Z"},
      {"round": 3, "requests": [{"commit": "6666666aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "runs": 10}, {"commit": "7777777aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "runs": 10}], "state": "running", "started_at": "2026-11-23T12:10:02Z", "finished_at": null}]})json");
}

// Finished with two culprits (neither explains the slowdown alone) and one broken commit skipped.
json::object two_culprits() {
  return parse(R"json({"id": 9, "repo": "example", "workflow": "example-train",
    "good": {"ref": "fad04d2", "commit": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e"},
    "bad": {"ref": "main", "commit": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809"},
    "release": null, "status": "found", "message": "2 culprits explain 97% of the slowdown", "total_effect_pct": 21.0,
    "culprits": [
      {"commit": "3a3a3a3bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "subject": "load the vocabulary eagerly", "author": "Erin Sato",
       "email": "erin.sato@example.com", "parent": "2b2b2b2ccccccccccccccccccccccccccccccccc", "effect_pct": 10.2,
       "ci_low_pct": 7.9, "ci_high_pct": 12.6, "p_value": 4e-7, "unsure": false, "phase": "imports", "phase_delta_ms": 82.0,
       "phase_summary": "imports +82 ms (97% of the effect)"},
      {"commit": "9c9c9c9ddddddddddddddddddddddddddddddddd", "subject": "prefetch 4 batches", "author": "Farid Haddad",
       "email": "farid@example.com", "parent": "8d8d8d8eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "effect_pct": 8.9,
       "ci_low_pct": 5.1, "ci_high_pct": 12.8, "p_value": 0.0003, "unsure": true, "phase": "first_batch",
       "phase_delta_ms": 77.5, "phase_summary": null}],
    "cost": {"runs": 260, "jobs": 22, "rounds": 8, "wall_seconds": 312.0},
    "url": "http://127.0.0.1:8080/api/v1/bisections/9", "dashboard_url": "http://127.0.0.1:8080/#/bisections/9",
    "created_at": "2026-11-23T13:00:00Z", "finished_at": "2026-11-23T13:05:12Z",
    "range": {"commits": 31, "candidates": 30},
    "broken": [{"commit": "5e5e5e5fffffffffffffffffffffffffffffffff", "subject": "half-applied migration",
                "error": "build_failed: exit 1 (pip install -e .)"}],
    "commits": [], "steps": []})json");
}

// --- bisections -------------------------------------------------------------------------------

TEST(Bisection, ExitCodesFollowTheStatus) {
  auto b = parse(kFoundSummary);
  EXPECT_EQ(bisection_exit_code(b), kExitCulpritFound);
  EXPECT_EQ(kExitCulpritFound, 1);
  b["status"] = "no_regression";
  EXPECT_EQ(bisection_exit_code(b), kExitRangeClean);
  EXPECT_EQ(kExitRangeClean, 0);
  for (const char* s : {"broken", "error", "cancelled", "something_new"}) {
    b["status"] = s;
    EXPECT_EQ(bisection_exit_code(b), kExitError) << s;
    EXPECT_EQ(kExitError, 2);
  }
  for (const char* s : {"verifying", "searching"}) {
    b["status"] = s;
    EXPECT_EQ(bisection_exit_code(b), kExitPending) << s;
    EXPECT_FALSE(bisection_finished(b)) << s;
  }
  EXPECT_EQ(kExitPending, 3);
  EXPECT_EQ(bisection_exit_code(json::object{}), kExitError);
  EXPECT_FALSE(bisection_finished(json::object{}));
}

// Every part that holds no culprit is listed with how it was decided, and the remainder with
// its interval.
TEST(Bisection, ReportListsThePartsWithoutACulpritAndWhatIsLeftUnexplained) {
  json::object b = parse(kFoundSummary);
  b["parts"] = parse(R"json({"a": [{"good": "fad04d2a9c1e4b7d8f0a1b2c3d4e5f6a7b8c9d0e", "bad": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    "state": "same", "reason": "the same within 3.0%: +0.4% [-1.9%, +2.8%] (99.7%)"},
    {"good": "60c38cb5e1f2a3b4c5d6e7f8091a2b3c4d5e6f70", "bad": "d15ced0b1a2b3c4d5e6f708192a3b4c5d6e7f809",
    "state": "unsure", "reason": "neither different nor the same within 3.0% after 40 runs per end"}]})json").at("a");
  b["remainder_pct"] = 0.4;
  b["remainder_ci_low_pct"] = -2.1;
  b["remainder_ci_high_pct"] = 3.0;
  b["ci_level"] = 0.99;
  const std::string t = format_bisection(b);
  EXPECT_HAS(t, "parts without a culprit:");
  EXPECT_HAS(t, "fad04d2..1a2b3c4  same: the same within 3.0%");
  EXPECT_HAS(t, "60c38cb..d15ced0  unsure: neither different");
  EXPECT_HAS(t, "+0.4% of the change left unexplained by the culprits [-2.1, +3.0] (99% CI)");
  EXPECT_LACKS(format_bisection(parse(kFoundSummary)), "parts without a culprit");
}

TEST(Bisection, ReportNamesTheCulpritItsAuthorEffectAndPhase) {
  const std::string t = format_bisection(parse(kFoundSummary));
  EXPECT_HAS(t, "bisection 7");
  EXPECT_HAS(t, "found: 1 culprit");
  EXPECT_HAS(t, "v1.0 (fad04d2) .. v1.1 (d15ced0)");
  EXPECT_HAS(t, "culprit 60c38cb  eager import of the tokenizer");
  EXPECT_HAS(t, "Erin Sato <erin.sato@example.com>");
  EXPECT_HAS(t, "+37.5% [+31.0, +44.0] against its parent 1a2b3c4, p 2.0e-08");
  EXPECT_HAS(t, "imports +410 ms (95% of the effect)");
  // ln(1.375) / ln(1.38) = 0.9885: the culprit explains 99% of the end-to-end slowdown.
  EXPECT_HAS(t, "+38.0% from good to bad; the culprit explains 99% of it");
  EXPECT_HAS(t, "180 runs in 14 jobs over 5 rounds, 1 min 35 s");
  EXPECT_HAS(t, "http://127.0.0.1:8080/#/bisections/7");
  EXPECT_HAS(t, "release    v1.1");
  EXPECT_LACKS(t, "unsure");
  EXPECT_LACKS(t, "\033[");  // no colour unless asked
  EXPECT_HAS(format_bisection(parse(kFoundSummary), {.colour = true}), "\033[1;31m60c38cb\033[0m");
}

TEST(Bisection, TwoCulpritsBothReportedAndTheBrokenCommitSkipped) {
  const auto b = two_culprits();
  EXPECT_EQ(bisection_exit_code(b), kExitCulpritFound);
  const std::string t = format_bisection(b);
  EXPECT_HAS(t, "found: 2 culprits");
  EXPECT_HAS(t, "culprit 3a3a3a3  load the vocabulary eagerly");
  EXPECT_HAS(t, "Erin Sato <erin.sato@example.com>");
  EXPECT_HAS(t, "+10.2% [+7.9, +12.6] against its parent 2b2b2b2, p 4.0e-07");
  EXPECT_HAS(t, "culprit 9c9c9c9  prefetch 4 batches");
  EXPECT_HAS(t, "Farid Haddad <farid@example.com>");
  EXPECT_HAS(t, "+8.9% [+5.1, +12.8] against its parent 8d8d8d8, p 0.0003");
  // Without a phase summary the phase and its delta are shown.
  EXPECT_HAS(t, "first_batch +78 ms");
  EXPECT_HAS(t, "unsure");
  // (ln 1.102 + ln 1.089) / ln 1.21 = 0.1824 / 0.1906 = 96%: the share of the slowdown on the log scale.
  EXPECT_HAS(t, "+21.0% from good to bad; the culprits explain 96% of it");
  EXPECT_HAS(t, "broken commits (skipped, never blamed)");
  EXPECT_HAS(t, "5e5e5e5  half-applied migration");
  EXPECT_HAS(t, "build_failed: exit 1 (pip install -e .)");
  // A ref that is the SHA itself is not repeated.
  EXPECT_HAS(t, "fad04d2 .. main (d15ced0), 30 commits");
  EXPECT_HAS(t, "260 runs in 22 jobs over 8 rounds, 5 min 12 s");
  EXPECT_LACKS(t, "measured so far");
  // The first culprit is listed before the second.
  EXPECT_LT(t.find("3a3a3a3"), t.find("9c9c9c9"));
}

TEST(Bisection, RunningReportShowsRoundProbesMeasuredCommitsAndNarrowedRange) {
  const auto b = running_bisection();
  EXPECT_FALSE(bisection_finished(b));
  EXPECT_EQ(bisection_exit_code(b), kExitPending);
  const std::string t = format_bisection(b);
  EXPECT_HAS(t, "searching");
  EXPECT_HAS(t, "round      3: probing 6666666 (10 runs), 7777777 (10 runs)");
  EXPECT_HAS(t, "measured so far");
  EXPECT_HAS(t, "812.5 ms");
  EXPECT_HAS(t, "1101.0 ms");
  EXPECT_HAS(t, "wip: half a refactor");
  EXPECT_HAS(t, "build_failed: exit 1 (ModuleNotFoundError: tokenizers)");
  EXPECT_HAS(t, "6666666..8888888, 2 of 16 commits");
  EXPECT_HAS(t, "42 runs in 5 jobs over 3 rounds");  // wall time not known yet
  EXPECT_LACKS(t, "docs");                          // untested commits are left out
  EXPECT_LACKS(t, "culprit ");
}

TEST(Bisection, NarrowedRangeFromTheMediansSoFar) {
  auto n = narrowed_range(running_bisection());
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->good, 6);
  EXPECT_EQ(n->bad, 8);
  EXPECT_EQ(n->good_commit.substr(0, 7), "6666666");
  EXPECT_EQ(n->bad_commit.substr(0, 7), "8888888");

  // Only the ends measured: the whole range.
  auto ends_only = running_bisection();
  for (auto& c : ends_only["commits"].as_array()) {
    auto& o = c.as_object();
    if (o["index"].as_int64() != 0 && o["index"].as_int64() != 16) o["median_ms"] = nullptr;
  }
  n = narrowed_range(ends_only);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->good, 0);
  EXPECT_EQ(n->bad, 16);

  // Not both ends measured, equal ends, no commits: no estimate.
  auto no_bad = running_bisection();
  no_bad["commits"].as_array().back().as_object()["median_ms"] = nullptr;
  EXPECT_FALSE(narrowed_range(no_bad).has_value());
  auto flat = running_bisection();
  flat["commits"].as_array().back().as_object()["median_ms"] = 812.5;
  EXPECT_FALSE(narrowed_range(flat).has_value());
  EXPECT_FALSE(narrowed_range(parse(kFoundSummary)).has_value());
  EXPECT_FALSE(narrowed_range(json::object{}).has_value());
}

TEST(Bisection, ProgressLine) {
  const std::string line = format_bisection_progress(running_bisection(), 35);
  EXPECT_EQ(line,
            "bisection 8 (example-train): searching, round 3 probing 6666666, 7777777, 42 runs in 5 jobs, "
            "narrowed to 2 of 16 commits (6666666..8888888), 35 s");
  const std::string done = format_bisection_progress(two_culprits(), 312);
  EXPECT_HAS(done, "found, 2 culprits (3a3a3a3,9c9c9c9)");
  EXPECT_HAS(done, "5 min 12 s");
  EXPECT_LACKS(done, "narrowed");
  // Just created: nothing measured yet, nothing to show but the status.
  EXPECT_EQ(format_bisection_progress(parse(R"json({"id": 10, "workflow": "w", "status": "verifying", "cost": null})json"), 1),
            "bisection 10 (w): verifying, 1 s");
}

TEST(Bisection, BrokenBisectionIsAnErrorWithItsMessage) {
  auto b = two_culprits();
  b["status"] = "broken";
  b["culprits"] = json::array{};
  b["message"] = "the bad end does not build: build_failed: exit 1";
  b["total_effect_pct"] = nullptr;
  EXPECT_TRUE(bisection_finished(b));
  EXPECT_EQ(bisection_exit_code(b), kExitError);
  const std::string t = format_bisection(b);
  EXPECT_HAS(t, "broken");
  EXPECT_HAS(t, "the bad end does not build: build_failed: exit 1");
  EXPECT_LACKS(t, "from good to bad");
}

TEST(Bisection, NullsAndMissingFieldsPrintAsDashes) {
  EXPECT_NO_THROW(format_bisection(json::object{}));
  EXPECT_NO_THROW(format_bisection_progress(json::object{}, 0));
  const std::string t = format_bisection(parse(R"json({"id": 11, "repo": "example", "workflow": "example-train",
    "good": {"ref": "v1.0", "commit": null}, "bad": null, "status": "found", "total_effect_pct": null,
    "culprits": [{"commit": "60c38cb5e1f2a3b4c5d6e7f8091a2b3c4d5e6f70", "subject": null, "author": null, "email": null,
                  "parent": null, "effect_pct": null, "ci_low_pct": null, "ci_high_pct": null, "p_value": null,
                  "unsure": null, "phase": null, "phase_delta_ms": null, "phase_summary": null}, 42],
    "cost": null, "broken": null, "commits": null, "steps": null})json"));
  EXPECT_HAS(t, "culprit 60c38cb");
  EXPECT_HAS(t, "author   -");
  EXPECT_HAS(t, "effect   -");
  EXPECT_HAS(t, "v1.0 .. -");
  EXPECT_HAS(t, "cost       -");
}

TEST(Bisection, ListTable) {
  json::object list{{"bisections", json::array{parse(kFoundSummary), running_bisection()}}, {"count", 2}};
  const std::string t = format_bisections(list);
  EXPECT_HAS(t, "v1.0..v1.1");
  EXPECT_HAS(t, "60c38cb");
  EXPECT_HAS(t, "searching");
  EXPECT_HAS(t, "2026-11-23 12:09");
  EXPECT_HAS(t, "180");
  EXPECT_EQ(format_bisections(parse(R"json({"bisections": [], "count": 0})json")), "no bisections\n");
  EXPECT_EQ(format_bisections(json::object{}), "no bisections\n");
}

// --- releases ---------------------------------------------------------------------------------

TEST(Release, ExitCodesAndSettling) {
  EXPECT_EQ(release_exit_code(passed_release()), kExitPassed);
  EXPECT_EQ(kExitPassed, 0);
  EXPECT_EQ(release_exit_code(blocked_release()), kExitBlocked);
  EXPECT_EQ(kExitBlocked, 1);
  EXPECT_EQ(release_exit_code(pending_release()), kExitPending);
  for (const char* s : {"error", "cancelled"}) {
    auto r = pending_release();
    r["status"] = s;
    EXPECT_EQ(release_exit_code(r), kExitError) << s;
    EXPECT_TRUE(release_decided(r));
  }
  EXPECT_EQ(release_exit_code(json::object{}), kExitError);

  EXPECT_FALSE(release_decided(pending_release()));
  EXPECT_FALSE(release_settled(pending_release()));
  EXPECT_TRUE(release_settled(passed_release()));
  EXPECT_TRUE(release_settled(blocked_release()));
  // Blocked, but its bisection still searches: decided, not settled.
  auto searching = blocked_release();
  searching["bisections"].as_array()[0].as_object()["status"] = "searching";
  EXPECT_TRUE(release_decided(searching));
  EXPECT_FALSE(release_settled(searching));
  EXPECT_EQ(release_exit_code(searching), kExitBlocked);
}

TEST(Release, BlockedReportShowsReasonVerdictAndTheCulprit) {
  const std::string t = format_release(blocked_release());
  EXPECT_HAS(t, "release v1.1  (repo example)  blocked");
  EXPECT_HAS(t, "example-train regressed +38.2% [+33.1, +43.5] (confirmed)");
  EXPECT_HAS(t, "v1.0 (fad04d2)");
  EXPECT_HAS(t, "v1.1 (d15ced0)");
  EXPECT_HAS(t, "Release Captain <rc@example.com>");
  EXPECT_HAS(t, "experiment 12: done, verdict regression");
  EXPECT_HAS(t, "1.0e-09");
  EXPECT_HAS(t, "5.0%");
  EXPECT_HAS(t, "regression (confirmed)");
  EXPECT_HAS(t, "example-train: imports +410 ms (95% of the effect)");
  EXPECT_HAS(t, "2026-11-23 12:00 by ci");
  EXPECT_HAS(t, "decided    2026-11-23 12:09");
  // The bisection it started, with its culprit.
  EXPECT_HAS(t, "bisection 7");
  EXPECT_HAS(t, "culprit 60c38cb  eager import of the tokenizer");
  EXPECT_HAS(t, "Erin Sato <erin.sato@example.com>");
  EXPECT_HAS(t, "+37.5% [+31.0, +44.0]");
  EXPECT_HAS(t, "ttfb-lab bisect status 7");
  EXPECT_HAS(t, "http://127.0.0.1:8080/#/releases/v1.1");
  EXPECT_HAS(format_release(blocked_release(), {.colour = true}), "\033[1;31mblocked\033[0m");
}

TEST(Release, PassedReportShowsEveryWorkflowsVerdict) {
  const auto r = passed_release();
  const std::string t = format_release(r);
  EXPECT_HAS(t, "passed");
  EXPECT_HAS(t, "no workflow regressed");
  EXPECT_HAS(t, "+0.4% [-1.2, +2.0]");
  EXPECT_HAS(t, "0.6100");
  EXPECT_HAS(t, "no_change");
  EXPECT_HAS(t, "improvement (confirmed)");
  EXPECT_HAS(t, "-6.1% [-8.0, -4.2]");
  EXPECT_HAS(t, "example-eval: data -52 ms");
  EXPECT_LACKS(t, "owner");  // none given
  EXPECT_LACKS(t, "bisection");
  EXPECT_HAS(format_release(r, {.colour = true}), "\033[1;32mpassed\033[0m");
}

TEST(Release, PendingReportWithNulls) {
  const std::string t = format_release(pending_release());
  EXPECT_HAS(t, "pending");
  EXPECT_HAS(t, "experiment 16: running");
  EXPECT_HAS(t, "Release Captain");
  EXPECT_HAS(t, "main (c0ffee0)");
  EXPECT_LACKS(t, "decided");
  EXPECT_LACKS(t, "verdict ");
  // The workflow's row: state running, no numbers, verdict pending.
  const auto row = t.substr(t.find("example-train"));
  EXPECT_HAS(row.substr(0, row.find('\n')), "running");
  EXPECT_HAS(row.substr(0, row.find('\n')), "pending");
  EXPECT_NO_THROW(format_release(json::object{}));
  EXPECT_NO_THROW(format_release_progress(json::object{}, 0));
}

TEST(Release, ProgressWhileMeasuredShowsRunsAndLooks) {
  // GET /api/v1/experiments/16 of the gate: its look and runs.
  const auto experiment = parse(R"json({"id": 16, "status": "running", "progress": {"runs_done": 40, "runs_total": 120},
    "workflows": [{"workflow": "example-train", "state": "measuring", "result": {"look": {"look": 2, "looks_planned": 6}}}]})json");
  EXPECT_EQ(format_release_progress(pending_release(), 35, &experiment),
            "release v1.3: pending, 40/120 runs; example-train running look 2/6; 35 s");
  EXPECT_EQ(format_release_progress(pending_release(), 35), "release v1.3: pending; example-train running; 35 s");
}

TEST(Release, ProgressWhileBisectingUsesTheFullBisection) {
  auto r = blocked_release();
  auto& summary = r["bisections"].as_array()[0].as_object();
  summary = running_bisection();
  summary.erase("commits");
  summary.erase("steps");
  // With the summary only: the status and runs.
  std::string line = format_release_progress(r, 75);
  EXPECT_HAS(line, "release v1.1: blocked; bisection 8 (example-train): searching, 42 runs in 5 jobs; 1 min 15 s");
  // With GET /api/v1/bisections/8: the round, its probes and the narrowed range.
  line = format_release_progress(r, 75, nullptr, {running_bisection()});
  EXPECT_HAS(line, "round 3 probing 6666666, 7777777");
  EXPECT_HAS(line, "narrowed to 2 of 16 commits (6666666..8888888)");
  EXPECT_LACKS(line, "example-train running");  // the gate's experiment is over
}

TEST(Release, ListTable) {
  auto blocked = blocked_release();
  blocked["experiment"].as_object().erase("workflows");  // lists may leave the detail out
  json::object list{{"releases", json::array{blocked, passed_release(), pending_release()}}, {"count", 3}};
  const std::string t = format_releases(list);
  EXPECT_HAS(t, "v1.0..v1.1");
  EXPECT_HAS(t, "fad04d2..d15ced0");
  EXPECT_HAS(t, "blocked");
  EXPECT_HAS(t, "7 found");
  EXPECT_HAS(t, "60c38cb");
  EXPECT_HAS(t, "passed");
  EXPECT_HAS(t, "pending");
  EXPECT_HAS(t, "2026-11-24 08:00");
  EXPECT_EQ(format_releases(parse(R"json({"releases": [], "count": 0})json")), "no releases\n");
  // Without the experiment's workflows the report lists the gate's workflows.
  EXPECT_HAS(format_release(blocked), "workflows  example-train");
}

// --- alerts -----------------------------------------------------------------------------------

TEST(Alerts, TableWithRecipientsAttemptsAndTheLastErrorOfFailedOnes) {
  const auto list = parse(R"json({"alerts": [
    {"id": 1, "kind": "culprit", "repo": "example", "change": "commit:60c38cb5e1f2a3b4c5d6e7f8091a2b3c4d5e6f70",
     "workflow": "example-train", "channel": "webhook", "target": "http://127.0.0.1:9999/hook",
     "recipient": {"name": "Erin Sato", "email": "erin.sato@example.com"},
     "title": "60c38cb made example-train +37.5% slower", "url": "http://127.0.0.1:8080/#/bisections/7",
     "status": "delivered", "attempts": 1, "max_attempts": 8, "last_error": null,
     "next_attempt_at": null, "created_at": "2026-11-23T12:11:05Z", "delivered_at": "2026-11-23T12:11:06Z"},
    {"id": 2, "kind": "release_blocked", "repo": "example", "change": "release:v1.1", "workflow": null,
     "channel": "email", "target": "rc@example.com", "recipient": {"name": "Release Captain", "email": "rc@example.com"},
     "title": "release v1.1 blocked", "url": null, "status": "failed", "attempts": 8, "max_attempts": 8,
     "last_error": "smtp: connection refused", "next_attempt_at": null, "created_at": "2026-11-23T12:09:12Z", "delivered_at": null},
    {"id": 3, "kind": "presubmit_regression", "repo": "example", "change": "experiment:14", "workflow": "example-train",
     "channel": "webhook", "target": "http://127.0.0.1:9999/hook", "recipient": null, "title": "experiment 14 regressed",
     "url": null, "status": "pending", "attempts": 2, "max_attempts": 8, "last_error": "HTTP 503",
     "next_attempt_at": "2026-11-23T12:20:00Z", "created_at": "2026-11-23T12:15:00Z", "delivered_at": null}],
    "count": 3})json");
  const std::string t = format_alerts(list);
  EXPECT_HAS(t, "culprit");
  EXPECT_HAS(t, "Erin Sato <erin.sato@example.com>");
  EXPECT_HAS(t, "http://127.0.0.1:9999/hook");
  EXPECT_HAS(t, "delivered");
  EXPECT_HAS(t, "1/8");
  EXPECT_HAS(t, "8/8");
  EXPECT_HAS(t, "60c38cb made example-train +37.5% slower");
  // The failed alert's error is on the line below its row.
  const auto failed_row = t.find("release v1.1 blocked");
  ASSERT_NE(failed_row, std::string::npos) << t;
  const auto next_line = t.substr(t.find('\n', failed_row) + 1);
  EXPECT_EQ(next_line.substr(0, next_line.find('\n')), "    last error: smtp: connection refused");
  // A pending retry says why and when it is due.
  EXPECT_HAS(t, "last error: HTTP 503; next attempt 2026-11-23 12:20");
  EXPECT_EQ(format_alerts(parse(R"json({"alerts": [], "count": 0})json")), "no alerts\n");
}

}  // namespace
}  // namespace ttfb::cli
