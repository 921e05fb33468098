// Fuzz target: common/utf8 (is_valid_utf8, to_valid_utf8, utf8_prefix, utf8_suffix), which every
// other reader of untrusted bytes relies on before quoting them in JSON, logs or alerts.
// Asserts, against an independent validator written from Unicode's table of well-formed byte
// sequences (Unicode 15, §3.9, Table 3-7):
//   - is_valid_utf8 agrees with the reference (overlong forms, surrogates, > U+10FFFF refused);
//   - to_valid_utf8 returns valid UTF-8, valid input unchanged, at most 3 bytes per input byte,
//     and is idempotent;
//   - utf8_prefix / utf8_suffix return a prefix / suffix of at most max_bytes; of valid input,
//     a valid one that loses at most 3 bytes to the cut.
// Input: one byte choosing max_bytes (0..255), then the text.
#include "fuzz/check.hpp"

#include <cstddef>
#include <cstdint>

namespace {

// Table 3-7: the well-formed sequences, byte by byte.
bool reference_valid(std::string_view s) {
  std::size_t i = 0;
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto in = [&](std::size_t k, int lo, int hi) { return k < s.size() && b(k) >= lo && b(k) <= hi; };
  while (i < s.size()) {
    const int c = b(i);
    if (c <= 0x7F) { i += 1; continue; }
    if (c >= 0xC2 && c <= 0xDF) { if (!in(i + 1, 0x80, 0xBF)) return false; i += 2; continue; }
    if (c == 0xE0) { if (!in(i + 1, 0xA0, 0xBF) || !in(i + 2, 0x80, 0xBF)) return false; i += 3; continue; }
    if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      if (!in(i + 1, 0x80, 0xBF) || !in(i + 2, 0x80, 0xBF)) return false;
      i += 3; continue;
    }
    if (c == 0xED) { if (!in(i + 1, 0x80, 0x9F) || !in(i + 2, 0x80, 0xBF)) return false; i += 3; continue; }
    if (c == 0xF0) {
      if (!in(i + 1, 0x90, 0xBF) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
      i += 4; continue;
    }
    if (c >= 0xF1 && c <= 0xF3) {
      if (!in(i + 1, 0x80, 0xBF) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
      i += 4; continue;
    }
    if (c == 0xF4) {
      if (!in(i + 1, 0x80, 0x8F) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF)) return false;
      i += 4; continue;
    }
    return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t max_bytes = data[0];
  const std::string_view s(reinterpret_cast<const char*>(data + 1), size - 1);

  const bool valid = ttfb::is_valid_utf8(s);
  FUZZ_CHECK(valid == reference_valid(s), "is_valid_utf8 says %d, the reference %d", valid, !valid);

  const std::string fixed = ttfb::to_valid_utf8(s);
  FUZZ_CHECK(reference_valid(fixed), "to_valid_utf8 returned invalid UTF-8");
  FUZZ_CHECK(!valid || fixed == s, "to_valid_utf8 changed valid input");
  FUZZ_CHECK(fixed.size() <= 3 * s.size(), "to_valid_utf8 grew %zu bytes to %zu", s.size(), fixed.size());
  FUZZ_CHECK(ttfb::to_valid_utf8(fixed) == fixed, "to_valid_utf8 is not idempotent");

  const std::string_view prefix = ttfb::utf8_prefix(s, max_bytes);
  FUZZ_CHECK(prefix.size() <= max_bytes || s.size() <= max_bytes, "utf8_prefix longer than its limit");
  FUZZ_CHECK(s.substr(0, prefix.size()) == prefix, "utf8_prefix is not a prefix");
  const std::string_view suffix = ttfb::utf8_suffix(s, max_bytes);
  FUZZ_CHECK(suffix.size() <= max_bytes || s.size() <= max_bytes, "utf8_suffix longer than its limit");
  FUZZ_CHECK(s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix, "utf8_suffix is not a suffix");
  if (valid) {
    FUZZ_CHECK(reference_valid(prefix), "utf8_prefix of valid input cut a character (%zu of %zu bytes, limit %zu)",
               prefix.size(), s.size(), max_bytes);
    FUZZ_CHECK(reference_valid(suffix), "utf8_suffix of valid input cut a character (%zu of %zu bytes, limit %zu)",
               suffix.size(), s.size(), max_bytes);
    const std::size_t want = std::min(max_bytes, s.size());
    FUZZ_CHECK(prefix.size() + 3 >= want, "utf8_prefix dropped more than one character: %zu of %zu", prefix.size(), want);
    FUZZ_CHECK(suffix.size() + 3 >= want, "utf8_suffix dropped more than one character: %zu of %zu", suffix.size(), want);
  }
  return 0;
}
