// The words of the three kinds of alert: pure functions from the facts of a verdict to the
// AlertEvent that enqueue_alert (outbox.hpp) stores. No database and no clock: the scheduler reads
// the facts in the transaction that reaches the verdict, calls one of these, and enqueues what it
// returns; tests compare titles, texts and fields byte for byte.
//
//   alerts::PresubmitRegressionFacts f{.experiment_id = 12, .repo = "example", .workflow = "example-train",
//                                      .title = "eager import", .base_ref = "main", .effect_pct = 38.2, ...};
//   alerts::enqueue_alert(tx, config, alerts::presubmit_regression_alert(f, config.public_url));
//
// Numbers are NaN when not measured (too few runs, an old result without them); the fields carry
// them as null (ttfb::json_number). How each text shows a missing number is said per function.
#pragma once

#include "server/alerts/outbox.hpp"

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace ttfb::alerts {

inline constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();

// ------------------------------------------------------------------------------------------------
// kind "presubmit_regression": a pre-submit change made a workflow start slower, confirmed by an
// independent rerun. To whoever wrote (or else submitted) the change.

struct PresubmitRegressionFacts {
  long experiment_id = 0;
  std::string repo;
  std::string workflow;
  std::string title;                         // the experiment's title; "" when it has none
  std::optional<std::string> candidate_ref;  // names the change when title is ""; nullopt: "your change"
  std::string base_ref;
  std::string runtime_words;                 // what the candidate ran with (an infra owner's experiment:
                                             // common/text.hpp candidate_runtime_words); "" for a diff
  std::string change_url;                    // "" when the submitter gave none
  std::string author;                        // "Name <mail@host>", "mail@host", "Name" or ""
  std::string submitted_by;                  // the recipient's name when author is ""
  double effect_pct = kNotMeasured;          // the confirmed verdict's effect and interval, in %
  double ci_low_pct = kNotMeasured;
  double ci_high_pct = kNotMeasured;
  double confidence = kNotMeasured;          // the interval's level, 0..1 (0.99: "99% CI")
  double p_value = kNotMeasured;
  std::string phase_summary;                 // where the time went; "" when no phase stands out
  bool confirmed_by_rerun = true;            // false: a fixed design (the client's runs per arm), no rerun
  int runs_per_arm = 0;                      // of the fixed design, said when there was no rerun
  // CPU time to the first batch decided (server/stats/metrics.hpp): its effect, interval and p,
  // which the text leads with; the effect fields above stay TTFB's. Not measured: TTFB decided.
  double cpu_effect_pct = kNotMeasured;
  double cpu_ci_low_pct = kNotMeasured;
  double cpu_ci_high_pct = kNotMeasured;
  double cpu_confidence = kNotMeasured;
  double cpu_p_value = kNotMeasured;
  // The tail decided (server/stats/tail.hpp): "9 of 60 candidate runs slow against 1 of 60, 90th
  // percentile +43.4%", which the text leads with. "": it did not.
  std::string tail_words;
};

// change "experiment:<id>", workflow, url <public_url>/#/experiments/<id>; the recipient is the
// author split into name and address ("Name <mail@host>" -> both, "mail@host" -> the address,
// "Name" -> the name), or submitted_by as the name when author is "".
//   title: <workflow>: time to first batch +38.2% with "<change>"
//   text:  "<change>" makes <workflow>'s time to first batch +38.2% slower than <base_ref>
//          [+30.1, +46.0] (99% CI, p = 0.0012), confirmed by an independent rerun. Where: <phase>. <url>
//   when CPU time decided (cpu_effect_pct measured), the text says so first:
//          "<change>" makes <workflow>'s start-up use +2.1% more CPU time before its first batch than
//          <base_ref> [+1.2, +3.0] (95% CI, p = 0.001), confirmed by an independent rerun; its time to first
//          batch changed +1.4% [-0.6, +3.4] (95% CI) through the waits for a core. Where: ... <url>
//          (without a rerun: "..., from one fixed look at 20 runs per arm, not confirmed by a rerun.")
// where <change> is the title, else the candidate ref, else "your change"; " Where: ..." only
// when phase_summary is not "". What was not measured (NaN) is left out, never printed as
// "nan": the effect ("time to first batch slower"), the interval unless both ends are, its level
// ("99% CI" -> "CI"), p, and the parentheses when nothing is left in them.
// fields: experiment_id, effect_pct, ci_low_pct, ci_high_pct, p_value, phase_summary, change_url, base.
AlertEvent presubmit_regression_alert(const PresubmitRegressionFacts& f, const std::string& public_url);

// ------------------------------------------------------------------------------------------------
// kind "culprit": a bisection named a commit that made a workflow start slower. One alert per
// culprit, to the commit's author.

struct CulpritFacts {
  long bisection_id = 0;
  std::string repo;
  std::string workflow;
  std::string commit;  // the culprit's full sha
  std::string subject;
  std::string author_name;
  std::string author_email;
  double effect_pct = kNotMeasured;  // against its parent, in %
  double ci_low_pct = kNotMeasured;
  double ci_high_pct = kNotMeasured;
  double ci_level = kNotMeasured;    // the interval's level, 0..1
  double p_value = kNotMeasured;
  std::optional<std::string> phase;  // the phase that moved most; nullopt when none stands out
  double phase_delta_ms = kNotMeasured;
  std::string phase_summary;
  std::string good_commit;           // the bisected range good..bad (full shas)
  std::string bad_commit;
  std::size_t range_commits = 0;     // commits in the range, both ends included (>= 2)
};

// change "commit:<sha>", workflow, url <public_url>/#/bisections/<id>, recipient the author.
//   title: <workflow>: time to first batch +38.2% from 1a2b3c4 "<subject>"
//   text:  Your commit 1a2b3c4 "<subject>" made <workflow>'s time to first batch +38.2% slower
//          [+30.1, +46.0] (99% CI, p = 0.0012, measured against its parent). It is mostly
//          <phase> (+812 ms). Found by bisecting <good7>..<bad7> (<range_commits - 1> commits). <url>
// The interval is left out unless both ends are measured, ", p = ..." unless p is, the level
// ("99% CI" -> "CI") unless it is, the effect's number unless it is ("slower"), " It is mostly
// ..." when there is no phase, and its "(+812 ms)" when that was not measured.
// fields: bisection_id, commit, subject, author, email, effect_pct, ci_low_pct, ci_high_pct,
// p_value, phase (null when none), phase_delta_ms, phase_summary.
AlertEvent culprit_alert(const CulpritFacts& f, const std::string& public_url);

// ------------------------------------------------------------------------------------------------
// kind "release_blocked": a release gate found workflows that start slower. To the gate's owner.

struct RegressedWorkflow {
  std::string workflow;
  double effect_pct = kNotMeasured;  // the confirmed verdict's effect and interval, in %
  double ci_low_pct = kNotMeasured;
  double ci_high_pct = kNotMeasured;
  double confidence = kNotMeasured;  // the interval's level, 0..1
  double p_value = kNotMeasured;
  std::string phase_summary;         // "" when no phase stands out
};

struct ReleaseBlockedFacts {
  long release_id = 0;
  std::string name;  // the release's name, e.g. "v1.1"
  std::string repo;
  std::string base_ref;
  std::string candidate_ref;
  std::string owner;
  std::string owner_email;
  std::vector<RegressedWorkflow> regressed;  // in the order the text lists them
};

// One regressed workflow in a sentence, as the gate's reason and the alert's text show it:
// "example-train +38.2% [+30.1, +46.0] (99% CI)". The effect is left out when not measured, the
// interval unless both ends are, the level unless it is.
std::string effect_line(const RegressedWorkflow& w);

// change "release:<name>", workflow "", url <public_url>/#/releases/<name>, recipient the owner.
//   title: release <name> blocked: 2 workflow(s) start slower
//   text:  Release gate <name> (<base_ref>..<candidate_ref>) is blocked: time to first batch
//          regressed, confirmed by a rerun:
//          - <effect_line> (<phase_summary>)
//          - ...
//          Bisecting to the guilty commits now; their authors will be told. <url>
// (one "\n- " line per regressed workflow; " (<phase_summary>)" only when it is not "").
// fields: release, range, release_id, workflows: [{workflow, effect_pct, ci_low_pct, ci_high_pct, p_value}].
AlertEvent release_blocked_alert(const ReleaseBlockedFacts& f, const std::string& public_url);

}  // namespace ttfb::alerts
