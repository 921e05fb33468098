#include "server/alerts/message.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace ttfb::alerts {
namespace {
namespace json = boost::json;

// 45 bytes become 60 base64 characters; with "=?UTF-8?B?" and "?=" a word stays within the 75
// characters RFC 2047 allows.
constexpr std::size_t kEncodedWordBytes = 45;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Header values are one line: CR and LF (and other controls) become spaces.
std::string one_line(std::string_view s) {
  std::string out(s);
  std::replace_if(out.begin(), out.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, ' ');
  return out;
}

// Body lines end in CRLF, whatever the text used.
std::string crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out += "\r\n";
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string domain_of(const std::string& address) {
  auto at = address.rfind('@');
  return at == std::string::npos ? "localhost" : address.substr(at + 1);
}

// "Name <a@b>", or "<a@b>" without a name; the name encoded when it needs to be, quoted otherwise.
std::string mailbox(const std::string& name, const std::string& address) {
  std::string n = one_line(name);
  if (n.empty()) return "<" + address + ">";
  std::string encoded = encode_header_value(n);
  if (encoded == n) {
    std::string quoted = "\"";
    for (char c : n) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += c;
    }
    encoded = quoted + "\"";
  }
  return encoded + " <" + address + ">";
}

}  // namespace

std::string slack_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

json::object webhook_payload(const OutboxAlert& alert) {
  return json::object{
      {"text", slack_escape(alert.text)},
      {"id", alert.id},
      {"kind", alert.kind},
      {"repo", alert.repo},
      {"workflow", alert.workflow},
      {"change", alert.change},
      {"title", alert.title},
      {"url", alert.url},
      {"recipient", json::object{{"name", alert.recipient_name}, {"email", alert.recipient_email}}},
      {"fields", alert.fields},
  };
}

std::vector<std::string> email_recipients(const OutboxAlert& alert, const RepoAlerts& repo) {
  std::vector<std::string> out{alert.target};
  for (const auto& cc : repo.email_cc)
    if (std::find(out.begin(), out.end(), cc) == out.end()) out.push_back(cc);
  return out;
}

std::string encode_header_value(std::string_view value) {
  bool plain = std::all_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
  if (plain && value.find("=?") == std::string_view::npos) return std::string(value);
  std::string out;
  std::size_t i = 0;
  while (i < value.size()) {
    std::size_t end = std::min(value.size(), i + kEncodedWordBytes);
    // Back up to the start of a UTF-8 character (continuation bytes are 10xxxxxx).
    while (end < value.size() && end > i + 1 && (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(value.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string rfc5322_date(std::time_t t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  // Names spelled out here rather than through strftime's %a/%b, which follow the locale.
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday], tm.tm_mday,
                kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string email_message(const OutboxAlert& alert, const RepoAlerts& repo, std::time_t now) {
  std::string m;
  m += "From: ttfb-lab <" + repo.email_from + ">\r\n";
  m += "To: " + mailbox(alert.recipient_name, alert.target) + "\r\n";
  auto recipients = email_recipients(alert, repo);
  if (recipients.size() > 1) {
    m += "Cc: ";
    for (std::size_t i = 1; i < recipients.size(); ++i) m += (i > 1 ? ", <" : "<") + recipients[i] + ">";
    m += "\r\n";
  }
  m += "Subject: " + encode_header_value(one_line(alert.title)) + "\r\n";
  m += "Date: " + rfc5322_date(now) + "\r\n";
  m += "Message-ID: <ttfb-lab-alert-" + std::to_string(alert.id) + "@" + domain_of(repo.email_from) + ">\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\n";
  m += "Content-Transfer-Encoding: 8bit\r\n";
  m += "\r\n";
  m += crlf(alert.text);
  if (!alert.url.empty()) {
    if (m.size() < 2 || m.compare(m.size() - 2, 2, "\r\n") != 0) m += "\r\n";
    m += "\r\n" + crlf(alert.url);
  }
  if (m.compare(m.size() - 2, 2, "\r\n") != 0) m += "\r\n";
  return m;
}

}  // namespace ttfb::alerts
