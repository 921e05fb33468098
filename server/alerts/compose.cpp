#include "server/alerts/compose.hpp"

#include "common/json_number.hpp"
#include "common/text.hpp"

#include <cmath>
#include <utility>

namespace ttfb::alerts {
namespace {
namespace json = boost::json;

bool measured(double x) { return !std::isnan(x); }

// "Name <mail@host>" -> (Name, mail@host); "mail@host" -> ("", mail@host); "Name" -> (Name, "").
std::pair<std::string, std::string> split_author(const std::string& author) {
  const auto lt = author.rfind('<');
  const auto gt = author.rfind('>');
  if (lt != std::string::npos && gt != std::string::npos && gt > lt) {
    std::string name = author.substr(0, lt);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    return {name, author.substr(lt + 1, gt - lt - 1)};
  }
  if (author.find('@') != std::string::npos && author.find(' ') == std::string::npos) return {"", author};
  return {author, ""};
}

std::string short_sha(const std::string& sha) { return sha.substr(0, 7); }

// "+38.2% " for a measured effect, "" otherwise: "time to first batch +38.2% slower" or
// "time to first batch slower", never "nan".
std::string effect_words(double effect_pct) { return measured(effect_pct) ? format_double("%+.1f%%", effect_pct) + " " : ""; }

// " [+30.1, +46.0] (99% CI, p = 0.0012, <also>)" from what was measured: the interval when both
// ends are, its level when known, p when known, then `also`; no parentheses when all are absent.
std::string interval_words(double lo, double hi, double level, double p, const std::string& also = "") {
  std::string out, inside;
  auto add = [&inside](const std::string& part) { inside += (inside.empty() ? "" : ", ") + part; };
  if (measured(lo) && measured(hi)) {
    out = " [" + format_double("%+.1f", lo) + ", " + format_double("%+.1f", hi) + "]";
    add(measured(level) ? format_double("%.4g%% CI", 100.0 * level) : "CI");
  }
  if (measured(p)) add("p = " + format_double("%.2g", p));
  if (!also.empty()) add(also);
  return inside.empty() ? out : out + " (" + inside + ")";
}

}  // namespace

AlertEvent presubmit_regression_alert(const PresubmitRegressionFacts& f, const std::string& public_url) {
  const std::string change = !f.title.empty()         ? f.title
                             : f.candidate_ref         ? *f.candidate_ref
                             : !f.runtime_words.empty() ? f.base_ref + " run with " + f.runtime_words
                                                        : "your change";
  auto [name, email] = split_author(f.author);
  if (name.empty() && email.empty()) name = f.submitted_by;
  AlertEvent e;
  e.kind = "presubmit_regression";
  e.repo = f.repo;
  e.change = "experiment:" + std::to_string(f.experiment_id);
  e.workflow = f.workflow;
  e.recipient_name = name;
  e.recipient_email = email;
  e.url = public_url + "/#/experiments/" + std::to_string(f.experiment_id);
  const bool by_cpu = measured(f.cpu_effect_pct) && f.tail_words.empty();
  const bool by_tail = !f.tail_words.empty();
  e.title = by_tail ? f.workflow + ": a slower tail of start-ups with \"" + change + "\""
          : by_cpu ? f.workflow + ": CPU time to first batch " + effect_words(f.cpu_effect_pct) + "with \"" + change + "\""
                   : f.workflow + ": time to first batch " + (measured(f.effect_pct) ? effect_words(f.effect_pct) : "slower ") +
                         "with \"" + change + "\"";
  const std::string what =
      by_tail ? "\"" + change + "\" makes some of " + f.workflow + "'s start-ups much slower than " + f.base_ref + ": " +
                    f.tail_words
      : by_cpu ? "\"" + change + "\" makes " + f.workflow + "'s start-up use " + effect_words(f.cpu_effect_pct) +
                   "more CPU time before its first batch than " + f.base_ref +
                   interval_words(f.cpu_ci_low_pct, f.cpu_ci_high_pct, f.cpu_confidence, f.cpu_p_value)
             : "\"" + change + "\" makes " + f.workflow + "'s time to first batch " + effect_words(f.effect_pct) +
                   "slower than " + f.base_ref + interval_words(f.ci_low_pct, f.ci_high_pct, f.confidence, f.p_value);
  const std::string ttfb_too =
      by_tail && measured(f.effect_pct)
          ? "; its typical time to first batch (the t-test, slow runs set aside as outliers) changed " +
                format_double("%+.1f%%", f.effect_pct) + interval_words(f.ci_low_pct, f.ci_high_pct, f.confidence, kNotMeasured)
      : by_cpu && measured(f.effect_pct)
          ? "; its time to first batch changed " + format_double("%+.1f%%", f.effect_pct) +
                interval_words(f.ci_low_pct, f.ci_high_pct, f.confidence, kNotMeasured) + " through the waits for a core"
          : "";
  e.text = what +
           (f.confirmed_by_rerun ? ", confirmed by an independent rerun" + ttfb_too + "."
                                 : ", from one fixed look" +
                                       (f.runs_per_arm > 0 ? " at " + std::to_string(f.runs_per_arm) + " runs per arm" : std::string()) +
                                       ", not confirmed by a rerun" + ttfb_too + ".") +
           (f.phase_summary.empty() ? "" : " Where: " + f.phase_summary + ".") +
           (f.runtime_words.empty() || f.title.empty() ? "" : " The candidate ran with " + f.runtime_words + ".") + " " + e.url;
  e.fields = json::object{{"experiment_id", f.experiment_id},
                          {"effect_pct", json_number(f.effect_pct)},
                          {"ci_low_pct", json_number(f.ci_low_pct)},
                          {"ci_high_pct", json_number(f.ci_high_pct)},
                          {"p_value", json_number(f.p_value)},
                          {"phase_summary", f.phase_summary},
                          {"change_url", f.change_url},
                          {"base", f.base_ref},
                          {"candidate_runtime", f.runtime_words},
                          {"decided_by", by_tail ? "tail" : by_cpu ? "cpu_time" : "ttfb"},
                          {"cpu_effect_pct", json_number(f.cpu_effect_pct)}};
  return e;
}

AlertEvent culprit_alert(const CulpritFacts& f, const std::string& public_url) {
  AlertEvent e;
  e.kind = "culprit";
  e.repo = f.repo;
  e.workflow = f.workflow;
  e.change = "commit:" + f.commit;
  e.recipient_name = f.author_name;
  e.recipient_email = f.author_email;
  e.url = public_url + "/#/bisections/" + std::to_string(f.bisection_id);
  e.title = f.workflow + ": time to first batch " + (measured(f.effect_pct) ? effect_words(f.effect_pct) : "slower ") + "from " +
            short_sha(f.commit) + " \"" + f.subject + "\"";
  const std::string phase =
      f.phase ? " It is mostly " + *f.phase +
                    (measured(f.phase_delta_ms) ? " (" + format_double("%+.0f ms", f.phase_delta_ms) + ")" : "") + "."
              : "";
  e.text = "Your commit " + short_sha(f.commit) + " \"" + f.subject + "\" made " + f.workflow + "'s time to first batch " +
           effect_words(f.effect_pct) + "slower" +
           interval_words(f.ci_low_pct, f.ci_high_pct, f.ci_level, f.p_value, "measured against its parent") + "." +
           phase + " Found by bisecting " + short_sha(f.good_commit) + ".." + short_sha(f.bad_commit) + " (" +
           std::to_string(f.range_commits - 1) + " commits). " + e.url;
  e.fields = json::object{{"bisection_id", f.bisection_id},
                          {"commit", f.commit},
                          {"subject", f.subject},
                          {"author", f.author_name},
                          {"email", f.author_email},
                          {"effect_pct", json_number(f.effect_pct)},
                          {"ci_low_pct", json_number(f.ci_low_pct)},
                          {"ci_high_pct", json_number(f.ci_high_pct)},
                          {"p_value", json_number(f.p_value)},
                          {"phase", f.phase ? json::value(*f.phase) : json::value(nullptr)},
                          {"phase_delta_ms", json_number(f.phase_delta_ms)},
                          {"phase_summary", f.phase_summary}};
  return e;
}

std::string effect_line(const RegressedWorkflow& w) {
  std::string s = w.workflow;
  if (measured(w.effect_pct)) s.append(" ").append(format_double("%+.1f%%", w.effect_pct));
  if (measured(w.ci_low_pct) && measured(w.ci_high_pct)) {
    s += " [" + format_double("%+.1f", w.ci_low_pct) + ", " + format_double("%+.1f", w.ci_high_pct) + "]";
    if (measured(w.confidence)) s += " (" + format_double("%.4g", 100.0 * w.confidence) + "% CI)";
  }
  return s;
}

AlertEvent release_blocked_alert(const ReleaseBlockedFacts& f, const std::string& public_url) {
  const std::string range = f.base_ref + ".." + f.candidate_ref;
  AlertEvent e;
  e.kind = "release_blocked";
  e.repo = f.repo;
  e.change = "release:" + f.name;
  e.workflow = "";
  e.recipient_name = f.owner;
  e.recipient_email = f.owner_email;
  e.url = public_url + "/#/releases/" + f.name;
  std::string lines;
  json::array wfs;
  for (const auto& w : f.regressed) {
    std::string line = effect_line(w);
    if (!w.phase_summary.empty()) line += " (" + w.phase_summary + ")";
    lines += "\n- " + line;
    wfs.push_back(json::object{{"workflow", w.workflow},
                               {"effect_pct", json_number(w.effect_pct)},
                               {"ci_low_pct", json_number(w.ci_low_pct)},
                               {"ci_high_pct", json_number(w.ci_high_pct)},
                               {"p_value", json_number(w.p_value)}});
  }
  e.title = "release " + f.name + " blocked: " + std::to_string(f.regressed.size()) + " workflow(s) start slower";
  e.text = "Release gate " + f.name + " (" + range + ") is blocked: time to first batch regressed, confirmed by a rerun:" +
           lines + "\nBisecting to the guilty commits now; their authors will be told. " + e.url;
  e.fields = json::object{{"release", f.name}, {"range", range}, {"release_id", f.release_id}, {"workflows", std::move(wfs)}};
  return e;
}

}  // namespace ttfb::alerts
