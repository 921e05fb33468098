// The probe protocol, worker side (DESIGN §3): the workload writes ASCII lines to the fd named in
// TTFB_PROBE_FD — `phase NAME` when phase NAME begins, `first_batch` when the first batch enters
// the model — and the worker timestamps each line as it arrives (CLOCK_MONOTONIC, i.e.
// std::chrono::steady_clock). This unit turns bytes read at known times into events, and events
// into TTFB and phase durations. It does no I/O: the sandbox feeds it.
//
//   ProbeParser parser;
//   parser.feed("phase imports\nphase da", t1);   // the partial line waits for its newline
//   parser.feed("ta\nfirst_batch\n", t2);         // `phase data` and `first_batch` stamped t2
//   auto timings = compute_timings(start, parser.events());
//   // timings->ttfb_ms == t2 - start; phases: imports = t2 - t1, data = 0
//
// Lines that are not probe lines (unknown words, malformed names, overlong lines) are ignored
// and counted: a workload's probe fd is not a place for chatter, but chatter never fails a run.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace ttfb::worker {

using MonoClock = std::chrono::steady_clock;

struct ProbeEvent {
  enum class Kind { phase, first_batch };
  Kind kind = Kind::phase;
  std::string name;  // the phase's name; empty for first_batch
  MonoClock::time_point at;
};

// Splits a byte stream into lines, each stamped with the time its newline arrived (a line split
// across reads is complete only when its end is there). '\r' before '\n' is dropped. Lines longer
// than `max_line` are reported once as overlong and their text dropped, so a stream without
// newlines cannot grow memory without bound.
class LineSplitter {
 public:
  using Sink = std::function<void(std::string_view line, MonoClock::time_point at, bool overlong)>;

  // split_on_cr: '\r' also ends a line (terminal output: progress bars redraw a line with '\r'
  // and may print no '\n' for a long time).
  explicit LineSplitter(std::size_t max_line = 4096, bool split_on_cr = false)
      : max_line_(max_line), split_on_cr_(split_on_cr) {}
  void feed(std::string_view bytes, MonoClock::time_point at, const Sink& sink);
  // End of stream: a last line without a newline is delivered, stamped with the time its last
  // bytes arrived.
  void finish(const Sink& sink);

 private:
  std::size_t max_line_;
  bool split_on_cr_;
  std::string partial_;
  bool overlong_ = false;
  MonoClock::time_point partial_at_{};
};

// Recognises the probe lines of one run. After the first `first_batch` nothing more is recorded
// (later lines are neither events nor ignored: the measurement is over).
class ProbeParser {
 public:
  static constexpr std::size_t kMaxLine = 4096;
  static constexpr std::size_t kMaxPhaseName = 64;
  static constexpr std::size_t kMaxEvents = 1000;  // phases beyond this are ignored (and counted)

  void feed(std::string_view bytes, MonoClock::time_point at);
  void finish();

  const std::vector<ProbeEvent>& events() const { return events_; }
  bool first_batch_seen() const { return first_batch_seen_; }
  // Time of the first `first_batch`; only meaningful when first_batch_seen().
  MonoClock::time_point first_batch_at() const { return first_batch_at_; }
  // Unknown, malformed or overlong lines, and phases beyond kMaxEvents.
  std::size_t ignored_lines() const { return ignored_; }

  // Parses one complete line (without its newline); nullopt for anything that is not a probe
  // line. Exposed for tests. Accepted: `phase NAME` (NAME: 1..64 of [A-Za-z0-9_.:/-]) and
  // `first_batch`, with surrounding spaces or tabs tolerated.
  static std::optional<ProbeEvent> parse_line(std::string_view line);

 private:
  void on_line(std::string_view line, MonoClock::time_point at, bool overlong);

  LineSplitter splitter_{kMaxLine};
  std::vector<ProbeEvent> events_;
  bool first_batch_seen_ = false;
  MonoClock::time_point first_batch_at_{};
  std::size_t ignored_ = 0;
};

// Probe "stdout": the first line of the workload's stdout that matches first_batch_regex
// (std::regex ECMAScript, searched anywhere in the line) is the first_batch event. Lines end at
// '\n' or '\r'; longer ones than kMaxLine are skipped (std::regex recurses per character: an
// unbounded line could exhaust the stack).
class StdoutMatcher {
 public:
  static constexpr std::size_t kMaxLine = 8 * 1024;

  // Throws std::regex_error for an invalid expression.
  explicit StdoutMatcher(const std::string& first_batch_regex);
  void feed(std::string_view bytes, MonoClock::time_point at);
  void finish();
  bool first_batch_seen() const { return seen_; }
  MonoClock::time_point first_batch_at() const { return at_; }

 private:
  std::regex regex_;
  LineSplitter splitter_{kMaxLine, true};
  bool seen_ = false;
  MonoClock::time_point at_{};
};

struct PhaseTiming {
  std::string name;
  double ms = 0;
};

struct ProbeTimings {
  double ttfb_ms = 0;               // first_batch - start
  std::vector<PhaseTiming> phases;  // in order of their marks
};

// TTFB and phase durations from the events of one run and the time taken just before exec.
// A phase lasts from its mark to the next mark; the last phase ends at first_batch. Time before
// the first mark (process start, interpreter start-up) belongs to no phase. nullopt when there is
// no first_batch event.
std::optional<ProbeTimings> compute_timings(MonoClock::time_point start, const std::vector<ProbeEvent>& events);

double to_ms(MonoClock::duration d);

}  // namespace ttfb::worker
