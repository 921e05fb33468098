#include "cli/text.hpp"

#include "common/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace ttfb::cli::text {
namespace json = boost::json;

std::string str(const json::value* v, const std::string& fallback) {
  if (!v || v->is_null()) return fallback;
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

std::string field(const json::object& o, const char* key, const std::string& fallback) {
  return str(o.if_contains(key), fallback);
}

std::optional<double> num(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

const json::object* object_field(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

const json::array* array_field(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->as_array() : nullptr;
}

std::string fmt(const char* format, double x) { return format_double(format, x); }

std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

std::string format_p(double p) {
  if (p < 1e-4) return fmt("%.1e", p);
  return fmt("%.4f", p);
}

std::string format_effect(std::optional<double> effect, std::optional<double> low, std::optional<double> high) {
  if (!effect) return "-";
  std::string s = fmt("%+.1f%%", *effect);
  if (low && high) s += " [" + fmt("%+.1f", *low) + ", " + fmt("%+.1f", *high) + "]";
  return s;
}

std::string short_sha(const std::string& sha) { return sha.substr(0, 7); }

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  if (s < 60) return std::to_string(s) + " s";
  if (s < 3600) return std::to_string(s / 60) + " min " + std::to_string(s % 60) + " s";
  return std::to_string(s / 3600) + " h " + std::to_string(s % 3600 / 60) + " min";
}

std::string format_time(const std::string& ts) {
  if (ts.empty() || ts == "-") return "-";
  std::string s = ts.substr(0, 16);
  if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
  return s;
}

std::string count(long n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string format_table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line = indent;
    for (std::size_t i = 0; i < row.size(); ++i) line += i + 1 == row.size() ? row[i] : pad(row[i], widths[i] + 2);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string paint(const std::string& s, const char* sgr, bool on) {
  if (!on) return s;
  return std::string("\033[") + sgr + "m" + s + "\033[0m";
}

}  // namespace ttfb::cli::text
