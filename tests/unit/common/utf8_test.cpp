#include "common/utf8.hpp"

#include "common/errors.hpp"
#include "common/text.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ttfb {
namespace {

TEST(Utf8, ValidatesLikeTheStandardSays) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // é € 😀
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("caf\xE9"));            // Latin-1
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));           // cut short
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));           // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));       // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));   // above U+10FFFF
}

TEST(Utf8, ReplacesBadBytesAndKeepsGoodOnes) {
  EXPECT_EQ(to_valid_utf8("ok \xC3\xA9"), "ok \xC3\xA9");
  EXPECT_EQ(to_valid_utf8("a\xffz"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(to_valid_utf8("end \xE2\x82"), "end \xEF\xBF\xBD");
  EXPECT_TRUE(is_valid_utf8(to_valid_utf8("\x80\x80\xC3(\xF0\x9F\x98")));
}

TEST(Utf8, CutsOnlyBetweenCharacters) {
  const std::string euro = "ab\xE2\x82\xAC";  // 5 bytes, the last character 3 long
  EXPECT_EQ(utf8_prefix(euro, 4), "ab");
  EXPECT_EQ(utf8_prefix(euro, 5), euro);
  EXPECT_EQ(utf8_suffix(euro, 2), "");
  EXPECT_EQ(utf8_suffix(euro, 3), "\xE2\x82\xAC");
  EXPECT_EQ(utf8_suffix("\xE2\x82\xAC" "cd", 4), "cd");
  EXPECT_EQ(utf8_prefix(std::string(10, '\x80'), 4).size(), 4u) << "not UTF-8: cut at the byte";
}

TEST(Utf8, OutputTailsAndErrorBodiesAreAlwaysValidJson) {
  // git's or a build's message cut in the middle of a character (issue 13: the server died of it).
  const std::string output = std::string(5000, 'x') + "\n error: \xE2\x82\xAC caf\xE9";
  const std::string tail = tail_of(output, 4000 + 2);
  EXPECT_TRUE(is_valid_utf8(tail));
  EXPECT_TRUE(is_valid_utf8(last_line("msg \xE2\x82\xAC\xE2\x82\xAC", 6)));
  const std::string body = error_body(ErrorCode::invalid_argument, "bad \xff path", "details \xE2\x82");
  boost::json::error_code ec;
  const auto v = boost::json::parse(body, ec);
  ASSERT_FALSE(ec) << body;
  EXPECT_EQ(v.at("error").at("message").as_string(), "bad \xEF\xBF\xBD path");
}

}  // namespace
}  // namespace ttfb
