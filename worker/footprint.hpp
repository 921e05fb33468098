// A run's footprint: the files of its copy of the revision that it opened — for a run that stops
// at its first batch, what its start-up loaded. The server keeps each workflow's latest one, so
// that a pre-submit can tell which workflows a diff can touch (README, "Experiments for infra
// owners"). Language-agnostic: inotify on every directory of the copy, set before the run
// starts and read after it ends; Python's compiled modules count as their sources
// (pkg/__pycache__/mod.cpython-311.pyc is pkg/mod.py).
//
//   FootprintWatch watch(copy.path());
//   RunResult r = run_workload(spec);
//   if (auto files = watch.files()) sample.footprint = *files;
//
// Inotify sees opens through the sandbox's bind mount of the copy (the same inodes). The watch
// gives up (files() is nullopt) rather than report part of a footprint: more than max_dirs
// directories, a watch the kernel refuses (fs.inotify.max_user_watches), an event queue that
// overflowed (fs.inotify.max_queued_events), more than max_files distinct files, or more than
// kMaxFootprintBytes of their paths.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ttfb::worker {

inline constexpr std::size_t kMaxFootprintBytes = 256 * 1024;  // of paths, in one sample
inline constexpr std::size_t kMaxFootprintFiles = 20000;        // the server's limit too

class FootprintWatch {
 public:
  explicit FootprintWatch(const std::string& root, std::size_t max_dirs = 8192, std::size_t max_files = kMaxFootprintFiles);
  ~FootprintWatch();
  FootprintWatch(const FootprintWatch&) = delete;
  FootprintWatch& operator=(const FootprintWatch&) = delete;

  bool ok() const { return fd_ >= 0 && !failed_; }
  const std::string& why_not() const { return why_not_; }  // when !ok() or files() is nullopt
  // The files opened since the watch was set, relative to the root, sorted, each once (sources
  // for Python's compiled modules); nullopt when the footprint is incomplete (see above).
  std::optional<std::vector<std::string>> files();

 private:
  void drain();
  int fd_ = -1;
  bool failed_ = false;
  std::string why_not_;
  std::size_t max_files_;
  std::map<int, std::string> dirs_;  // watch descriptor -> directory relative to the root ("" for it)
  std::set<std::string> seen_;
};

// "pkg/__pycache__/mod.cpython-311.pyc" (or .opt-1.pyc) -> "pkg/mod.py"; other paths as they are.
std::string source_of(const std::string& relative_path);

}  // namespace ttfb::worker
