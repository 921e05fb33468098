#include "common/errors.hpp"

#include "common/utf8.hpp"

#include <boost/json.hpp>

namespace ttfb {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::unauthenticated: return "unauthenticated";
    case ErrorCode::permission_denied: return "permission_denied";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::conflict: return "conflict";
    case ErrorCode::payload_too_large: return "payload_too_large";
    case ErrorCode::unavailable: return "unavailable";
    case ErrorCode::internal: return "internal";
  }
  return "internal";
}

ErrorCode error_code_from_string(std::string_view name) {
  for (auto c : {ErrorCode::invalid_argument, ErrorCode::unauthenticated, ErrorCode::permission_denied,
                 ErrorCode::not_found, ErrorCode::conflict, ErrorCode::payload_too_large, ErrorCode::unavailable}) {
    if (to_string(c) == name) return c;
  }
  return ErrorCode::internal;
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return 400;
    case ErrorCode::unauthenticated: return 401;
    case ErrorCode::permission_denied: return 403;
    case ErrorCode::not_found: return 404;
    case ErrorCode::conflict: return 409;
    case ErrorCode::payload_too_large: return 413;
    case ErrorCode::unavailable: return 503;
    case ErrorCode::internal: return 500;
  }
  return 500;
}

boost::json::object error_json(ErrorCode code, std::string_view message, std::string_view details) {
  boost::json::object err{{"code", to_string(code)}, {"message", to_valid_utf8(message)}, {"details", to_valid_utf8(details)}};
  return boost::json::object{{"error", std::move(err)}};
}

std::string error_body(ErrorCode code, std::string_view message, std::string_view details) {
  return boost::json::serialize(error_json(code, message, details));
}

}  // namespace ttfb
