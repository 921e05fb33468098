// The smallest workload there is, for bench/sandbox_bench.cpp: a static program whose first act
// is to write "first_batch" to the probe fd (TTFB_PROBE_FD is always 3). What the bench measures
// up to it is process creation, exec and, in the sandbox, the sandbox.
#include <unistd.h>

int main() {
  static const char kLine[] = "first_batch\n";
  return ::write(3, kLine, sizeof kLine - 1) == static_cast<ssize_t>(sizeof kLine - 1) ? 0 : 1;
}
