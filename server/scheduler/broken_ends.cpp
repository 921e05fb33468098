#include "server/scheduler/broken_ends.hpp"

#include <algorithm>
#include <filesystem>

namespace ttfb {
namespace {
namespace fs = std::filesystem;
namespace json = boost::json;

// `p` as a path inside the repository ("a/b"), or nothing when it is not one (absolute, leaves
// the repository, or the root itself).
std::optional<std::string> inside(const fs::path& p) {
  const fs::path n = p.lexically_normal();
  if (n.is_absolute() || n.has_root_name()) return std::nullopt;
  std::string s = n.generic_string();
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (s.empty() || s == ".") return std::nullopt;
  if (*n.begin() == "..") return std::nullopt;
  return s;
}

bool has_control_characters(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

std::string short_sha(const std::string& sha) { return sha.substr(0, 12); }

std::string commit_words(const git::CommitInfo& c) { return short_sha(c.sha) + " (" + c.subject + ")"; }

std::string joined(const std::vector<std::string>& xs) {
  std::string out;
  for (const auto& x : xs) out += (out.empty() ? "" : ", ") + x;
  return out;
}

}  // namespace

std::vector<std::string> workflow_paths(const WorkflowConfig& wf) {
  std::vector<std::string> out;
  const std::string workdir = wf.workdir.empty() ? "." : wf.workdir;
  if (has_control_characters(workdir)) return out;
  const fs::path wd = fs::path(workdir).lexically_normal();
  if (wd.is_absolute() || (!wd.empty() && *wd.begin() == "..")) return out;  // the worker refuses such a workdir anyway
  auto add = [&](const std::optional<std::string>& p) {
    if (p && out.size() < kMaxWorkflowPaths && std::find(out.begin(), out.end(), *p) == out.end()) out.push_back(*p);
  };
  add(inside(wd));
  std::vector<std::string> args = wf.command;
  args.insert(args.end(), wf.shrink_args.begin(), wf.shrink_args.end());
  for (const auto& a : args) {
    if (a.empty() || a.front() == '-' || has_control_characters(a)) continue;
    add(inside(wd / a));
  }
  return out;
}

int first_index_where(int lo, int hi, const std::function<bool(int)>& holds) {
  // Invariant: false at lo, true at hi.
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (holds(mid) ? hi : lo) = mid;
  }
  return hi;
}

std::string broken_ends_message(const std::vector<git::CommitInfo>& commits, const std::map<int, std::string>& broken,
                                const std::optional<SuggestedGood>& suggestion) {
  if (commits.empty()) return "";
  const int bad = static_cast<int>(commits.size()) - 1;
  std::string out;
  if (const auto g = broken.find(0); g != broken.end()) {
    out = "the good end of the range cannot be measured: " + commit_words(commits.front()) + " failed: " + g->second;
    if (suggestion && suggestion->index > 0 && suggestion->index <= bad) {
      const std::string files = "the workflow's files (" + joined(suggestion->paths) + ")";
      if (suggestion->index < bad) {
        out += "; " + files + " first exist at " + commit_words(commits[static_cast<std::size_t>(suggestion->index)]) +
               ", commit " + std::to_string(suggestion->index) + " of the range: bisect from there";
      } else {
        out += "; " + files + " exist only at the bad end: there is no earlier commit of the range to bisect from";
      }
    }
  }
  if (const auto b = broken.find(bad); b != broken.end() && bad > 0) {
    out += std::string(out.empty() ? "" : "; and ") + "the bad end of the range cannot be measured: " +
           commit_words(commits.back()) + " failed: " + b->second;
  }
  return out;
}

json::value suggested_good_json(const std::vector<git::CommitInfo>& commits, const std::optional<SuggestedGood>& suggestion) {
  if (!suggestion || suggestion->index <= 0 || static_cast<std::size_t>(suggestion->index) + 1 >= commits.size())
    return nullptr;
  const auto& c = commits[static_cast<std::size_t>(suggestion->index)];
  json::array paths;
  for (const auto& p : suggestion->paths) paths.emplace_back(p);
  return json::object{{"index", suggestion->index}, {"commit", c.sha}, {"subject", c.subject}, {"paths", std::move(paths)}};
}

}  // namespace ttfb
