#include "common/text.hpp"

#include "common/utf8.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>

namespace ttfb {

std::string to_hex(const unsigned char* data, std::size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[data[i] >> 4];
    out += kDigits[data[i] & 0xf];
  }
  return out;
}

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed");
  return to_hex(digest, len);
}

std::string last_line(const std::string& text, std::size_t max) {
  std::string_view v(text);
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ' || v.back() == '\r')) v.remove_suffix(1);
  const auto nl = v.rfind('\n');
  std::string_view line = nl == std::string_view::npos ? v : v.substr(nl + 1);
  if (line.size() > max) return to_valid_utf8(utf8_prefix(line, max)) + "...";
  return to_valid_utf8(line);
}

std::string tail_of(const std::string& text, std::size_t max) { return to_valid_utf8(utf8_suffix(text, max)); }

std::string format_double(const char* format, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

}  // namespace ttfb
