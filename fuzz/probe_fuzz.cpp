// Fuzz target: the probe protocol, worker side (worker/probe.hpp) — ProbeParser, LineSplitter,
// StdoutMatcher and compute_timings — on what a workload writes to its probe fd or its stdout
// (hostile: it is the diff's code). The bytes arrive in reads the input chooses, at increasing
// times. Asserts, against a model of the protocol written again from the header's contract:
//   - LineSplitter (both modes, several line limits) delivers exactly the model's lines, each
//     stamped with the read that brought its end, overlong lines (longer than the limit) once
//     and without their text, and its memory stays under twice the limit whatever the input;
//   - ProbeParser records exactly the model's events and ignored count: events in time order,
//     first_batch at most once and last, at most kMaxEvents phases, names valid; its memory is
//     its events plus a bounded line buffer;
//   - StdoutMatcher fires at the model's first matching line (for the regexes of the example
//     workflows and a few typical ones), or not at all;
//   - compute_timings: TTFB = first_batch - start, one phase per mark, none negative, their sum
//     at most TTFB.
// Input: one mode byte (its low 3 bits pick the StdoutMatcher regex), then reads, each a 2-byte
// little-endian length, a 1-byte time step (1 + n microseconds) and that many bytes (a short
// last read takes what is left). fuzz/make_seeds.py writes tests/data/probe's transcripts in it.
#include "fuzz/check.hpp"
#include "worker/probe.hpp"

#include <sanitizer/allocator_interface.h>

#include <cstddef>
#include <cstdint>
#include <vector>

using ttfb::worker::LineSplitter;
using ttfb::worker::MonoClock;
using ttfb::worker::ProbeEvent;
using ttfb::worker::ProbeParser;

namespace {

struct Read {
  std::string_view bytes;
  MonoClock::time_point at;
};

struct Line {
  std::string text;
  MonoClock::time_point at;
  bool overlong;
  bool operator==(const Line&) const = default;
};

// The stream's lines as the header defines them: they end at '\n' (and at '\r' when
// split_on_cr); a '\r' before the end is dropped; a line is stamped with the read that brought
// its end; one longer than max_line (counting a dropped '\r') is overlong and has no text; at
// the end of the stream a last unterminated line (or a lone overlong one) counts, stamped with
// the read that brought its last byte.
std::vector<Line> model_lines(const std::vector<Read>& reads, std::size_t max_line, bool split_on_cr) {
  std::vector<Line> lines;
  std::string current;
  bool pending = false;
  MonoClock::time_point last{};
  const auto deliver = [&](MonoClock::time_point at) {
    const bool overlong = current.size() > max_line;
    std::string text = overlong ? std::string() : current;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    lines.push_back({text, at, overlong});
    current.clear();
    pending = false;
  };
  for (const auto& r : reads) {
    for (char c : r.bytes) {
      last = r.at;
      if (c == '\n' || (split_on_cr && c == '\r')) {
        deliver(r.at);
      } else {
        current += c;
        pending = true;
      }
    }
  }
  if (pending) deliver(last);
  return lines;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool model_phase_name(std::string_view n) {
  if (n.empty() || n.size() > ProbeParser::kMaxPhaseName) return false;
  for (char c : n) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    std::string_view("_.:/-").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

// Sizes of what the sanitizer's allocator holds: the line buffers must not grow with the input.
std::size_t allocated() { return __sanitizer_get_current_allocated_bytes(); }

// The regexes of configs/workflows and tests/data/config, and a few a user would write.
const char* const kRegexes[] = {
    "^first batch ready", "^first batch", "first_batch", "batch 1\\b",
    "step[= ]+1[^0-9]", "^\\[train\\] (epoch 0 )?step 0", "(loss|acc)=[0-9]+\\.[0-9]+", "ready$",
};

void check_splitter(const std::vector<Read>& reads, std::size_t max_line, bool split_on_cr) {
  const auto expected = model_lines(reads, max_line, split_on_cr);
  std::vector<Line> got;
  got.reserve(expected.size() + 1);  // so the sink's own bookkeeping does not count as the splitter's
  std::size_t text_bytes = 0;
  for (const auto& l : expected) text_bytes += l.text.size() + 1;
  std::string arena;
  arena.reserve(text_bytes + 16);
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  spans.reserve(expected.size() + 1);
  std::vector<std::pair<MonoClock::time_point, bool>> stamps;
  stamps.reserve(expected.size() + 1);
  const LineSplitter::Sink sink = [&](std::string_view line, MonoClock::time_point at, bool overlong) {
    FUZZ_CHECK(line.size() <= max_line, "a line of %zu bytes passed a limit of %zu", line.size(), max_line);
    FUZZ_CHECK(!overlong || line.empty(), "an overlong line kept its text");
    FUZZ_CHECK(spans.size() < expected.size(), "more lines than the model's %zu", expected.size());
    FUZZ_CHECK(arena.size() + line.size() <= arena.capacity(), "lines longer than the model's");
    spans.emplace_back(arena.size(), line.size());
    arena.append(line);
    stamps.emplace_back(at, overlong);
  };
  LineSplitter splitter(max_line, split_on_cr);
  const std::size_t base = allocated();
  for (const auto& r : reads) {
    splitter.feed(r.bytes, r.at, sink);
    FUZZ_CHECK(allocated() <= base + 2 * max_line + 64, "LineSplitter(%zu) holds %zu bytes", max_line,
               allocated() - base);
  }
  splitter.finish(sink);
  FUZZ_CHECK(spans.size() == expected.size(), "%zu lines, the model has %zu", spans.size(), expected.size());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const Line l{arena.substr(spans[i].first, spans[i].second), stamps[i].first, stamps[i].second};
    FUZZ_CHECK(l == expected[i], "line %zu differs from the model (cr=%d, max %zu)", i, split_on_cr, max_line);
  }
}

void check_parser(const std::vector<Read>& reads, MonoClock::time_point start) {
  // The model: ProbeParser's rules applied to the model's lines.
  std::vector<ProbeEvent> want;
  std::size_t want_ignored = 0;
  bool done = false;
  for (const auto& l : model_lines(reads, ProbeParser::kMaxLine, false)) {
    if (done) break;
    if (l.overlong) { ++want_ignored; continue; }
    const std::string_view t = trim(l.text);
    if (t.empty()) continue;
    if (t == "first_batch") {
      want.push_back({ProbeEvent::Kind::first_batch, "", l.at});
      done = true;
    } else if (t.size() > 5 && t.substr(0, 5) == "phase" && (t[5] == ' ' || t[5] == '\t') &&
               model_phase_name(trim(t.substr(5))) && want.size() < ProbeParser::kMaxEvents) {
      want.push_back({ProbeEvent::Kind::phase, std::string(trim(t.substr(5))), l.at});
    } else {
      ++want_ignored;
    }
  }

  ProbeParser parser;
  const std::size_t base = allocated();
  for (const auto& r : reads) {
    parser.feed(r.bytes, r.at);
    std::size_t events = parser.events().capacity() * sizeof(ProbeEvent);
    for (const auto& e : parser.events()) events += e.name.capacity() + 1;
    FUZZ_CHECK(allocated() <= base + events + 2 * ProbeParser::kMaxLine + 256, "ProbeParser holds %zu bytes for %zu events",
               allocated() - base, parser.events().size());
  }
  parser.finish();
  const auto& got = parser.events();
  FUZZ_CHECK(got.size() == want.size(), "%zu events, the model has %zu", got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    FUZZ_CHECK(got[i].kind == want[i].kind && got[i].name == want[i].name && got[i].at == want[i].at,
               "event %zu differs from the model", i);
    FUZZ_CHECK(i == 0 || got[i - 1].at <= got[i].at, "event %zu is earlier than the one before", i);
    FUZZ_CHECK(got[i].kind == ProbeEvent::Kind::phase || i + 1 == got.size(), "an event after first_batch");
  }
  FUZZ_CHECK(parser.ignored_lines() == want_ignored, "%zu lines ignored, the model ignores %zu", parser.ignored_lines(),
             want_ignored);
  const bool fb = !want.empty() && want.back().kind == ProbeEvent::Kind::first_batch;
  FUZZ_CHECK(parser.first_batch_seen() == fb, "first_batch_seen() is %d", parser.first_batch_seen());
  if (fb) FUZZ_CHECK(parser.first_batch_at() == want.back().at, "first_batch_at() differs");

  const auto timings = ttfb::worker::compute_timings(start, got);
  FUZZ_CHECK(timings.has_value() == fb, "compute_timings %s a first_batch", fb ? "missed" : "invented");
  if (!timings) return;
  FUZZ_CHECK(timings->ttfb_ms == ttfb::worker::to_ms(want.back().at - start), "TTFB differs from first_batch - start");
  FUZZ_CHECK(timings->phases.size() + 1 == got.size(), "%zu phases for %zu marks", timings->phases.size(), got.size() - 1);
  double sum = 0;
  for (std::size_t i = 0; i < timings->phases.size(); ++i) {
    FUZZ_CHECK(timings->phases[i].name == got[i].name, "phase %zu is misnamed", i);
    FUZZ_CHECK(timings->phases[i].ms >= 0, "phase %zu lasts %f ms", i, timings->phases[i].ms);
    sum += timings->phases[i].ms;
  }
  FUZZ_CHECK(sum <= timings->ttfb_ms * (1 + 1e-9) + 1e-9, "phases add up to %f ms, more than TTFB %f", sum,
             timings->ttfb_ms);
}

void check_matcher(const std::vector<Read>& reads, const char* regex) {
  const std::regex re(regex, std::regex::ECMAScript | std::regex::optimize);
  bool want = false;
  MonoClock::time_point want_at{};
  for (const auto& l : model_lines(reads, ttfb::worker::StdoutMatcher::kMaxLine, true)) {
    if (!l.overlong && std::regex_search(l.text, re)) {
      want = true;
      want_at = l.at;
      break;
    }
  }
  ttfb::worker::StdoutMatcher matcher(regex);
  for (const auto& r : reads) matcher.feed(r.bytes, r.at);
  matcher.finish();
  FUZZ_CHECK(matcher.first_batch_seen() == want, "StdoutMatcher(%s) %s", regex, want ? "missed its line" : "matched nothing");
  if (want) FUZZ_CHECK(matcher.first_batch_at() == want_at, "StdoutMatcher(%s) stamped the wrong read", regex);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const unsigned mode = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  const MonoClock::time_point start{std::chrono::seconds(1000)};
  MonoClock::time_point now = start;
  std::vector<Read> reads;
  while (in.size() >= 3) {
    const std::size_t len = static_cast<unsigned char>(in[0]) | (static_cast<unsigned char>(in[1]) << 8);
    now += std::chrono::microseconds(1 + static_cast<unsigned char>(in[2]));
    in.remove_prefix(3);
    const std::size_t take = std::min(len, in.size());
    reads.push_back({in.substr(0, take), now});
    in.remove_prefix(take);
  }

  for (std::size_t max_line : {std::size_t{1}, std::size_t{16}, std::size_t{4096}}) {
    check_splitter(reads, max_line, false);
    check_splitter(reads, max_line, true);
  }
  check_parser(reads, start);
  check_matcher(reads, kRegexes[mode % (sizeof(kRegexes) / sizeof(kRegexes[0]))]);
  return 0;
}
