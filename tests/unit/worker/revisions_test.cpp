// The revision cache against a real git repository: mirror, fetch, worktree, diff at the root,
// builds (in the sandbox) reused by content, and the per-job copies workloads run in. Each build
// writes a random build.id into the tree: a changed id is a build that ran.
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

std::string build_id(const PreparedRevision& p) { return read_file(fs::path(p.worktree) / "build.id"); }

class RevisionsTest : public ::testing::Test {
 protected:
  RevisionsTest() : repo_(dir_ / "src") {}

  RevisionSpec spec(const std::string& diff = "", bool build = false) {
    RevisionSpec s{"example", repo_.path.string(), repo_.head, diff, {}, {}, 60s};
    if (build) {
      // Writes an output into the tree as a real build would, and an id only this build has.
      s.build_command = {"sh", "-c", "echo compiled > build.out && cat /proc/sys/kernel/random/uuid > build.id"};
    }
    return s;
  }

  RevisionCacheOptions options() {
    RevisionCacheOptions o;
    o.cache_dir = (dir_ / "cache").string();
    if (::geteuid() == 0) o.run_as = lookup_user("nobody");  // as the worker would run
    return o;
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
  EXPECT_EQ(read_file(fs::path(first.worktree) / "build.out"), "compiled\n");
  const std::string id = build_id(first);
  EXPECT_EQ(id.size(), 37u);

  // The other arm of an A/A job, or the next job on the same revision: the build is reused.
  PreparedRevision again = cache.prepare(spec(TrainerRepo::steps_diff(), true));
  EXPECT_FALSE(again.created);
  EXPECT_FALSE(again.built);
  EXPECT_EQ(again.worktree, first.worktree);
  EXPECT_EQ(again.content_hash, first.content_hash);
  EXPECT_EQ(build_id(again), id);
}

TEST_F(RevisionsTest, BuildIsReusedAcrossWorkerRestarts) {
  std::string id;
  {
    RevisionCache cache(options());
    id = build_id(cache.prepare(spec("", true)));
  }
  RevisionCache restarted(options());
  PreparedRevision p = restarted.prepare(spec("", true));
  EXPECT_FALSE(p.built);
  EXPECT_EQ(build_id(p), id);
}

TEST_F(RevisionsTest, ChangedTreeIsMadeAfreshAndRebuilt) {
  RevisionCache cache(options());
  PreparedRevision first = cache.prepare(spec("", true));
  write_file(fs::path(first.worktree) / "left_by_a_run.txt", "stale\n");
  PreparedRevision second = cache.prepare(spec("", true));
  EXPECT_TRUE(second.created);
  EXPECT_TRUE(second.built);
  EXPECT_FALSE(fs::exists(fs::path(second.worktree) / "left_by_a_run.txt"));
}

TEST_F(RevisionsTest, AnIgnoredFilePlantedInTheTreeIsNotReused) {
  // An ignored file (*.log here; a .pyc in a Python repository) would run instead of the
  // revision's own code if the tree were reused: it counts in the content hash.
  RevisionCache cache(options());
  PreparedRevision first = cache.prepare(spec("", true));
  const std::string id = build_id(first);
  write_file(fs::path(first.worktree) / "planted.log", "not of this revision\n");
  PreparedRevision second = cache.prepare(spec("", true));
  EXPECT_TRUE(second.created);
  EXPECT_TRUE(second.built);
  EXPECT_NE(build_id(second), id);
  EXPECT_FALSE(fs::exists(fs::path(second.worktree) / "planted.log"));
}

TEST_F(RevisionsTest, ChangedBuildCommandRebuilds) {
  RevisionCache cache(options());
  const std::string id = build_id(cache.prepare(spec("", true)));
  RevisionSpec s = spec("", true);
  s.build_command = {"sh", "-c", "cat /proc/sys/kernel/random/uuid > build.id"};
  PreparedRevision p = cache.prepare(s);
  EXPECT_TRUE(p.built);
  EXPECT_NE(build_id(p), id);
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

TEST_F(RevisionsTest, ACacheInAFolderOnlyRootCanEnterWorks) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  // A clone under /root, as most root users have it: the build and the workload run as nobody,
  // who cannot enter the folder, and the sandbox binds their directories in all the same.
  const fs::path closed = dir_ / "closed";
  fs::create_directories(closed);
  fs::permissions(closed, fs::perms::owner_all);
  RevisionCacheOptions o = options();
  o.cache_dir = (closed / "cache").string();
  RevisionCache cache(o);
  PreparedRevision p = cache.prepare(spec("", true));
  EXPECT_TRUE(p.built);
  RunCopy copy = cache.copy_for_run(p, "job1-baseline");
  WorkloadSpec run;
  run.argv = {"sh", "-c", "id -u; cat train.py > /dev/null && echo first_batch >&3"};
  run.cwd = copy.path();
  run.run_as = o.run_as;
  RunResult r = run_workload(run);
  EXPECT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
  EXPECT_NE(r.output_tail.find(std::to_string(lookup_user("nobody").uid)), std::string::npos) << r.output_tail;
}

TEST_F(RevisionsTest, TheBuildSeesItsOwnWorktreeAndNothingElseOfTheCache) {
  RevisionCache cache(options());
  PreparedRevision other = cache.prepare(spec(TrainerRepo::steps_diff()));
  RevisionSpec s = spec();
  // Fails (build_failed) if it can see the mirror or the other worktree; writes its own tree.
  s.build_command = {"sh", "-c", "for d in \"$MIRROR\" \"$OTHER\" \"$CACHE\"; do ls \"$d\" >/dev/null 2>&1 && exit 3; done; "
                                 "echo compiled > build.out"};
  s.build_env = {{"MIRROR", cache.mirror_dir("example")}, {"OTHER", other.worktree}, {"CACHE", cache.options().cache_dir}};
  PreparedRevision p = cache.prepare(s);
  EXPECT_TRUE(p.built);
  EXPECT_EQ(read_file(fs::path(p.worktree) / "build.out"), "compiled\n");
}

TEST_F(RevisionsTest, WhatARunWritesStaysInItsCopy) {
  RevisionCache cache(options());
  PreparedRevision p = cache.prepare(spec("", true));
  std::string copy_path;
  {
    RunCopy copy = cache.copy_for_run(p, "job7-candidate");
    copy_path = copy.path();
    EXPECT_NE(copy_path, p.worktree);
    EXPECT_EQ(read_file(fs::path(copy_path) / "build.out"), "compiled\n");  // the build's output came along
    EXPECT_FALSE(fs::exists(fs::path(copy_path) / ".git"));
    // A run plants a .pyc-like ignored file and rewrites a source, in its copy.
    WorkloadSpec run;
    run.argv = {"sh", "-c", "echo planted > planted.log && echo 'steps = 99' > train.py && echo first_batch >&3"};
    run.cwd = copy_path;
    run.run_as = cache.options().run_as;
    RunResult r = run_workload(run);
    EXPECT_EQ(r.outcome, RunOutcome::first_batch) << r.message << "\n" << r.output_tail;
    EXPECT_TRUE(fs::exists(fs::path(copy_path) / "planted.log"));
  }
  EXPECT_FALSE(fs::exists(copy_path)) << "the copy outlived its job";
  EXPECT_FALSE(fs::exists(fs::path(p.worktree) / "planted.log"));
  EXPECT_NE(read_file(fs::path(p.worktree) / "train.py").find("steps = 1"), std::string::npos);
  // The next job reuses the cached worktree and its build: nothing of the run reached it.
  PreparedRevision next = cache.prepare(spec("", true));
  EXPECT_FALSE(next.created);
  EXPECT_FALSE(next.built);
  EXPECT_EQ(next.content_hash, p.content_hash);
}

TEST_F(RevisionsTest, ADependencyIsPlacedInTheRunsCopyAndNowhereElse) {
  RevisionCache cache(options());
  PreparedRevision p = cache.prepare(spec());
  // The "dependency": another repository's worktree (here the same repository, patched, under
  // another name: what matters is where its files land).
  RevisionSpec dep_spec = spec(TrainerRepo::steps_diff());
  dep_spec.repo_name = "dataload";
  PreparedRevision dep = cache.prepare(dep_spec);
  {
    RunCopy copy = cache.copy_for_run(p, "job8-candidate");
    // What the revision has at the path is replaced: a stale vendored copy.
    write_file(fs::path(copy.path()) / "third_party" / "dataload" / "stale.py", "old = True\n");
    cache.place_dependency(dep, copy, "third_party/dataload");
    const fs::path at = fs::path(copy.path()) / "third_party" / "dataload";
    EXPECT_NE(read_file(at / "train.py").find("steps = 2"), std::string::npos);
    EXPECT_FALSE(fs::exists(at / "stale.py"));
    EXPECT_FALSE(fs::exists(at / ".git"));
    cache.place_dependency(dep, copy, "vendor/deep/er/dl");  // missing directories are made
    EXPECT_TRUE(fs::exists(fs::path(copy.path()) / "vendor" / "deep" / "er" / "dl" / "train.py"));
  }
  EXPECT_FALSE(fs::exists(fs::path(p.worktree) / "third_party")) << "the cached worktree is untouched";
  EXPECT_FALSE(fs::exists(fs::path(dep.worktree) / "third_party"));
}

TEST_F(RevisionsTest, ADependencyIsNeverWrittenThroughALinkTheRevisionPlanted) {
  RevisionCache cache(options());
  PreparedRevision p = cache.prepare(spec());
  PreparedRevision dep = cache.prepare(spec(TrainerRepo::steps_diff()));
  const fs::path outside = dir_ / "outside";
  fs::create_directories(outside);
  RunCopy copy = cache.copy_for_run(p, "job9-candidate");
  fs::create_directory_symlink(outside, fs::path(copy.path()) / "third_party");
  write_file(fs::path(copy.path()) / "afile", "x\n");
  for (const std::string path : {"third_party/dataload", "afile/dataload"}) {
    try {
      cache.place_dependency(dep, copy, path);
      ADD_FAILURE() << path << ": expected a PrepareError";
    } catch (const PrepareError& e) {
      EXPECT_EQ(e.code(), "workload_failed");
      EXPECT_NE(std::string(e.what()).find(path.substr(0, path.find('/'))), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(fs::is_empty(outside)) << "nothing was written through the link";
  // The link itself at the very path is replaced, not followed.
  cache.place_dependency(dep, copy, "third_party");
  EXPECT_FALSE(fs::is_symlink(fs::path(copy.path()) / "third_party"));
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_THROW(cache.place_dependency(dep, copy, "../escape"), PrepareError);
  EXPECT_THROW(cache.place_dependency(dep, copy, "/abs"), PrepareError);
}

TEST_F(RevisionsTest, TheFilesABuildReadsAreKeptWithTheBuild) {
  RevisionCache cache(options());
  RevisionSpec s = spec();
  s.build_command = {"sh", "-c", "cat train.py > /dev/null && echo compiled > build.out"};
  const PreparedRevision built = cache.prepare(s);
  ASSERT_TRUE(built.built);
  ASSERT_TRUE(built.build_footprint.has_value());
  const auto& files = *built.build_footprint;
  EXPECT_NE(std::find(files.begin(), files.end(), "train.py"), files.end());
  EXPECT_NE(std::find(files.begin(), files.end(), "build.out"), files.end());
  EXPECT_EQ(std::find(files.begin(), files.end(), "trainer/data.py"), files.end()) << "the worker's own reads (its hash of the tree) are not the build's";
  // Reused in a later job (or by a restarted worker: it is kept on disk), the build still says
  // what it read.
  const PreparedRevision reused = cache.prepare(s);
  EXPECT_FALSE(reused.built);
  EXPECT_EQ(reused.build_footprint, built.build_footprint);
  // Without a build there is nothing to read: known, and empty.
  const PreparedRevision plain = cache.prepare(spec(TrainerRepo::steps_diff()));
  ASSERT_TRUE(plain.build_footprint.has_value());
  EXPECT_TRUE(plain.build_footprint->empty());
}

TEST_F(RevisionsTest, CopiesACrashedWorkerLeftAreRemovedAtStartUp) {
  std::string left;
  {
    RevisionCache cache(options());
    PreparedRevision p = cache.prepare(spec());
    RunCopy copy = cache.copy_for_run(p, "job9-baseline");
    left = copy.path() + "-left";
    fs::rename(copy.path(), left);  // as if the worker died before removing it
  }
  EXPECT_TRUE(fs::exists(left));
  RevisionCache restarted(options());
  EXPECT_FALSE(fs::exists(left));
}

}  // namespace
}  // namespace ttfb::worker
