#include "common/text.hpp"

#include "common/utf8.hpp"

#include <boost/json.hpp>
#include <openssl/evp.h>

#include <cstdio>
#include <stdexcept>
#include <utility>

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

std::string candidate_runtime_words(const boost::json::object& candidate) {
  std::string out;
  auto add = [&](const std::string& part) { out += (out.empty() ? "" : "; ") + part; };
  if (const auto* env = candidate.if_contains("env"); env && env->is_object()) {
    std::string set, unset;
    for (const auto& kv : env->get_object()) {
      const std::string name(kv.key());
      if (kv.value().is_string()) set += (set.empty() ? "" : " ") + name + "=" + std::string(kv.value().get_string());
      else unset += (unset.empty() ? "" : " ") + name;
    }
    if (!set.empty()) add("env " + set);
    if (!unset.empty()) add("unset " + unset);
  }
  for (const auto& [key, label] : {std::pair{"command_prefix", "prefix"}, std::pair{"interpreter", "interpreter"}}) {
    const auto* v = candidate.if_contains(key);
    if (!v || !v->is_array()) continue;
    std::string words = label;
    for (const auto& w : v->get_array())
      if (w.is_string()) words += " " + std::string(w.get_string());
    add(words);
  }
  if (const auto* d = candidate.if_contains("dependency"); d && d->is_object()) {
    const auto& o = d->get_object();
    auto str = [&](const char* k) {
      const auto* v = o.if_contains(k);
      return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    const std::string repo = str("repo"), ref = str("ref"), commit = str("commit");
    if (!commit.empty()) add("dependency " + repo + " at " + (ref.empty() ? commit.substr(0, 12) : ref + " (" + commit.substr(0, 12) + ")"));
    else add("dependency " + repo + " with a diff");
  }
  return out;
}

}  // namespace ttfb
