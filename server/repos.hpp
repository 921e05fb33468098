// The server's own bare mirrors of the configured repositories, used at submission to resolve
// revisions to SHAs and to check that a diff applies (so a bad request fails with git's words
// before any worker time is spent). Calls for one repository are serialised; different
// repositories proceed in parallel. Runs git: call it from the blocking pool only.
#pragma once

#include "common/git.hpp"
#include "server/config.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace ttfb {

class RepoMirrors {
 public:
  RepoMirrors(std::string cache_dir, std::map<std::string, RepoConfig> repos);

  // Resolves a branch, tag or SHA to a full SHA, fetching first when the revision is not a full
  // SHA already present (branches move). Throws ApiError(invalid_argument) with git's words.
  std::string resolve(const std::string& repo, const std::string& rev);
  // Throws ApiError(invalid_argument) with git's words when the diff does not apply on commit.
  void check_diff(const std::string& repo, const std::string& commit, const std::string& diff);
  // The first-parent line good..bad (both included, index 0 = good) with subjects and authors,
  // for a bisection. `good` and `bad` are full SHAs from resolve(). Throws
  // ApiError(invalid_argument) with git's words when good is not on bad's first-parent line.
  std::vector<git::CommitInfo> first_parent_range(const std::string& repo, const std::string& good, const std::string& bad,
                                                  std::size_t max_commits);
  // The author and subject of a commit from resolve(). Throws ApiError(unavailable).
  git::CommitInfo commit_info(const std::string& repo, const std::string& commit);
  // Whether each of `paths` (relative to the root, normalised) exists at `commit`, a full SHA the
  // mirror has (one from first_parent_range). Throws ApiError(unavailable) when git cannot say.
  std::vector<bool> paths_exist(const std::string& repo, const std::string& commit, const std::vector<std::string>& paths);

 private:
  struct Entry {
    std::mutex mu;
    bool mirrored = false;
    std::chrono::steady_clock::time_point last_fetch{};
  };
  std::string mirror_dir(const std::string& repo) const;
  Entry& entry(const std::string& repo);
  void ensure(const std::string& repo, Entry& e);

  std::string cache_dir_;
  std::map<std::string, RepoConfig> repos_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
};

}  // namespace ttfb
