// The HTTP front as an attacker meets it: request targets read as untrusted bytes, and a real
// HttpServer on a loopback port that must answer every hostile request and keep serving.
#include "server/http/server.hpp"
#include "server/http/target.hpp"

#include "common/http_client.hpp"
#include "common/utf8.hpp"

#include <arpa/inet.h>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ttfb {
namespace {

using namespace std::chrono_literals;

TEST(Http, QueryStringsAreSplitAndDecoded) {
  auto q = parse_query("status=done&repo=my%20repo&limit=5&flag&name=a+b&bad=%zz");
  EXPECT_EQ(q.at("status"), "done");
  EXPECT_EQ(q.at("repo"), "my repo");
  EXPECT_EQ(q.at("limit"), "5");
  EXPECT_EQ(q.at("flag"), "");
  EXPECT_EQ(q.at("name"), "a b");
  EXPECT_EQ(q.at("bad"), "%zz") << "an invalid escape is kept as it is";
  EXPECT_TRUE(parse_query("").empty());
}

TEST(Http, PercentDecodingHandlesTruncatedEscapes) {
  EXPECT_EQ(percent_decode("/api/v1/workflows/a%2Db"), "/api/v1/workflows/a-b");
  EXPECT_EQ(percent_decode("abc%4"), "abc%4");
  EXPECT_EQ(percent_decode("%"), "%");
  EXPECT_EQ(percent_decode("a+b", false), "a+b") << "in a path '+' is itself";
}

std::string refusal(std::string_view target) {
  std::string why;
  auto t = parse_target(target, why);
  EXPECT_FALSE(t) << target << " was accepted";
  EXPECT_FALSE(why.empty());
  EXPECT_TRUE(is_valid_utf8(why)) << "the reason must be quotable in JSON";
  return why;
}

TEST(RequestTarget, AcceptsWhatTheApiUses) {
  std::string why;
  auto t = parse_target("/api/v1/experiments?status=done&repo=my%20repo&limit=5", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->path, "/api/v1/experiments");
  EXPECT_EQ(t->query.at("repo"), "my repo");
  auto u = parse_target("/api/v1/workflows/caf%C3%A9", why);  // UTF-8 is fine
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(u->path, "/api/v1/workflows/caf\xC3\xA9");
}

TEST(RequestTarget, RefusesBytesThatAreNotUtf8OrControlCharacters) {
  EXPECT_NE(refusal("/%ff").find("not valid UTF-8"), std::string::npos);
  refusal("/api/v1/workflows/%C3");             // a character cut short
  refusal("/api/v1/workflows/%C0%AF");          // an overlong '/'
  refusal("/api/v1/workflows/%ED%A0%80");       // a UTF-16 surrogate
  EXPECT_NE(refusal("/api/v1/x%00y").find("control character"), std::string::npos);
  refusal("/api/v1/experiments?repo=%ff");
  refusal("/api/v1/experiments?%ff=1");
  refusal("/api/v1/experiments?repo=a%0d%0aSet-Cookie:%20x");
}

TEST(RequestTarget, RefusesTraversalInEveryEncoding) {
  refusal("/assets/../../etc/passwd");
  refusal("/assets/%2e%2e/%2e%2e/etc/passwd");
  refusal("/assets/%2E%2E%2Fetc%2Fpasswd");  // the slash encoded too: decoded it is a .. segment
  refusal("/assets/./app.js");
  refusal("/..");
}

TEST(RequestTarget, RefusesOversizedAndMalformedTargets) {
  refusal(std::string("/") + std::string(kMaxTargetBytes, 'a'));
  std::string many = "/api/v1/experiments?";
  for (std::size_t i = 0; i <= kMaxQueryParameters; ++i) many += "k" + std::to_string(i) + "=1&";
  refusal(many);
  refusal("http://example.com/api/v1/experiments");  // absolute form: not for an origin server
  refusal("*");
  refusal("");
}

// ---- a real server on a loopback port -----------------------------------------------------

class LiveServer {
 public:
  explicit LiveServer(HttpHandler handler, HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(ioc_, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0),
                                           std::move(handler), options);
    server_->start();
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~LiveServer() {
    server_->stop();
    ioc_.stop();
    thread_.join();
  }
  unsigned short port() const { return server_->port(); }

 private:
  boost::asio::io_context ioc_{1};
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

int connect_to(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("connect failed");
  }
  return fd;
}

// Everything the server sends until it closes, or until `timeout`.
std::string read_all(int fd, std::chrono::milliseconds timeout = 5s) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (::poll(&p, 1, static_cast<int>(std::max<long>(left.count(), 1))) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// One request on a fresh connection ("Connection: close"), the whole answer back.
std::string exchange(unsigned short port, const std::string& request) {
  const int fd = connect_to(port);
  (void)!::write(fd, request.data(), request.size());
  std::string answer = read_all(fd);
  ::close(fd);
  return answer;
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
}

int status_of(const std::string& answer) {
  return answer.rfind("HTTP/1.1 ", 0) == 0 ? std::stoi(answer.substr(9, 3)) : 0;
}

boost::json::value body_of(const std::string& answer) {
  return boost::json::parse(answer.substr(answer.find("\r\n\r\n") + 4));
}

HttpAnswer echo(const HttpRequest& r) {
  HttpAnswer a;
  a.body = boost::json::serialize(boost::json::object{{"method", r.method}, {"path", r.path}});
  return a;
}

TEST(LiveHttpServer, APathThatIsNotUtf8Gets400AndTheServerCarriesOn) {
  LiveServer s([](HttpRequest r, std::function<void(HttpAnswer)> respond) { respond(echo(r)); });
  const std::string bad = exchange(s.port(), "POST /%ff HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(status_of(bad), 400) << bad;
  EXPECT_EQ(body_of(bad).at("error").at("code").as_string(), "invalid_argument");
  EXPECT_EQ(status_of(exchange(s.port(), get("/assets/%2e%2e/secret"))), 400);
  const std::string fine = exchange(s.port(), get("/healthz"));
  ASSERT_EQ(status_of(fine), 200) << "the server must still answer";
  EXPECT_EQ(body_of(fine).at("path").as_string(), "/healthz");
}

TEST(LiveHttpServer, AHandlerThatThrowsFailsItsRequestNotTheProcess) {
  std::atomic<int> calls{0};
  LiveServer s([&](HttpRequest r, std::function<void(HttpAnswer)> respond) {
    if (calls++ == 0) throw std::runtime_error("boom \xff");  // not even UTF-8
    respond(echo(r));
  });
  const std::string failed = exchange(s.port(), get("/x"));
  ASSERT_EQ(status_of(failed), 500) << failed;
  EXPECT_EQ(body_of(failed).at("error").at("code").as_string(), "internal");
  EXPECT_EQ(status_of(exchange(s.port(), get("/y"))), 200);
}

TEST(LiveHttpServer, AMadeUpMethodReachesTheHandlerAsOther) {
  LiveServer s([](HttpRequest r, std::function<void(HttpAnswer)> respond) { respond(echo(r)); });
  const std::string a = exchange(s.port(), "FROBNICATE_8af31 /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(status_of(a), 200) << a;
  EXPECT_EQ(body_of(a).at("method").as_string(), "OTHER") << "a client's method must not become a label";
}

TEST(LiveHttpServer, GarbageAndOversizedRequestsGetAnAnswer) {
  HttpServerOptions o;
  o.body_limit = 1024;
  LiveServer s([](HttpRequest r, std::function<void(HttpAnswer)> respond) { respond(echo(r)); }, o);
  EXPECT_EQ(status_of(exchange(s.port(), std::string("\x16\x03\x01\x02\x00garbage\r\n\r\n", 17))), 400);
  const std::string big = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n" + std::string(4096, 'a');
  EXPECT_EQ(status_of(exchange(s.port(), big)), 413);
  EXPECT_EQ(status_of(exchange(s.port(), "GET /x HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n")), 400);
  EXPECT_EQ(status_of(exchange(s.port(), get("/after"))), 200);
}

TEST(LiveHttpServer, ConnectionsBeyondAClientsShareAreClosedAtOnce) {
  HttpServerOptions o;
  o.max_connections_per_client = 3;
  o.read_timeout = std::chrono::seconds(30);
  LiveServer s([](HttpRequest r, std::function<void(HttpAnswer)> respond) { respond(echo(r)); }, o);
  // Three slow clients that send one byte and then nothing hold their connections...
  std::vector<int> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(connect_to(s.port()));
    (void)!::write(held.back(), "G", 1);
  }
  std::this_thread::sleep_for(200ms);
  // ...and the fourth is closed without an answer, quickly (not after the read timeout).
  const auto t0 = std::chrono::steady_clock::now();
  const std::string refused = exchange(s.port(), get("/x"));
  EXPECT_EQ(refused, "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  ::close(held.back());
  held.pop_back();
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(status_of(exchange(s.port(), get("/x"))), 200) << "a freed place is given again";
  for (int fd : held) ::close(fd);
}

TEST(LiveHttpServer, ALingeringCloseEndsOnItsDeadlineWhateverTheClientTrickles) {
  HttpServerOptions o;
  o.body_limit = 16;
  LiveServer s([](HttpRequest r, std::function<void(HttpAnswer)> respond) { respond(echo(r)); }, o);
  const int fd = connect_to(s.port());
  const std::string head = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n" + std::string(64, 'a');
  (void)!::write(fd, head.data(), head.size());
  // The server answers 413 and shuts its side down (we read EOF), then reads and discards what
  // we still send so that we get the answer rather than a reset. A byte every 200 ms must not
  // keep the connection open past the drain's one deadline (2 s): our sends then fail.
  const auto t0 = std::chrono::steady_clock::now();
  std::string seen;
  bool eof = false, gone = false;
  while (std::chrono::steady_clock::now() - t0 < 10s) {
    if (::send(fd, "a", 1, MSG_NOSIGNAL) < 0) {
      gone = true;
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) {
      char buf[4096];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        gone = true;  // reset: the server closed with our bytes unread
        break;
      }
      if (n == 0) eof = true;
      else seen.append(buf, static_cast<std::size_t>(n));
      if (n == 0) std::this_thread::sleep_for(200ms);
    }
  }
  const auto held = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  EXPECT_EQ(status_of(seen), 413) << seen;
  EXPECT_TRUE(eof) << "the answer must be followed by the server's FIN";
  EXPECT_TRUE(gone) << "a trickling client kept the connection open for 10 s";
  EXPECT_LT(held, 6s);
}


// ---- HTTPS ------------------------------------------------------------------------------------

// A self-signed certificate for 127.0.0.1, made with openssl for this test.
class SelfSigned {
 public:
  SelfSigned() {
    char dir[] = "/tmp/ttfb-tls-XXXXXX";
    if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = dir;
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout " + key() + " -out " + cert() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("openssl req failed: " + cmd);
  }
  ~SelfSigned() { std::filesystem::remove_all(dir_); }
  std::string cert() const { return dir_ + "/server.crt"; }
  std::string key() const { return dir_ + "/server.key"; }

 private:
  std::string dir_;
};

TEST(LiveHttpsServer, AnswersHttpsToAClientThatTrustsItsCertificate) {
  SelfSigned tls;
  HttpServerOptions o;
  o.tls_cert_file = tls.cert();
  o.tls_key_file = tls.key();
  LiveServer s([](HttpRequest r, std::function<void(HttpAnswer)> respond) { respond(echo(r)); }, o);
  const std::string url = "https://127.0.0.1:" + std::to_string(s.port());

  ::setenv("TTFB_LAB_CA_FILE", tls.cert().c_str(), 1);
  const auto r = HttpClient(url, "secret").post("/api/v1/x%C3%A9", "{}");
  ::unsetenv("TTFB_LAB_CA_FILE");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(boost::json::parse(r.body).at("path").as_string(), "/api/v1/x\xC3\xA9");

  // Without the certificate among its trusted ones the client refuses to talk (no token leaves).
  try {
    HttpClient(url, "secret").get("/x");
    ADD_FAILURE() << "a client talked to a server whose certificate it does not trust";
  } catch (const TransportError& e) {
    EXPECT_NE(std::string(e.what()).find("certificate"), std::string::npos) << e.what();
  }
  // Plain HTTP to the HTTPS port gets no answer, and the server carries on.
  EXPECT_EQ(exchange(s.port(), get("/x")).find("HTTP/1.1 200"), std::string::npos);
  ::setenv("TTFB_LAB_CA_FILE", tls.cert().c_str(), 1);
  EXPECT_EQ(HttpClient(url, "").get("/after").status, 200);
  ::unsetenv("TTFB_LAB_CA_FILE");
}

TEST(LiveHttpsServer, RefusesToStartWithoutItsKey) {
  SelfSigned tls;
  HttpServerOptions o;
  o.tls_cert_file = tls.cert();
  o.tls_key_file = tls.cert() + ".missing";
  boost::asio::io_context ioc;
  EXPECT_THROW(HttpServer(ioc, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0),
                          [](HttpRequest, std::function<void(HttpAnswer)>) {}, o),
               std::runtime_error);
}

TEST(HttpClientUrls, TakesHttpAndHttpsAndNothingElse) {
  EXPECT_NO_THROW(HttpClient("http://127.0.0.1:1", ""));
  EXPECT_NO_THROW(HttpClient("https://lab.example.com/", ""));
  EXPECT_THROW(HttpClient("ftp://127.0.0.1", ""), std::invalid_argument);
  EXPECT_THROW(HttpClient("file:///etc/passwd", ""), std::invalid_argument);
  EXPECT_THROW(HttpClient("https://", ""), std::invalid_argument);
  EXPECT_THROW(HttpClient("127.0.0.1:8080", ""), std::invalid_argument);
}

}  // namespace
}  // namespace ttfb
