// What a bisection says when an end of its range cannot be measured: which commit, why (its
// probe job's error), and — for a good end from before the workflow existed — the first commit
// of the range where the workflow's files all exist, to bisect from there. Pure: the git look-ups
// are the caller's (server/scheduler/bisections.cpp asks the server's mirror).
//
//   std::vector<std::string> paths = workflow_paths(wf);          // {"train.py"}
//   // ... keep those that exist at the bad end; all_at(i): do they all exist at commits[i]?
//   int first = first_index_where(0, n - 1, all_at);              // ~log2(n) look-ups
//   std::string m = broken_ends_message(commits, r.broken, SuggestedGood{first, paths});
#pragma once

#include "common/git.hpp"
#include "server/config.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ttfb {

// Paths looked up per workflow, at most: a command line names a few files, and each one costs a
// look-up at every step of the search for the first good commit.
inline constexpr std::size_t kMaxWorkflowPaths = 8;

// The repository paths a workflow's command may name: its workdir (unless "."), and each
// argument of its command and shrink args that reads as a relative path, under the workdir and
// normalised ("./train.py" -> "train.py"). Left out: options ("-x", "--steps"), absolute paths,
// paths that leave the repository ("..") and lines with control characters. Candidates only
// ("python3" is one too): which of them are files of the repository is for git to say. In
// order, without repeats, at most kMaxWorkflowPaths.
std::vector<std::string> workflow_paths(const WorkflowConfig& wf);

// The first index in (lo, hi] at which `holds` is true, given that it is false at lo and true at
// hi: a binary search, about log2(hi - lo) calls. When it turns true more than once, one index
// where it does (true there, false just before). lo >= hi: hi.
int first_index_where(int lo, int hi, const std::function<bool(int)>& holds);

// Where a bisection whose good end cannot run could start instead: commit `index` of the range,
// the first where all of `paths` (the workflow's files that exist at the bad end) exist.
struct SuggestedGood {
  int index = 0;
  std::vector<std::string> paths;
};

// The result's message when an end of the range is in `broken` (commit index -> its probe job's
// error): for each broken end, its short SHA, subject and error; for the good end, the
// suggestion when there is one ("the workflow's files (train.py) first exist at <sha12>
// (<subject>), commit 3 of the range: bisect from there"; at the bad end itself, that there is
// nothing before it to bisect from). Empty when neither end is broken.
std::string broken_ends_message(const std::vector<git::CommitInfo>& commits, const std::map<int, std::string>& broken,
                                const std::optional<SuggestedGood>& suggestion);

// The result's "suggested_good": {index, commit, subject, paths}; null when there is no
// suggestion or it is the bad end (nothing to bisect from there).
boost::json::value suggested_good_json(const std::vector<git::CommitInfo>& commits,
                                       const std::optional<SuggestedGood>& suggestion);

}  // namespace ttfb
