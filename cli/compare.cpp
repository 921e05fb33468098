#include "cli/compare.hpp"

#include "server/stats/descriptive.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace ttfb::cli {
namespace {
namespace json = boost::json;

double as_number(const json::value& v, const std::string& where) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  throw std::runtime_error(where + ": expected a number, got " + json::serialize(v));
}

void check_positive(double x, const std::string& where) {
  if (!std::isfinite(x) || x <= 0) throw std::runtime_error(where + ": a TTFB must be a positive number of ms");
}

json::value finite_or_null(double x) { return std::isfinite(x) ? json::value(x) : json::value(nullptr); }

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

}  // namespace

std::vector<double> parse_samples(const std::string& text, const std::string& source, const std::string& arm) {
  std::vector<double> out;
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (text[first] == '[' || text[first] == '{')) {
    json::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) throw std::runtime_error(source + ": not valid JSON: " + ec.message());
    const json::array* arr = nullptr;
    if (v.is_array()) arr = &v.as_array();
    else if (v.is_object() && v.as_object().contains("samples") && v.as_object().at("samples").is_array())
      arr = &v.as_object().at("samples").as_array();
    else throw std::runtime_error(source + ": JSON must be an array of numbers or an object with \"samples\"");
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const auto& el = (*arr)[i];
      std::string where = source + ": element " + std::to_string(i);
      if (el.is_object()) {
        const auto& o = el.as_object();
        if (const auto* w = o.if_contains("warmup"); w && w->is_bool() && w->as_bool()) continue;
        if (!arm.empty()) {
          const auto* a = o.if_contains("arm");
          if (!a || !a->is_string() || a->as_string() != arm) continue;
        }
        const auto* t = o.if_contains("ttfb_ms");
        if (!t) throw std::runtime_error(where + ": a sample object needs \"ttfb_ms\"");
        out.push_back(as_number(*t, where));
      } else {
        out.push_back(as_number(el, where));
      }
      check_positive(out.back(), where);
    }
    return out;
  }
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    auto e = line.find_last_not_of(" \t\r");
    std::string token = line.substr(b, e - b + 1);
    std::size_t used = 0;
    double x = 0;
    try {
      x = std::stod(token, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    std::string where = source + ":" + std::to_string(n);
    if (used != token.size()) throw std::runtime_error(where + ": '" + token + "' is not a number (one TTFB in ms per line)");
    check_positive(x, where);
    out.push_back(x);
  }
  return out;
}

std::vector<double> read_samples(const std::string& path, const std::string& arm) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read '" + path + "'");
    ss << in.rdbuf();
  }
  auto v = parse_samples(ss.str(), path == "-" ? "stdin" : path, arm);
  if (v.empty()) throw std::runtime_error("'" + path + "' holds no samples");
  return v;
}

json::object compare_samples(const std::vector<double>& a, const std::vector<double>& b, const stats::Policy& policy) {
  stats::Decision d = stats::compare(a, b, policy);
  auto arm = [](const std::vector<double>& x) {
    return json::object{{"n", x.size()},
                        {"median_ms", stats::median(x)},
                        {"mean_ms", stats::mean(x)},
                        {"cv", x.size() >= 2 ? finite_or_null(stats::coefficient_of_variation(x)) : json::value(nullptr)}};
  };
  return json::object{{"baseline", arm(a)},
                      {"candidate", arm(b)},
                      {"test", "welch_log_t"},
                      {"effect_pct", finite_or_null(d.welch.effect_pct)},
                      {"ci_low_pct", finite_or_null(d.welch.effect_ci_low_pct)},
                      {"ci_high_pct", finite_or_null(d.welch.effect_ci_high_pct)},
                      {"confidence", policy.confidence},
                      {"p_value", finite_or_null(d.welch.p_value)},
                      {"alpha", policy.alpha},
                      {"threshold_pct", policy.min_effect_pct},
                      {"verdict", std::string(stats::to_string(d.verdict))},
                      {"reason", d.reason},
                      {"warning", d.warning}};
}

std::string format_comparison(const json::object& c, const std::string& name_a, const std::string& name_b) {
  std::ostringstream out;
  auto num = [](const json::value& v) { return v.is_double() ? v.as_double() : v.is_int64() ? double(v.as_int64()) : NAN; };
  std::size_t w = std::max<std::size_t>({name_a.size(), name_b.size(), 9});
  char line[512];
  std::snprintf(line, sizeof line, "  %-*s  %5s  %12s  %12s  %7s\n", int(w), "", "n", "median", "mean", "CV");
  out << line;
  for (auto [label, key] : {std::pair{name_a, "baseline"}, std::pair{name_b, "candidate"}}) {
    const auto& a = c.at(key).as_object();
    std::snprintf(line, sizeof line, "  %-*s  %5lld  %9.2f ms  %9.2f ms  %6.2f%%\n", int(w), label.c_str(),
                  static_cast<long long>(a.at("n").as_uint64()), num(a.at("median_ms")), num(a.at("mean_ms")),
                  100 * num(a.at("cv")));
    out << line;
  }
  double eff = num(c.at("effect_pct")), lo = num(c.at("ci_low_pct")), hi = num(c.at("ci_high_pct"));
  out << "\n  effect " << (std::isfinite(eff) ? fmt("%+.2f%%", eff) : "-") << "  ["
      << (std::isfinite(lo) ? fmt("%+.2f", lo) : "-") << ", " << (std::isfinite(hi) ? fmt("%+.2f", hi) : "-") << "] at "
      << fmt("%.0f%%", 100 * num(c.at("confidence"))) << "   p " << fmt("%.3g", num(c.at("p_value"))) << "   threshold "
      << fmt("%.1f%%", num(c.at("threshold_pct"))) << "\n";
  out << "  verdict: " << c.at("verdict").as_string().c_str() << " — " << c.at("reason").as_string().c_str() << "\n";
  if (!c.at("warning").as_string().empty()) out << "  warning: " << c.at("warning").as_string().c_str() << "\n";
  return out.str();
}

}  // namespace ttfb::cli
