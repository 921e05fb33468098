// The properties of ttfb::parse_target, checked by http_target_fuzz (the target alone) and by
// http_request_fuzz (the target of a request Beast parsed, as the server's session does).
#pragma once

#include "fuzz/check.hpp"
#include "server/http/target.hpp"

#include <string>
#include <string_view>

namespace ttfb::fuzz {

// Percent-decoding written again from RFC 3986 §2.1, to compare with ttfb::percent_decode.
inline std::string reference_percent_decode(std::string_view s, bool plus_is_space) {
  const auto hex = [](char c) -> int {
    const std::string_view digits = "0123456789abcdef";
    const auto i = digits.find(static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c));
    return i == std::string_view::npos ? -1 : static_cast<int>(i);
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && s.size() - i >= 3 && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += (plus_is_space && s[i] == '+') ? ' ' : s[i];
    }
  }
  return out;
}

inline void check_decoded_part(const std::string& text, const char* what) {
  FUZZ_CHECK(is_valid_utf8(text), "accepted %s is not valid UTF-8", what);
  FUZZ_CHECK(has_no_control(text), "accepted %s holds a control character", what);
}

inline void check_target(std::string_view target) {
  std::string error;
  const auto t = parse_target(target, error);
  if (!t) {
    FUZZ_CHECK(!error.empty(), "refused without a reason");
    check_error_message(ErrorCode::invalid_argument, error);
    return;
  }
  FUZZ_CHECK(target.size() <= kMaxTargetBytes, "accepted a target of %zu bytes", target.size());
  FUZZ_CHECK(!t->path.empty() && t->path.front() == '/', "accepted path does not start with '/'");
  check_decoded_part(t->path, "path");
  FUZZ_CHECK(t->path == reference_percent_decode(target.substr(0, target.find('?')), false),
             "path differs from the reference percent-decoding");
  for (std::size_t start = 0; start <= t->path.size();) {
    std::size_t slash = t->path.find('/', start);
    if (slash == std::string::npos) slash = t->path.size();
    const std::string_view segment(t->path.data() + start, slash - start);
    FUZZ_CHECK(segment != "." && segment != "..", "accepted path has a dot segment");
    start = slash + 1;
  }
  FUZZ_CHECK(t->query.size() <= kMaxQueryParameters, "accepted %zu query parameters", t->query.size());
  for (const auto& [k, v] : t->query) {
    check_decoded_part(k, "query key");
    check_decoded_part(v, "query value");
  }
  // What the router answers for an unknown path quotes it: that body must parse back too.
  check_error_message(ErrorCode::not_found, "no route for GET " + t->path);
}

}  // namespace ttfb::fuzz
