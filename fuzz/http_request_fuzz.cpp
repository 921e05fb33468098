// Fuzz target: the bytes of a connection, as the server's session reads them
// (server/http/server.cpp, Session::do_read / on_read): a Boost.Beast
// http::request_parser<http::string_body> with the server's limits (header 16 KiB, body 4 MiB,
// the default body_limit_bytes), then ttfb::parse_target on the target of each parsed request.
// Requests follow each other on one connection (keep-alive, pipelining), and the bytes arrive in
// reads of a size the input chooses, so a header split across reads is parsed as it would be.
// Asserts: no crash; a parsed request's target has every property of fuzz/target_checks.hpp;
// its body is within the limit; the "malformed HTTP request: ..." message the server would send
// for a parse error is valid UTF-8 and its error body parses back.
// Input: one byte choosing the read size (0: everything at once; n: n bytes per read), then the
// connection's bytes.
//
// Boost's assertions stay on, through the handler below, which lets one through: Beast 1.81's
// `BOOST_ASSERT(n >= 5)` in parse_chunk_header fails when a chunked body that is only the final
// chunk arrives a byte at a time (fuzz/corpus/http_request/regression-beast-final-chunk-1-byte-reads).
// The assertion is wrong, not the parser (boostorg/beast#2861, fixed in 1.86: without CRLF
// before it, 4 bytes are valid), and release builds (NDEBUG) do not have it.
#include "fuzz/target_checks.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>

namespace http = boost::beast::http;

namespace {

constexpr std::size_t kHeaderLimit = 16 * 1024;    // Session::do_read
constexpr std::uint64_t kBodyLimit = 4 * 1024 * 1024;  // ServerConfig::body_limit_bytes
constexpr int kMaxRequests = 16;

}  // namespace

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (std::string_view(expr) == "n >= 5" && std::string_view(file).find("beast/http/impl/basic_parser.ipp") != std::string_view::npos)
    return;  // boostorg/beast#2861, see the top of this file
  std::fprintf(stderr, "%s:%ld: %s: Assertion '%s' failed.\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion '%s' failed: %s\n", file, line, function, expr, msg);
  std::abort();
}

}  // namespace boost

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::size_t read_size = data[0] == 0 ? size : data[0];
  std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string buffer;  // what has arrived and the parser has not consumed (Beast's flat_buffer)
  for (int n = 0; n < kMaxRequests; ++n) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    boost::beast::error_code ec;
    // http::read's loop: parse what is buffered; when the parser needs more, read more; at the
    // end of the stream, tell the parser (a message may end there).
    for (;;) {
      if (!buffer.empty()) {
        const std::size_t used = parser.put(boost::asio::buffer(buffer), ec);
        FUZZ_CHECK(used <= buffer.size(), "the parser consumed more than it was given");
        buffer.erase(0, used);
        if (ec == http::error::need_more) ec = {};
        if (ec || parser.is_done()) break;
        if (used > 0) continue;  // the header is done: the body may be buffered already
      }
      if (wire.empty()) {
        // As Beast's read_some: the end of the stream before a byte of a message is end_of_stream.
        if (parser.got_some()) parser.put_eof(ec);
        else ec = http::error::end_of_stream;
        break;
      }
      const std::size_t take = std::min(read_size, wire.size());
      buffer.append(wire.substr(0, take));
      wire.remove_prefix(take);
    }
    if (ec == http::error::end_of_stream) return 0;  // the client left: nothing to answer
    if (ec) {
      ttfb::fuzz::check_error_message(ttfb::ErrorCode::invalid_argument, "malformed HTTP request: " + ec.message());
      return 0;  // the server answers 400 and closes
    }
    FUZZ_CHECK(parser.is_done(), "neither an error nor a request");
    auto req = parser.release();
    FUZZ_CHECK(req.body().size() <= kBodyLimit, "a body of %zu bytes passed the limit", req.body().size());
    ttfb::fuzz::check_target(req.target());
    // The log line of a refused request quotes at most 200 bytes of the target as valid UTF-8.
    const std::string logged = ttfb::to_valid_utf8(ttfb::utf8_prefix(req.target(), 200));
    FUZZ_CHECK(ttfb::is_valid_utf8(logged), "the target as logged is not valid UTF-8");
    if (!req.keep_alive()) return 0;
  }
  return 0;
}
