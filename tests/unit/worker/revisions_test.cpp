// The revision cache against a real git repository: mirror, fetch, worktree, diff at the root,
// and builds reused by content (the build command appends to a counter file outside the tree).
#include "worker/revisions.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "test_util.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::read_file;
using testing::TempDir;
using testing::TrainerRepo;
using testing::write_file;

std::size_t count_lines(const fs::path& p) {
  if (!fs::exists(p)) return 0;
  const std::string text = read_file(p);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

class RevisionsTest : public ::testing::Test {
 protected:
  RevisionsTest() : repo_(dir_ / "src") {}

  RevisionSpec spec(const std::string& diff = "", bool build = false) {
    RevisionSpec s{"example", repo_.path.string(), repo_.head, diff, {}, {}, 60s};
    if (build) {
      // Appends to a counter outside the tree (the test's own record of builds), writes an
      // output into the tree as a real build would.
      s.build_command = {"sh", "-c", "echo built >> \"$COUNTER\" && echo compiled > build.out"};
      s.build_env["COUNTER"] = counter().string();
    }
    return s;
  }
  fs::path counter() const { return dir_ / "counter" / "builds"; }

  RevisionCacheOptions options() {
    RevisionCacheOptions o;
    o.cache_dir = (dir_ / "cache").string();
    if (::geteuid() == 0) o.run_as = lookup_user("nobody");  // as the worker would run
    return o;
  }

  void SetUp() override {
    fs::create_directories(counter().parent_path());
    // The build runs as the run-as user when root: let it write the counter.
    fs::permissions(counter().parent_path(), fs::perms::all);
  }

  TempDir dir_;
  TrainerRepo repo_;
};

TEST_F(RevisionsTest, PreparesAWorktreeWithTheDiffApplied) {
  RevisionCache cache(options());
  PreparedRevision p = cache.prepare(spec(TrainerRepo::steps_diff()));
  EXPECT_TRUE(p.created);
  EXPECT_FALSE(p.built);
  EXPECT_NE(read_file(fs::path(p.worktree) / "train.py").find("steps = 2"), std::string::npos);
  EXPECT_EQ(p.key, repo_.head.substr(0, 12) + "-" + sha256_hex(TrainerRepo::steps_diff()).substr(0, 12));
  EXPECT_EQ(p.content_hash.size(), 40u);
  EXPECT_TRUE(fs::exists(cache.mirror_dir("example") + "/HEAD"));

  // Without a diff: another worktree, at the commit as it is.
  PreparedRevision base = cache.prepare(spec());
  EXPECT_NE(base.worktree, p.worktree);
  EXPECT_NE(read_file(fs::path(base.worktree) / "train.py").find("steps = 1"), std::string::npos);
  EXPECT_NE(base.content_hash, p.content_hash);
}

TEST_F(RevisionsTest, BuildRunsOnceForTheSameContent) {
  RevisionCache cache(options());
  PreparedRevision first = cache.prepare(spec(TrainerRepo::steps_diff(), true));
  EXPECT_TRUE(first.built);
  EXPECT_EQ(count_lines(counter()), 1u);
  EXPECT_EQ(read_file(fs::path(first.worktree) / "build.out"), "compiled\n");

  // The other arm of an A/A job, or the next job on the same revision: the build is reused.
  PreparedRevision again = cache.prepare(spec(TrainerRepo::steps_diff(), true));
  EXPECT_FALSE(again.created);
  EXPECT_FALSE(again.built);
  EXPECT_EQ(again.worktree, first.worktree);
  EXPECT_EQ(again.content_hash, first.content_hash);
  EXPECT_EQ(count_lines(counter()), 1u);
}

TEST_F(RevisionsTest, BuildIsReusedAcrossWorkerRestarts) {
  {
    RevisionCache cache(options());
    cache.prepare(spec("", true));
  }
  RevisionCache restarted(options());
  PreparedRevision p = restarted.prepare(spec("", true));
  EXPECT_FALSE(p.built);
  EXPECT_EQ(count_lines(counter()), 1u);
}

TEST_F(RevisionsTest, ChangedTreeIsMadeAfreshAndRebuilt) {
  RevisionCache cache(options());
  PreparedRevision first = cache.prepare(spec("", true));
  write_file(fs::path(first.worktree) / "left_by_a_run.txt", "stale\n");
  PreparedRevision second = cache.prepare(spec("", true));
  EXPECT_TRUE(second.created);
  EXPECT_TRUE(second.built);
  EXPECT_FALSE(fs::exists(fs::path(second.worktree) / "left_by_a_run.txt"));
  EXPECT_EQ(second.content_hash, first.content_hash);  // same content as the first build left
  EXPECT_EQ(count_lines(counter()), 2u);
}

TEST_F(RevisionsTest, IgnoredFilesDoNotInvalidateTheBuild) {
  RevisionCache cache(options());
  PreparedRevision first = cache.prepare(spec("", true));
  write_file(fs::path(first.worktree) / "run.log", "log lines\n");  // *.log is in .gitignore
  PreparedRevision second = cache.prepare(spec("", true));
  EXPECT_FALSE(second.built);
  EXPECT_EQ(count_lines(counter()), 1u);
}

TEST_F(RevisionsTest, ChangedBuildCommandRebuilds) {
  RevisionCache cache(options());
  cache.prepare(spec("", true));
  RevisionSpec s = spec("", true);
  s.build_command = {"sh", "-c", "echo built >> \"$COUNTER\""};
  PreparedRevision p = cache.prepare(s);
  EXPECT_TRUE(p.built);
  EXPECT_EQ(count_lines(counter()), 2u);
}

TEST_F(RevisionsTest, DiffThatDoesNotApplyIsReportedWithGitsWords) {
  RevisionCache cache(options());
  std::string diff = TrainerRepo::steps_diff();
  diff.replace(diff.find("-    steps = 1"), 14, "-    steps = 5");
  try {
    cache.prepare(spec(diff));
    FAIL() << "expected PrepareError";
  } catch (const PrepareError& e) {
    EXPECT_EQ(e.code(), "diff_does_not_apply");
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("patch failed: train.py:1"), std::string::npos) << e.what();
  }
}

TEST_F(RevisionsTest, FailedBuildIsBuildFailedWithItsOutput) {
  RevisionCache cache(options());
  RevisionSpec s = spec();
  s.build_command = {"sh", "-c", "echo 'compiling...'; echo 'error: missing header foo.h' >&2; exit 2"};
  try {
    cache.prepare(s);
    FAIL() << "expected PrepareError";
  } catch (const PrepareError& e) {
    EXPECT_EQ(e.code(), "build_failed");
    EXPECT_FALSE(e.retryable());
    const std::string what = e.what();
    EXPECT_NE(what.find("exited with status 2"), std::string::npos) << what;
    EXPECT_NE(what.find("error: missing header foo.h"), std::string::npos) << what;
    EXPECT_NE(e.details().find("compiling..."), std::string::npos) << e.details();
  }
}

TEST_F(RevisionsTest, BuildTimeoutIsBuildFailed) {
  RevisionCache cache(options());
  RevisionSpec s = spec();
  s.build_command = {"sleep", "100"};
  s.build_timeout = 1s;
  try {
    cache.prepare(s);
    FAIL() << "expected PrepareError";
  } catch (const PrepareError& e) {
    EXPECT_EQ(e.code(), "build_failed");
    EXPECT_NE(std::string(e.what()).find("did not finish within 1 s"), std::string::npos) << e.what();
  }
}

TEST_F(RevisionsTest, MissingCommitIsFetched) {
  RevisionCache cache(options());
  cache.prepare(spec());  // the mirror exists now
  write_file(repo_.path / "README", "new\n");
  const std::string newer = repo_.commit("second");
  RevisionSpec s = spec();
  s.commit = newer;
  PreparedRevision p = cache.prepare(s);
  EXPECT_TRUE(fs::exists(fs::path(p.worktree) / "README"));
}

TEST_F(RevisionsTest, UnknownCommitIsRevisionUnavailable) {
  RevisionCache cache(options());
  RevisionSpec s = spec();
  s.commit = std::string(40, 'a');
  try {
    cache.prepare(s);
    FAIL() << "expected PrepareError";
  } catch (const PrepareError& e) {
    EXPECT_EQ(e.code(), "revision_unavailable");
    EXPECT_FALSE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("even after a fetch"), std::string::npos) << e.what();
  }
}

TEST_F(RevisionsTest, UnreachableRepositoryIsRetryable) {
  RevisionCache cache(options());
  RevisionSpec s = spec();
  s.repo_name = "gone";
  s.repo_url = (dir_ / "no-such-repo").string();
  try {
    cache.prepare(s);
    FAIL() << "expected PrepareError";
  } catch (const PrepareError& e) {
    EXPECT_EQ(e.code(), "revision_unavailable");
    EXPECT_TRUE(e.retryable());
  }
}

TEST_F(RevisionsTest, SecondWorkerOnTheSameCacheIsRefused) {
  RevisionCache cache(options());
  try {
    RevisionCache other(options());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another worker"), std::string::npos) << e.what();
  }
}

TEST_F(RevisionsTest, EvictionKeepsTheNewestAndTheOnesInUse) {
  RevisionCacheOptions o = options();
  o.max_worktrees = 2;
  RevisionCache cache(o);
  std::vector<PreparedRevision> p;
  for (const std::string& diff : {std::string(), TrainerRepo::steps_diff()}) p.push_back(cache.prepare(spec(diff)));
  write_file(repo_.path / "README", "x\n");
  RevisionSpec s = spec();
  s.commit = repo_.commit("second");
  std::this_thread::sleep_for(20ms);  // distinct modification times
  p.push_back(cache.prepare(s));
  cache.evict({p[0].worktree});
  EXPECT_TRUE(fs::exists(p[0].worktree));   // kept: in use
  EXPECT_FALSE(fs::exists(p[1].worktree));  // the oldest not in use
  EXPECT_TRUE(fs::exists(p[2].worktree));
}

TEST_F(RevisionsTest, WorktreeBelongsToTheRunAsUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  RevisionCache cache(options());
  PreparedRevision p = cache.prepare(spec("", true));
  struct stat st {};
  ASSERT_EQ(::stat((fs::path(p.worktree) / "train.py").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, lookup_user("nobody").uid);
  ASSERT_EQ(::stat((fs::path(p.worktree) / "build.out").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, lookup_user("nobody").uid);  // written by the build, as nobody
}

TEST_F(RevisionsTest, CacheUnreachableByTheRunAsUserIsRefusedClearly) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const fs::path closed = dir_ / "closed";
  fs::create_directories(closed);
  fs::permissions(closed, fs::perms::owner_all);
  RevisionCacheOptions o = options();
  o.cache_dir = (closed / "cache").string();
  try {
    RevisionCache cache(o);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be reached by user 'nobody'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ttfb::worker
