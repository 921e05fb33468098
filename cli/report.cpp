#include "cli/report.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace ttfb::cli {
namespace {
namespace json = boost::json;

std::string str(const json::value* v, const std::string& fallback = "-") {
  if (!v || v->is_null()) return fallback;
  if (v->is_string()) return std::string(v->as_string());
  return json::serialize(*v);
}

std::optional<double> num(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (!v) return std::nullopt;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return std::nullopt;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string pad(const std::string& s, std::size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

std::string format_p(double p) {
  if (p < 1e-4) return fmt("%.1e", p);
  return fmt("%.4f", p);
}

}  // namespace

std::string format_experiment(const json::object& e) {
  std::ostringstream out;
  out << "experiment " << str(e.if_contains("id")) << "  " << str(e.if_contains("status"));
  if (const auto* v = e.if_contains("verdict"); v && !v->is_null()) out << "  verdict: " << str(v);
  out << "\n";
  if (const auto* b = e.if_contains("base"); b && b->is_object())
    out << "  base      " << str(b->as_object().if_contains("ref")) << " (" << str(b->as_object().if_contains("commit")).substr(0, 12) << ")\n";
  if (const auto* c = e.if_contains("candidate"); c && c->is_object()) {
    const auto& co = c->as_object();
    auto lines = num(co, "diff_lines").value_or(0);
    if (lines > 0) {
      out << "  candidate base + diff (" << static_cast<long>(lines) << " lines, sha256 "
          << str(co.if_contains("diff_sha256")).substr(0, 12) << ")\n";
    } else {
      out << "  candidate " << str(co.if_contains("ref")) << " (" << str(co.if_contains("commit")).substr(0, 12) << ")\n";
    }
  }
  if (const auto* err = e.if_contains("error"); err && err->is_object()) {
    out << "  error: " << str(err->as_object().if_contains("message")) << "\n";
  }
  out << "\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"workflow", "n (base/cand)", "median base", "median cand", "effect [CI]", "p", "threshold", "verdict"});
  std::vector<std::string> notes;
  if (const auto* ws = e.if_contains("workflows"); ws && ws->is_array()) {
    for (const auto& wv : ws->as_array()) {
      const auto& w = wv.as_object();
      std::string name = str(w.if_contains("workflow"));
      std::string verdict = str(w.if_contains("verdict"), "pending");
      const auto* rv = w.if_contains("result");
      if (!rv || !rv->is_object()) {
        rows.push_back({name, "-", "-", "-", "-", "-", "-", verdict});
        continue;
      }
      const auto& r = rv->as_object();
      if (const auto* err = r.if_contains("error"); err && err->is_object()) {
        rows.push_back({name, "-", "-", "-", "-", "-", "-", verdict});
        notes.push_back(name + ": " + str(err->as_object().if_contains("code")) + ": " + str(err->as_object().if_contains("message")));
        continue;
      }
      auto nb = num(r, "n_baseline"), nc = num(r, "n_candidate");
      std::string n = (nb ? std::to_string(static_cast<long>(*nb)) : "-") + "/" + (nc ? std::to_string(static_cast<long>(*nc)) : "-");
      auto mb = num(r, "median_baseline_ms"), mc = num(r, "median_candidate_ms");
      auto eff = num(r, "effect_pct"), lo = num(r, "ci_low_pct"), hi = num(r, "ci_high_pct");
      auto p = num(r, "p_value"), thr = num(r, "threshold_pct");
      std::string effect = eff ? fmt("%+.1f%%", *eff) : "-";
      if (eff && lo && hi) effect += " [" + fmt("%+.1f", *lo) + ", " + fmt("%+.1f", *hi) + "]";
      rows.push_back({name, n, mb ? fmt("%.1f ms", *mb) : "-", mc ? fmt("%.1f ms", *mc) : "-", effect,
                      p ? format_p(*p) : "-", thr ? fmt("%.1f%%", *thr) : "-", verdict});
      if (const auto* rk = r.if_contains("rank_test"); rk && rk->is_object()) {
        auto rp = num(rk->as_object(), "p_value"), hl = num(rk->as_object(), "hl_shift_pct");
        if (rp && hl) notes.push_back(name + ": rank test (Mann-Whitney) p " + format_p(*rp) + ", Hodges-Lehmann shift " + fmt("%+.1f%%", *hl));
      }
      auto ob = num(r, "outliers_baseline").value_or(0), oc = num(r, "outliers_candidate").value_or(0);
      if (ob + oc > 0)
        notes.push_back(name + ": outliers removed (|ln x - median| > 3.5 MAD): " + std::to_string(static_cast<long>(ob)) +
                        " baseline, " + std::to_string(static_cast<long>(oc)) + " candidate");
      if (const auto* ph = r.if_contains("phases"); ph && ph->is_array()) {
        std::string line;
        for (const auto& pv : ph->as_array()) {
          const auto& po = pv.as_object();
          auto d = num(po, "delta_ms");
          if (d && std::fabs(*d) >= 0.5) line += (line.empty() ? "" : ", ") + str(po.if_contains("name")) + " " + fmt("%+.1f ms", *d);
        }
        if (!line.empty()) notes.push_back(name + ": phase medians moved: " + line);
      }
      if (const auto* ws2 = r.if_contains("warnings"); ws2 && ws2->is_array())
        for (const auto& wn : ws2->as_array()) notes.push_back(name + ": " + str(&wn));
    }
  }
  std::vector<std::size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  for (const auto& row : rows) {
    out << "  ";
    for (std::size_t i = 0; i < row.size(); ++i) out << pad(row[i], widths[i] + 2);
    out << "\n";
  }
  if (!notes.empty()) {
    out << "\n";
    for (const auto& n : notes) out << "  " << n << "\n";
  }
  if (const auto* url = e.if_contains("url")) out << "\n  " << str(url) << "\n";
  return out.str();
}

std::string format_progress(const json::object& e, double elapsed) {
  std::ostringstream out;
  out << "experiment " << str(e.if_contains("id")) << ": " << str(e.if_contains("status"));
  if (const auto* p = e.if_contains("progress"); p && p->is_object()) {
    const auto& po = p->as_object();
    out << ", " << static_cast<long>(num(po, "runs_done").value_or(0)) << "/" << static_cast<long>(num(po, "runs_total").value_or(0))
        << " runs";
    if (const auto* j = po.if_contains("jobs"); j && j->is_object()) {
      const auto& jo = j->as_object();
      out << " (jobs: " << static_cast<long>(num(jo, "queued").value_or(0)) << " queued, "
          << static_cast<long>(num(jo, "running").value_or(0)) << " running, " << static_cast<long>(num(jo, "done").value_or(0))
          << " done)";
    }
  }
  out << ", " << fmt("%.0f", elapsed) << " s";
  return out.str();
}

int exit_code(const json::object& e) {
  std::string status = str(e.if_contains("status"), "");
  std::string verdict = str(e.if_contains("verdict"), "");
  if (status == "error" || verdict == "error" || status == "cancelled") return kExitError;
  if (verdict == "regression") return kExitRegression;
  if (verdict == "inconclusive" || verdict.empty()) return kExitInconclusive;
  return kExitNoRegression;
}

}  // namespace ttfb::cli
