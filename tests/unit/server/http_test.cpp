#include "server/http/server.hpp"

#include <gtest/gtest.h>

namespace ttfb {
namespace {

TEST(Http, QueryStringsAreSplitAndDecoded) {
  auto q = parse_query("status=done&repo=my%20repo&limit=5&flag&name=a+b&bad=%zz");
  EXPECT_EQ(q.at("status"), "done");
  EXPECT_EQ(q.at("repo"), "my repo");
  EXPECT_EQ(q.at("limit"), "5");
  EXPECT_EQ(q.at("flag"), "");
  EXPECT_EQ(q.at("name"), "a b");
  EXPECT_EQ(q.at("bad"), "%zz") << "an invalid escape is kept as it is";
  EXPECT_TRUE(parse_query("").empty());
}

TEST(Http, PercentDecodingHandlesTruncatedEscapes) {
  EXPECT_EQ(percent_decode("/api/v1/workflows/a%2Db"), "/api/v1/workflows/a-b");
  EXPECT_EQ(percent_decode("abc%4"), "abc%4");
  EXPECT_EQ(percent_decode("%"), "%");
}

}  // namespace
}  // namespace ttfb
