#include "common/utf8.hpp"

#include <boost/locale/utf.hpp>

namespace ttfb {
namespace {

namespace utf = boost::locale::utf;
using Traits = utf::utf_traits<char>;

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The longest character is 4 bytes: a boundary is never more than 3 continuation bytes away.
constexpr std::size_t kMaxCharBytes = 4;

}  // namespace

bool is_valid_utf8(std::string_view s) {
  const char* p = s.data();
  const char* e = s.data() + s.size();
  while (p != e) {
    const utf::code_point c = Traits::decode(p, e);
    if (c == utf::illegal || c == utf::incomplete) return false;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  const char* p = s.data();
  const char* e = s.data() + s.size();
  while (p != e) {
    const char* start = p;
    const utf::code_point c = Traits::decode(p, e);
    if (c == utf::illegal || c == utf::incomplete) {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      p = start + 1;          // resynchronise on the next byte
      while (p != e && is_continuation(static_cast<unsigned char>(*p))) ++p;
    } else {
      out.append(start, p);
    }
  }
  return out;
}

std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t end = max_bytes;
  // Step back over continuation bytes of the character the limit cuts.
  for (std::size_t back = 0; back < kMaxCharBytes && end > 0 && is_continuation(static_cast<unsigned char>(s[end])); ++back) --end;
  if (is_continuation(static_cast<unsigned char>(s[end]))) end = max_bytes;  // not UTF-8 here: cut at the byte
  return s.substr(0, end);
}

std::string_view utf8_suffix(std::string_view s, std::size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  std::size_t start = s.size() - max_bytes;
  const std::size_t limit = start;
  for (std::size_t step = 0; step < kMaxCharBytes && start < s.size() && is_continuation(static_cast<unsigned char>(s[start])); ++step) ++start;
  if (start < s.size() && is_continuation(static_cast<unsigned char>(s[start]))) start = limit;
  return s.substr(start);
}

}  // namespace ttfb
