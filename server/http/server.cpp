#include "server/http/server.hpp"

#include "common/errors.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <array>

namespace ttfb {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, const HttpHandler& handler, const HttpServerOptions& options)
      : stream_(std::move(socket)), handler_(handler), options_(options) {}

  void run() { net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); }); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted) {
      return do_close();  // the peer left or was idle too long: nothing to answer
    }
    if (ec == http::error::body_limit) {
      return send_error(ErrorCode::payload_too_large,
                        "request body is larger than the limit of " + std::to_string(options_.body_limit) + " bytes",
                        false);
    }
    if (ec) return send_error(ErrorCode::invalid_argument, "malformed HTTP request: " + ec.message(), false);

    auto req = parser_->release();
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    auto q = r.target.find('?');
    r.path = percent_decode(r.target.substr(0, q));
    if (q != std::string::npos) r.query = parse_query(r.target.substr(q + 1));
    r.body = std::move(req.body());
    if (auto it = req.find(http::field::authorization); it != req.end()) r.authorization = std::string(it->value());
    if (auto it = req.find(http::field::accept); it != req.end()) r.accept = std::string(it->value());

    auto self = shared_from_this();
    handler_(std::move(r), [self](HttpAnswer answer) {
      net::post(self->stream_.get_executor(), [self, answer = std::move(answer)]() mutable { self->write(std::move(answer)); });
    });
  }

  void send_error(ErrorCode code, const std::string& message, bool keep_alive) {
    keep_alive_ = keep_alive;
    HttpAnswer a;
    a.status = http_status(code);
    a.body = error_body(code, message);
    write(std::move(a));
  }

  void write(HttpAnswer answer) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(answer.status), 11);
    res->set(http::field::server, "ttfb-lab");
    res->set(http::field::content_type, answer.content_type);
    res->set("X-Content-Type-Options", "nosniff");
    for (const auto& [k, v] : answer.headers) res->set(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(answer.body);
    res->prepare_payload();
    stream_.expires_after(options_.read_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->do_close();
      if (!self->keep_alive_) return self->do_close();
      self->do_read();
    });
  }

  void do_close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);  // best effort: the peer may be gone
    // Lingering close: a client still sending a body we refused (413) would get a reset, and lose
    // our answer, if we closed with unread data. Read and discard for a bounded time and amount.
    drained_ = 0;
    drain();
  }

  void drain() {
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kMaxDrainBytes) return;  // peer done, timed out, or too much: the socket closes
      self->drain();
    });
  }

  static constexpr std::size_t kMaxDrainBytes = 64 * 1024 * 1024;
  std::array<char, 16 * 1024> drain_buf_{};
  std::size_t drained_ = 0;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpHandler handler_;        // copies: a session may outlive the server that accepted it
  HttpServerOptions options_;
  bool keep_alive_ = false;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(const std::string& query) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < query.size()) {
    auto amp = query.find('&', start);
    if (amp == std::string::npos) amp = query.size();
    std::string part = query.substr(start, amp - start);
    auto eq = part.find('=');
    if (!part.empty()) {
      if (eq == std::string::npos) out[percent_decode(part)] = "";
      else out[percent_decode(part.substr(0, eq))] = percent_decode(part.substr(eq + 1));
    }
    start = amp + 1;
  }
  return out;
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(net::io_context& ioc, const tcp::endpoint& ep, HttpHandler h, HttpServerOptions o)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), handler_(std::move(h)), options_(o) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<Session>(std::move(socket), self->handler_, self->options_)->run();
      } else {
        spdlog::warn("accept: {}", ec.message());
      }
      self->accept();
    });
  }
  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  HttpHandler handler_;
  HttpServerOptions options_;
};

HttpServer::HttpServer(net::io_context& ioc, const tcp::endpoint& endpoint, HttpHandler handler, HttpServerOptions options)
    : impl_(std::make_shared<Impl>(ioc, endpoint, std::move(handler), options)) {}

HttpServer::~HttpServer() = default;

void HttpServer::start() { impl_->accept(); }

void HttpServer::stop() {
  net::post(impl_->acceptor_.get_executor(), [impl = impl_] {
    beast::error_code ec;
    impl->acceptor_.close(ec);  // pending accept ends with operation_aborted
  });
}

unsigned short HttpServer::port() const { return impl_->acceptor_.local_endpoint().port(); }

}  // namespace ttfb
