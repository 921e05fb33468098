// What the fuzz targets share: FUZZ_CHECK, an assertion that stays on in every build and aborts
// with the property that failed (libFuzzer then saves the input as a crash), and the checks of
// an error message that a client will read.
#pragma once

#include "common/errors.hpp"
#include "common/utf8.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "\nFUZZ_CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                             \
      std::fprintf(stderr, "\n");                                                    \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace ttfb::fuzz {

// True when `s` holds no C0 control character and no DEL.
inline bool has_no_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return false;
  return true;
}

// `message` is what a client receives in {"error": {"message"}}: valid UTF-8, and the error
// body built from it parses back (Boost.JSON) to the same message and code.
inline void check_error_message(ErrorCode code, const std::string& message) {
  FUZZ_CHECK(is_valid_utf8(message), "error message is not valid UTF-8 (%zu bytes)", message.size());
  const std::string body = error_body(code, message);
  boost::json::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  FUZZ_CHECK(!ec, "error body does not parse back: %s", ec.message().c_str());
  const auto* err = v.is_object() ? v.as_object().if_contains("error") : nullptr;
  FUZZ_CHECK(err && err->is_object(), "error body has no \"error\" object");
  const auto* msg = err->as_object().if_contains("message");
  FUZZ_CHECK(msg && msg->is_string() && std::string_view(msg->as_string()) == message,
             "error body's message differs from the message it was built from");
  const auto* c = err->as_object().if_contains("code");
  FUZZ_CHECK(c && c->is_string() && std::string_view(c->as_string()) == to_string(code), "error body's code differs");
}

}  // namespace ttfb::fuzz
