// Git operations shared by the server (resolve revisions, check diffs at submission) and the
// worker (mirrors, worktrees, applying diffs). Every call runs the real `git` binary through
// run_process; failures throw GitError carrying git's own words.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace ttfb::git {

// What went wrong, with git's stderr in what(), ready to show a user.
class GitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Makes sure `mirror_dir` is a bare mirror of `url` (git clone --mirror when missing).
void ensure_mirror(const std::string& url, const std::string& mirror_dir);
// git fetch --prune in the mirror: brings new branches, tags and commits.
void fetch(const std::string& mirror_dir);
// Resolves a branch, tag or (abbreviated) SHA to a full commit SHA. Throws GitError
// ("unknown revision 'X' in repository ...") when there is no such commit.
std::string resolve_commit(const std::string& git_dir, const std::string& rev);
// True when `commit` exists in git_dir.
bool has_commit(const std::string& git_dir, const std::string& commit);
// Whether each of `paths` (relative to the repository's root, "/"-separated, no "./" or "..")
// exists at `commit`, as a file or a directory: one `git cat-file --batch-check` for them all.
// A path with a newline is false without asking. Throws GitError when git cannot answer (no such
// commit, not a repository).
std::vector<bool> paths_exist(const std::string& git_dir, const std::string& commit, const std::vector<std::string>& paths);
// One commit of a range, as a bisection reports it.
struct CommitInfo {
  std::string sha;
  std::string subject;
  std::string author_name;
  std::string author_email;
  std::string date;  // author date, ISO 8601 with its offset
};
// Subject, author and date of one commit (a full SHA the repository has). Throws GitError.
CommitInfo commit_info(const std::string& git_dir, const std::string& commit);
// The first-parent line from `good` to `bad`, both included: index 0 is `good`, the last is
// `bad`, and each commit's first parent is the one before it. Throws GitError when `good` is not
// on the first-parent line of `bad` ("... is not a first-parent ancestor of ..."), when they are
// the same commit, or when the range holds more than `max_commits` commits.
std::vector<CommitInfo> first_parent_range(const std::string& git_dir, const std::string& good, const std::string& bad,
                                           std::size_t max_commits = 10000);
// Checks that `diff` applies cleanly on top of `commit`, without a work tree (temporary index +
// `git apply --cached --check`). Throws GitError with git's message when it does not apply,
// and when the diff is empty or not a diff at all.
void check_diff_applies(const std::string& git_dir, const std::string& commit, const std::string& diff);
// Creates (or reuses, when it already exists at that commit) a detached worktree of `commit` at
// `path`. Does not apply anything.
void add_worktree(const std::string& git_dir, const std::string& commit, const std::string& path);
// Removes the worktree at `path` (its directory, whatever it holds) and its registration in
// git_dir. No error when it does not exist.
void remove_worktree(const std::string& git_dir, const std::string& path);
// Applies `diff` at the root of the worktree `path`: `git apply --check`, then `git apply`.
// Throws GitError with git's message when it does not apply, and when it would write outside the
// worktree (a path with "..", into .git/, beyond a symbolic link). An empty diff changes nothing.
void apply_diff(const std::string& worktree, const std::string& diff);
// Hash of the worktree's current content (tracked, untracked and ignored files alike): equal
// content gives an equal hash, so build results can be reused by content, and a file planted in
// the tree (an ignored .pyc included) makes it differ. Computed in a throwaway repository: the
// worktree's .git file is not consulted (safe after untrusted code ran there).
std::string content_hash(const std::string& worktree);

}  // namespace ttfb::git
