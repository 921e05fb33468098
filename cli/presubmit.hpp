// `ttfb-lab presubmit` and `ttfb-lab hook install`: measuring a change from inside a git checkout,
// before it is pushed or in CI.
//
//   ttfb::cli::Change c = ttfb::cli::change_in_checkout({.upstream = "", .commit = ""});  // working tree
//   // c.base: the merge base with the upstream branch; c.diff: what the change applies on it
//   std::string hook = ttfb::cli::pre_push_hook("/usr/local/bin/ttfb-lab");
//   std::string md = ttfb::cli::markdown_summary(experiment_json, dashboard_url);
//
// The change: with `commit` set, the commits up to it (diff merge-base..commit, what a push
// sends); otherwise the working tree against the merge base: committed and uncommitted changes,
// and new files git does not ignore (diffed through a copy of the index, the checkout's own index
// untouched). The upstream: `upstream` if given, else the current branch's @{upstream},
// else `fallback_upstream` (origin/<the repository's default branch>).
#pragma once

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ttfb::cli {

struct ChangeRequest {
  std::string upstream;           // empty: @{upstream}, then fallback_upstream
  std::string fallback_upstream;  // e.g. origin/main
  std::string commit;             // empty: the working tree
  std::string cwd;                // empty: the current directory
};

struct Change {
  std::string top;        // the checkout's top directory
  std::string upstream;   // the ref the merge base was taken with
  std::string base;       // merge-base commit (full SHA)
  std::string head;       // the commit measured (or HEAD for the working tree)
  std::string diff;       // empty: nothing to measure
  std::string title;      // the commit's subject, or "working tree of BRANCH"
  std::string author;     // "Name <e-mail>": the commit's author, or git config user.*
  bool uncommitted = false;
};

// Throws std::runtime_error with git's words when this is not a checkout, there is no upstream,
// or the commit is unknown.
Change change_in_checkout(const ChangeRequest& request);

// `git config --get KEY` in the checkout (nullopt when unset or not a checkout).
std::optional<std::string> git_config(const std::string& key, const std::string& cwd = "");
// Every value of a multi-valued key (`git config --get-all`), empty when unset.
std::vector<std::string> git_config_all(const std::string& key, const std::string& cwd = "");

// The pre-push hook `hook install` writes: for each ref pushed, runs `<cli> presubmit --commit
// SHA --hook` and refuses the push when it exits 1 (a confirmed regression) or 2 (an error, under
// the fail-closed policy). TTFB_LAB_SKIP=1 skips it.
std::string pre_push_hook(const std::string& cli_path);
// True when the file's text is a hook this command wrote (safe to overwrite).
bool is_our_hook(const std::string& text);

// The verdict as a Markdown table (GitHub's job summary, a merge request comment): one row per
// workflow with verdict, effect [CI], p, threshold and the phase that moved, and the link.
std::string markdown_summary(const boost::json::object& experiment, const std::string& dashboard_url);
// The verdict as JUnit XML (GitLab's test report, Jenkins): one test case per workflow, failed
// when it regressed, skipped when inconclusive, an error when the experiment failed.
std::string junit_report(const boost::json::object& experiment, const std::string& dashboard_url);

}  // namespace ttfb::cli
