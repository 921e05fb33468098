// The probe parser against golden transcripts (tests/data/probe/*.transcript: what each read()
// returned and when; *.expected: TTFB, phases and the count of ignored lines), and against
// lines split at every possible byte, overlong lines and garbage.
#include "worker/probe.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace ttfb::worker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const MonoClock::time_point kStart = MonoClock::time_point(std::chrono::seconds(1000));

MonoClock::time_point at_ms(double ms) {
  return kStart + std::chrono::duration_cast<MonoClock::duration>(std::chrono::duration<double, std::milli>(ms));
}

// "..." with C escapes (\n \r \t \\ \" \xHH) -> bytes.
std::string unescape(const std::string& quoted) {
  EXPECT_GE(quoted.size(), 2u);
  EXPECT_EQ(quoted.front(), '"');
  EXPECT_EQ(quoted.back(), '"');
  std::string out;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    char c = quoted[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    c = quoted[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'x':
        out += static_cast<char>(std::stoi(quoted.substr(i + 1, 2), nullptr, 16));
        i += 2;
        break;
      default: out += c;
    }
  }
  return out;
}

struct Chunk {
  double ms;
  std::string bytes;
};

std::vector<Chunk> read_transcript(const fs::path& file) {
  std::ifstream in(file);
  std::vector<Chunk> chunks;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.find(' ');
    chunks.push_back({std::stod(line.substr(0, space)), unescape(line.substr(space + 1))});
  }
  return chunks;
}

struct Expected {
  std::optional<double> ttfb_ms;
  std::vector<PhaseTiming> phases;
  std::size_t ignored = 0;
};

Expected read_expected(const fs::path& file) {
  std::ifstream in(file);
  Expected e;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "ttfb_ms") {
      std::string v;
      words >> v;
      if (v != "none") e.ttfb_ms = std::stod(v);
    } else if (key == "phase") {
      PhaseTiming p;
      words >> p.name >> p.ms;
      e.phases.push_back(p);
    } else if (key == "ignored") {
      words >> e.ignored;
    }
  }
  return e;
}

std::vector<fs::path> transcripts() {
  std::vector<fs::path> out;
  for (const auto& f : fs::directory_iterator(fs::path(TTFB_LAB_TEST_DATA) / "probe")) {
    if (f.path().extension() == ".transcript") out.push_back(f.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ProbeGolden, EveryTranscriptGivesItsExpectedTimings) {
  const auto files = transcripts();
  ASSERT_GE(files.size(), 5u);
  for (const auto& file : files) {
    SCOPED_TRACE(file.filename().string());
    fs::path expected_file = file;
    expected_file.replace_extension(".expected");
    const Expected expected = read_expected(expected_file);

    ProbeParser parser;
    for (const auto& c : read_transcript(file)) parser.feed(c.bytes, at_ms(c.ms));
    parser.finish();
    EXPECT_EQ(parser.ignored_lines(), expected.ignored);
    auto timings = compute_timings(kStart, parser.events());
    ASSERT_EQ(timings.has_value(), expected.ttfb_ms.has_value());
    EXPECT_EQ(parser.first_batch_seen(), expected.ttfb_ms.has_value());
    if (!timings) continue;
    EXPECT_NEAR(timings->ttfb_ms, *expected.ttfb_ms, 1e-6);
    ASSERT_EQ(timings->phases.size(), expected.phases.size());
    for (std::size_t i = 0; i < expected.phases.size(); ++i) {
      EXPECT_EQ(timings->phases[i].name, expected.phases[i].name);
      EXPECT_NEAR(timings->phases[i].ms, expected.phases[i].ms, 1e-6) << expected.phases[i].name;
    }
  }
}

TEST(ProbeGolden, SplittingTheBytesAnywhereGivesTheSameEvents) {
  for (const auto& file : transcripts()) {
    SCOPED_TRACE(file.filename().string());
    std::string all;
    for (const auto& c : read_transcript(file)) all += c.bytes;
    ProbeParser whole;
    whole.feed(all, kStart);
    whole.finish();
    for (std::size_t cut = 0; cut <= all.size(); ++cut) {
      ProbeParser split;
      split.feed(std::string_view(all).substr(0, cut), kStart);
      split.feed(std::string_view(all).substr(cut), kStart);
      split.finish();
      ASSERT_EQ(split.events().size(), whole.events().size()) << "cut at " << cut;
      for (std::size_t i = 0; i < whole.events().size(); ++i) EXPECT_EQ(split.events()[i].name, whole.events()[i].name);
      EXPECT_EQ(split.ignored_lines(), whole.ignored_lines());
    }
  }
}

TEST(ProbeParser, ParsesPhaseAndFirstBatchLines) {
  auto p = ProbeParser::parse_line("phase imports");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, ProbeEvent::Kind::phase);
  EXPECT_EQ(p->name, "imports");
  auto f = ProbeParser::parse_line("first_batch");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->kind, ProbeEvent::Kind::first_batch);
  EXPECT_TRUE(ProbeParser::parse_line("phase data.loader:v2/x-y_z"));
  EXPECT_TRUE(ProbeParser::parse_line("\tphase  model \r"));
}

TEST(ProbeParser, RejectsMalformedLines) {
  for (const char* line : {"", "phase", "phase ", "phases x", "phase a b", "phase é", "first_batch!", "FIRST_BATCH",
                           "first batch", "phase\x01x"}) {
    EXPECT_FALSE(ProbeParser::parse_line(line)) << line;
  }
  EXPECT_FALSE(ProbeParser::parse_line("phase " + std::string(65, 'a')));
  EXPECT_TRUE(ProbeParser::parse_line("phase " + std::string(64, 'a')));
}

TEST(ProbeParser, PartialLineIsStampedWhenItsNewlineArrives) {
  ProbeParser parser;
  parser.feed("phase imp", at_ms(1));
  EXPECT_TRUE(parser.events().empty());
  parser.feed("orts\nfirst", at_ms(5));
  ASSERT_EQ(parser.events().size(), 1u);
  EXPECT_EQ(parser.events()[0].at, at_ms(5));
  parser.feed("_batch\n", at_ms(9));
  EXPECT_TRUE(parser.first_batch_seen());
  EXPECT_EQ(parser.first_batch_at(), at_ms(9));
}

TEST(ProbeParser, OverlongLineIsIgnoredAndCountedOnce) {
  ProbeParser parser;
  const std::string junk(ProbeParser::kMaxLine * 3, 'x');
  parser.feed(junk.substr(0, 5000), at_ms(1));
  parser.feed(junk.substr(5000), at_ms(2));
  parser.feed("\nphase ok\nfirst_batch\n", at_ms(3));
  EXPECT_EQ(parser.ignored_lines(), 1u);
  ASSERT_EQ(parser.events().size(), 2u);
  EXPECT_EQ(parser.events()[0].name, "ok");
}

TEST(ProbeParser, ManyPhasesAreCapped) {
  ProbeParser parser;
  std::string lines;
  for (std::size_t i = 0; i < ProbeParser::kMaxEvents + 10; ++i) lines += "phase p" + std::to_string(i) + "\n";
  parser.feed(lines + "first_batch\n", at_ms(1));
  EXPECT_EQ(parser.ignored_lines(), 10u);
  EXPECT_TRUE(parser.first_batch_seen());
}

TEST(ComputeTimings, FirstBatchWithoutPhases) {
  std::vector<ProbeEvent> events{{ProbeEvent::Kind::first_batch, "", at_ms(42.5)}};
  auto t = compute_timings(kStart, events);
  ASSERT_TRUE(t);
  EXPECT_NEAR(t->ttfb_ms, 42.5, 1e-6);
  EXPECT_TRUE(t->phases.empty());
}

TEST(ComputeTimings, TimeBeforeTheFirstMarkBelongsToNoPhase) {
  std::vector<ProbeEvent> events{{ProbeEvent::Kind::phase, "imports", at_ms(10)},
                                 {ProbeEvent::Kind::phase, "imports", at_ms(30)},  // repeated names are kept
                                 {ProbeEvent::Kind::first_batch, "", at_ms(35)}};
  auto t = compute_timings(kStart, events);
  ASSERT_TRUE(t);
  EXPECT_NEAR(t->ttfb_ms, 35, 1e-6);
  ASSERT_EQ(t->phases.size(), 2u);
  EXPECT_NEAR(t->phases[0].ms, 20, 1e-6);
  EXPECT_NEAR(t->phases[1].ms, 5, 1e-6);
}

TEST(ComputeTimings, NoFirstBatchNoTimings) {
  std::vector<ProbeEvent> events{{ProbeEvent::Kind::phase, "imports", at_ms(10)}};
  EXPECT_FALSE(compute_timings(kStart, events));
  EXPECT_FALSE(compute_timings(kStart, {}));
}

TEST(StdoutMatcher, FirstMatchingLineCounts) {
  StdoutMatcher m(R"(^step \d+ loss=)");
  m.feed("loading data\nstep", at_ms(1));
  EXPECT_FALSE(m.first_batch_seen());
  m.feed(" 0 loss=1.5\nstep 1 loss=1.2\n", at_ms(7));
  EXPECT_TRUE(m.first_batch_seen());
  EXPECT_EQ(m.first_batch_at(), at_ms(7));
  m.feed("step 2 loss=1.0\n", at_ms(9));
  EXPECT_EQ(m.first_batch_at(), at_ms(7));
}

TEST(StdoutMatcher, LastLineWithoutNewlineMatchesAtFinish) {
  StdoutMatcher m("first batch");
  m.feed("first batch in", at_ms(3));
  EXPECT_FALSE(m.first_batch_seen());
  m.finish();
  EXPECT_TRUE(m.first_batch_seen());
  EXPECT_EQ(m.first_batch_at(), at_ms(3));
}

TEST(StdoutMatcher, CarriageReturnEndsALine) {
  // A progress bar redraws its line with '\r' and prints no '\n' until it is done.
  StdoutMatcher m("^step 0");
  m.feed("loading  10%\rloading  50%\rloading 100%\rstep 0 loss=2.3\r", at_ms(4));
  EXPECT_TRUE(m.first_batch_seen());
  EXPECT_EQ(m.first_batch_at(), at_ms(4));
}

TEST(StdoutMatcher, OverlongLinesAreSkipped) {
  StdoutMatcher m("step");
  m.feed(std::string(StdoutMatcher::kMaxLine + 10, 'x') + "step\n", at_ms(1));
  EXPECT_FALSE(m.first_batch_seen());
  m.feed("step 0\n", at_ms(2));
  EXPECT_TRUE(m.first_batch_seen());
}

TEST(StdoutMatcher, InvalidRegexThrows) { EXPECT_THROW(StdoutMatcher("(unclosed"), std::regex_error); }

}  // namespace
}  // namespace ttfb::worker
