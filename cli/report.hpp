// How the CLI shows an experiment: the per-workflow verdict table and the exit code.
//
//   std::cout << ttfb::cli::format_experiment(experiment_json);
//   return ttfb::cli::exit_code(experiment_json);   // 0 ok, 1 regression, 2 error, 3 inconclusive
#pragma once

#include <boost/json.hpp>

#include <string>

namespace ttfb::cli {

// Exit codes of `submit`, `status` and (later) `presubmit`: scripts and CI hooks rely on them.
constexpr int kExitNoRegression = 0;
constexpr int kExitRegression = 1;
constexpr int kExitError = 2;
constexpr int kExitInconclusive = 3;

std::string format_experiment(const boost::json::object& experiment);
// One line of progress: status, runs done of planned, elapsed.
std::string format_progress(const boost::json::object& experiment, double elapsed_seconds);
int exit_code(const boost::json::object& experiment);

// GET /api/v1/workflows/{name} as text: policy, threshold in force, the current calibration
// (false positives against the budget, power per injected slowdown, ROC points), staleness.
std::string format_workflow(const boost::json::object& workflow);

}  // namespace ttfb::cli
