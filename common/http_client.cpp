#include "common/http_client.hpp"

#include <curl/curl.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace ttfb {
namespace {

constexpr std::size_t kMaxResponseBytes = 64 * 1024 * 1024;

struct Received {
  std::string body;
  std::string content_type;
  bool too_large = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* r = static_cast<Received*>(user);
  if (r->body.size() + size * n > kMaxResponseBytes) {
    r->too_large = true;
    return 0;  // aborts the transfer
  }
  r->body.append(data, size * n);
  return size * n;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw std::runtime_error("libcurl cannot be initialised");
  });
}

}  // namespace

HttpClient::HttpClient(std::string base_url, std::string token, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), token_(std::move(token)), timeout_(timeout) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
  std::string rest;
  if (base_url_.rfind("http://", 0) == 0) {
    rest = base_url_.substr(7);
  } else if (base_url_.rfind("https://", 0) == 0) {
    rest = base_url_.substr(8);
  } else {
    throw std::invalid_argument("server URL must start with http:// or https:// (got '" + base_url_ + "')");
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  if (rest.empty() || rest.front() == ':') throw std::invalid_argument("server URL has no host: '" + base_url_ + "'");
  if (const char* ca = std::getenv("TTFB_LAB_CA_FILE"); ca != nullptr && *ca != '\0') ca_file_ = ca;
  global_init();
}

HttpResponse HttpClient::get(const std::string& target) const { return request("GET", target, ""); }

HttpResponse HttpClient::post(const std::string& target, const std::string& json_body) const {
  return request("POST", target, json_body);
}

HttpResponse HttpClient::request(const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& content_type) const {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) throw TransportError("cannot create an HTTP request (libcurl)");
  CURL* h = curl.get();
  const std::string url = base_url_ + target;
  Received received;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");  // nothing else, whatever the URL says
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);            // a redirect must not carry the token elsewhere
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "ttfb-lab/0.1");
  curl_easy_setopt(h, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");  // the lab's own server is never proxied
  // TLS: the peer's certificate and name are always verified, against the system's CAs or the
  // one file TTFB_LAB_CA_FILE names (a private CA, or a server's self-signed certificate).
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &received);

  struct curl_slist* headers = nullptr;
  auto add_header = [&](const std::string& line) { headers = curl_slist_append(headers, line.c_str()); };
  add_header("Accept: application/json");
  add_header("Expect:");  // no 100-continue round trip for bodies
  if (!token_.empty()) add_header("Authorization: Bearer " + token_);
  if (method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (!body.empty() || method == "POST") {
      add_header("Content-Type: " + content_type);
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  const CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    std::string why = error[0] != '\0' ? error : curl_easy_strerror(rc);
    if (received.too_large) why = "the answer is larger than " + std::to_string(kMaxResponseBytes) + " bytes";
    throw TransportError("cannot reach the ttfb-lab server at " + base_url_ + " (" + method + " " + target + "): " + why);
  }
  HttpResponse out;
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  out.status = static_cast<int>(status);
  char* type = nullptr;
  if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) out.content_type = type;
  out.body = std::move(received.body);
  return out;
}

}  // namespace ttfb
