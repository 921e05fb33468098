// Fuzz target: ttfb::git::check_diff_applies (common/git.hpp), the server's check of a submitted
// diff — the real `git apply --cached --check` on a throwaway index — against a small repository
// this target creates once at start-up (examples/trainer's files, an executable script, a
// symlink and a binary file; one commit; a bare clone as the server's mirrors are). Slow (two git
// processes per input), so a 10-minute run is a few tens of thousands of inputs.
// Asserts: GitError is the only exception; its message is valid UTF-8, its error body parses
// back, and it is bounded (git's words are cut at 4000 bytes; each bad byte may become a 3-byte
// U+FFFD); nothing is written outside temporary directories: the repository, its source work
// tree, HOME and the current directory (git runs in a directory of its own here, entered for
// the call) are unchanged after every input, and the temporary index's directory is gone. The
// longest message seen is printed at exit.
// Input: the diff text.
#include "common/git.hpp"
#include "common/process.hpp"
#include "fuzz/check.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

namespace fs = std::filesystem;

namespace {

std::string g_base;    // private temporary directory holding everything below
std::string g_git;     // g_base/repo.git: the bare repository the diffs are checked against
std::string g_commit;  // its only commit
std::string g_tmp;     // g_base/tmp: TMPDIR, where check_diff_applies makes its index
std::map<std::string, std::string> g_snapshot;  // g_base without tmp/, as at start-up
std::string g_cwd;                              // g_base/cwd: the current directory during a call
int g_fuzzer_cwd = -1;                          // the fuzzer's own, returned to after the call
std::size_t g_longest = 0;

std::string run_git(const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> argv{"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  ttfb::ProcessOptions o;
  o.cwd = cwd;
  auto env = ttfb::current_environment();
  env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "Fuzz";
  env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "fuzz@example.com";
  env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = "2026-01-01T00:00:00Z";
  o.env = env;
  const auto r = ttfb::run_process(argv, o);
  if (!r.ok()) {
    std::fprintf(stderr, "diff_fuzz set-up: git %s failed: %s\n", args.front().c_str(), r.output_tail().c_str());
    std::abort();
  }
  return r.out;
}

// Every entry under `root` (tmp/ excepted) with its type, size, mode and modification time.
std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = fs::relative(it->path(), root).string();
    if (rel == "tmp") {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    out[rel] = std::to_string(st.st_mode) + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) +
               "." + std::to_string(st.st_mtim.tv_nsec);
  }
  return out;
}

void write_file(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

void report() {
  std::fprintf(stderr, "diff_fuzz: longest GitError message: %zu bytes\n", g_longest);
  std::error_code ec;
  fs::remove_all(g_base, ec);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string pattern = (fs::temp_directory_path() / "ttfb-diff-fuzz-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) std::abort();
  g_base = pattern;
  g_tmp = g_base + "/tmp";
  fs::create_directories(g_tmp);
  fs::create_directories(g_base + "/home");
  g_cwd = g_base + "/cwd";
  fs::create_directories(g_cwd);
  g_fuzzer_cwd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (g_fuzzer_cwd < 0) std::abort();
  // git reads no user configuration of whoever runs the fuzzer, and writes its temporary files here.
  ::setenv("HOME", (g_base + "/home").c_str(), 1);
  ::unsetenv("XDG_CONFIG_HOME");
  ::setenv("TMPDIR", g_tmp.c_str(), 1);

  const fs::path src = g_base + "/src";
  fs::copy(fs::path(TTFB_LAB_SOURCE_DIR) / "examples/trainer", src, fs::copy_options::recursive);
  for (auto it = fs::recursive_directory_iterator(src); it != fs::recursive_directory_iterator(); ++it)
    if (it->path().extension() == ".pyc" || it->path().filename() == "__pycache__") fs::remove_all(it->path());
  write_file(src / "run.sh", "#!/bin/sh\nexec python3 train.py --steps 1 --tiny \"$@\"\n");
  fs::permissions(src / "run.sh", fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                  fs::perm_options::add);
  fs::create_symlink("train.py", src / "latest.py");
  write_file(src / "data/weights.bin", std::string("\x00\x01\x02\xff\xfe\x00tensor\x00\x00", 14));
  run_git({"init", "--quiet", "--initial-branch=main"}, src.string());
  run_git({"add", "-A"}, src.string());
  run_git({"commit", "--quiet", "-m", "trainer"}, src.string());
  run_git({"clone", "--quiet", "--bare", src.string(), g_base + "/repo.git"}, g_base);
  g_git = g_base + "/repo.git";
  g_commit = run_git({"--git-dir=" + g_git, "rev-parse", "HEAD"}, "");
  g_commit.erase(g_commit.find_last_not_of("\n") + 1);
  g_snapshot = snapshot(g_base);
  std::atexit(report);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string diff(reinterpret_cast<const char*>(data), size);
  if (::chdir(g_cwd.c_str()) != 0) std::abort();
  try {
    ttfb::git::check_diff_applies(g_git, g_commit, diff);
  } catch (const ttfb::git::GitError& e) {
    const std::string message = e.what();
    g_longest = std::max(g_longest, message.size());
    FUZZ_CHECK(message.size() <= 3 * 4000 + 512 + g_git.size(), "a GitError message of %zu bytes", message.size());
    ttfb::fuzz::check_error_message(ttfb::ErrorCode::invalid_argument, message);
  }
  if (::fchdir(g_fuzzer_cwd) != 0) std::abort();
  FUZZ_CHECK(fs::is_empty(g_tmp), "check_diff_applies left something in TMPDIR");
  FUZZ_CHECK(snapshot(g_base) == g_snapshot, "the repository, its work tree, HOME or git's current directory changed");
  return 0;
}
