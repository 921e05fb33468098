// Revisions on disk: the code of one arm (a commit, plus a diff), checked out, patched and built,
// and kept for the next job that needs the same.
//
//   RevisionCache cache({.cache_dir = "/var/cache/ttfb-lab/w1"});
//   PreparedRevision rev = cache.prepare({.repo_name = "example", .repo_url = url,
//                                         .commit = sha, .diff = diff_text,
//                                         .build_command = {"python3", "-m", "compileall", "-q", "."}});
//   run the workload in rev.worktree
//
// Layout of the cache directory (one per worker process: the constructor takes an exclusive
// lock on it, and a second worker on the same directory fails at start-up, saying so):
//   .lock                                  flock held while the worker runs
//   mirrors/<repo>.git                     bare mirror (git clone --mirror), fetched when a commit is missing
//   worktrees/<repo>/<commit12>-<diff12>/  detached worktree of the commit with the diff applied
//   worktrees/<repo>/<commit12>-<diff12>.state   what is known about it (below)
//   scratch/                               per-run HOME/TMPDIR of workloads and builds without the sandbox
//   runs/<name>/                           a job's private copy of a worktree (RunCopy), removed after the job
//
// A worktree is keyed by (commit, sha256 of the diff) and reused across jobs and across the two
// arms of an A/A job. Its state file records the content hash (git::content_hash, ignored files
// included) after the diff was applied and, when the build command succeeded, after the build.
// On reuse the content is hashed again: equal to the built hash -> ready, the build is skipped;
// equal to the applied hash -> only the build runs; anything else (a file planted in the tree, a
// build half done) -> the worktree is made afresh, so every job measures exactly the revision it
// names.
//
// Who writes where: the build runs in the sandbox (worker/sandbox.hpp) with its own worktree
// read-write and nothing else of the cache; workloads never see the cached worktree at all: each
// job runs each arm in a RunCopy (cp -a --reflink=auto), removed when the job ends, so nothing a
// run writes reaches the cache or another job. bwrap runs as root when the worker does, so the
// cache may be in a folder only root can enter (under /root).
//
// When a run-as user is given (the worker is root), each worktree's files are handed to that user,
// so that builds running as it can write them. Git never runs inside a worktree after untrusted
// code did (content_hash uses a throwaway repository), so a rewritten .git file cannot make the
// worker run anything.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/text.hpp"
#include "worker/sandbox.hpp"

namespace ttfb::worker {

struct RevisionSpec {
  std::string repo_name;  // names the mirror directory
  std::string repo_url;
  std::string commit;     // full 40-hex SHA
  std::string diff;       // unified diff applied at the root, or empty
  std::vector<std::string> build_command;  // empty: no build
  std::map<std::string, std::string> build_env;  // the workflow's env, for the build too
  std::chrono::seconds build_timeout{600};
  bool host_network = false;  // the workflow's network = "host": the build gets the host's network
};

struct PreparedRevision {
  std::string key;           // <commit12>-<diff12>
  std::string worktree;      // absolute path of the worktree's root
  std::string content_hash;  // of the tree as it is now (after the build, when there is one)
  bool created = false;      // the worktree was made (or remade) for this call
  bool built = false;        // the build command ran in this call (false: no build, or reused)
  // The files of the worktree its build opened (worker/footprint.hpp), kept with the build: empty
  // without a build command, nullopt when not known (a build from before footprints, or one
  // beyond the watch's limits).
  std::optional<std::vector<std::string>> build_footprint;
};

// Why a revision could not be prepared, with the protocol's failure code
// (revision_unavailable, diff_does_not_apply, build_failed, internal).
class PrepareError : public std::runtime_error {
 public:
  PrepareError(std::string code, const std::string& message, std::string details, bool retryable)
      : std::runtime_error(message), code_(std::move(code)), details_(std::move(details)), retryable_(retryable) {}
  const std::string& code() const { return code_; }
  const std::string& details() const { return details_; }
  bool retryable() const { return retryable_; }

 private:
  std::string code_;
  std::string details_;
  bool retryable_;
};

// Limits of a build: generous (compilers and linkers vary widely), but a runaway build still stops.
inline constexpr ResourceLimits kDefaultBuildLimits{16384, 3600, 4096, 1024};

struct RevisionCacheOptions {
  std::string cache_dir;
  std::optional<RunAsUser> run_as;  // builds run as this user, who owns the worktrees
  std::size_t max_worktrees = 32;   // least recently used ones beyond this are removed
  ResourceLimits build_limits = kDefaultBuildLimits;  // memory 16 GiB, CPU 1 h, 4096 files, 1024 processes
  SandboxOptions sandbox;           // for builds: enabled, bwrap, init (the worktree is set per build)
};

// A job's private copy of a prepared worktree, for one arm: what the workloads run in. Removed
// (whatever the workload left in it) when destroyed.
class RunCopy {
 public:
  RunCopy() = default;
  explicit RunCopy(std::string path) : path_(std::move(path)) {}
  ~RunCopy();
  RunCopy(RunCopy&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  RunCopy& operator=(RunCopy&& other) noexcept;
  RunCopy(const RunCopy&) = delete;
  RunCopy& operator=(const RunCopy&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class RevisionCache {
 public:
  // Creates the layout and takes the cache directory's lock; removes run copies a crashed worker
  // left. Throws std::runtime_error when the directory is used by another worker, cannot be
  // created, or (without the sandbox, with a run-as user) cannot be reached by that user.
  explicit RevisionCache(RevisionCacheOptions options);
  ~RevisionCache();
  RevisionCache(const RevisionCache&) = delete;
  RevisionCache& operator=(const RevisionCache&) = delete;

  // Mirror, worktree, diff, build, as described above. Throws PrepareError. A readable
  // cancel_fd stops a running build (PrepareError code internal, retryable).
  PreparedRevision prepare(const RevisionSpec& spec, int cancel_fd = -1);

  // A fresh copy of `revision`'s worktree under runs/<name> (cp -a --reflink=auto: cheap on
  // file systems that share blocks), without its .git file. Throws PrepareError (internal).
  RunCopy copy_for_run(const PreparedRevision& revision, const std::string& name);

  // Puts a copy of `dependency`'s worktree (without its .git file) at `relative_path` inside the
  // run copy `copy`, replacing what the workflow's revision has there. Every directory on the
  // way must be a real directory of the copy (created when missing): a symbolic link or a file
  // there, which a hostile revision may plant to have the copy written elsewhere, is refused.
  // Throws PrepareError (workload_failed for the revision's fault, internal for the host's).
  void place_dependency(const PreparedRevision& dependency, const RunCopy& copy, const std::string& relative_path);

  // Removes the least recently prepared worktrees beyond max_worktrees, except those in `keep`.
  // Best effort: problems are logged.
  void evict(const std::vector<std::string>& keep_worktrees);

  std::string mirror_dir(const std::string& repo_name) const;
  std::string scratch_dir() const;
  std::string runs_dir() const;
  const RevisionCacheOptions& options() const { return options_; }

  // <commit12>-<first 12 hex of sha256(diff)>, "-nodiff" for an empty diff. Exposed for tests.
  static std::string worktree_key(const std::string& commit, const std::string& diff);

 private:
  RevisionCacheOptions options_;
  int lock_fd_ = -1;
};

// Hex SHA-256 of `text`.
using ttfb::sha256_hex;  // common/text.hpp

}  // namespace ttfb::worker
