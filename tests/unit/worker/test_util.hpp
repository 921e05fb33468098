// Helpers for the worker's tests: temporary directories, scripts, a throwaway git repository.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/process.hpp"

namespace ttfb::worker::testing {

namespace fs = std::filesystem;

// A directory under /tmp, removed with everything in it. Mode 0755 so that a run-as user
// (nobody, when the tests run as root) can reach what is inside.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/ttfb-worker-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
    fs::permissions(path_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_file(const fs::path& p, const std::string& text) {
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::trunc) << text;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An executable script (with its #! line) at `p`.
inline void write_script(const fs::path& p, const std::string& text) {
  write_file(p, text);
  fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec);
}

// Runs a shell command in `cwd`; returns its stdout without trailing newlines; fails the test
// when the command fails.
inline std::string sh(const std::string& cmd, const fs::path& cwd) {
  ProcessOptions options;
  options.cwd = cwd.string();
  auto r = run_process({"sh", "-c", cmd}, options);
  EXPECT_TRUE(r.ok()) << cmd << ": " << r.err;
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// Alive and not a zombie.
inline bool process_alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] != 'Z';
}

// Host processes one of whose arguments is exactly `arg` (a marker a test gave them), alive.
inline std::vector<pid_t> pids_with_arg(const std::string& arg) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t start = 0;
    while (start < cmdline.size()) {
      std::size_t end = cmdline.find('\0', start);
      if (end == std::string::npos) end = cmdline.size();
      if (cmdline.compare(start, end - start, arg) == 0) {
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (process_alive(pid)) out.push_back(pid);
        break;
      }
      start = end + 1;
    }
  }
  return out;
}

// A git repository with one commit on `main`: train.py (steps = 1) and trainer/data.py.
struct TrainerRepo {
  explicit TrainerRepo(const fs::path& dir) : path(dir) {
    fs::create_directories(path);
    sh("git init -q -b main . && git config user.email t@example.com && git config user.name T", path);
    write_file(path / "train.py", "import os\n\ndef main():\n    steps = 1\n    return steps\n");
    write_file(path / "trainer" / "data.py", "BATCH = 8\n");
    write_file(path / ".gitignore", "*.log\n");
    head = commit("first");
  }
  std::string commit(const std::string& message) {
    sh("git add -A && git commit -qm '" + message + "'", path);
    return sh("git rev-parse HEAD", path);
  }
  // steps = 1 -> steps = 2 in train.py.
  static std::string steps_diff() {
    return "diff --git a/train.py b/train.py\n"
           "--- a/train.py\n"
           "+++ b/train.py\n"
           "@@ -1,5 +1,5 @@\n"
           " import os\n"
           " \n"
           " def main():\n"
           "-    steps = 1\n"
           "+    steps = 2\n"
           "     return steps\n";
  }
  fs::path path;
  std::string head;
};

}  // namespace ttfb::worker::testing
