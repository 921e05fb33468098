// A small synchronous HTTP client (libcurl) for the worker and the CLI talking to the server,
// over http:// or https://. With https the server's certificate and host name are always
// verified: against the system's CA certificates, or the PEM file that TTFB_LAB_CA_FILE names
// (a private CA, or the server's own self-signed certificate). Redirects are not followed (a
// bearer token never goes to another host); proxies from the environment are used except for
// the loopback addresses.
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
  // base_url: "http://host:port" or "https://host:port" (a trailing slash is ignored). token:
  // bearer token, may be empty. Throws std::invalid_argument for another scheme or no host.
  HttpClient(std::string base_url, std::string token,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

  HttpResponse get(const std::string& target) const;
  HttpResponse post(const std::string& target, const std::string& json_body) const;
  HttpResponse request(const std::string& method, const std::string& target,
                       const std::string& body, const std::string& content_type = "application/json") const;

  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
  std::string token_;
  std::string ca_file_;
  std::chrono::milliseconds timeout_;
};

}  // namespace ttfb
