// UTF-8 at the edges: every byte that reaches the server (a request target, a JSON body, git's
// or a workload's output) may be anything, while JSON, logs and alerts need valid UTF-8.
// Validation and decoding use Boost.Locale's utf_traits (header-only); these functions only say
// what to do with what it finds.
//
//   if (!ttfb::is_valid_utf8(path)) return 400;
//   std::string shown = ttfb::to_valid_utf8(git_stderr);      // bad bytes become U+FFFD
//   std::string cut = ttfb::utf8_tail(output, 4000);          // never starts mid-character
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ttfb {

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// `s` with each ill-formed or incomplete sequence replaced by U+FFFD (one per bad byte run
// that the decoder rejects); valid input comes back unchanged.
std::string to_valid_utf8(std::string_view s);

// The longest prefix of at most `max_bytes` that does not end inside a character (a character
// cut by the limit is dropped whole). Input that is not UTF-8 is cut at the byte.
std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes);
// The longest suffix of at most `max_bytes` that does not start inside a character.
std::string_view utf8_suffix(std::string_view s, std::size_t max_bytes);

}  // namespace ttfb
