#include "worker/stop_flag.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <system_error>

namespace ttfb::worker {

StopFlag::StopFlag() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  read_fd_ = fds[0];
  write_fd_ = fds[1];
}

StopFlag::~StopFlag() {
  ::close(read_fd_);
  ::close(write_fd_);
}

void StopFlag::raise(Reason reason) noexcept {
  const int saved_errno = errno;  // a signal handler must leave errno as it found it
  reasons_.fetch_or(reason);
  const char byte = 1;
  (void)!::write(write_fd_, &byte, 1);  // a full pipe is already readable: nothing lost
  errno = saved_errno;
}

void StopFlag::clear(Reason reason) noexcept {
  if ((reasons_.fetch_and(~reason) & ~reason) != 0) return;
  char buf[64];
  while (::read(read_fd_, buf, sizeof buf) > 0) {
  }
  // A raise() between the fetch_and and the drain lost its byte: put one back.
  if (reasons_.load() != 0) {
    const char byte = 1;
    (void)!::write(write_fd_, &byte, 1);
  }
}

void StopFlag::wait_for_ms(long long ms) const noexcept {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!raised()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return;
    pollfd p{read_fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000))) > 0) return;
  }
}

}  // namespace ttfb::worker
