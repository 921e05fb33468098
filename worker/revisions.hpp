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
//   scratch/                               per-run HOME/TMPDIR of workloads and builds
//
// A worktree is keyed by (commit, sha256 of the diff) and reused across jobs and across the two
// arms of an A/A job. Its state file records the content hash (git::content_hash) after the diff
// was applied and, when the build command succeeded, after the build. On reuse the content is
// hashed again: equal to the built hash -> ready, the build is skipped; equal to the applied hash
// -> only the build runs; anything else (a run wrote into the tree, a build half done) -> the
// worktree is made afresh, so every job measures exactly the revision it names.
//
// When a run-as user is given (the worker is root), the directories are created 0755 and each
// worktree's files are handed to that user, so that builds and workloads running as it can read
// and write them. Git never runs inside a worktree after untrusted code did (content_hash uses a
// throwaway repository), so a rewritten .git file cannot make the worker run anything.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
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
};

struct PreparedRevision {
  std::string key;           // <commit12>-<diff12>
  std::string worktree;      // absolute path of the worktree's root
  std::string content_hash;  // of the tree as it is now (after the build, when there is one)
  bool created = false;      // the worktree was made (or remade) for this call
  bool built = false;        // the build command ran in this call (false: no build, or reused)
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

struct RevisionCacheOptions {
  std::string cache_dir;
  std::optional<RunAsUser> run_as;  // builds run as this user, who owns the worktrees
  std::size_t max_worktrees = 32;   // least recently used ones beyond this are removed
  ResourceLimits build_limits{0, 0, 4096, 0};  // builds get no memory/CPU cap: compilers vary widely
};

class RevisionCache {
 public:
  // Creates the layout and takes the cache directory's lock. Throws std::runtime_error when the
  // directory is used by another worker, cannot be created, or (with a run-as user) cannot be
  // reached by that user.
  explicit RevisionCache(RevisionCacheOptions options);
  ~RevisionCache();
  RevisionCache(const RevisionCache&) = delete;
  RevisionCache& operator=(const RevisionCache&) = delete;

  // Mirror, worktree, diff, build, as described above. Throws PrepareError. A readable
  // cancel_fd stops a running build (PrepareError code internal, retryable).
  PreparedRevision prepare(const RevisionSpec& spec, int cancel_fd = -1);

  // Removes the least recently prepared worktrees beyond max_worktrees, except those in `keep`.
  // Best effort: problems are logged.
  void evict(const std::vector<std::string>& keep_worktrees);

  std::string mirror_dir(const std::string& repo_name) const;
  std::string scratch_dir() const;
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
