#include "cli/report.hpp"

#include "cli/text.hpp"
#include "common/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace ttfb::cli {
namespace json = boost::json;
using text::fmt;
using text::format_p;
using text::num;
using text::pad;
using text::str;

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
    } else if (const auto* ref = co.if_contains("ref"); ref && ref->is_string()) {
      out << "  candidate " << str(ref) << " (" << str(co.if_contains("commit")).substr(0, 12) << ")\n";
    } else {
      out << "  candidate the base revision (" << str(co.if_contains("commit")).substr(0, 12) << ")\n";
    }
    if (const std::string words = candidate_runtime_words(co); !words.empty()) out << "  runs with " << words << "\n";
  }
  // Workflows chosen by footprint: "2 of 4 workflows chosen by the files they open: a, b; skipped: c, d (not touched)".
  if (const auto* sel = e.if_contains("selection"); sel && sel->is_array() && !sel->as_array().empty()) {
    std::string chosen, skipped;
    for (const auto& v : sel->as_array()) {
      if (!v.is_object()) continue;
      const auto& o = v.as_object();
      const bool c = o.contains("chosen") && o.at("chosen").is_bool() && o.at("chosen").as_bool();
      (c ? chosen : skipped) += ((c ? chosen : skipped).empty() ? "" : ", ") + str(o.if_contains("workflow"));
    }
    const auto count = [](const std::string& s) { return s.empty() ? 0 : 1 + std::count(s.begin(), s.end(), ','); };
    out << "  workflows " << count(chosen) << " of " << sel->as_array().size() << " chosen by the files they open: " << chosen
        << (skipped.empty() ? "" : "; skipped: " + skipped + " (not touched)") << "\n";
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
      const std::string state = str(w.if_contains("state"), "");
      const auto* rv = w.if_contains("result");
      if (rv && rv->is_object()) {
        const auto& r = rv->as_object();
        const auto* confirmed = r.if_contains("confirmed");
        if ((verdict == "regression" || verdict == "improvement") && confirmed && confirmed->is_bool())
          verdict += confirmed->as_bool() ? " (confirmed)" : " (unconfirmed)";
        if (state == "measuring" && verdict == "pending") verdict = "measuring";
        if (state == "confirming") verdict = str(r.if_contains("tentative_verdict")) + "? confirming";
      }
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
      if (const auto* reason = r.if_contains("reason"); reason && reason->is_string())
        notes.push_back(name + ": " + str(reason));
      // The slow tail (the outlier rule's slow runs, counted per arm) when it was tested.
      if (const auto* tl = r.if_contains("tail"); tl && tl->is_object()) {
        const auto& to = tl->as_object();
        const auto* tested = to.if_contains("tested");
        if (tested && tested->is_bool() && tested->as_bool()) {
          auto sc = num(to, "slow_candidate"), nc = num(to, "n_candidate"), sb = num(to, "slow_baseline"),
               nb = num(to, "n_baseline"), tp = num(to, "p_slower"), p90 = num(to, "p90_change_pct");
          if (sc && nc && sb && nb && tp) {
            std::string line = name + ": slow runs " + std::to_string(static_cast<long>(*sc)) + "/" +
                               std::to_string(static_cast<long>(*nc)) + " candidate, " +
                               std::to_string(static_cast<long>(*sb)) + "/" + std::to_string(static_cast<long>(*nb)) +
                               " baseline (exact p " + format_p(*tp) + ")";
            if (p90) line += ", 90th percentile " + fmt("%+.1f%%", *p90);
            if (str(r.if_contains("decided_by"), "") == "tail") line += "; the slow tail decided";
            notes.push_back(line);
          }
        }
      }
      // The second metric: CPU time to the first batch, at its share of alpha, and which one decided.
      if (const auto* ct = r.if_contains("cpu_time"); ct && ct->is_object()) {
        const auto& co = ct->as_object();
        const auto* tested = co.if_contains("tested");
        if (tested && tested->is_bool() && tested->as_bool()) {
          auto ce = num(co, "effect_pct"), cl = num(co, "ci_low_pct"), ch = num(co, "ci_high_pct"), cp = num(co, "p_value");
          auto ca = num(co, "alpha"), ta = num(r, "ttfb_alpha");
          std::string line = name + ": CPU time to the first batch ";
          line += ce ? fmt("%+.1f%%", *ce) : "-";
          if (cl && ch) line += " [" + fmt("%+.1f", *cl) + ", " + fmt("%+.1f", *ch) + "]";
          if (cp) line += ", p " + format_p(*cp);
          if (ca && ta) line += " (tested at alpha " + fmt("%.3g", *ca) + ", TTFB at " + fmt("%.3g", *ta) + ")";
          const std::string by = str(r.if_contains("decided_by"), "");
          if (by == "cpu_time") line += "; CPU time decided: TTFB's interval did not clear zero through its noise";
          else if (by == "ttfb") line += "; TTFB decided";
          notes.push_back(line);
        } else if (const auto* why = co.if_contains("why"); why && why->is_string()) {
          notes.push_back(name + ": CPU time not tested: " + str(why));
        }
      }
      if (const auto* cf = r.if_contains("confirmation"); cf && cf->is_object()) {
        const auto& co = cf->as_object();
        const std::string st = str(co.if_contains("status"), "");
        std::string workers;
        if (const auto* wk = co.if_contains("workers"); wk && wk->is_array())
          for (const auto& x : wk->as_array()) workers += (workers.empty() ? "" : ", ") + str(&x);
        if (st == "pending") {
          notes.push_back(name + ": confirmation rerun queued (" +
                          std::to_string(static_cast<long>(num(co, "runs_per_arm").value_or(0))) +
                          " runs per arm, on other workers when there are any)");
        } else if (st == "reproduced" || st == "not_reproduced") {
          auto ce = num(co, "effect_pct"), cl = num(co, "ci_low_pct"), ch = num(co, "ci_high_pct"), cp = num(co, "p_value");
          std::string line = name + ": confirmation rerun " + (st == "reproduced" ? "reproduced it" : "did NOT reproduce it") +
                             (str(co.if_contains("metric"), "") == "cpu_time" ? " on CPU time" : "");
          if (ce && cl && ch && cp)
            line += ": " + fmt("%+.1f%%", *ce) + " [" + fmt("%+.1f", *cl) + ", " + fmt("%+.1f", *ch) + "], " +
                    (str(co.if_contains("p_value_kind"), "") == "one-sided" ? "one-sided p " : "p ") + format_p(*cp);
          if (!workers.empty()) line += " (on " + workers + ")";
          notes.push_back(line);
          if (const auto* fs = r.if_contains("first_stage"); st == "reproduced" && fs && fs->is_object()) {
            auto fe = num(fs->as_object(), "effect_pct"), fl = num(fs->as_object(), "ci_low_pct"), fh = num(fs->as_object(), "ci_high_pct");
            if (fe && fl && fh)
              notes.push_back(name + ": the effect shown is the rerun's; the first stage's, biased upwards by stopping early, was " +
                              fmt("%+.1f%%", *fe) + " [" + fmt("%+.1f", *fl) + ", " + fmt("%+.1f", *fh) + "]");
          }
        } else if (st == "disabled") {
          notes.push_back(name + ": no confirmation rerun (a fixed design): not confirmed");
        }
      }
      if (const auto* cal = r.if_contains("calibration"); cal && cal->is_object()) {
        const auto& co = cal->as_object();
        auto k = num(co, "k"), sigma = num(co, "sigma_aa_pct"), id = num(co, "id");
        if (k && sigma && id && thr)
          notes.push_back(name + ": threshold " + fmt("%.2f%%", *thr) + " = max(detection floor, k " + fmt("%.2f", *k) +
                          " x sigma_AA " + fmt("%.2f%%", *sigma) + ") from calibration " +
                          std::to_string(static_cast<long>(*id)));
      }
      if (const auto* rk = r.if_contains("rank_test"); rk && rk->is_object()) {
        auto rp = num(rk->as_object(), "p_value"), hl = num(rk->as_object(), "hl_shift_pct");
        if (rp && hl) notes.push_back(name + ": rank test (Mann-Whitney) p " + format_p(*rp) + ", Hodges-Lehmann shift " + fmt("%+.1f%%", *hl));
      }
      auto ob = num(r, "outliers_baseline").value_or(0), oc = num(r, "outliers_candidate").value_or(0);
      if (ob + oc > 0)
        notes.push_back(name + ": outliers removed (|ln x - pooled median| > 3.5 pooled MAD): " + std::to_string(static_cast<long>(ob)) +
                        " baseline, " + std::to_string(static_cast<long>(oc)) + " candidate");
      if (const auto* ps = r.if_contains("phase_summary"); ps && ps->is_string() && !ps->as_string().empty())
        notes.push_back(name + ": phases: " + str(ps));
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
  // An experiment over several workflows: the suite's one answer (server/stats/suite.hpp).
  if (const auto* s = e.if_contains("suite"); s && s->is_object()) {
    const auto& so = s->as_object();
    out << "\n  suite: " << str(so.if_contains("verdict")) << (so.contains("certified") && so.at("certified").is_bool() &&
                                                                  so.at("certified").as_bool()
                                                              ? " (certified)"
                                                              : "")
        << " -- " << str(so.if_contains("statement")) << " (Holm's correction at alpha "
        << fmt("%.3g", num(so, "alpha").value_or(0)) << ")\n";
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
  // Where each workflow's adaptive test stands: which look, and whether it is being confirmed.
  if (const auto* ws = e.if_contains("workflows"); ws && ws->is_array()) {
    for (const auto& wv : ws->as_array()) {
      const auto& w = wv.as_object();
      const auto* rv = w.if_contains("result");
      if (!rv || !rv->is_object()) continue;
      const auto* lk = rv->as_object().if_contains("look");
      if (!lk || !lk->is_object()) continue;
      const auto& lo = lk->as_object();
      out << "; " << str(w.if_contains("workflow"));
      // The current estimate, so far (it moves until the test decides).
      if (auto effect = num(rv->as_object(), "effect_pct")) out << " " << fmt("%+.1f%%", *effect);
      out << " look " << static_cast<long>(num(lo, "look").value_or(0)) << "/"
          << static_cast<long>(num(lo, "looks_planned").value_or(0)) << " " << str(w.if_contains("state"), "");
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

std::string format_workflow(const json::object& w) {
  std::ostringstream out;
  out << "workflow " << str(w.if_contains("name")) << "  (repo " << str(w.if_contains("repo")) << ")\n";
  if (const auto* d = w.if_contains("description"); d && d->is_string() && !d->as_string().empty())
    out << "  " << str(d) << "\n";
  if (const auto* pv = w.if_contains("policy"); pv && pv->is_object()) {
    const auto& p = pv->as_object();
    out << "  policy     first stage alpha " << fmt("%g", num(p, "alpha").value_or(0)) << " (two-sided), rerun alpha "
        << fmt("%g", num(p, "rerun_alpha").value_or(0)) << " (one-sided), detection floor "
        << fmt("%g%%", num(p, "detection_floor_pct").value_or(0)) << ", equivalence margin "
        << fmt("%g%%", num(p, "equivalence_margin_pct").value_or(0)) << ", blocks of "
        << static_cast<long>(num(p, "runs_per_block").value_or(0)) << " runs per arm up to "
        << static_cast<long>(num(p, "max_runs_per_arm").value_or(0)) << ", " << str(p.if_contains("spending"))
        << " spending, confirmation " << (str(p.if_contains("confirm")) == "true" ? "on" : "off") << "\n";
    out << "  budget     " << fmt("%g", num(p, "fp_budget_per_week").value_or(0)) << " false alert(s) a week over "
        << fmt("%g", num(p, "tests_per_week").value_or(0)) << " workflow-tests a week\n";
  }
  auto thr = num(w, "threshold_pct");
  auto k = num(w, "k"), sigma = num(w, "sigma_aa_pct");
  out << "  threshold  " << (thr ? fmt("%.2f%%", *thr) : "-");
  if (k && sigma) out << " = max(detection floor, k " << fmt("%.2f", *k) << " x sigma_AA " << fmt("%.2f%%", *sigma) << ")";
  else out << " (the detection floor: never calibrated; run `ttfb-lab calibrate " << str(w.if_contains("name")) << "`)";
  out << "\n";
  const auto* cv = w.if_contains("calibration");
  if (!cv || !cv->is_object()) return out.str();
  const auto& cal = cv->as_object();
  if (const auto* cur = cal.if_contains("current"); cur && cur->is_object()) {
    const auto& c = cur->as_object();
    out << "  calibration " << str(c.if_contains("id")) << " (" << str(c.if_contains("trigger")) << ", finished "
        << str(c.if_contains("finished_at")).substr(0, 19) << ", experiment " << str(c.if_contains("experiment_id")) << ")";
    if (const auto* rv = c.if_contains("result"); rv && rv->is_object()) {
      const auto& r = rv->as_object();
      out << ": " << static_cast<long>(num(r, "aa_experiments").value_or(0)) << " A/A batches, "
          << static_cast<long>(num(r, "samples").value_or(0)) << " runs\n";
      auto fpr = num(r, "achieved_fpr"), target = num(r, "target_fpr");
      std::string ci;
      if (const auto* a = r.if_contains("achieved_fpr_ci"); a && a->is_array() && a->as_array().size() == 2)
        ci = " [" + fmt("%.2f", 100 * a->as_array()[0].to_number<double>()) + ", " +
             fmt("%.2f", 100 * a->as_array()[1].to_number<double>()) + "]";
      out << "    false positives " << (fpr ? fmt("%.2f%%", 100 * *fpr) : "-") << ci << " of "
          << static_cast<long>(num(r, "null_experiments").value_or(0)) << " resampled A/A experiments; target "
          << (target ? fmt("%.2f%%", 100 * *target) : "-") << ": "
          << (str(r.if_contains("budget_met")) == "true" ? "within budget" : "OVER BUDGET even at the largest k") << "\n";
      if (const auto* pw = r.if_contains("power"); pw && pw->is_array()) {
        out << "    power     ";
        for (const auto& pv : pw->as_array()) {
          const auto& po = pv.as_object();
          out << " " << fmt("%+g%%", num(po, "effect_pct").value_or(0)) << ": " << fmt("%.0f%%", 100 * num(po, "power").value_or(0))
              << " (" << fmt("%.0f", num(po, "mean_runs_per_arm").value_or(0)) << " runs/arm)";
        }
        out << "\n";
      }
      auto s90 = num(r, "smallest_effect_90_pct");
      out << "    smallest slowdown detected with 90% power: " << (s90 ? fmt("%g%%", *s90) : "none of those injected") << "\n";
      if (const auto* roc = r.if_contains("roc"); roc && roc->is_array() && !roc->as_array().empty()) {
        out << "    ROC (k: threshold, FPR, power per injected slowdown):\n";
        const auto& pts = roc->as_array();
        const std::size_t step = std::max<std::size_t>(1, pts.size() / 8);
        for (std::size_t i = 0; i < pts.size(); i += step) {
          const auto& po = pts[i].as_object();
          out << "      k " << fmt("%4.1f", num(po, "k").value_or(0)) << ": " << fmt("%5.2f%%", num(po, "threshold_pct").value_or(0))
              << "  FPR " << fmt("%5.2f%%", 100 * num(po, "fpr").value_or(0)) << "  TPR";
          if (const auto* t = po.if_contains("tpr"); t && t->is_array())
            for (const auto& x : t->as_array()) out << " " << fmt("%3.0f%%", 100 * x.to_number<double>());
          out << "\n";
        }
      }
    } else {
      out << "\n";
    }
  }
  if (const auto* run = cal.if_contains("running"); run && run->is_object())
    out << "  calibration " << str(run->as_object().if_contains("id")) << " is running (experiment "
        << str(run->as_object().if_contains("experiment_id")) << ")\n";
  if (const auto* last = cal.if_contains("last"); last && last->is_object())
    out << "  the latest calibration " << str(last->as_object().if_contains("id")) << " ended "
        << str(last->as_object().if_contains("status")) << ": "
        << str(last->as_object().if_contains("error")) << "\n";
  if (str(cal.if_contains("stale")) == "true") out << "  stale: " << str(cal.if_contains("stale_reason")) << "\n";
  return out.str();
}

}  // namespace ttfb::cli
