#include "server/alerts/channels.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

namespace ttfb::alerts {
namespace {

// A webhook's answer is kept only to quote it in last_error; this much is enough.
constexpr std::size_t kMaxQuotedResponse = 300;

// curl_global_init is not safe to race with other libcurl calls: once, before the first handle.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct EasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

// A curl_slist that frees itself.
class StringList {
 public:
  StringList() = default;
  StringList(const StringList&) = delete;
  StringList& operator=(const StringList&) = delete;
  ~StringList() { curl_slist_free_all(list_); }
  void append(const std::string& s) {
    curl_slist* next = curl_slist_append(list_, s.c_str());
    if (!next) throw std::bad_alloc();
    list_ = next;
  }
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

Easy new_handle() {
  init_curl_once();
  Easy easy(curl_easy_init());
  if (!easy) throw std::runtime_error("curl_easy_init failed");
  // Several threads may run libcurl; signals (for DNS timeouts) would hit any of them.
  curl_easy_setopt(easy.get(), CURLOPT_NOSIGNAL, 1L);
  return easy;
}

std::size_t keep_response(char* data, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  std::size_t bytes = size * n;
  if (out->size() < kMaxQuotedResponse) out->append(data, std::min(bytes, kMaxQuotedResponse - out->size()));
  return bytes;
}

std::string curl_error(CURLcode code, const char* buffer) {
  std::string s = buffer && *buffer ? buffer : curl_easy_strerror(code);
  return s + " (curl " + std::to_string(static_cast<int>(code)) + ")";
}

// Feeds the message to libcurl's SMTP upload.
struct Upload {
  const std::string* data;
  std::size_t offset = 0;
};

std::size_t read_upload(char* buffer, std::size_t size, std::size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  std::size_t bytes = std::min(size * n, up->data->size() - up->offset);
  std::memcpy(buffer, up->data->data() + up->offset, bytes);
  up->offset += bytes;
  return bytes;
}

}  // namespace

const char* to_string(Delivery d) {
  switch (d) {
    case Delivery::delivered: return "delivered";
    case Delivery::retry: return "retry";
    case Delivery::failed: return "failed";
  }
  return "failed";
}

Delivery classify_http_status(long status) {
  if (status >= 200 && status < 300) return Delivery::delivered;
  if (status == 429 || status >= 500) return Delivery::retry;
  return Delivery::failed;
}

DeliveryResult send_webhook(const std::string& url, int timeout_seconds, long delivery_id, const std::string& body) {
  Easy easy = new_handle();
  CURL* c = easy.get();
  StringList headers;
  headers.append("Content-Type: application/json");
  headers.append("X-TTFB-Lab-Delivery: " + std::to_string(delivery_id));
  headers.append("Expect:");  // no "100-continue" round trip for larger bodies
  std::string response;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ttfb-lab");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(timeout_seconds));
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_response);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) return {Delivery::retry, curl_error(rc, error)};
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  Delivery outcome = classify_http_status(status);
  if (outcome == Delivery::delivered) return {outcome, ""};
  std::replace_if(response.begin(), response.end(), [](char ch) { return ch == '\n' || ch == '\r'; }, ' ');
  return {outcome, "HTTP " + std::to_string(status) + (response.empty() ? "" : ": " + response)};
}

DeliveryResult send_email(const RepoAlerts& repo, const std::vector<std::string>& recipients, const std::string& message) {
  Easy easy = new_handle();
  CURL* c = easy.get();
  StringList rcpt;
  for (const auto& r : recipients) rcpt.append("<" + r + ">");
  std::string from = "<" + repo.email_from + ">";
  Upload upload{&message};
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, repo.smtp_url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
  // Opportunistic STARTTLS on smtp:// (a local relay or test sink offers none); smtps:// is TLS anyway.
  curl_easy_setopt(c, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  if (!repo.smtp_username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, repo.smtp_username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, repo.smtp_password.c_str());
  }
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(repo.smtp_timeout_seconds));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) return {Delivery::retry, curl_error(rc, error)};
  return {Delivery::delivered, ""};
}

}  // namespace ttfb::alerts
