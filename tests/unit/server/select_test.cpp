// Which workflows a diff can touch (server/scheduler/select.hpp): the diff's files read as
// `git apply` reads them, against each workflow's footprint.
#include "server/scheduler/select.hpp"

#include <gtest/gtest.h>

namespace ttfb {
namespace {

using Paths = std::vector<std::string>;

TEST(DiffPaths, OldAndNewNamesOfEveryFileWithoutTheirPrefixes) {
  const std::string diff =
      "diff --git a/train.py b/train.py\n"
      "index 1111111..2222222 100644\n"
      "--- a/train.py\n"
      "+++ b/train.py\n"
      "@@ -1,3 +1,4 @@\n"
      "+import trainer.tracking\n"
      " import os\n"
      " import sys\n"
      " import time\n"
      "diff --git a/trainer/tracking.py b/trainer/tracking.py\n"
      "new file mode 100644\n"
      "--- /dev/null\n"
      "+++ b/trainer/tracking.py\n"
      "@@ -0,0 +1 @@\n"
      "+import json\n"
      "diff --git a/old/name.py b/new/name.py\n"
      "similarity index 90%\n"
      "rename from old/name.py\n"
      "rename to new/name.py\n";
  EXPECT_EQ(diff_paths(diff), (Paths{"new/name.py", "old/name.py", "train.py", "trainer/tracking.py"}));
}

TEST(DiffPaths, LinesInsideAHunkAreNeverTakenForHeaders) {
  // A removed SQL comment "-- a/x" and an added "++ b/y" look like file headers once prefixed.
  const std::string diff =
      "--- a/q.sql\n"
      "+++ b/q.sql\n"
      "@@ -1,2 +1,2 @@\n"
      "--- a/x\n"
      "+++ b/y\n"
      " SELECT 1;\n"
      "\\ No newline at end of file\n";
  EXPECT_EQ(diff_paths(diff), (Paths{"q.sql"}));
}

TEST(DiffPaths, WhatCannotBeReadChoosesEverything) {
  EXPECT_EQ(diff_paths("--- \"a/with space.py\"\n+++ \"b/with space.py\"\n@@ -1 +1 @@\n-x\n+y\n"), std::nullopt);
  EXPECT_EQ(diff_paths("--- train.py\n+++ train.py\n@@ -1 +1 @@\n-x\n+y\n"), std::nullopt) << "no a/ b/ prefixes";
  EXPECT_EQ(diff_paths("not a diff at all\n"), std::nullopt);
  EXPECT_EQ(diff_paths("--- a/x.py\t2026-01-01 00:00\n+++ b/x.py\t2026-01-02 00:00\n@@ -1 +1 @@\n-a\n+b\n"),
            (Paths{"x.py"}))
      << "a timestamp after a tab is not part of the name";
}

TEST(ChooseByFootprint, TheWorkflowsWhoseFootprintTheDiffTouchesAndThoseWithNone) {
  const std::map<std::string, std::optional<Paths>> footprints{
      {"train", Paths{"train.py", "trainer/data.py", "trainer/model.py"}},
      {"eval", Paths{"eval.py", "trainer/model.py"}},
      {"docs", Paths{"mkdocs.yml"}},
  };
  const Paths workflows{"docs", "eval", "new-one", "train"};
  const auto choices = choose_by_footprint(workflows, footprints, Paths{"trainer/data.py", "trainer/model.py"});
  ASSERT_EQ(choices.size(), 4u);
  // Chosen first, most touched first; then the skipped.
  EXPECT_EQ(choices[0].workflow, "train");
  EXPECT_EQ(choices[0].touched, (Paths{"trainer/data.py", "trainer/model.py"}));
  EXPECT_TRUE(choices[0].chosen);
  EXPECT_EQ(choices[0].footprint_files, 3);
  EXPECT_EQ(choices[1].workflow, "eval");
  EXPECT_TRUE(choices[1].chosen);
  EXPECT_EQ(choices[2].workflow, "new-one");
  EXPECT_TRUE(choices[2].chosen) << "no footprint recorded: nothing says the diff cannot touch it";
  EXPECT_NE(choices[2].reason.find("no footprint"), std::string::npos);
  EXPECT_EQ(choices[3].workflow, "docs");
  EXPECT_FALSE(choices[3].chosen);
  EXPECT_NE(choices[3].reason.find("not touched"), std::string::npos) << choices[3].reason;

  // A README-only diff: none of them but the one without a footprint.
  int chosen = 0;
  for (const auto& c : choose_by_footprint(workflows, footprints, Paths{"README.md"})) chosen += c.chosen;
  EXPECT_EQ(chosen, 1);
  // A diff whose files cannot be read: all of them.
  for (const auto& c : choose_by_footprint(workflows, footprints, std::nullopt)) EXPECT_TRUE(c.chosen) << c.workflow;
}

}  // namespace
}  // namespace ttfb
