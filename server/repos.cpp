#include "server/repos.hpp"

#include "common/errors.hpp"
#include "common/git.hpp"

#include <regex>

namespace ttfb {
namespace {
// A branch is fetched again at most this often: submissions in a burst share one fetch.
constexpr auto kFetchInterval = std::chrono::seconds(2);

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); !from.empty() && pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
  return text;
}
}  // namespace

RepoMirrors::RepoMirrors(std::string cache_dir, std::map<std::string, RepoConfig> repos)
    : cache_dir_(std::move(cache_dir)), repos_(std::move(repos)) {}

std::string RepoMirrors::mirror_dir(const std::string& repo) const { return cache_dir_ + "/" + repo + ".git"; }

RepoMirrors::Entry& RepoMirrors::entry(const std::string& repo) {
  std::lock_guard lock(mu_);
  auto& e = entries_[repo];
  if (!e) e = std::make_unique<Entry>();
  return *e;
}

void RepoMirrors::ensure(const std::string& repo, Entry& e) {
  if (e.mirrored) return;
  auto it = repos_.find(repo);
  if (it == repos_.end()) throw ApiError(ErrorCode::invalid_argument, "unknown repository '" + repo + "'");
  try {
    git::ensure_mirror(it->second.url, mirror_dir(repo));
  } catch (const git::GitError& err) {
    throw ApiError(ErrorCode::unavailable, "repository '" + repo + "' cannot be fetched right now", err.what());
  }
  e.mirrored = true;
  e.last_fetch = std::chrono::steady_clock::now();
}

std::string RepoMirrors::resolve(const std::string& repo, const std::string& rev) {
  static const std::regex kFullSha("[0-9a-f]{40}");
  Entry& e = entry(repo);
  std::lock_guard lock(e.mu);
  ensure(repo, e);
  const std::string dir = mirror_dir(repo);
  bool full_sha = std::regex_match(rev, kFullSha);
  bool stale = std::chrono::steady_clock::now() - e.last_fetch > kFetchInterval;
  auto fetch = [&] {
    try {
      git::fetch(dir);
      e.last_fetch = std::chrono::steady_clock::now();
    } catch (const git::GitError& err) {
      throw ApiError(ErrorCode::unavailable, "repository '" + repo + "' cannot be fetched right now", err.what());
    }
  };
  bool fetched = false;
  if ((full_sha && !git::has_commit(dir, rev)) || (!full_sha && stale)) {
    fetch();
    fetched = true;
  }
  try {
    try {
      return git::resolve_commit(dir, rev);
    } catch (const git::GitError&) {
      // A branch pushed since the last (throttled) fetch: fetch once more before saying no.
      if (fetched) throw;
      fetch();
      return git::resolve_commit(dir, rev);
    }
  } catch (const git::GitError& err) {
    throw ApiError(ErrorCode::invalid_argument,
                   "revision '" + rev + "' was not found in repository '" + repo + "': use a branch, tag or commit SHA that exists there",
                   replace_all(err.what(), dir, "repository '" + repo + "'"));  // never show the server's paths
  }
}

void RepoMirrors::check_diff(const std::string& repo, const std::string& commit, const std::string& diff) {
  Entry& e = entry(repo);
  std::lock_guard lock(e.mu);
  ensure(repo, e);
  try {
    git::check_diff_applies(mirror_dir(repo), commit, diff);
  } catch (const git::GitError& err) {
    // git.cpp's message already says "the diff does not apply to <sha>: <git's words>".
    throw ApiError(ErrorCode::invalid_argument,
                   std::string(err.what()) + " (repository '" + repo +
                       "'; rebase the diff onto that base, or submit it with the base it was made on)");
  }
}

std::vector<git::CommitInfo> RepoMirrors::first_parent_range(const std::string& repo, const std::string& good,
                                                             const std::string& bad, std::size_t max_commits) {
  Entry& e = entry(repo);
  std::lock_guard lock(e.mu);
  ensure(repo, e);
  try {
    return git::first_parent_range(mirror_dir(repo), good, bad, max_commits);
  } catch (const git::GitError& err) {
    throw ApiError(ErrorCode::invalid_argument, replace_all(err.what(), mirror_dir(repo), "repository '" + repo + "'"));
  }
}

git::CommitInfo RepoMirrors::commit_info(const std::string& repo, const std::string& commit) {
  Entry& e = entry(repo);
  std::lock_guard lock(e.mu);
  ensure(repo, e);
  try {
    return git::commit_info(mirror_dir(repo), commit);
  } catch (const git::GitError& err) {
    throw ApiError(ErrorCode::unavailable, "repository '" + repo + "' cannot be read right now",
                   replace_all(err.what(), mirror_dir(repo), "repository '" + repo + "'"));
  }
}

std::vector<bool> RepoMirrors::paths_exist(const std::string& repo, const std::string& commit,
                                           const std::vector<std::string>& paths) {
  Entry& e = entry(repo);
  std::lock_guard lock(e.mu);
  ensure(repo, e);
  try {
    return git::paths_exist(mirror_dir(repo), commit, paths);
  } catch (const git::GitError& err) {
    throw ApiError(ErrorCode::unavailable, "repository '" + repo + "' cannot be read right now",
                   replace_all(err.what(), mirror_dir(repo), "repository '" + repo + "'"));
  }
}

}  // namespace ttfb
