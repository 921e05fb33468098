// How an experiment becomes work: one job per workflow, both arms on one worker, runs
// interleaved so that drift (thermal, page cache, a noisy neighbour) hits both arms alike.
#pragma once

#include <boost/json.hpp>

namespace ttfb {

// Warm-up runs first (baseline, candidate alternating; flagged, not analysed), then measured runs
// in ABBA order: (A B) (B A) (A B) (B A) ... — each arm is first in half of the pairs, which
// cancels a linear trend and any "second run is faster" effect.
boost::json::array interleaved_schedule(int warmup_runs_per_arm, int runs_per_arm);

}  // namespace ttfb
