#include "server/http/target.hpp"

#include "common/utf8.hpp"

namespace ttfb {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Control characters (C0 and DEL) have no business in a path or a query value: they break
// logs, headers and file names.
bool has_control(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F) return true;
  return false;
}

// Why `text` (one decoded part of the target, named by `what`) is refused, or empty.
std::string check_part(std::string_view text, const char* what) {
  if (!is_valid_utf8(text)) return std::string("the request ") + what + " is not valid UTF-8 after percent-decoding";
  if (has_control(text)) return std::string("the request ") + what + " holds a control character after percent-decoding";
  return {};
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    auto amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view part = query.substr(start, amp - start);
    if (!part.empty()) {
      const auto eq = part.find('=');
      if (eq == std::string_view::npos) out[percent_decode(part)] = "";
      else out[percent_decode(part.substr(0, eq))] = percent_decode(part.substr(eq + 1));
    }
    start = amp + 1;
  }
  return out;
}

std::optional<RequestTarget> parse_target(std::string_view target, std::string& error) {
  if (target.size() > kMaxTargetBytes) {
    error = "the request target is longer than " + std::to_string(kMaxTargetBytes) + " bytes";
    return std::nullopt;
  }
  if (target.empty() || target.front() != '/') {
    error = "the request target must be a path starting with '/' (origin form)";
    return std::nullopt;
  }
  const auto q = target.find('?');
  RequestTarget t;
  t.path = percent_decode(target.substr(0, q), /*plus_is_space=*/false);  // '+' is a space only in a query
  if (error = check_part(t.path, "path"); !error.empty()) return std::nullopt;
  // "/a/../b" and its encoded forms: no route has a dot segment, and a file must not be reached by one.
  for (std::size_t start = 0; start <= t.path.size();) {
    auto slash = t.path.find('/', start);
    if (slash == std::string::npos) slash = t.path.size();
    const std::string_view segment(t.path.data() + start, slash - start);
    if (segment == ".." || segment == ".") {
      error = "the request path has a '" + std::string(segment) + "' segment";
      return std::nullopt;
    }
    start = slash + 1;
  }
  if (q != std::string_view::npos) {
    const std::string_view query = target.substr(q + 1);
    std::size_t parameters = 0;
    for (char c : query) parameters += c == '&';
    if (parameters + 1 > kMaxQueryParameters) {
      error = "the query has more than " + std::to_string(kMaxQueryParameters) + " parameters";
      return std::nullopt;
    }
    t.query = parse_query(query);
    for (const auto& [k, v] : t.query) {
      if (error = check_part(k, "query"); !error.empty()) return std::nullopt;
      if (error = check_part(v, "query"); !error.empty()) return std::nullopt;
    }
  }
  return t;
}

}  // namespace ttfb
