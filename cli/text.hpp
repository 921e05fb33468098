// Small text helpers that the CLI's reports share: optional JSON fields read without throwing
// (the server sends null for numbers it does not have yet), number formats, short SHAs,
// durations, timestamps, aligned tables, and ANSI colour that is off unless asked for.
//
//   using namespace ttfb::cli::text;
//   auto effect = num(culprit, "effect_pct");                 // std::nullopt for null or absent
//   out << short_sha(field(c, "commit")) << "  " << (effect ? fmt("%+.1f%%", *effect) : "-");
//   out << format_table({{"id", "status"}, {"7", "found"}});
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ttfb::cli::text {

// A JSON value as text: strings as they are, null or absent as `fallback`, anything else serialized.
std::string str(const boost::json::value* v, const std::string& fallback = "-");
std::string field(const boost::json::object& o, const char* key, const std::string& fallback = "-");
// A number field; std::nullopt when absent, null or not a number.
std::optional<double> num(const boost::json::object& o, const char* key);
// An object or array field, or nullptr when absent, null or of another kind.
const boost::json::object* object_field(const boost::json::object& o, const char* key);
const boost::json::array* array_field(const boost::json::object& o, const char* key);

std::string fmt(const char* format, double x);
std::string pad(const std::string& s, std::size_t width);
// p-values: 4 decimals, or scientific below 1e-4 (2.1e-09).
std::string format_p(double p);
// "+38.2% [+33.1, +43.5]" (the interval only when both ends are known), "-" without an effect.
std::string format_effect(std::optional<double> effect_pct, std::optional<double> low_pct, std::optional<double> high_pct);
// The first 7 hex digits of a commit, as git log --oneline shows it.
std::string short_sha(const std::string& sha);
// "42 s", "1 min 12 s", "2 h 5 min".
std::string format_duration(double seconds);
// "2026-11-23T12:00:00.123Z" or "2026-11-23 12:00:00.1+00" -> "2026-11-23 12:00"; "-" for empty.
std::string format_time(const std::string& timestamp);
// "1 culprit", "2 culprits".
std::string count(long n, const std::string& one, const std::string& many);
// Percent-encodes everything but unreserved characters (RFC 3986), for paths and query values.
std::string percent_encode(std::string_view s);

// Rows of cells with the columns aligned, the first row being the header; each line starts with
// `indent`. Cells are measured in bytes: keep them ASCII and free of colour codes.
std::string format_table(const std::vector<std::vector<std::string>>& rows, const std::string& indent = "  ");

// Wraps `s` in an SGR colour sequence (e.g. "1;31" bold red) when `on`, else returns it unchanged.
std::string paint(const std::string& s, const char* sgr, bool on);

}  // namespace ttfb::cli::text
