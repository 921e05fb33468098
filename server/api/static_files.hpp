// The dashboard's files (web/), served at / by the same server as the API: the page, its
// scripts and styles, and the chart library installed from npm (web/node_modules/uplot). Read
// from disk on each request (a few small files; no build step, an edit shows on reload).
//
//   ttfb::StaticFiles web(TTFB_LAB_WEB_DIR);
//   if (auto answer = web.serve("/assets/app.js")) respond(*answer);   // else: not the dashboard's
//
// Paths: "/" and "/index.html" -> index.html; "/assets/NAME" -> NAME (one flat file name of the
// web/ folder, no slashes, a known extension); "/vendor/NAME" -> the chart library's files.
// Anything else is not the dashboard's (nullopt). A missing file is a 404 that says what to run.
#pragma once

#include "server/http/server.hpp"

#include <filesystem>
#include <optional>
#include <string>

namespace ttfb {

class StaticFiles {
 public:
  explicit StaticFiles(std::filesystem::path root);

  // The answer to a GET (or HEAD) of `path`, or nullopt when the path is not the dashboard's.
  std::optional<HttpAnswer> serve(const std::string& path) const;

  // "text/javascript; charset=utf-8" etc. by extension; empty for one that is not served.
  static std::string content_type(const std::filesystem::path& file);

 private:
  std::filesystem::path root_;
};

}  // namespace ttfb
