// Reading request bodies (server/api/fields.hpp): the cases fuzz/json_body_fuzz found or guards.
#include "server/api/fields.hpp"

#include "common/errors.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include <string>

namespace {

std::string refusal(const std::string& body) {
  try {
    ttfb::parse_body(body);
  } catch (const ttfb::ApiError& e) {
    EXPECT_EQ(e.code(), ttfb::ErrorCode::invalid_argument);
    return e.what();
  }
  return "";
}

// Found by json_body_fuzz (fuzz/corpus/json_body/regression-number-overflow): Boost.JSON reads
// 11e308 as infinity and writes it back as `Infinity`, which is not JSON.
TEST(ParseBody, RefusesNumbersBeyondADoublesRange) {
  EXPECT_NE(refusal(R"({"leasWe_id": "9f2c", "attempt": 11e308})").find("too large for a double"), std::string::npos);
  EXPECT_NE(refusal(R"({"samples": [{"cpu_ms": -1e999}]})").find("too large for a double"), std::string::npos);
  // Small and large finite numbers stay, and serialise back to JSON.
  const auto o = ttfb::parse_body(R"({"a": 1e308, "b": 1e-400, "c": -0.5})");
  EXPECT_NO_THROW(boost::json::parse(boost::json::serialize(o)));
}

// Found by json_body_fuzz (fuzz/corpus/json_body/regression-workflow-name-nul): a workflow name
// with a NUL passed, while every other string field refuses one (PostgreSQL's text cannot hold it).
TEST(WorkflowNames, RefuseANameWithANul) {
  const auto body = ttfb::parse_body(R"({"workflows": ["example\u0000"]})");
  try {
    ttfb::workflow_names(body);
    FAIL() << "a NUL in a workflow name was accepted";
  } catch (const ttfb::ApiError& e) {
    EXPECT_EQ(e.code(), ttfb::ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ttfb::workflow_names(ttfb::parse_body(R"({"workflows": ["a", "b"]})")), (std::vector<std::string>{"a", "b"}));
}

TEST(ParseBody, RefusesNestingDeeperThanTheLimit) {
  const std::size_t d = ttfb::kMaxBodyDepth;
  EXPECT_NO_THROW(ttfb::parse_body("{\"a\":" + std::string(d - 1, '[') + std::string(d - 1, ']') + "}"));
  EXPECT_NE(refusal(std::string(d + 1, '[') + std::string(d + 1, ']')).find("nested deeper"), std::string::npos);
  EXPECT_NE(refusal(std::string(100000, '[')).find("nested deeper"), std::string::npos);
}

}  // namespace
