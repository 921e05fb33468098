#include "common/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ttfb {
namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr std::size_t kMaxResponseBytes = 64 * 1024 * 1024;
}  // namespace

HttpClient::HttpClient(std::string base_url, std::string token, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), token_(std::move(token)), timeout_(timeout) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  const std::string scheme = "http://";
  if (base_url_.rfind(scheme, 0) != 0) {
    throw std::invalid_argument("server URL must start with http:// (got '" + base_url_ + "')");
  }
  std::string hostport = base_url_.substr(scheme.size());
  if (auto slash = hostport.find('/'); slash != std::string::npos) hostport.resize(slash);
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos || hostport.back() == ']') {
    host_ = hostport;
    port_ = "80";
  } else {
    host_ = hostport.substr(0, colon);
    port_ = hostport.substr(colon + 1);
  }
  if (host_.size() > 2 && host_.front() == '[' && host_.back() == ']') host_ = host_.substr(1, host_.size() - 2);
  if (host_.empty()) throw std::invalid_argument("server URL has no host: '" + base_url_ + "'");
}

HttpResponse HttpClient::get(const std::string& target) const { return request("GET", target, ""); }

HttpResponse HttpClient::post(const std::string& target, const std::string& json_body) const {
  return request("POST", target, json_body);
}

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& content_type) const {
  net::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  try {
    auto results = resolver.resolve(host_, port_);
    stream.expires_after(timeout_);
    stream.connect(results);

    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host_ + ":" + port_);
    req.set(http::field::user_agent, "ttfb-lab/0.1");
    req.set(http::field::accept, "application/json");
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    if (!body.empty() || method == "POST") {
      req.set(http::field::content_type, content_type);
      req.body() = body;
      req.prepare_payload();
    }
    stream.expires_after(timeout_);
    http::write(stream, req);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    stream.expires_after(timeout_);
    http::read(stream, buffer, parser);
    auto res = parser.release();

    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);  // best effort: the answer is in

    HttpResponse out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    if (auto it = res.find(http::field::content_type); it != res.end()) out.content_type = std::string(it->value());
    return out;
  } catch (const boost::system::system_error& e) {
    throw TransportError("cannot reach the ttfb-lab server at " + base_url_ + " (" + method + " " + target +
                         "): " + e.code().message());
  }
}

}  // namespace ttfb
