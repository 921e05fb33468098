// The request target of an HTTP request, read as untrusted bytes: the path and the query
// percent-decoded, and refused — with a sentence saying why — when the decoded text is not
// UTF-8, holds a NUL or another control character, climbs with a ".." segment, or is larger
// than the limits below. What comes out is safe to quote in an error message, to log, to
// match against routes and to map to a file.
//
//   std::string why;
//   auto t = ttfb::parse_target("/api/v1/experiments?limit=5", why);
//   if (!t) return bad_request(why);   // why: "the request path is not valid UTF-8 ..."
//   t->path == "/api/v1/experiments"; t->query.at("limit") == "5";
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ttfb {

struct RequestTarget {
  std::string path;                          // decoded, starts with '/'
  std::map<std::string, std::string> query;  // decoded keys and values ('+' is a space)
};

constexpr std::size_t kMaxQueryParameters = 64;
constexpr std::size_t kMaxTargetBytes = 8 * 1024;  // Beast's header limit bounds it too

// nullopt with `error` set when the target is refused.
std::optional<RequestTarget> parse_target(std::string_view target, std::string& error);

// Percent-decoding as in a URL; '+' is a space in a query (plus_is_space) and itself in a path;
// a '%' not followed by two hex digits stays. The result may be any bytes: parse_target is what
// checks them.
std::string percent_decode(std::string_view s, bool plus_is_space = true);
// "a=1&b=x%20y" -> {a: 1, b: "x y"}, without checks (parse_target checks).
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace ttfb
