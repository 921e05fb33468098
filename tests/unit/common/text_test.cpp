#include "common/text.hpp"

#include <gtest/gtest.h>

namespace ttfb {
namespace {

TEST(Text, Sha256MatchesTheStandardTestVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Text, LastLineSkipsTrailingBlankLinesAndIsBounded) {
  EXPECT_EQ(last_line("first\nerror: patch failed\n\n  \n"), "error: patch failed");
  EXPECT_EQ(last_line(""), "");
  EXPECT_EQ(last_line(std::string(400, 'x'), 10), "xxxxxxxxxx...");
}

TEST(Text, TailKeepsTheEnd) {
  EXPECT_EQ(tail_of("abcdef", 3), "def");
  EXPECT_EQ(tail_of("ab", 3), "ab");
  const unsigned char bytes[] = {0x00, 0xab, 0xff};
  EXPECT_EQ(to_hex(bytes, 3), "00abff");
}

TEST(Text, APlainRelativePathStaysInsideItsDirectory) {
  for (const char* ok : {"a", "a/b", "vendor/dataload", ".hidden/x", "a..b/c", "..a"}) EXPECT_TRUE(is_plain_relative_path(ok)) << ok;
  for (const char* bad : {"", "/a", "a/", "a//b", "./a", "a/.", "..", "a/../b", "../a"})
    EXPECT_FALSE(is_plain_relative_path(bad)) << bad;
  EXPECT_FALSE(is_plain_relative_path(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace ttfb
