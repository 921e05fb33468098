#include "server/scheduler/select.hpp"

#include <algorithm>
#include <set>

namespace ttfb {

namespace {

// "a/x/y" -> "x/y" for the side `prefix` ('a' or 'b'); a name in quotes (git's for unusual
// characters) or without its prefix is not read.
std::optional<std::string> strip_side(std::string_view name, char prefix) {
  if (name.empty() || name.front() == '"') return std::nullopt;
  if (name == "/dev/null") return std::string();
  if (name.size() < 3 || name[0] != prefix || name[1] != '/') return std::nullopt;
  return std::string(name.substr(2));
}

std::string_view rest_after(std::string_view line, std::string_view head) { return line.substr(head.size()); }

// "@@ -12,5 +12,7 @@ ..." -> the old and new line counts (a missing count is 1); false if not one.
bool hunk_counts(std::string_view line, long& old_lines, long& new_lines) {
  auto count_after = [&](char sign, long& n) {
    const auto at = line.find(std::string(" ") + sign);
    if (at == std::string_view::npos) return false;
    std::size_t i = at + 2;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    if (i < line.size() && line[i] == ',') {
      std::size_t j = ++i;
      n = 0;
      while (j < line.size() && line[j] >= '0' && line[j] <= '9' && n < 100000000) n = n * 10 + (line[j++] - '0');
      return j > i;
    }
    n = 1;
    return true;
  };
  return line.starts_with("@@ ") && count_after('-', old_lines) && count_after('+', new_lines);
}

}  // namespace

std::optional<std::vector<std::string>> diff_paths(std::string_view diff) {
  std::set<std::string> out;
  bool any_header = false;
  long old_left = 0, new_left = 0;  // lines of the current hunk still to come: not headers
  std::size_t start = 0;
  while (start < diff.size()) {
    std::size_t end = diff.find('\n', start);
    if (end == std::string_view::npos) end = diff.size();
    std::string_view line = diff.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (old_left > 0 || new_left > 0) {
      const char c = line.empty() ? ' ' : line.front();
      if (c == '-' || c == ' ') --old_left;
      if (c == '+' || c == ' ') --new_left;
      continue;
    }
    if (hunk_counts(line, old_left, new_left)) continue;
    std::optional<std::string> path;
    if (line.starts_with("--- ") || line.starts_with("+++ ")) {
      std::string_view name = rest_after(line, "--- ");
      if (const auto tab = name.find('\t'); tab != std::string_view::npos) name = name.substr(0, tab);  // a timestamp
      path = strip_side(name, line[0] == '-' ? 'a' : 'b');
      if (!path) return std::nullopt;
      any_header = true;
    } else {
      for (std::string_view head : {"rename from ", "rename to ", "copy from ", "copy to "}) {
        if (!line.starts_with(head)) continue;
        const std::string_view name = rest_after(line, head);
        if (name.empty() || name.front() == '"') return std::nullopt;
        path = std::string(name);
        any_header = true;
      }
    }
    if (path && !path->empty()) out.insert(*path);
  }
  if (!any_header) return std::nullopt;  // a diff whose files cannot be told: choose everything
  return std::vector<std::string>(out.begin(), out.end());
}

std::vector<WorkflowChoice> choose_by_footprint(const std::vector<std::string>& workflows,
                                                const std::map<std::string, std::optional<std::vector<std::string>>>& footprints,
                                                const std::optional<std::vector<std::string>>& changed) {
  std::vector<WorkflowChoice> out;
  for (const auto& w : workflows) {
    WorkflowChoice c;
    c.workflow = w;
    const auto it = footprints.find(w);
    const std::optional<std::vector<std::string>>* fp = it == footprints.end() ? nullptr : &it->second;
    if (!changed) {
      c.chosen = true;
      c.reason = "the diff's files could not all be read, so every workflow runs";
    } else if (!fp || !fp->has_value()) {
      c.chosen = true;
      c.reason = "no footprint recorded yet";
    } else {
      const std::set<std::string> files((*fp)->begin(), (*fp)->end());
      c.footprint_files = static_cast<int>(files.size());
      for (const auto& p : *changed)
        if (files.count(p)) c.touched.push_back(p);
      c.chosen = !c.touched.empty();
      const std::string of = " of the " + std::to_string(files.size()) + " files its start-up and build open";
      if (c.chosen) {
        std::string names;
        for (std::size_t i = 0; i < c.touched.size() && i < 3; ++i) names += (i ? ", " : "") + c.touched[i];
        if (c.touched.size() > 3) names += ", ...";
        c.reason = "the diff changes " + std::to_string(c.touched.size()) + of + " (" + names + ")";
      } else {
        c.reason = "not touched: the diff changes none" + of;
      }
    }
    out.push_back(std::move(c));
  }
  std::stable_sort(out.begin(), out.end(), [](const WorkflowChoice& a, const WorkflowChoice& b) {
    if (a.chosen != b.chosen) return a.chosen;
    return a.touched.size() > b.touched.size();
  });
  return out;
}

}  // namespace ttfb
