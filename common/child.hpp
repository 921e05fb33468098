// What every child process does first, between fork and exec (async-signal-safe only): its own
// process group, so that a kill of the group reaches everything it starts; every signal back to
// its default action and none blocked, whatever the parent had installed or masked (an ignored
// SIGPIPE or a blocked SIGTERM is inherited across exec otherwise).
//
// Header-only: the sandbox's static launcher (worker/sandbox_init.cpp) links nothing of ours.
#pragma once

#include <signal.h>
#include <unistd.h>

namespace ttfb {

inline void start_child_process() noexcept {
  ::setpgid(0, 0);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace ttfb
