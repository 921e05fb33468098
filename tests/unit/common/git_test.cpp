// ttfb::git against the real git binary on a throwaway repository made in a temporary directory.
#include "common/git.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/process.hpp"

namespace ttfb::git {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A repository with two commits on `main`, a tag `v1` on the first, and a mirror of it.
class GitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "ttfb-git-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    src_ = root_ / "src";
    fs::create_directories(src_);
    sh("git init -q -b main . && git config user.email t@example.com && git config user.name T");
    write_file(src_ / "train.py", "import os\n\ndef main():\n    steps = 1\n    return steps\n");
    write_file(src_ / "trainer" / "data.py", "BATCH = 8\n");
    write_file(src_ / ".gitignore", "*.log\n");
    sh("git add -A && git commit -qm first && git tag v1");
    first_ = sh("git rev-parse HEAD");
    write_file(src_ / "README", "hello\n");
    sh("git add -A && git commit -qm second");
    second_ = sh("git rev-parse HEAD");
    mirror_ = (root_ / "mirror.git").string();
    ensure_mirror(src_.string(), mirror_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Runs a shell command in the source repository; returns trimmed stdout.
  std::string sh(const std::string& cmd, const fs::path& cwd = {}) {
    ProcessOptions options;
    options.cwd = cwd.empty() ? src_.string() : cwd.string();
    auto r = run_process({"sh", "-c", cmd}, options);
    EXPECT_TRUE(r.ok()) << cmd << ": " << r.err;
    std::string out = r.out;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  }

  // A diff of the first commit's train.py (steps = 1 -> steps = 2).
  static std::string steps_diff() {
    return "diff --git a/train.py b/train.py\n"
           "--- a/train.py\n"
           "+++ b/train.py\n"
           "@@ -1,5 +1,5 @@\n"
           " import os\n"
           " \n"
           " def main():\n"
           "-    steps = 1\n"
           "+    steps = 2\n"
           "     return steps\n";
  }
  // A diff that touches a file in a subdirectory and adds a new one there.
  static std::string subdir_diff() {
    return "diff --git a/trainer/data.py b/trainer/data.py\n"
           "--- a/trainer/data.py\n"
           "+++ b/trainer/data.py\n"
           "@@ -1 +1 @@\n"
           "-BATCH = 8\n"
           "+BATCH = 16\n"
           "diff --git a/trainer/extra.py b/trainer/extra.py\n"
           "new file mode 100644\n"
           "--- /dev/null\n"
           "+++ b/trainer/extra.py\n"
           "@@ -0,0 +1 @@\n"
           "+EXTRA = True\n";
  }

  fs::path root_;
  fs::path src_;
  std::string mirror_;
  std::string first_;
  std::string second_;
};

TEST_F(GitTest, ResolvesBranchTagAndShortSha) {
  EXPECT_EQ(resolve_commit(mirror_, "main"), second_);
  EXPECT_EQ(resolve_commit(mirror_, "v1"), first_);
  EXPECT_EQ(resolve_commit(mirror_, first_.substr(0, 8)), first_);
  EXPECT_EQ(resolve_commit(mirror_, first_), first_);
  EXPECT_EQ(resolve_commit(mirror_, "main~1"), first_);
}

TEST_F(GitTest, UnknownRevisionThrowsWithItsName) {
  try {
    resolve_commit(mirror_, "no-such-branch");
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown revision 'no-such-branch'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_commit(mirror_, "--output=/tmp/x"), GitError);
  EXPECT_THROW(resolve_commit(mirror_, ""), GitError);
}

TEST_F(GitTest, HasCommit) {
  EXPECT_TRUE(has_commit(mirror_, first_));
  EXPECT_FALSE(has_commit(mirror_, std::string(40, 'a')));
  EXPECT_FALSE(has_commit(mirror_, "-x"));
}

TEST_F(GitTest, PathsExistAsFilesOrDirectoriesAtACommit) {
  EXPECT_EQ(paths_exist(mirror_, first_, {"train.py", "README", "trainer", "trainer/data.py", "trainer/nope.py", "a b"}),
            (std::vector<bool>{true, false, true, true, false, false}));
  EXPECT_EQ(paths_exist(mirror_, second_, {"README", "bad\nline", ""}), (std::vector<bool>{true, false, false}));
  EXPECT_TRUE(paths_exist(mirror_, second_, {}).empty());
  EXPECT_THROW(paths_exist(mirror_, std::string(40, 'a'), {"train.py"}), GitError);
}

TEST_F(GitTest, FetchBringsNewCommits) {
  write_file(src_ / "README", "hello again\n");
  sh("git commit -qam third");
  const std::string third = sh("git rev-parse HEAD");
  EXPECT_FALSE(has_commit(mirror_, third));
  fetch(mirror_);
  EXPECT_TRUE(has_commit(mirror_, third));
  EXPECT_EQ(resolve_commit(mirror_, "main"), third);
}

TEST_F(GitTest, EnsureMirrorIsIdempotentAndCloneFailureSaysWhy) {
  EXPECT_NO_THROW(ensure_mirror(src_.string(), mirror_));
  try {
    ensure_mirror((root_ / "nope").string(), (root_ / "other.git").string());
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot clone"), std::string::npos) << e.what();
    EXPECT_FALSE(fs::exists(root_ / "other.git"));
  }
}

TEST_F(GitTest, FirstParentRangeListsTheLineWithAuthorsAndSkipsMergedBranches) {
  // main: first - second - third - merge(feature) - fifth; the feature's own commit is not on
  // the first-parent line and must not be listed.
  write_file(src_ / "a.txt", "3\n");
  sh("git add -A && git -c user.name='Erin Sato' -c user.email=erin@example.com commit -qm 'Third: add a.txt'");
  const std::string third = sh("git rev-parse HEAD");
  sh("git checkout -qb feature && echo f > f.txt && git add -A && git commit -qm 'Feature work' && git checkout -q main");
  const std::string feature = sh("git rev-parse feature");
  sh("git merge -q --no-ff -m 'Merge feature' feature");
  const std::string merge = sh("git rev-parse HEAD");
  write_file(src_ / "b.txt", "5\n");
  sh("git add -A && git commit -qm Fifth");
  const std::string fifth = sh("git rev-parse HEAD");
  fetch(mirror_);

  auto range = first_parent_range(mirror_, "v1", "main");
  ASSERT_EQ(range.size(), 5u);
  EXPECT_EQ(range[0].sha, first_);
  EXPECT_EQ(range[0].subject, "first");
  EXPECT_EQ(range[1].sha, second_);
  EXPECT_EQ(range[2].sha, third);
  EXPECT_EQ(range[2].subject, "Third: add a.txt");
  EXPECT_EQ(range[2].author_name, "Erin Sato");
  EXPECT_EQ(range[2].author_email, "erin@example.com");
  EXPECT_FALSE(range[2].date.empty());
  EXPECT_EQ(range[3].sha, merge);
  EXPECT_EQ(range[4].sha, fifth);
  for (const auto& c : range) EXPECT_NE(c.sha, feature);

  // A good end on the merged branch is not on the first-parent line of main.
  try {
    first_parent_range(mirror_, feature, "main");
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    EXPECT_NE(std::string(e.what()).find("not a first-parent ancestor"), std::string::npos) << e.what();
  }
  // Reversed ends, equal ends, unknown ends, and a range over the limit.
  EXPECT_THROW(first_parent_range(mirror_, "main", "v1"), GitError);
  EXPECT_THROW(first_parent_range(mirror_, "main", "main"), GitError);
  EXPECT_THROW(first_parent_range(mirror_, "v1", "no-such-branch"), GitError);
  EXPECT_THROW(first_parent_range(mirror_, "v1", "main", 3), GitError);
  EXPECT_EQ(first_parent_range(mirror_, "v1", "main", 5).size(), 5u);
}

TEST_F(GitTest, DiffThatAppliesPasses) {
  EXPECT_NO_THROW(check_diff_applies(mirror_, first_, steps_diff()));
  EXPECT_NO_THROW(check_diff_applies(mirror_, second_, subdir_diff()));
}

TEST_F(GitTest, DiffThatDoesNotApplyCarriesGitsWords) {
  std::string diff = steps_diff();
  diff.replace(diff.find("-    steps = 1"), 14, "-    steps = 7");
  try {
    check_diff_applies(mirror_, first_, diff);
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("the diff does not apply to " + first_.substr(0, 12) + ": ", 0), 0u) << what;
    EXPECT_NE(what.find("patch failed: train.py:1"), std::string::npos) << what;
  }
}

TEST_F(GitTest, EmptyDiffIsRejected) {
  try {
    check_diff_applies(mirror_, first_, "  \n");
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST_F(GitTest, GarbageTextIsRejected) {
  try {
    check_diff_applies(mirror_, first_, "this is not a diff at all\n");
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    EXPECT_NE(std::string(e.what()).find("No valid patches"), std::string::npos) << e.what();
  }
}

TEST_F(GitTest, UnknownCommitInCheckIsReported) {
  EXPECT_THROW(check_diff_applies(mirror_, std::string(40, 'b'), steps_diff()), GitError);
}

TEST_F(GitTest, WorktreeAddThenApplyAtTheRoot) {
  const fs::path wt = root_ / "worktrees" / "a";
  add_worktree(mirror_, first_, wt.string());
  EXPECT_TRUE(fs::exists(wt / "train.py"));
  EXPECT_FALSE(fs::exists(wt / "README"));  // the first commit, not main
  apply_diff(wt.string(), steps_diff() + subdir_diff());
  EXPECT_NE(read_file(wt / "train.py").find("steps = 2"), std::string::npos);
  EXPECT_EQ(read_file(wt / "trainer" / "data.py"), "BATCH = 16\n");
  EXPECT_EQ(read_file(wt / "trainer" / "extra.py"), "EXTRA = True\n");
}

TEST_F(GitTest, WorktreeIsReusedAtTheSameCommitAndReplacedAtAnother) {
  const fs::path wt = root_ / "worktrees" / "b";
  add_worktree(mirror_, first_, wt.string());
  write_file(wt / "marker", "x");
  add_worktree(mirror_, first_, wt.string());
  EXPECT_TRUE(fs::exists(wt / "marker"));  // reused as it was
  add_worktree(mirror_, second_, wt.string());
  EXPECT_FALSE(fs::exists(wt / "marker"));
  EXPECT_TRUE(fs::exists(wt / "README"));
}

TEST_F(GitTest, ApplyDiffThatDoesNotApplyThrows) {
  const fs::path wt = root_ / "worktrees" / "c";
  add_worktree(mirror_, first_, wt.string());
  std::string diff = steps_diff();
  diff.replace(diff.find("-    steps = 1"), 14, "-    steps = 9");
  try {
    apply_diff(wt.string(), diff);
    FAIL() << "expected GitError";
  } catch (const GitError& e) {
    EXPECT_NE(std::string(e.what()).find("the diff does not apply to " + first_.substr(0, 12)), std::string::npos)
        << e.what();
  }
  EXPECT_NE(read_file(wt / "train.py").find("steps = 1"), std::string::npos);  // untouched
}

TEST_F(GitTest, ContentHashIsEqualForEqualContent) {
  const fs::path a = root_ / "worktrees" / "ha";
  const fs::path b = root_ / "worktrees" / "hb";
  add_worktree(mirror_, first_, a.string());
  add_worktree(mirror_, second_, b.string());
  const std::string ha = content_hash(a.string());
  const std::string hb = content_hash(b.string());
  EXPECT_EQ(ha.size(), 40u);
  EXPECT_NE(ha, hb);  // README differs
  // Make a equal to b: same files, same content.
  write_file(a / "README", "hello\n");
  EXPECT_EQ(content_hash(a.string()), hb);
  // Untracked files count, and so do ignored ones: a planted ignored file (a .pyc that would run
  // instead of its source) must not pass for the revision's content.
  write_file(a / "run.log", "noise\n");
  EXPECT_NE(content_hash(a.string()), hb);
  fs::remove(a / "run.log");
  EXPECT_EQ(content_hash(a.string()), hb);
  write_file(a / "new.py", "x = 1\n");
  EXPECT_NE(content_hash(a.string()), hb);
  // The hash does not depend on the repository: a plain copy has the same.
  const fs::path copy = root_ / "copy";
  fs::copy(b, copy, fs::copy_options::recursive);
  fs::remove(copy / ".git");
  EXPECT_EQ(content_hash(copy.string()), hb);
}

TEST_F(GitTest, ContentHashSeesModeChanges) {
  const fs::path a = root_ / "worktrees" / "m";
  add_worktree(mirror_, first_, a.string());
  const std::string before = content_hash(a.string());
  fs::permissions(a / "train.py", fs::perms::owner_exec, fs::perm_options::add);
  EXPECT_NE(content_hash(a.string()), before);
}

// ---- hostile diffs: nothing outside the worktree is written, nothing of git's runs ------------

TEST_F(GitTest, ApplyRefusesADiffThatWritesOutsideTheWorktree) {
  const fs::path wt = root_ / "worktrees" / "outside";
  const fs::path outside = root_ / "outside";
  fs::create_directories(outside);
  add_worktree(mirror_, first_, wt.string());
  const std::string dotdot =
      "diff --git a/../escape.txt b/../escape.txt\nnew file mode 100644\n--- /dev/null\n+++ b/../escape.txt\n"
      "@@ -0,0 +1 @@\n+escaped\n";
  const std::string through_symlink =
      "diff --git a/link b/link\nnew file mode 120000\n--- /dev/null\n+++ b/link\n@@ -0,0 +1 @@\n+" +
      outside.string() +
      "\n\\ No newline at end of file\n"
      "diff --git a/link/evil.txt b/link/evil.txt\nnew file mode 100644\n--- /dev/null\n+++ b/link/evil.txt\n"
      "@@ -0,0 +1 @@\n+evil\n";
  const std::string into_git =
      "diff --git a/.git/hooks/post-checkout b/.git/hooks/post-checkout\nnew file mode 100755\n--- /dev/null\n"
      "+++ b/.git/hooks/post-checkout\n@@ -0,0 +1,2 @@\n+#!/bin/sh\n+touch " +
      (root_ / "hook-ran").string() + "\n";
  for (const auto& [diff, words] : {std::pair{dotdot, "invalid path '../escape.txt'"},
                                    std::pair{through_symlink, "beyond a symbolic link"},
                                    std::pair{into_git, "invalid path '.git/hooks/post-checkout'"}}) {
    try {
      apply_diff(wt.string(), diff);
      ADD_FAILURE() << "applied:\n" << diff;
    } catch (const GitError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
    EXPECT_THROW(check_diff_applies(mirror_, first_, diff), GitError);  // refused at submission too
  }
  EXPECT_FALSE(fs::exists(root_ / "worktrees" / "escape.txt"));
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_FALSE(fs::exists(wt / "link"));
  EXPECT_FALSE(fs::exists(fs::path(mirror_) / "hooks" / "post-checkout"));
}

TEST_F(GitTest, NoFilterOrHookRunsForWhatADiffAdds) {
  // The machine's git configuration has a filter and a hooks directory (as git-lfs or a
  // developer's ~/.gitconfig would), and the mirror has a hook someone wrote into it: a diff that
  // adds `.gitattributes` naming the filter must not make the worker run any of them.
  const fs::path home = root_ / "home";
  const fs::path marker = root_ / "ran";
  const fs::path hooks = root_ / "hooks";
  const fs::path filter = root_ / "evil-filter";
  write_file(filter, "#!/bin/sh\necho \"filter $1\" >> " + marker.string() + "\nexec cat\n");
  fs::permissions(filter, fs::perms::owner_all);
  write_file(home / ".gitconfig", "[filter \"evil\"]\n\tclean = " + filter.string() + " clean\n\tsmudge = " +
                                      filter.string() + " smudge\n\trequired = true\n[core]\n\thooksPath = " +
                                      hooks.string() + "\n");
  for (const fs::path& dir : {hooks, fs::path(mirror_) / "hooks"}) {
    write_file(dir / "post-checkout", "#!/bin/sh\necho hook >> " + marker.string() + "\n");
    fs::permissions(dir / "post-checkout", fs::perms::owner_all);
  }
  const char* old_home = std::getenv("HOME");
  const std::string saved_home = old_home != nullptr ? old_home : "";
  ::setenv("HOME", home.c_str(), 1);

  // The control: plain git, with that configuration, does run the filter.
  const fs::path control = root_ / "control";
  sh("git init -q . && printf '* filter=evil\\n' > .gitattributes && echo x > f && git add f", [&] {
    fs::create_directories(control);
    return control;
  }());
  EXPECT_TRUE(fs::exists(marker)) << "the control did not run the filter: the test proves nothing";
  fs::remove(marker);

  const fs::path wt = root_ / "worktrees" / "attrs";
  add_worktree(mirror_, first_, wt.string());
  const std::string diff =
      "diff --git a/.gitattributes b/.gitattributes\nnew file mode 100644\n--- /dev/null\n+++ b/.gitattributes\n"
      "@@ -0,0 +1 @@\n+* filter=evil\n" + steps_diff();
  check_diff_applies(mirror_, first_, diff);
  apply_diff(wt.string(), diff);
  const std::string hash = content_hash(wt.string());
  add_worktree(mirror_, second_, wt.string());
  remove_worktree(mirror_, wt.string());
  ::setenv("HOME", saved_home.c_str(), 1);
  EXPECT_EQ(hash.size(), 40u);
  EXPECT_FALSE(fs::exists(marker)) << read_file(marker);
}

}  // namespace
}  // namespace ttfb::git
