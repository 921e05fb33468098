#include "server/api/static_files.hpp"

#include "common/errors.hpp"

#include <boost/json.hpp>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace ttfb {
namespace {

// The chart library's files, as the dashboard names them, under web/node_modules/.
const std::map<std::string, std::string>& vendor_files() {
  static const std::map<std::string, std::string> files{
      {"uPlot.iife.min.js", "uplot/dist/uPlot.iife.min.js"},
      {"uPlot.min.css", "uplot/dist/uPlot.min.css"},
  };
  return files;
}

HttpAnswer not_found(const std::string& message) {
  HttpAnswer a;
  a.status = 404;
  a.body = error_body(ErrorCode::not_found, message);
  return a;
}

}  // namespace

StaticFiles::StaticFiles(std::filesystem::path root) : root_(std::move(root)) {}

std::string StaticFiles::content_type(const std::filesystem::path& file) {
  static const std::map<std::string, std::string> types{
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
      {".png", "image/png"},                 {".ico", "image/x-icon"},
      {".json", "application/json"},         {".map", "application/json"},
  };
  auto it = types.find(file.extension().string());
  return it == types.end() ? "" : it->second;
}

std::optional<HttpAnswer> StaticFiles::serve(const std::string& path) const {
  static const std::regex kAsset(R"(/assets/([A-Za-z0-9_-][A-Za-z0-9_.-]*))");
  static const std::regex kVendor(R"(/vendor/([A-Za-z0-9_.-]+))");
  std::smatch match;
  std::filesystem::path file;
  std::string missing_hint = "the dashboard's files are missing from " + root_.string();
  if (path == "/" || path == "/index.html") {
    file = root_ / "index.html";
  } else if (std::regex_match(path, match, kAsset)) {
    file = root_ / match[1].str();
    if (content_type(file).empty()) return not_found("no such dashboard file: " + path);
  } else if (std::regex_match(path, match, kVendor)) {
    auto it = vendor_files().find(match[1].str());
    if (it == vendor_files().end()) return not_found("no such dashboard file: " + path);
    file = root_ / "node_modules" / it->second;
    missing_hint = "the dashboard's chart library is not installed: run `npm ci` in " + root_.string() +
                   " (./lab does it)";
  } else {
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return not_found(missing_hint + " (" + file.filename().string() + ")");
  std::ostringstream body;
  body << in.rdbuf();
  HttpAnswer a;
  a.content_type = content_type(file);
  a.body = body.str();
  // Always revalidated: the files change with the checkout, and they are small.
  a.headers.emplace_back("Cache-Control", "no-cache");
  a.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (file.extension() == ".html") {
    // Scripts and styles from this server only; the page talks to this server's API only.
    a.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    a.headers.emplace_back("Referrer-Policy", "no-referrer");
  }
  return a;
}

}  // namespace ttfb
