// One vocabulary of errors for the whole project, mapped to HTTP once.
//
//   throw ttfb::ApiError(ttfb::ErrorCode::invalid_argument, "unknown workflow 'x'", "known: a, b");
//   ...
//   res.result(ttfb::http_status(e.code())); res.body() = ttfb::error_body(e);
//
// Internal detail (stack, SQL) is logged by the server, never sent: `internal` errors carry a
// generic message.
#pragma once

#include <boost/json/object.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

namespace ttfb {

enum class ErrorCode {
  invalid_argument,   // 400: the request says something wrong (bad JSON, unknown workflow, bad diff)
  unauthenticated,    // 401: no token, or an unknown/revoked one
  permission_denied,  // 403: the token lacks the scope
  not_found,          // 404
  conflict,           // 409: state forbids it (lease lost, already finished)
  payload_too_large,  // 413
  unavailable,        // 503: the database (or another dependency) is away; retry later
  internal,           // 500
};

std::string_view to_string(ErrorCode code);
// Parses the wire name back ("not_found" -> ErrorCode::not_found); unknown names give internal.
ErrorCode error_code_from_string(std::string_view name);
int http_status(ErrorCode code);

class ApiError : public std::runtime_error {
 public:
  ApiError(ErrorCode code, std::string message, std::string details = "")
      : std::runtime_error(std::move(message)), code_(code), details_(std::move(details)) {}
  ErrorCode code() const { return code_; }
  const std::string& details() const { return details_; }

 private:
  ErrorCode code_;
  std::string details_;
};

// {"error": {"code": ..., "message": ..., "details": ...}} as a JSON value. Message and details
// may quote anything a client or a process sent: bytes that are not UTF-8 become U+FFFD, so the
// value always serialises to valid JSON (it is never serialised and parsed again).
boost::json::object error_json(ErrorCode code, std::string_view message, std::string_view details = "");
inline boost::json::object error_json(const ApiError& e) { return error_json(e.code(), e.what(), e.details()); }
// The same, serialised.
std::string error_body(ErrorCode code, std::string_view message, std::string_view details = "");
inline std::string error_body(const ApiError& e) { return error_body(e.code(), e.what(), e.details()); }

}  // namespace ttfb
