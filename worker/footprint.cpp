#include "worker/footprint.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace ttfb::worker {

namespace fs = std::filesystem;

std::string source_of(const std::string& p) {
  const auto slash = p.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : p.substr(0, slash);
  const std::string name = slash == std::string::npos ? p : p.substr(slash + 1);
  const std::string cache = "__pycache__";
  const bool in_cache = dir == cache || (dir.size() > cache.size() && dir.ends_with("/" + cache));
  if (!in_cache || !name.ends_with(".pyc")) return p;
  const auto dot = name.find('.');  // mod.cpython-311.pyc, mod.cpython-311.opt-1.pyc
  if (dot == 0 || dot == std::string::npos) return p;
  const std::string parent = dir.size() == cache.size() ? "" : dir.substr(0, dir.size() - cache.size() - 1);
  return (parent.empty() ? "" : parent + "/") + name.substr(0, dot) + ".py";
}

FootprintWatch::FootprintWatch(const std::string& root, std::size_t max_dirs, std::size_t max_files)
    : max_files_(max_files) {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) {
    why_not_ = std::string("inotify_init1: ") + std::strerror(errno);
    return;
  }
  auto watch = [&](const fs::path& dir, const std::string& rel) {
    if (dirs_.size() >= max_dirs) {
      failed_ = true;
      why_not_ = "more than " + std::to_string(max_dirs) + " directories";
      return false;
    }
    const int wd = ::inotify_add_watch(fd_, dir.c_str(), IN_OPEN | IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd < 0) {
      failed_ = true;
      why_not_ = "inotify_add_watch " + dir.string() + ": " + std::strerror(errno);
      return false;
    }
    dirs_[wd] = rel;
    return true;
  };
  if (!watch(root, "")) return;
  std::error_code ec;
  // Directories only, links not followed: what a run can open inside its copy.
  for (fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename() == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    std::error_code sec;
    if (!it->is_directory(sec) || it->is_symlink(sec)) continue;
    if (!watch(it->path(), fs::relative(it->path(), root, sec).string())) return;
  }
  if (ec) {
    failed_ = true;
    why_not_ = "cannot list " + root + ": " + ec.message();
  }
}

FootprintWatch::~FootprintWatch() {
  if (fd_ >= 0) ::close(fd_);
}

void FootprintWatch::drain() {
  alignas(inotify_event) char buf[64 * 1024];
  while (!failed_) {
    const ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: nothing more
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      if (e->mask & IN_Q_OVERFLOW) {
        failed_ = true;
        why_not_ = "the event queue overflowed (fs.inotify.max_queued_events)";
        return;
      }
      if ((e->mask & IN_ISDIR) || e->len == 0) continue;  // a directory listed, or the watched one itself
      const auto d = dirs_.find(e->wd);
      if (d == dirs_.end()) continue;
      const std::string name(e->name);
      seen_.insert(source_of(d->second.empty() ? name : d->second + "/" + name));
      if (seen_.size() > max_files_) {
        failed_ = true;
        why_not_ = "more than " + std::to_string(max_files_) + " files";
        return;
      }
    }
  }
}

std::optional<std::vector<std::string>> FootprintWatch::files() {
  if (!ok()) return std::nullopt;
  drain();
  if (failed_) return std::nullopt;
  // Bounded in bytes too: the sample that carries it must stay far below a server's body limit.
  std::size_t bytes = 0;
  for (const auto& f : seen_) bytes += f.size() + 4;
  if (bytes > kMaxFootprintBytes) {
    failed_ = true;
    why_not_ = "more than " + std::to_string(kMaxFootprintBytes / 1024) + " KiB of paths";
    return std::nullopt;
  }
  return std::vector<std::string>(seen_.begin(), seen_.end());
}

}  // namespace ttfb::worker
