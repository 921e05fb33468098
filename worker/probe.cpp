#include "worker/probe.hpp"

#include <algorithm>

namespace ttfb::worker {
namespace {

std::string_view trim_blanks(std::string_view s) {
  const auto* ws = " \t\r";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool valid_phase_name(std::string_view name) {
  if (name.empty() || name.size() > ProbeParser::kMaxPhaseName) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == ':' || c == '/';
  });
}

}  // namespace

double to_ms(MonoClock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void LineSplitter::feed(std::string_view bytes, MonoClock::time_point at, const Sink& sink) {
  while (!bytes.empty()) {
    const auto nl = split_on_cr_ ? bytes.find_first_of("\r\n") : bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    if (!overlong_) {
      if (partial_.size() + piece.size() > max_line_) {
        overlong_ = true;
        partial_.clear();
      } else {
        partial_.append(piece);
      }
    }
    partial_at_ = at;
    if (nl == std::string_view::npos) return;
    std::string_view line(partial_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    sink(overlong_ ? std::string_view{} : line, at, overlong_);
    partial_.clear();
    overlong_ = false;
    bytes.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(const Sink& sink) {
  if (partial_.empty() && !overlong_) return;
  std::string_view line(partial_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  sink(overlong_ ? std::string_view{} : line, partial_at_, overlong_);
  partial_.clear();
  overlong_ = false;
}

std::optional<ProbeEvent> ProbeParser::parse_line(std::string_view line) {
  line = trim_blanks(line);
  if (line == "first_batch") return ProbeEvent{ProbeEvent::Kind::first_batch, "", {}};
  constexpr std::string_view kPhase = "phase";
  if (line.size() > kPhase.size() && line.substr(0, kPhase.size()) == kPhase &&
      (line[kPhase.size()] == ' ' || line[kPhase.size()] == '\t')) {
    const std::string_view name = trim_blanks(line.substr(kPhase.size()));
    if (valid_phase_name(name)) return ProbeEvent{ProbeEvent::Kind::phase, std::string(name), {}};
  }
  return std::nullopt;
}

void ProbeParser::on_line(std::string_view line, MonoClock::time_point at, bool overlong) {
  if (first_batch_seen_) return;
  if (overlong) {
    ++ignored_;
    return;
  }
  if (trim_blanks(line).empty()) return;  // blank lines are harmless separators, not errors
  auto event = parse_line(line);
  if (!event || (event->kind == ProbeEvent::Kind::phase && events_.size() >= kMaxEvents)) {
    ++ignored_;
    return;
  }
  event->at = at;
  if (event->kind == ProbeEvent::Kind::first_batch) {
    first_batch_seen_ = true;
    first_batch_at_ = at;
  }
  events_.push_back(std::move(*event));
}

void ProbeParser::feed(std::string_view bytes, MonoClock::time_point at) {
  splitter_.feed(bytes, at, [this](std::string_view line, MonoClock::time_point t, bool overlong) {
    on_line(line, t, overlong);
  });
}

void ProbeParser::finish() {
  splitter_.finish([this](std::string_view line, MonoClock::time_point t, bool overlong) { on_line(line, t, overlong); });
}

StdoutMatcher::StdoutMatcher(const std::string& first_batch_regex)
    : regex_(first_batch_regex, std::regex::ECMAScript | std::regex::optimize) {}

void StdoutMatcher::feed(std::string_view bytes, MonoClock::time_point at) {
  if (seen_) return;
  splitter_.feed(bytes, at, [this](std::string_view line, MonoClock::time_point t, bool overlong) {
    if (seen_ || overlong) return;
    if (std::regex_search(line.begin(), line.end(), regex_)) {
      seen_ = true;
      at_ = t;
    }
  });
}

void StdoutMatcher::finish() {
  if (seen_) return;
  splitter_.finish([this](std::string_view line, MonoClock::time_point t, bool overlong) {
    if (!seen_ && !overlong && std::regex_search(line.begin(), line.end(), regex_)) {
      seen_ = true;
      at_ = t;
    }
  });
}

std::optional<ProbeTimings> compute_timings(MonoClock::time_point start, const std::vector<ProbeEvent>& events) {
  auto fb = std::find_if(events.begin(), events.end(),
                         [](const ProbeEvent& e) { return e.kind == ProbeEvent::Kind::first_batch; });
  if (fb == events.end()) return std::nullopt;
  ProbeTimings t;
  t.ttfb_ms = to_ms(fb->at - start);
  for (auto it = events.begin(); it != fb; ++it) {
    // Marks arrive in order, so the next event (a mark or first_batch) ends this phase.
    const auto& next = *(it + 1);
    t.phases.push_back({it->name, std::max(0.0, to_ms(next.at - it->at))});
  }
  return t;
}

}  // namespace ttfb::worker
