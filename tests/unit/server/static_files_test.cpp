// The dashboard's files (server/api/static_files.hpp): what is served at which path, with which
// content type and headers, and that nothing outside web/ (or the chart library) is.
#include "server/api/static_files.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace ttfb {
namespace {

namespace fs = std::filesystem;

class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("ttfb-web-" + std::to_string(::getpid()));
    fs::create_directories(root_ / "node_modules" / "uplot" / "dist");
    write(root_ / "index.html", "<!doctype html><title>t</title>");
    write(root_ / "app.js", "console.log(1)");
    write(root_ / "notes.txt", "private");
    write(root_ / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js", "var uPlot");
    write(root_.parent_path() / "secret.js", "nope");
  }
  void TearDown() override {
    fs::remove_all(root_);
    fs::remove(root_.parent_path() / "secret.js");
  }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  static std::string header(const HttpAnswer& a, const std::string& name) {
    for (const auto& [k, v] : a.headers)
      if (k == name) return v;
    return "";
  }
  fs::path root_;
};

TEST_F(StaticFilesTest, ThePageItsAssetsAndTheChartLibrary) {
  StaticFiles web(root_);
  auto index = web.serve("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(index->body, "<!doctype html><title>t</title>");
  EXPECT_NE(header(*index, "Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(header(*index, "Cache-Control"), "no-cache");

  auto js = web.serve("/assets/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(js->body, "console.log(1)");
  EXPECT_EQ(header(*js, "X-Content-Type-Options"), "nosniff");

  auto lib = web.serve("/vendor/uPlot.iife.min.js");
  ASSERT_TRUE(lib);
  EXPECT_EQ(lib->status, 200);
  EXPECT_EQ(lib->body, "var uPlot");
}

TEST_F(StaticFilesTest, OtherPathsAreNotTheDashboards) {
  StaticFiles web(root_);
  EXPECT_FALSE(web.serve("/api/v1/releases"));
  EXPECT_FALSE(web.serve("/metrics"));
  EXPECT_FALSE(web.serve("/node_modules/uplot/dist/uPlot.iife.min.js"));
  EXPECT_FALSE(web.serve("/assets/../secret.js")) << "no path outside web/";
  EXPECT_FALSE(web.serve("/assets/sub/app.js"));
}

TEST_F(StaticFilesTest, UnknownOrMissingFilesAre404WithAReason) {
  StaticFiles web(root_);
  auto txt = web.serve("/assets/notes.txt");  // not a type the dashboard serves
  ASSERT_TRUE(txt);
  EXPECT_EQ(txt->status, 404);
  auto vendor = web.serve("/vendor/jquery.js");  // not the chart library
  ASSERT_TRUE(vendor);
  EXPECT_EQ(vendor->status, 404);
  auto dot = web.serve("/assets/..");
  ASSERT_TRUE(!dot || dot->status == 404);
  fs::remove(root_ / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js");
  auto missing = web.serve("/vendor/uPlot.iife.min.js");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("npm ci"), std::string::npos) << missing->body;
}

}  // namespace
}  // namespace ttfb
