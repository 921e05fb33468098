// The HTTP front of the server (Boost.Beast on one io_context run by N threads): accepts
// connections, reads requests with a timeout and a body cap, hands each request to a Handler
// and writes the answer back on the connection's strand. It knows nothing of the API.
//
//   ttfb::HttpServer server(ioc, endpoint, handler, {.body_limit = 4 << 20});   // or, for HTTPS,
//   ... {.tls_cert_file = "server.crt", .tls_key_file = "server.key"}
//   server.start();  ioc.run();
//
// The handler must call `respond` exactly once, from any thread (blocking work belongs on a
// separate pool, never on the I/O threads).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ttfb {

struct HttpRequest {
  std::string method;
  std::string target;                          // as sent, with the query
  std::string path;                            // without the query, percent-decoded
  std::map<std::string, std::string> query;    // decoded
  std::string body;
  std::string authorization;                   // the Authorization header
  std::string accept;
};

struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<void(HttpRequest, std::function<void(HttpAnswer)> respond)>;

struct HttpServerOptions {
  std::size_t body_limit = 4 * 1024 * 1024;
  std::chrono::seconds read_timeout{30};  // a whole request (headers and body) must arrive within it
  std::size_t max_connections = 1024;           // open at once; more are closed on accept
  std::size_t max_connections_per_client = 64;  // from one client address
  // Both set: the server speaks HTTPS only (TLS 1.2+, PEM files; the certificate file may hold
  // the chain). Neither: plain HTTP, for a loopback address or behind a TLS-terminating proxy.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  // Throws std::runtime_error when the TLS files cannot be loaded, boost::system::system_error
  // when the endpoint cannot be bound.
  HttpServer(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& endpoint, HttpHandler handler,
             HttpServerOptions options);
  ~HttpServer();
  void start();
  void stop();
  unsigned short port() const;  // the bound port (useful with port 0)

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Request targets are read by parse_target (server/http/target.hpp): a target that is not
// UTF-8 after decoding, or climbs with "..", is answered 400 before any handler sees it.

}  // namespace ttfb
