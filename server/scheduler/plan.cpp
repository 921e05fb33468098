#include "server/scheduler/plan.hpp"

namespace ttfb {

boost::json::array interleaved_schedule(int warmup_runs_per_arm, int runs_per_arm) {
  boost::json::array out;
  int index = 0;
  auto add = [&](const char* arm, bool warmup) {
    out.push_back(boost::json::object{{"run_index", index++}, {"arm", arm}, {"warmup", warmup}});
  };
  for (int i = 0; i < warmup_runs_per_arm; ++i) {
    add("baseline", true);
    add("candidate", true);
  }
  for (int pair = 0; pair < runs_per_arm; ++pair) {
    if (pair % 2 == 0) {
      add("baseline", false);
      add("candidate", false);
    } else {
      add("candidate", false);
      add("baseline", false);
    }
  }
  return out;
}

}  // namespace ttfb
