#include "server/http/server.hpp"

#include "common/errors.hpp"
#include "common/utf8.hpp"
#include "server/http/target.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <map>
#include <mutex>

namespace ttfb {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Counts open connections, in all and per client address, and refuses one over the limits: a
// client that opens connections and sends nothing (or one byte a second) holds each for at most
// the read timeout, and can hold no more than its share of them.
class ConnectionLimits : public std::enable_shared_from_this<ConnectionLimits> {
 public:
  ConnectionLimits(std::size_t max_total, std::size_t max_per_client) : max_total_(max_total), max_per_client_(max_per_client) {}

  // A ticket while the connection is open (released with it), or nullptr when over a limit.
  std::shared_ptr<void> admit(const net::ip::address& client) {
    std::lock_guard lock(mu_);
    auto& mine = per_client_[client];
    if (total_ >= max_total_ || mine >= max_per_client_) {
      if (mine == 0) per_client_.erase(client);
      return nullptr;
    }
    ++total_;
    ++mine;
    return std::make_shared<Ticket>(shared_from_this(), client);
  }

 private:
  // Gives the place back when the last copy goes (the session that holds it is gone).
  struct Ticket {
    Ticket(std::shared_ptr<ConnectionLimits> limits, net::ip::address client) : limits(std::move(limits)), client(client) {}
    ~Ticket() { limits->release(client); }
    std::shared_ptr<ConnectionLimits> limits;
    net::ip::address client;
  };

  void release(const net::ip::address& client) {
    std::lock_guard lock(mu_);
    --total_;
    if (auto it = per_client_.find(client); it != per_client_.end() && --it->second == 0) per_client_.erase(it);
  }
  std::mutex mu_;
  std::size_t total_ = 0;
  std::map<net::ip::address, std::size_t> per_client_;
  const std::size_t max_total_;
  const std::size_t max_per_client_;
};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
constexpr bool is_tls(const beast::tcp_stream*) { return false; }
constexpr bool is_tls(const TlsStream*) { return true; }

// One connection: read a request (with a timeout and a body cap), hand it to the handler, write
// the answer, repeat while keep-alive. Stream is a plain tcp_stream or a TLS stream over one.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(Stream&& stream, const HttpHandler& handler, const HttpServerOptions& options, std::shared_ptr<void> ticket)
      : stream_(std::move(stream)), handler_(handler), options_(options), ticket_(std::move(ticket)) {}

  void run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      if constexpr (is_tls(static_cast<Stream*>(nullptr))) {
        // The handshake shares the read timeout: a client that connects and says nothing goes.
        self->lowest().expires_after(self->options_.read_timeout);
        self->stream_.async_handshake(net::ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return;  // not TLS, or a failed handshake: nothing can be answered; the socket closes
          self->do_read();
        });
      } else {
        self->do_read();
      }
    });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  auto shared_from_this() { return std::enable_shared_from_this<Session<Stream>>::shared_from_this(); }

  void do_read() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(16 * 1024);
    lowest().expires_after(options_.read_timeout);
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
    std::string refused;
    auto target = parse_target(req.target(), refused);
    if (!target) return send_error(ErrorCode::invalid_argument, refused, keep_alive_);
    HttpRequest r;
    // An unknown method keeps its name out of everything downstream (routes, logs, metric labels).
    r.method = req.method() == http::verb::unknown ? "OTHER" : std::string(req.method_string());
    r.target = std::string(req.target());
    r.path = std::move(target->path);
    r.query = std::move(target->query);
    r.body = std::move(req.body());
    if (auto it = req.find(http::field::authorization); it != req.end()) r.authorization = std::string(it->value());
    if (auto it = req.find(http::field::accept); it != req.end()) r.accept = std::string(it->value());

    auto self = shared_from_this();
    auto respond = [self](HttpAnswer answer) {
      net::post(self->stream_.get_executor(), [self, answer = std::move(answer)]() mutable { self->write(std::move(answer)); });
    };
    // The last line of defence: whatever the handler throws ends this request with a 500, never
    // the process (an exception escaping an Asio handler would reach std::terminate).
    try {
      handler_(std::move(r), respond);
    } catch (const std::exception& e) {
      spdlog::error("{} {}: the handler threw: {}", req.method_string(), loggable_target(req.target()), e.what());
      send_error(ErrorCode::internal, "internal error", false);
    } catch (...) {
      spdlog::error("{} {}: the handler threw a non-exception", req.method_string(), loggable_target(req.target()));
      send_error(ErrorCode::internal, "internal error", false);
    }
  }

  // The target for a log line: valid UTF-8, at most 200 bytes.
  static std::string loggable_target(std::string_view target) {
    return to_valid_utf8(utf8_prefix(target, 200));
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
    lowest().expires_after(options_.read_timeout);
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->do_close();
      if (!self->keep_alive_) return self->do_close();
      self->do_read();
    });
  }

  void do_close() {
    if (closing_) return;
    closing_ = true;
    if constexpr (is_tls(static_cast<Stream*>(nullptr))) {
      // TLS: say close_notify, bounded by the same deadline; the socket closes with the session.
      lowest().expires_after(kDrainTime);
      stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
      return;
    }
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);  // best effort: the peer may be gone
    // Lingering close: a client still sending a body we refused (413) would get a reset, and lose
    // our answer, if we closed with unread data. Read and discard, bounded in time (one deadline
    // for the whole drain, so a client trickling a byte a second cannot extend it) and amount.
    drained_ = 0;
    lowest().expires_after(kDrainTime);
    drain();
  }

  void drain() {
    lowest().async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->drained_ += n;
      if (ec || self->drained_ > kMaxDrainBytes) return;  // peer done, timed out, or too much: the socket closes
      self->drain();
    });
  }

  static constexpr auto kDrainTime = std::chrono::seconds(2);
  static constexpr std::size_t kMaxDrainBytes = 8 * 1024 * 1024;
  bool closing_ = false;
  std::array<char, 16 * 1024> drain_buf_{};
  std::size_t drained_ = 0;

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpHandler handler_;        // copies: a session may outlive the server that accepted it
  HttpServerOptions options_;
  std::shared_ptr<void> ticket_;  // this connection's place in the limits
  bool keep_alive_ = false;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(net::io_context& ioc, const tcp::endpoint& ep, HttpHandler h, HttpServerOptions o)
      : ioc_(ioc),
        acceptor_(net::make_strand(ioc)),
        handler_(std::move(h)),
        options_(o),
        limits_(std::make_shared<ConnectionLimits>(o.max_connections, o.max_connections_per_client)) {
    if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
      if (o.tls_cert_file.empty() || o.tls_key_file.empty())
        throw std::runtime_error("TLS needs both a certificate file and a key file");
      // TLS 1.2 and later only; the certificate file may hold the chain after the leaf.
      tls_ = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
      tls_->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                        net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                        net::ssl::context::single_dh_use);
      try {
        tls_->use_certificate_chain_file(o.tls_cert_file);
        tls_->use_private_key_file(o.tls_key_file, net::ssl::context::pem);
      } catch (const boost::system::system_error& e) {
        throw std::runtime_error("cannot load the TLS certificate " + o.tls_cert_file + " and key " + o.tls_key_file +
                                 ": " + e.code().message());
      }
    }
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(net::socket_base::max_listen_connections);
  }
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        beast::error_code peer_ec;
        const auto peer = socket.remote_endpoint(peer_ec);
        auto ticket = peer_ec ? nullptr : self->limits_->admit(peer.address());
        if (ticket && self->tls_) {
          std::make_shared<Session<TlsStream>>(TlsStream(std::move(socket), *self->tls_), self->handler_, self->options_,
                                               std::move(ticket))
              ->run();
        } else if (ticket) {
          std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(socket)), self->handler_,
                                                       self->options_, std::move(ticket))
              ->run();
        } else {
          // Over the limit: closed at once, before reading a byte (the client may retry later).
          if (!peer_ec) spdlog::warn("connection from {} refused: connection limit reached", peer.address().to_string());
          socket.close(peer_ec);
        }
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
  std::shared_ptr<ConnectionLimits> limits_;
  std::shared_ptr<net::ssl::context> tls_;  // set: every connection speaks TLS
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
