// Fuzz target: ttfb::parse_target (server/http/target.hpp), the request target of every HTTP
// request, read from anyone who can reach the server's port. Asserts (fuzz/target_checks.hpp):
// no crash; an accepted target has a path starting with '/', equal to an independent
// percent-decoding, valid UTF-8, without control characters or "." / ".." segments, and query
// keys and values valid UTF-8 without control characters, at most kMaxQueryParameters of them;
// a refused one has a reason that is valid UTF-8 and whose error body parses back (Boost.JSON)
// to the same message. Input: the raw target bytes.
#include "fuzz/target_checks.hpp"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ttfb::fuzz::check_target(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
