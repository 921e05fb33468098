#include "cli/compare.hpp"

#include "common/text.hpp"
#include "server/stats/comparison.hpp"

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
  return stats::to_json(stats::compare_arms(a, b, policy));
}

std::string format_comparison(const json::object& c, const std::string& name_a, const std::string& name_b) {
  std::ostringstream out;
  auto num = [](const json::value* v) -> double {
    if (!v) return NAN;
    return v->is_double() ? v->as_double() : v->is_int64() ? double(v->as_int64()) : v->is_uint64() ? double(v->as_uint64()) : NAN;
  };
  auto pct = [](double x, const char* f) { return std::isfinite(x) ? format_double(f, x) : std::string("-"); };
  std::size_t w = std::max<std::size_t>({name_a.size(), name_b.size(), 9});
  char line[512];
  std::snprintf(line, sizeof line, "  %-*s  %5s  %9s  %12s  %12s  %7s\n", int(w), "", "n", "outliers", "median", "mean", "CV");
  out << line;
  for (auto [label, key] : {std::pair{name_a, "baseline"}, std::pair{name_b, "candidate"}}) {
    std::string k(key);
    std::snprintf(line, sizeof line, "  %-*s  %5.0f  %9.0f  %9.2f ms  %9.2f ms  %7s\n", int(w), label.c_str(),
                  num(c.if_contains("n_" + k)), num(c.if_contains("outliers_" + k)), num(c.if_contains("median_" + k + "_ms")),
                  num(c.if_contains("mean_" + k + "_ms")), pct(100 * num(c.if_contains("cv_" + k)), "%.2f%%").c_str());
    out << line;
  }
  out << "\n  welch (log)     effect " << pct(num(c.if_contains("effect_pct")), "%+.2f%%") << "  ["
      << pct(num(c.if_contains("ci_low_pct")), "%+.2f") << ", " << pct(num(c.if_contains("ci_high_pct")), "%+.2f") << "] at "
      << format_double("%.0f%%", 100 * num(c.if_contains("confidence"))) << "   p " << pct(num(c.if_contains("p_value")), "%.3g") << "\n";
  if (const auto* r = c.if_contains("rank_test"); r && r->is_object()) {
    const auto& ro = r->as_object();
    out << "  mann-whitney    shift  " << pct(num(ro.if_contains("hl_shift_pct")), "%+.2f%%") << " (Hodges-Lehmann)   p "
        << pct(num(ro.if_contains("p_value")), "%.3g") << " (" << ro.at("method").as_string().c_str() << ")\n";
  }
  if (const auto* e = c.if_contains("equivalence"); e && e->is_object()) {
    const auto& eo = e->as_object();
    out << "  equivalence     within +/-" << pct(num(eo.if_contains("margin_pct")), "%.1f%%") << ": "
        << (eo.at("equivalent").as_bool() ? "yes" : "not shown") << "   p " << pct(num(eo.if_contains("p_value")), "%.3g") << "\n";
  }
  out << "\n  verdict: " << c.at("verdict").as_string().c_str() << " (threshold "
      << pct(num(c.if_contains("threshold_pct")), "%.1f%%") << ") - " << c.at("reason").as_string().c_str() << "\n";
  if (const auto* ws = c.if_contains("warnings"); ws && ws->is_array())
    for (const auto& x : ws->as_array()) out << "  warning: " << x.as_string().c_str() << "\n";
  return out.str();
}

}  // namespace ttfb::cli
