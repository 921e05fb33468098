// What a bisection says when an end of its range cannot be measured
// (server/scheduler/broken_ends.hpp): the workflow's paths, the binary search for the first
// commit that has them, and the message and JSON naming the commits.
#include "server/scheduler/broken_ends.hpp"

#include <gtest/gtest.h>

namespace ttfb {
namespace {

std::vector<git::CommitInfo> range(int n) {
  std::vector<git::CommitInfo> out;
  for (int i = 0; i < n; ++i) {
    char sha[41];  // distinct in their first 12 characters, as the messages show them
    std::snprintf(sha, sizeof sha, "%012x%028x", 0xabc000 + i, i);
    out.push_back(git::CommitInfo{sha, "commit " + std::to_string(i), "A", "a@example.com", "2026-11-23T12:00:00+00:00"});
  }
  return out;
}

TEST(WorkflowPaths, TheRelativePathsOfTheCommandUnderTheWorkdir) {
  WorkflowConfig wf;
  wf.command = {"python3", "train.py"};
  wf.shrink_args = {"--steps", "1", "--device", "cpu", "--tiny"};
  EXPECT_EQ(workflow_paths(wf), (std::vector<std::string>{"python3", "train.py", "1", "cpu"}));

  wf.workdir = "./src/";
  wf.command = {"./run.sh", "configs/tiny.yaml", "/usr/bin/env", "../../escape", "a/../../../out", "--config=x",
                "train.py", "bad\nline", "", "../common/util.py"};
  wf.shrink_args = {"./train.py"};
  EXPECT_EQ(workflow_paths(wf), (std::vector<std::string>{"src", "src/run.sh", "src/configs/tiny.yaml", "src/train.py",
                                                          "common/util.py"}));

  wf.workdir = "../elsewhere";
  EXPECT_TRUE(workflow_paths(wf).empty());
}

TEST(WorkflowPaths, AtMostKMaxWorkflowPaths) {
  WorkflowConfig wf;
  for (int i = 0; i < 20; ++i) wf.command.push_back("f" + std::to_string(i));
  EXPECT_EQ(workflow_paths(wf).size(), kMaxWorkflowPaths);
}

TEST(FirstIndexWhere, FindsTheFlipInLogarithmicallyManyCalls) {
  for (int flip = 1; flip < 10000; flip += 997) {
    int calls = 0;
    const int got = first_index_where(0, 9999, [&](int i) {
      ++calls;
      return i >= flip;
    });
    EXPECT_EQ(got, flip);
    EXPECT_LE(calls, 14);
  }
  EXPECT_EQ(first_index_where(0, 1, [](int) { return true; }), 1);
  EXPECT_EQ(first_index_where(3, 3, [](int) { return false; }), 3);
}

TEST(BrokenEndsMessage, NamesTheGoodEndItsErrorAndWhereTheWorkflowStarts) {
  const auto commits = range(6);
  const std::map<int, std::string> broken{{0, "workload_failed: can't open file 'train.py' (run 0, baseline, warm-up)"}};
  const SuggestedGood s{2, {"train.py"}};
  const std::string m = broken_ends_message(commits, broken, s);
  EXPECT_EQ(m, "the good end of the range cannot be measured: " + commits[0].sha.substr(0, 12) +
                   " (commit 0) failed: workload_failed: can't open file 'train.py' (run 0, baseline, warm-up); "
                   "the workflow's files (train.py) first exist at " +
                   commits[2].sha.substr(0, 12) + " (commit 2), commit 2 of the range: bisect from there");
  const auto j = suggested_good_json(commits, s);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("commit").as_string(), commits[2].sha);
  EXPECT_EQ(j.at("subject").as_string(), "commit 2");
  EXPECT_EQ(j.at("index").as_int64(), 2);
  EXPECT_EQ(j.at("paths").as_array().size(), 1u);

  // Without a suggestion: the commit and its error only.
  EXPECT_EQ(broken_ends_message(commits, broken, std::nullopt),
            "the good end of the range cannot be measured: " + commits[0].sha.substr(0, 12) +
                " (commit 0) failed: " + broken.at(0));
  EXPECT_TRUE(suggested_good_json(commits, std::nullopt).is_null());
}

TEST(BrokenEndsMessage, FilesOnlyAtTheBadEndLeaveNothingToBisect) {
  const auto commits = range(4);
  const SuggestedGood s{3, {"train.py"}};
  const std::string m = broken_ends_message(commits, {{0, "workload_failed: x"}}, s);
  EXPECT_NE(m.find("exist only at the bad end"), std::string::npos) << m;
  EXPECT_EQ(m.find("bisect from there"), std::string::npos) << m;
  EXPECT_TRUE(suggested_good_json(commits, s).is_null());
}

TEST(BrokenEndsMessage, ABadEndThatCannotRunIsNamedToo) {
  const auto commits = range(5);
  EXPECT_EQ(broken_ends_message(commits, {{4, "build_failed: SyntaxError"}}, std::nullopt),
            "the bad end of the range cannot be measured: " + commits[4].sha.substr(0, 12) +
                " (commit 4) failed: build_failed: SyntaxError");
  const std::string both = broken_ends_message(commits, {{0, "a"}, {2, "b"}, {4, "c"}}, std::nullopt);
  EXPECT_NE(both.find("good end"), std::string::npos);
  EXPECT_NE(both.find("; and the bad end"), std::string::npos);
  EXPECT_EQ(both.find(commits[2].sha.substr(0, 12)), std::string::npos) << "a broken commit inside is not an end";
  EXPECT_EQ(broken_ends_message(commits, {{2, "b"}}, std::nullopt), "");
}

}  // namespace
}  // namespace ttfb
