// Git operations through the real `git` binary (run_process). Every failure becomes a GitError
// whose message says what was attempted and ends with git's own words.
//
// The environment of every call is the caller's, plus GIT_TERMINAL_PROMPT=0 (a fetch that needs
// credentials fails instead of waiting for a prompt nobody answers) and LC_ALL=C (git's messages
// stay the English ones users and tests expect), minus the GIT_* variables that would point git at
// another repository (a worker started from a git hook must not act on the hook's repository).
//
// Hardening, because the repositories' content (and the diffs) are not trusted: no system or
// global configuration (GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=/dev/null: a filter, fsmonitor,
// pager or credential helper there cannot be triggered by a .gitattributes that a diff adds), no
// hooks (core.hooksPath=/dev/null), no ext:: or fd:: transports. `git apply` refuses paths with
// "..", paths into .git/ and paths beyond a symbolic link (its defaults, never --unsafe-paths).
#include "common/git.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <system_error>
#include <vector>

#include "common/process.hpp"

namespace ttfb::git {
namespace {

namespace fs = std::filesystem;
using std::chrono::minutes;

constexpr auto kNetworkTimeout = minutes(30);  // clone/fetch of a large repository
constexpr auto kLocalTimeout = minutes(5);     // anything that only reads or writes local files

std::map<std::string, std::string> git_environment() {
  auto env = current_environment();
  for (const char* name : {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                           "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_PREFIX"}) {
    env.erase(name);
  }
  for (const char* name : {"GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_EXEC_PATH",
                           "GIT_TEMPLATE_DIR", "GIT_ATTR_SOURCE", "GIT_EXTERNAL_DIFF", "GIT_SSH", "GIT_SSH_COMMAND",
                           "GIT_ASKPASS", "GIT_PAGER", "GIT_EDITOR"}) {
    env.erase(name);
  }
  env["GIT_TERMINAL_PROMPT"] = "0";
  env["LC_ALL"] = "C";
  env["GIT_CONFIG_NOSYSTEM"] = "1";
  env["GIT_CONFIG_GLOBAL"] = "/dev/null";
  env["GIT_ATTR_NOSYSTEM"] = "1";
  return env;
}

struct GitCall {
  std::vector<std::string> args;  // after "git"
  std::string cwd;
  std::string stdin_data;
  std::map<std::string, std::string> extra_env;
  std::chrono::milliseconds timeout = kLocalTimeout;
};

ProcessResult run_git(const GitCall& call) {
  std::vector<std::string> argv{"git"};
  // ext:: and fd:: transports run commands named in a URL; repositories here are plain URLs.
  argv.insert(argv.end(), {"-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never"});
  // Hooks are programs; none of a repository's (or of a mirror someone wrote to) may run.
  argv.insert(argv.end(), {"-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"});
  // An automatic gc runs inside the call instead of as a daemon that outlives it (the worker
  // kills processes it did not start between runs).
  argv.insert(argv.end(), {"-c", "gc.autoDetach=false"});
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  ProcessOptions options;
  options.cwd = call.cwd;
  options.stdin_data = call.stdin_data;
  options.timeout = call.timeout;
  auto env = git_environment();
  for (const auto& [k, v] : call.extra_env) env[k] = v;
  options.env = std::move(env);
  return run_process(argv, options);
}

// Git's words about a failure, for the end of an error message.
std::string words(const ProcessResult& r) {
  if (r.timed_out) return "git timed out";
  std::string tail = r.output_tail(4000);
  if (tail.empty()) {
    tail = r.signal != 0 ? "git was killed by signal " + std::to_string(r.signal)
                         : "git exited with status " + std::to_string(r.exit_code);
  }
  return tail;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

// A revision given to git as an argument must not be read as an option.
void check_revision_argument(const std::string& rev, const std::string& git_dir) {
  if (rev.empty()) throw GitError("empty revision for repository " + git_dir);
  if (rev.front() == '-') throw GitError("unknown revision '" + rev + "' in repository " + git_dir);
}

// A directory removed on destruction, for temporary index files and throwaway repositories.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ttfb-git-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw GitError("cannot create a temporary directory in " + pattern + ": " +
                     std::error_code(errno, std::generic_category()).message());
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);  // best effort: a leftover in /tmp is not worth failing for
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool is_bare_repository(const std::string& dir) {
  if (!fs::exists(fs::path(dir) / "HEAD")) return false;
  auto r = run_git({{"--git-dir=" + dir, "rev-parse", "--is-bare-repository"}});
  return r.ok() && trim(r.out) == "true";
}

struct WorktreeEntry {
  std::string path;
  std::string head;
};

std::vector<WorktreeEntry> list_worktrees(const std::string& git_dir) {
  auto r = run_git({{"--git-dir=" + git_dir, "worktree", "list", "--porcelain"}});
  if (!r.ok()) throw GitError("cannot list the worktrees of " + git_dir + ": " + words(r));
  std::vector<WorktreeEntry> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("worktree ", 0) == 0) {
      out.push_back({line.substr(9), ""});
    } else if (line.rfind("HEAD ", 0) == 0 && !out.empty()) {
      out.back().head = line.substr(5);
    }
  }
  return out;
}

std::string absolute(const std::string& path) {
  std::error_code ec;
  auto p = fs::weakly_canonical(fs::absolute(path), ec);
  return ec ? fs::absolute(path).lexically_normal().string() : p.string();
}

}  // namespace

void ensure_mirror(const std::string& url, const std::string& mirror_dir) {
  if (is_bare_repository(mirror_dir)) {
    auto r = run_git({{"--git-dir=" + mirror_dir, "config", "--get", "remote.origin.url"}});
    if (!r.ok() || trim(r.out) != url) {
      // The repository moved (configuration changed): keep the objects, follow the new URL.
      auto set = run_git({{"--git-dir=" + mirror_dir, "config", "remote.origin.url", url}});
      if (!set.ok()) throw GitError("cannot point the mirror " + mirror_dir + " at " + url + ": " + words(set));
    }
    return;
  }
  std::error_code ec;
  if (fs::exists(mirror_dir, ec)) {
    throw GitError("cannot use " + mirror_dir + " as a mirror of " + url + ": it exists and is not a bare git repository");
  }
  const fs::path target(mirror_dir);
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  // Clone next to the target and rename: an interrupted clone never looks like a mirror.
  const std::string tmp = mirror_dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp, ec);
  GitCall call{{"clone", "--mirror", "--quiet", "--", url, tmp}};
  call.timeout = kNetworkTimeout;
  auto r = run_git(call);
  if (!r.ok()) {
    fs::remove_all(tmp, ec);
    throw GitError("cannot clone " + url + ": " + words(r));
  }
  fs::rename(tmp, mirror_dir, ec);
  if (ec) {
    fs::remove_all(tmp, ec);
    if (!is_bare_repository(mirror_dir)) throw GitError("cannot move the new mirror of " + url + " to " + mirror_dir);
  }
}

void fetch(const std::string& mirror_dir) {
  GitCall call{{"--git-dir=" + mirror_dir, "fetch", "--prune", "--quiet", "origin"}};
  call.timeout = kNetworkTimeout;
  auto r = run_git(call);
  if (!r.ok()) throw GitError("cannot fetch into " + mirror_dir + ": " + words(r));
}

std::string resolve_commit(const std::string& git_dir, const std::string& rev) {
  check_revision_argument(rev, git_dir);
  auto r = run_git({{"--git-dir=" + git_dir, "rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}});
  const std::string sha = trim(r.out);
  if (!r.ok() || sha.size() != 40) {
    std::string message = "unknown revision '" + rev + "' in repository " + git_dir;
    if (!trim(r.err).empty()) message += ": " + words(r);
    throw GitError(message);
  }
  return sha;
}

bool has_commit(const std::string& git_dir, const std::string& commit) {
  if (commit.empty() || commit.front() == '-') return false;
  auto r = run_git({{"--git-dir=" + git_dir, "cat-file", "-e", commit + "^{commit}"}});
  return r.ok();
}

std::vector<bool> paths_exist(const std::string& git_dir, const std::string& commit, const std::vector<std::string>& paths) {
  if (!has_commit(git_dir, commit)) throw GitError("unknown commit '" + commit + "' in repository " + git_dir);
  std::vector<bool> out(paths.size(), false);
  // One "<commit>:<path>" a line in, one answer a line out, in order: "<oid> <type> <size>", or
  // "<commit>:<path> missing" (or "ambiguous").
  std::string input;
  std::vector<std::size_t> asked;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (paths[i].empty() || paths[i].find('\n') != std::string::npos) continue;
    input += commit + ":" + paths[i] + "\n";
    asked.push_back(i);
  }
  if (asked.empty()) return out;
  GitCall call{{"--git-dir=" + git_dir, "cat-file", "--batch-check"}};
  call.stdin_data = input;
  auto r = run_git(call);
  if (!r.ok()) throw GitError("cannot look up paths at " + short_sha(commit) + " in repository " + git_dir + ": " + words(r));
  std::size_t k = 0, start = 0;
  while (k < asked.size() && start < r.out.size()) {
    const auto end = r.out.find('\n', start);
    const std::string line = r.out.substr(start, end == std::string::npos ? std::string::npos : end - start);
    const bool missing = line.ends_with(" missing") || line.ends_with(" ambiguous");
    out[asked[k++]] = !missing && !line.empty();
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

CommitInfo commit_info(const std::string& git_dir, const std::string& commit) {
  check_revision_argument(commit, git_dir);
  GitCall log{{"--git-dir=" + git_dir, "log", "-1", "--no-color", "--format=%H%x00%s%x00%an%x00%ae%x00%aI%x00",
               "--end-of-options", commit}};
  auto r = run_git(log);
  if (!r.ok()) throw GitError("cannot read commit " + commit + " in repository " + git_dir + ": " + words(r));
  std::vector<std::string> f;
  std::size_t start = 0;
  for (std::size_t i = 0; i < r.out.size() && f.size() < 5; ++i) {
    if (r.out[i] != '\0') continue;
    f.push_back(r.out.substr(start, i - start));
    start = i + 1;
  }
  if (f.size() < 5) throw GitError("cannot read commit " + commit + " in repository " + git_dir + ": unexpected output");
  return CommitInfo{f[0], f[1], f[2], f[3], f[4]};
}

std::vector<CommitInfo> first_parent_range(const std::string& git_dir, const std::string& good, const std::string& bad,
                                           std::size_t max_commits) {
  check_revision_argument(good, git_dir);
  check_revision_argument(bad, git_dir);
  const std::string good_sha = resolve_commit(git_dir, good);
  const std::string bad_sha = resolve_commit(git_dir, bad);
  if (good_sha == bad_sha) throw GitError("'" + good + "' and '" + bad + "' are the same commit: there is no range to search");
  // NUL-separated fields, one record per commit; %P gives the parents (the first is what counts).
  GitCall log{{"--git-dir=" + git_dir, "log", "--first-parent", "--reverse", "--no-color",
               "--format=%H%x00%P%x00%s%x00%an%x00%ae%x00%aI%x00", "--end-of-options", good_sha + ".." + bad_sha}};
  auto r = run_git(log);
  if (!r.ok()) throw GitError("cannot list the commits of " + good + ".." + bad + " in repository " + git_dir + ": " + words(r));
  if (r.dropped_bytes > 0) throw GitError("the range " + good + ".." + bad + " is too long to bisect");
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (std::size_t i = 0; i < r.out.size(); ++i) {
    if (r.out[i] != '\0') continue;
    std::string f = r.out.substr(start, i - start);
    if (!f.empty() && f.front() == '\n') f.erase(0, 1);  // the newline git puts between records
    fields.push_back(std::move(f));
    start = i + 1;
  }
  constexpr std::size_t kFields = 6;
  std::vector<CommitInfo> out;
  out.push_back(CommitInfo{good_sha, "", "", "", ""});
  std::string previous = good_sha;
  for (std::size_t i = 0; i + kFields <= fields.size(); i += kFields) {
    const std::string& parents = fields[i + 1];
    const std::string first_parent = parents.substr(0, parents.find(' '));
    if (first_parent != previous) {
      throw GitError("'" + good + "' (" + good_sha.substr(0, 12) + ") is not a first-parent ancestor of '" + bad + "' (" +
                     bad_sha.substr(0, 12) + "): pick a good revision on the first-parent history of the bad one");
    }
    out.push_back(CommitInfo{fields[i], fields[i + 2], fields[i + 3], fields[i + 4], fields[i + 5]});
    previous = fields[i];
    if (out.size() > max_commits)
      throw GitError("the range " + good + ".." + bad + " holds more than " + std::to_string(max_commits) + " commits");
  }
  if (out.size() < 2 || out.back().sha != bad_sha)
    throw GitError("'" + good + "' (" + good_sha.substr(0, 12) + ") is not a first-parent ancestor of '" + bad + "' (" +
                   bad_sha.substr(0, 12) + "): pick a good revision on the first-parent history of the bad one");
  // The good end's own description.
  GitCall head{{"--git-dir=" + git_dir, "log", "-1", "--no-color", "--format=%s%x00%an%x00%ae%x00%aI", "--end-of-options", good_sha}};
  auto h = run_git(head);
  if (h.ok()) {
    std::vector<std::string> g;
    std::stringstream ss(trim(h.out));
    for (std::string part; std::getline(ss, part, '\0');) g.push_back(part);
    if (g.size() == 4) out.front() = CommitInfo{good_sha, g[0], g[1], g[2], g[3]};
  }
  return out;
}

void check_diff_applies(const std::string& git_dir, const std::string& commit, const std::string& diff) {
  if (is_blank(diff)) throw GitError("the diff is empty");
  check_revision_argument(commit, git_dir);
  TempDir tmp;
  // A temporary index holds the commit's tree: the check needs no work tree and touches nothing
  // of the repository's own state.
  GitCall read_tree{{"--git-dir=" + git_dir, "read-tree", commit + "^{tree}"}};
  read_tree.extra_env["GIT_INDEX_FILE"] = tmp.path() + "/index";
  auto r = run_git(read_tree);
  if (!r.ok()) throw GitError("unknown commit '" + commit + "' in repository " + git_dir + ": " + words(r));

  GitCall apply{{"--git-dir=" + git_dir, "apply", "--cached", "--check"}};
  apply.extra_env["GIT_INDEX_FILE"] = tmp.path() + "/index";
  apply.stdin_data = diff;
  r = run_git(apply);
  if (!r.ok()) {
    const std::string w = words(r);
    if (w.find("No valid patches in input") != std::string::npos) throw GitError("the text is not a diff: " + w);
    throw GitError("the diff does not apply to " + short_sha(commit) + ": " + w);
  }
}

void add_worktree(const std::string& git_dir, const std::string& commit, const std::string& path) {
  check_revision_argument(commit, git_dir);
  const std::string abs_path = absolute(path);
  std::error_code ec;
  if (fs::exists(abs_path, ec)) {
    // Ask the repository, not the directory: the directory's .git file may have been rewritten
    // by code that ran in it, and is not trusted.
    for (const auto& w : list_worktrees(git_dir)) {
      if (absolute(w.path) == abs_path && w.head == commit) return;
    }
    fs::remove_all(abs_path, ec);
    if (ec) throw GitError("cannot remove the stale worktree " + abs_path + ": " + ec.message());
  }
  auto prune = run_git({{"--git-dir=" + git_dir, "worktree", "prune"}});
  (void)prune;  // best effort: a stale entry only matters if `worktree add` then refuses, and says so
  fs::create_directories(fs::path(abs_path).parent_path(), ec);
  auto r = run_git({{"--git-dir=" + git_dir, "worktree", "add", "--detach", "--force", "--quiet", abs_path, commit}});
  if (!r.ok()) {
    throw GitError("cannot create a worktree of " + short_sha(commit) + " at " + abs_path + ": " + words(r));
  }
}

void remove_worktree(const std::string& git_dir, const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);  // does not follow symlinks out of the tree
  if (ec) throw GitError("cannot remove the worktree " + path + ": " + ec.message());
  auto r = run_git({{"--git-dir=" + git_dir, "worktree", "prune"}});
  if (!r.ok()) throw GitError("cannot prune the worktrees of " + git_dir + ": " + words(r));
}

void apply_diff(const std::string& worktree, const std::string& diff) {
  if (is_blank(diff)) return;  // nothing to apply
  // At the root: `git apply` run from a subdirectory silently skips files outside it.
  GitCall check{{"apply", "--check"}, worktree, diff};
  auto r = run_git(check);
  if (!r.ok()) {
    auto head = run_git({{"rev-parse", "HEAD"}, worktree});
    const std::string where = head.ok() ? short_sha(trim(head.out)) : worktree;
    const std::string w = words(r);
    if (w.find("No valid patches in input") != std::string::npos) throw GitError("the text is not a diff: " + w);
    throw GitError("the diff does not apply to " + where + ": " + w);
  }
  r = run_git({{"apply"}, worktree, diff});
  if (!r.ok()) throw GitError("applying the diff in " + worktree + " failed: " + words(r));
}

std::string content_hash(const std::string& worktree) {
  std::error_code ec;
  if (!fs::is_directory(worktree, ec)) throw GitError("cannot hash " + worktree + ": not a directory");
  // A throwaway repository and index: `add -A` then `write-tree` gives the tree id of exactly
  // what is in the directory (tracked and untracked files, .gitignore honoured). Nothing is
  // written to the real repository, and the directory's own .git file is not consulted, so this
  // is safe on a tree that untrusted code (a build) has written to. Ignored files count too
  // (--force): a .pyc planted beside the sources changes the hash, so it is never reused.
  TempDir tmp;
  const std::string repo = tmp.path() + "/repo.git";
  auto r = run_git({{"init", "--quiet", "--bare", repo}});
  if (!r.ok()) throw GitError("cannot create a scratch repository for hashing: " + words(r));
  std::map<std::string, std::string> env{{"GIT_INDEX_FILE", tmp.path() + "/index"}};
  const std::vector<std::string> common{"--git-dir=" + repo, "--work-tree=" + worktree, "-c", "core.compression=1",
                                        "-c", "core.autocrlf=false", "-c", "core.safecrlf=false"};
  GitCall add{common, worktree, "", env};
  add.args.insert(add.args.end(), {"add", "--all", "--force", "--", "."});
  r = run_git(add);
  if (!r.ok()) throw GitError("cannot hash the content of " + worktree + ": " + words(r));
  GitCall write{common, worktree, "", env};
  write.args.push_back("write-tree");
  r = run_git(write);
  const std::string tree = trim(r.out);
  if (!r.ok() || tree.size() != 40) throw GitError("cannot hash the content of " + worktree + ": " + words(r));
  return tree;
}

}  // namespace ttfb::git
