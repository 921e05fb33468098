#include "worker/revisions.hpp"

#include "worker/footprint.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "common/git.hpp"
#include "common/process.hpp"
#include "common/text.hpp"

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kDetailsBytes = 4000;  // output tail sent with a failure

bool is_full_sha(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A repository name as a directory name: nothing that could climb out of mirrors/.
std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    out += ok ? c : '_';
  }
  if (out.empty() || out.front() == '.') out = "_" + out;
  return out;
}

void make_dir_0755(const fs::path& dir) {
  fs::create_directories(dir);
  // Explicit mode, whatever the umask: a run-as user must be able to traverse it.
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
}

// Without the sandbox, every ancestor must be searchable by others, or a workload running as
// another user cannot reach its worktree (a cache under /root is the usual mistake). The sandbox
// needs none of that: bwrap runs as root and binds the directories in.
void check_reachable_by_others(const fs::path& dir, const std::string& user) {
  for (fs::path p = fs::absolute(dir); ; p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
      throw std::runtime_error("the cache directory " + dir.string() + " cannot be reached by user '" + user +
                               "' (workloads run as that user): " + p.string() + " has mode " + mode +
                               "; choose a cache directory under e.g. /var/cache, or use the sandbox (no --no-sandbox)");
    }
    if (p == p.parent_path()) break;
  }
}

// Hands the worktree's files to the run-as user, except the .git file that links it to the
// mirror (not that it is trusted: git never runs in a worktree after untrusted code did).
void give_to_user(const fs::path& worktree, const RunAsUser& user) {
  auto give = [&](const fs::path& p) {
    if (::lchown(p.c_str(), user.uid, user.gid) != 0) {
      throw std::system_error(errno, std::generic_category(), "cannot give " + p.string() + " to user " + user.name);
    }
  };
  give(worktree);
  for (auto it = fs::recursive_directory_iterator(worktree); it != fs::recursive_directory_iterator(); ++it) {
    if (it.depth() == 0 && it->path().filename() == ".git") continue;
    give(it->path());
  }
}

// What is known about one worktree, kept beside it (outside the tree, so it is not hashed).
struct WorktreeState {
  std::string commit;
  std::string diff_sha256;
  std::string applied_hash;  // content after the diff
  std::string build_command;  // as recorded when built_hash was taken
  std::string built_hash;    // content after a successful build
};

std::string join_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

// The files a build opened (worker/footprint.hpp), one per line, kept beside its state: a reused
// build still tells which files it read. Missing: not known (a build before footprints).
std::optional<std::vector<std::string>> read_build_footprint(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

void write_build_footprint(const fs::path& file, const std::optional<std::vector<std::string>>& files) {
  std::error_code ec;
  fs::remove(file, ec);
  if (!files) return;
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& f : *files) {
      if (f.find('\n') != std::string::npos) return;  // not representable: left unknown
      out << f << "\n";
    }
    if (!out) return;
  }
  fs::rename(tmp, file, ec);
}

std::optional<WorktreeState> read_state(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  WorktreeState s;
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = line.substr(0, eq);
    const std::string v = line.substr(eq + 1);
    if (k == "commit") s.commit = v;
    else if (k == "diff_sha256") s.diff_sha256 = v;
    else if (k == "applied_hash") s.applied_hash = v;
    else if (k == "build_command") s.build_command = v;
    else if (k == "built_hash") s.built_hash = v;
  }
  return s;
}

void write_state(const fs::path& file, const WorktreeState& s) {
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    std::string command = s.build_command;
    std::replace(command.begin(), command.end(), '\n', ' ');
    out << "commit=" << s.commit << "\n"
        << "diff_sha256=" << s.diff_sha256 << "\n"
        << "applied_hash=" << s.applied_hash << "\n"
        << "build_command=" << command << "\n"
        << "built_hash=" << s.built_hash << "\n";
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, file);  // atomic: a crash leaves the old state or the new one
}


// Removes a tree a workload wrote, whatever modes it left: a directory it made 0000 cannot be
// emptied by a non-root owner until it is made writable again.
void remove_tree(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) return;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("cannot remove {}: {}", dir.string(), ec.message());
}

}  // namespace

RunCopy::~RunCopy() {
  if (!path_.empty()) remove_tree(path_);
}

RunCopy& RunCopy::operator=(RunCopy&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) remove_tree(path_);
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

std::string RevisionCache::worktree_key(const std::string& commit, const std::string& diff) {
  const bool blank = std::all_of(diff.begin(), diff.end(), [](unsigned char c) { return std::isspace(c) != 0; });
  return commit.substr(0, 12) + "-" + (blank ? std::string("nodiff") : sha256_hex(diff).substr(0, 12));
}

RevisionCache::RevisionCache(RevisionCacheOptions options) : options_(std::move(options)) {
  if (options_.cache_dir.empty()) throw std::runtime_error("no cache directory given");
  const fs::path root = fs::absolute(options_.cache_dir);
  options_.cache_dir = root.string();
  try {
    make_dir_0755(root);
    make_dir_0755(root / "mirrors");
    make_dir_0755(root / "worktrees");
    make_dir_0755(root / "scratch");
    make_dir_0755(root / "runs");
  } catch (const fs::filesystem_error& e) {
    throw std::runtime_error("cannot create the cache directory " + root.string() + ": " + e.what());
  }
  if (options_.run_as && !options_.sandbox.enabled) check_reachable_by_others(root / "scratch", options_.run_as->name);

  const std::string lock_path = (root / ".lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    throw std::runtime_error("cannot open " + lock_path + ": " + std::error_code(errno, std::generic_category()).message());
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {0};
    (void)!::pread(lock_fd_, pid, sizeof pid - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    std::string holder(pid);
    holder.erase(std::remove(holder.begin(), holder.end(), '\n'), holder.end());
    throw std::runtime_error("the cache directory " + root.string() + " is in use by another worker" +
                             (holder.empty() ? "" : " (pid " + holder + ")") +
                             ": give each worker process its own --cache-dir");
  }
  const std::string me = std::to_string(::getpid()) + "\n";
  (void)!::ftruncate(lock_fd_, 0);
  (void)!::pwrite(lock_fd_, me.data(), me.size(), 0);
  // Copies of jobs that a crashed worker could not remove (the lock says none is in use).
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root / "runs", ec)) remove_tree(entry.path());
}

RevisionCache::~RevisionCache() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string RevisionCache::mirror_dir(const std::string& repo_name) const {
  return (fs::path(options_.cache_dir) / "mirrors" / (safe_name(repo_name) + ".git")).string();
}

std::string RevisionCache::scratch_dir() const { return (fs::path(options_.cache_dir) / "scratch").string(); }

std::string RevisionCache::runs_dir() const { return (fs::path(options_.cache_dir) / "runs").string(); }

RunCopy RevisionCache::copy_for_run(const PreparedRevision& revision, const std::string& name) {
  const fs::path target = fs::path(runs_dir()) / safe_name(name);
  remove_tree(target);
  // cp, not std::filesystem::copy: --reflink shares blocks where the file system can, -a keeps
  // modes, owners, symlinks (as links, never followed) and times (Python's .pyc check reads them).
  ProcessOptions o;
  o.timeout = std::chrono::minutes(10);
  const auto r = run_process({"cp", "-a", "--reflink=auto", "--no-target-directory", "--", revision.worktree, target.string()}, o);
  RunCopy copy(target.string());  // removed again if what follows fails
  if (!r.ok()) {
    throw PrepareError("internal", "cannot copy the worktree " + revision.worktree + " for the run: " + r.output_tail(),
                       "", true);
  }
  std::error_code ec;
  fs::remove(target / ".git", ec);  // the link to the mirror: a path of the host, of no use inside
  return copy;
}

void RevisionCache::place_dependency(const PreparedRevision& dependency, const RunCopy& copy, const std::string& relative_path) {
  const fs::path rel(relative_path);
  if (relative_path.empty() || rel.is_absolute())
    throw PrepareError("internal", "a dependency's path '" + relative_path + "' is not relative", "", false);
  fs::path at(copy.path());
  std::vector<fs::path> parts(rel.begin(), rel.end());
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string part = parts[i].string();
    if (part.empty() || part == "." || part == ".." || (i == 0 && part == ".git"))
      throw PrepareError("internal", "a dependency's path '" + relative_path + "' is not a plain relative path", "", false);
    at /= parts[i];
    std::error_code ec;
    const fs::file_status st = fs::symlink_status(at, ec);
    if (i + 1 == parts.size()) {
      if (fs::exists(st)) {  // the revision's own copy of it (a vendored one, a stub): replaced
        if (fs::is_symlink(st) || !fs::is_directory(st)) fs::remove(at, ec);
        else fs::remove_all(at, ec);
        if (ec) throw PrepareError("internal", "cannot replace " + at.string() + " with the dependency: " + ec.message(), "", true);
      }
      break;
    }
    if (!fs::exists(st)) {
      fs::create_directory(at, ec);
      if (ec) throw PrepareError("internal", "cannot create " + at.string() + " for a dependency: " + ec.message(), "", true);
    } else if (fs::is_symlink(st) || !fs::is_directory(st)) {
      throw PrepareError("workload_failed",
                         "the revision has " + std::string(fs::is_symlink(st) ? "a symbolic link" : "a file") + " at '" +
                             fs::relative(at, copy.path()).string() + "', where the dependency at '" + relative_path +
                             "' must go through a directory",
                         "", false);
    }
  }
  ProcessOptions o;
  o.timeout = std::chrono::minutes(10);
  const auto r = run_process({"cp", "-a", "--reflink=auto", "--no-target-directory", "--", dependency.worktree, at.string()}, o);
  if (!r.ok())
    throw PrepareError("internal", "cannot copy the dependency " + dependency.worktree + " into the run: " + r.output_tail(), "",
                       true);
  std::error_code ec;
  fs::remove(at / ".git", ec);
}

PreparedRevision RevisionCache::prepare(const RevisionSpec& spec, int cancel_fd) {
  if (!is_full_sha(spec.commit)) {
    throw PrepareError("internal", "the job names commit '" + spec.commit + "', not a full lower-case SHA", "", false);
  }
  const std::string mirror = mirror_dir(spec.repo_name);
  const std::string short_commit = spec.commit.substr(0, 12);

  // 1. The mirror, and the commit in it.
  try {
    git::ensure_mirror(spec.repo_url, mirror);
    if (!git::has_commit(mirror, spec.commit)) {
      spdlog::info("commit {} not in the mirror of {}: fetching", short_commit, spec.repo_name);
      git::fetch(mirror);
    }
  } catch (const git::GitError& e) {
    // Network or server trouble on the repository's side: another attempt may well work.
    throw PrepareError("revision_unavailable", e.what(), "", true);
  }
  if (!git::has_commit(mirror, spec.commit)) {
    throw PrepareError("revision_unavailable",
                       "commit " + spec.commit + " is not in repository '" + spec.repo_name + "' (" + spec.repo_url +
                           "), even after a fetch",
                       "", false);
  }

  // 2. The worktree: reuse it when its content is what it should be.
  const std::string key = worktree_key(spec.commit, spec.diff);
  const fs::path repo_dir = fs::path(options_.cache_dir) / "worktrees" / safe_name(spec.repo_name);
  const fs::path tree = repo_dir / key;
  const fs::path state_file = repo_dir / (key + ".state");
  const fs::path build_footprint_file = repo_dir / (key + ".build-footprint");
  const std::string diff_sha = sha256_hex(spec.diff);
  const std::string build_command = join_command(spec.build_command);

  PreparedRevision out;
  out.key = key;
  out.worktree = tree.string();
  std::optional<WorktreeState> state = read_state(state_file);
  std::string current;
  bool need_build = !spec.build_command.empty();
  bool fresh = true;
  if (state && state->commit == spec.commit && state->diff_sha256 == diff_sha && !state->applied_hash.empty() &&
      fs::is_directory(tree)) {
    try {
      current = git::content_hash(tree.string());
    } catch (const git::GitError& e) {
      spdlog::warn("cannot hash worktree {}: {}; making it afresh", tree.string(), e.what());
    }
    if (!current.empty()) {
      if (spec.build_command.empty() && current == state->applied_hash) {
        fresh = false;
        need_build = false;
      } else if (!spec.build_command.empty() && state->build_command == build_command && current == state->built_hash) {
        fresh = false;
        need_build = false;
        out.build_footprint = read_build_footprint(build_footprint_file);
        spdlog::info("worktree {} reused, build reused (content {})", key, current.substr(0, 12));
      } else if (current == state->applied_hash) {
        fresh = false;  // pristine, not built (yet, or with another command)
      } else {
        spdlog::info("worktree {} changed since it was prepared: making it afresh", key);
      }
    }
  }

  if (fresh) {
    WorktreeState s{spec.commit, diff_sha, "", "", ""};
    try {
      std::error_code ec;
      fs::remove(state_file, ec);
      fs::remove(build_footprint_file, ec);
      make_dir_0755(repo_dir);
      git::remove_worktree(mirror, tree.string());
      git::add_worktree(mirror, spec.commit, tree.string());
    } catch (const std::exception& e) {
      throw PrepareError("internal", "cannot check out " + short_commit + " of '" + spec.repo_name + "': " + e.what(), "",
                         true);
    }
    try {
      git::apply_diff(tree.string(), spec.diff);
    } catch (const git::GitError& e) {
      throw PrepareError("diff_does_not_apply", e.what(), "", false);
    }
    try {
      if (options_.run_as) give_to_user(tree, *options_.run_as);
      s.applied_hash = git::content_hash(tree.string());
      write_state(state_file, s);
    } catch (const std::exception& e) {
      throw PrepareError("internal", "cannot prepare the worktree " + tree.string() + ": " + e.what(), "", true);
    }
    state = s;
    current = s.applied_hash;
    out.created = true;
  }

  // 3. The build, recorded by the content it left.
  if (need_build) {
    WorkloadSpec build;
    build.argv = spec.build_command;
    build.cwd = tree.string();
    build.env = spec.build_env;
    build.probe = ProbeMode::none;
    build.timeout = spec.build_timeout;
    build.limits = options_.build_limits;
    build.run_as = options_.run_as;
    build.scratch_root = scratch_dir();
    build.cancel_fd = cancel_fd;
    build.sandbox = options_.sandbox;
    build.sandbox.worktree = tree.string();  // its own worktree read-write, nothing else of the cache
    build.sandbox.worktree_writable = true;
    build.sandbox.host_network = spec.host_network;
    spdlog::info("building {} in {}: {}", key, tree.string(), build_command);
    RunResult r;
    FootprintWatch watch(tree.string());  // what the build reads is part of the workflow's footprint
    try {
      r = run_workload(build);
    } catch (const std::exception& e) {
      throw PrepareError("internal", "cannot start the build command " + build_command + ": " + e.what(), "", true);
    }
    if (r.outcome == RunOutcome::cancelled) {
      throw PrepareError("internal", "the build was stopped by the worker", "", true);
    }
    if (r.outcome != RunOutcome::completed) {
      std::string message = "the build command `" + build_command + "` " +
                            (r.outcome == RunOutcome::workload_timeout
                                 ? "did not finish within " + std::to_string(spec.build_timeout.count()) + " s"
                                 : r.message.substr(std::string("the command ").size()));
      if (const auto line = last_line(r.output_tail); !line.empty()) message += ": " + line;
      throw PrepareError("build_failed", message, tail_of(r.output_tail, kDetailsBytes), false);
    }
    // Read before the content is hashed below: hashing opens every file of the tree.
    out.build_footprint = watch.files();
    try {
      current = git::content_hash(tree.string());
      state->build_command = build_command;
      state->built_hash = current;
      if (!out.build_footprint) spdlog::warn("no footprint of the build of {}: {}", key, watch.why_not());
      write_build_footprint(build_footprint_file, out.build_footprint);
      write_state(state_file, *state);
    } catch (const std::exception& e) {
      throw PrepareError("internal", "cannot record the build of " + tree.string() + ": " + e.what(), "", true);
    }
    out.built = true;
  } else {
    // Touch the state: eviction goes by when a worktree was last used.
    std::error_code ec;
    fs::last_write_time(state_file, fs::file_time_type::clock::now(), ec);
  }
  if (spec.build_command.empty()) out.build_footprint = std::vector<std::string>{};  // nothing to read
  out.content_hash = current;
  return out;
}

void RevisionCache::evict(const std::vector<std::string>& keep_worktrees) {
  struct Entry {
    fs::file_time_type used;
    fs::path state;
    fs::path tree;
    std::string repo;
  };
  std::vector<Entry> entries;
  std::error_code ec;
  for (const auto& repo : fs::directory_iterator(fs::path(options_.cache_dir) / "worktrees", ec)) {
    if (!repo.is_directory()) continue;
    for (const auto& f : fs::directory_iterator(repo.path(), ec)) {
      if (f.path().extension() != ".state") continue;
      fs::path tree = f.path();
      tree.replace_extension();
      entries.push_back({fs::last_write_time(f.path(), ec), f.path(), tree, repo.path().filename().string()});
    }
  }
  if (entries.size() <= options_.max_worktrees) return;
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.used < b.used; });
  std::size_t excess = entries.size() - options_.max_worktrees;
  for (const auto& e : entries) {
    if (excess == 0) break;
    if (std::find(keep_worktrees.begin(), keep_worktrees.end(), e.tree.string()) != keep_worktrees.end()) continue;
    try {
      fs::remove(e.state);
      fs::path footprint = e.state;
      footprint.replace_extension(".build-footprint");
      fs::remove(footprint, ec);
      git::remove_worktree((fs::path(options_.cache_dir) / "mirrors" / (e.repo + ".git")).string(), e.tree.string());
      spdlog::info("evicted worktree {}", e.tree.string());
    } catch (const std::exception& ex) {
      spdlog::warn("cannot evict worktree {}: {}", e.tree.string(), ex.what());
    }
    --excess;
  }
}

}  // namespace ttfb::worker
