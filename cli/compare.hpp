// `ttfb-lab compare A B`: the verdict table for two files of TTFB samples measured anywhere
// (like benchstat or ministat), with the same statistics the server uses.
//
//   auto a = ttfb::cli::read_samples("base.txt");     // one number per line, or the API's JSON
//   auto b = ttfb::cli::read_samples("cand.txt");
//   auto report = ttfb::cli::compare_samples(a, b, policy);
#pragma once

#include "server/stats/verdict.hpp"

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace ttfb::cli {

// Reads TTFB samples (ms, > 0) from a file ("-" = stdin). Accepted forms:
//   - text: one number per line; blank lines and lines starting with '#' are skipped;
//   - JSON: an array of numbers, or {"samples": [...]} as GET /api/v1/experiments/{id}/samples
//     returns it (measured samples only: warm-ups are dropped), optionally filtered by `arm`.
// Throws std::runtime_error naming the file and line (or JSON element) of anything else.
std::vector<double> read_samples(const std::string& path, const std::string& arm = "");
std::vector<double> parse_samples(const std::string& text, const std::string& source, const std::string& arm = "");

// The comparison as JSON: per-arm n, median, mean, CV; effect % with CI; p; verdict; reason.
boost::json::object compare_samples(const std::vector<double>& baseline, const std::vector<double>& candidate,
                                    const stats::Policy& policy);
std::string format_comparison(const boost::json::object& c, const std::string& name_a, const std::string& name_b);

}  // namespace ttfb::cli
