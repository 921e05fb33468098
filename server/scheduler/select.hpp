// Which workflows a pre-submit's diff can touch: those whose footprint (the files their start-up
// and build opened; worker/footprint.hpp, store/footprints.hpp) holds a file the diff changes.
// A workflow without a footprint yet is always chosen: nothing says the diff cannot touch it.
//
//   auto changed = diff_paths(diff);                       // {"train.py", "trainer/tracking.py"}
//   auto choices = choose_by_footprint(workflows, footprints, changed);
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ttfb {

// The paths a unified diff changes, old and new names alike (renames and copies both), relative
// to the root as `git apply` takes them (a/ and b/ stripped; /dev/null left out), sorted, each
// once. nullopt when a file header cannot be read (a quoted or unusual name): then every
// workflow is chosen.
std::optional<std::vector<std::string>> diff_paths(std::string_view diff);

struct WorkflowChoice {
  std::string workflow;
  bool chosen = false;
  int footprint_files = -1;          // -1: no footprint recorded
  std::vector<std::string> touched;  // the changed files in its footprint
  std::string reason;                // in words, for the verdict and the API
};

// One choice per workflow, the chosen first (most touched files first), then the skipped, each
// group by name. `changed` nullopt: every workflow chosen.
std::vector<WorkflowChoice> choose_by_footprint(const std::vector<std::string>& workflows,
                                                const std::map<std::string, std::optional<std::vector<std::string>>>& footprints,
                                                const std::optional<std::vector<std::string>>& changed);

}  // namespace ttfb
