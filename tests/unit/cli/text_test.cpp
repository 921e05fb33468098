// The CLI's shared text helpers (cli/text.hpp): null-safe JSON reads and the number, SHA, time
// and table formats every report uses.
#include "cli/text.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ttfb::cli::text {
namespace {
namespace json = boost::json;

TEST(Text, FieldsReadNullAndAbsentAsTheFallback) {
  const auto o = json::parse(R"({"s": "v1.1", "n": 3, "d": 2.5, "z": null, "b": true, "o": {"k": 1}, "a": [1]})").as_object();
  EXPECT_EQ(field(o, "s"), "v1.1");
  EXPECT_EQ(field(o, "n"), "3");
  EXPECT_EQ(field(o, "b"), "true");
  EXPECT_EQ(field(o, "z"), "-");
  EXPECT_EQ(field(o, "missing"), "-");
  EXPECT_EQ(field(o, "z", ""), "");
  EXPECT_EQ(str(nullptr, "?"), "?");

  EXPECT_EQ(num(o, "n"), 3.0);
  EXPECT_EQ(num(o, "d"), 2.5);
  EXPECT_FALSE(num(o, "z").has_value());
  EXPECT_FALSE(num(o, "s").has_value());
  EXPECT_FALSE(num(o, "missing").has_value());
  EXPECT_EQ(num(json::parse(R"({"u": 18446744073709551615})").as_object(), "u"), 18446744073709551615.0);

  ASSERT_NE(object_field(o, "o"), nullptr);
  EXPECT_EQ(object_field(o, "o")->at("k").as_int64(), 1);
  EXPECT_EQ(object_field(o, "a"), nullptr);
  EXPECT_EQ(object_field(o, "z"), nullptr);
  ASSERT_NE(array_field(o, "a"), nullptr);
  EXPECT_EQ(array_field(o, "a")->size(), 1u);
  EXPECT_EQ(array_field(o, "o"), nullptr);
  EXPECT_EQ(array_field(o, "missing"), nullptr);
}

TEST(Text, NumbersEffectsAndPValues) {
  EXPECT_EQ(fmt("%.1f ms", 812.54), "812.5 ms");
  EXPECT_EQ(format_p(0.61), "0.6100");
  EXPECT_EQ(format_p(0.0003), "0.0003");
  EXPECT_EQ(format_p(2e-8), "2.0e-08");
  EXPECT_EQ(format_effect(38.2, 33.1, 43.5), "+38.2% [+33.1, +43.5]");
  EXPECT_EQ(format_effect(-6.1, -8.0, -4.2), "-6.1% [-8.0, -4.2]");
  EXPECT_EQ(format_effect(38.2, std::nullopt, 43.5), "+38.2%");
  EXPECT_EQ(format_effect(std::nullopt, 1.0, 2.0), "-");
  EXPECT_EQ(count(1, "culprit", "culprits"), "1 culprit");
  EXPECT_EQ(count(2, "culprit", "culprits"), "2 culprits");
  EXPECT_EQ(count(0, "culprit", "culprits"), "0 culprits");
}

TEST(Text, ShasDurationsAndTimes) {
  EXPECT_EQ(short_sha("60c38cb5e1f2a3b4c5d6e7f8091a2b3c4d5e6f70"), "60c38cb");
  EXPECT_EQ(short_sha("abc"), "abc");
  EXPECT_EQ(short_sha(""), "");
  EXPECT_EQ(format_duration(0), "0 s");
  EXPECT_EQ(format_duration(-3), "0 s");
  EXPECT_EQ(format_duration(42.4), "42 s");
  EXPECT_EQ(format_duration(95.2), "1 min 35 s");
  EXPECT_EQ(format_duration(7500), "2 h 5 min");
  EXPECT_EQ(format_time("2026-11-23T12:00:00.123Z"), "2026-11-23 12:00");
  EXPECT_EQ(format_time("2026-11-23 12:00:00.1+00"), "2026-11-23 12:00");
  EXPECT_EQ(format_time(""), "-");
  EXPECT_EQ(format_time("-"), "-");
}

TEST(Text, PercentEncodingKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(percent_encode("v1.1-rc_2~x"), "v1.1-rc_2~x");
  // '+' must be encoded: the server decodes a bare '+' in a path or query as a space.
  EXPECT_EQ(percent_encode("v1.1+hotfix"), "v1.1%2Bhotfix");
  EXPECT_EQ(percent_encode("a b/c&d=e"), "a%20b%2Fc%26d%3De");
  EXPECT_EQ(percent_encode("\xc3\xa9"), "%C3%A9");
}

TEST(Text, TablesAlignColumnsAndTrimTrailingSpace) {
  EXPECT_EQ(format_table({{"id", "status", "culprits"}, {"7", "found", "60c38cb"}, {"12", "searching", ""}}),
            "  id  status     culprits\n"
            "  7   found      60c38cb\n"
            "  12  searching\n");
  EXPECT_EQ(format_table({{"a", "b"}, {"long", "x"}}, ""), "a     b\nlong  x\n");
  EXPECT_EQ(format_table({}), "");
  EXPECT_EQ(pad("ab", 4), "ab  ");
  EXPECT_EQ(pad("abcdef", 4), "abcdef");
}

TEST(Text, ColourOnlyWhenAsked) {
  EXPECT_EQ(paint("blocked", "1;31", false), "blocked");
  EXPECT_EQ(paint("blocked", "1;31", true), "\033[1;31mblocked\033[0m");
}

}  // namespace
}  // namespace ttfb::cli::text
