// A small synchronous HTTP/1.1 client (Boost.Beast) for the worker and the CLI talking to the
// server. Plain http only: put a TLS-terminating proxy in front of the server for remote fleets.
//
//   ttfb::HttpClient client("http://127.0.0.1:8080", token);
//   auto r = client.post("/api/v1/worker/claim", R"({"worker":{"name":"w1"}})");
//   if (r.status == 200) ...
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

namespace ttfb {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::string content_type;
};

// The server could not be reached at all (connection refused, timeout, reset): a transport
// failure, as opposed to an HTTP error status, so callers can retry it.
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class HttpClient {
 public:
  // base_url: "http://host:port" (a trailing slash is ignored). token: bearer token, may be empty.
  HttpClient(std::string base_url, std::string token,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

  HttpResponse get(const std::string& target) const;
  HttpResponse post(const std::string& target, const std::string& json_body) const;
  HttpResponse request(const std::string& method, const std::string& target,
                       const std::string& body, const std::string& content_type = "application/json") const;

  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
  std::string host_;
  std::string port_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace ttfb
