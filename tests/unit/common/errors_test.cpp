#include "common/errors.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ttfb {
namespace {

TEST(Errors, EveryCodeMapsToItsHttpStatus) {
  EXPECT_EQ(http_status(ErrorCode::invalid_argument), 400);
  EXPECT_EQ(http_status(ErrorCode::unauthenticated), 401);
  EXPECT_EQ(http_status(ErrorCode::permission_denied), 403);
  EXPECT_EQ(http_status(ErrorCode::not_found), 404);
  EXPECT_EQ(http_status(ErrorCode::conflict), 409);
  EXPECT_EQ(http_status(ErrorCode::payload_too_large), 413);
  EXPECT_EQ(http_status(ErrorCode::unavailable), 503);
  EXPECT_EQ(http_status(ErrorCode::internal), 500);
}

TEST(Errors, NamesRoundTrip) {
  for (auto c : {ErrorCode::invalid_argument, ErrorCode::unauthenticated, ErrorCode::permission_denied,
                 ErrorCode::not_found, ErrorCode::conflict, ErrorCode::payload_too_large, ErrorCode::unavailable,
                 ErrorCode::internal}) {
    EXPECT_EQ(error_code_from_string(to_string(c)), c);
  }
  EXPECT_EQ(error_code_from_string("no-such-code"), ErrorCode::internal);
}

TEST(Errors, BodyHasCodeMessageAndDetailsAndEscapesText) {
  ApiError e(ErrorCode::invalid_argument, "bad \"diff\"\n", "git said: error: patch failed");
  auto v = boost::json::parse(error_body(e)).as_object();
  const auto& err = v.at("error").as_object();
  EXPECT_EQ(err.at("code").as_string(), "invalid_argument");
  EXPECT_EQ(err.at("message").as_string(), "bad \"diff\"\n");
  EXPECT_EQ(err.at("details").as_string(), "git said: error: patch failed");
}

}  // namespace
}  // namespace ttfb
