// Small text helpers shared by the server, the worker and the CLI: hashes for content
// addressing and token storage, and the trimming of process output into error messages.
//
//   std::string key = ttfb::sha256_hex(diff).substr(0, 12);
//   std::string why = ttfb::last_line(result.err);   // "error: patch failed: train.py:1"
//   std::string pct = ttfb::format_double("%+.1f%%", 4.23);  // "+4.2%"
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace ttfb {

// Lower-case hex of the bytes.
std::string to_hex(const unsigned char* data, std::size_t n);
// Lower-case hex SHA-256 of the text (OpenSSL). Throws std::runtime_error if OpenSSL fails.
std::string sha256_hex(std::string_view text);
// The last non-blank line of text, cut to `max` bytes with "..." after: the line people read.
// Both functions cut only between characters and return valid UTF-8 (bad bytes become U+FFFD),
// so what they return can go into JSON, logs and alerts whatever a process printed.
std::string last_line(const std::string& text, std::size_t max = 300);
// The last `max` bytes of text (all of it when shorter).
std::string tail_of(const std::string& text, std::size_t max);
// One number through a printf format ("%+.1f%%" -> "+4.2%"), for the sentences people read.
std::string format_double(const char* format, double x);
// What an experiment's candidate runs with, from its "env", "command_prefix" and "interpreter"
// (GET /api/v1/experiments/{id} "candidate", or experiments.candidate_runtime): "env MODE=tuned;
// unset LANG; prefix nice -n 10; interpreter python3 -X importtime", and a dependency experiment's
// "dependency dataload at lazy-imports (1a2b3c4d5e6f)" or "dependency dataload with a diff"; "" when
// none is set.
std::string candidate_runtime_words(const boost::json::object& candidate);
// "a/b/c": not empty, not absolute, no NUL, and no empty, "." or ".." part: a path that stays
// inside the directory it is relative to (as long as no part of it is a link). Inline: the
// config's fuzz target compiles server/config.cpp without the rest of common/.
inline bool is_plain_relative_path(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string_view::npos) return false;
  for (std::size_t start = 0;;) {
    const std::size_t end = p.find('/', start);
    const std::string_view part = p.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string_view::npos) return true;
    start = end + 1;
  }
}

}  // namespace ttfb
