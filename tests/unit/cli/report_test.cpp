#include "cli/report.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace ttfb::cli {
namespace {

boost::json::object experiment(const char* status, const char* verdict) {
  auto v = boost::json::parse(R"({"id": 7, "status": "done", "verdict": null, "url": "http://x/api/v1/experiments/7",
    "base": {"ref": "main", "commit": "0123456789abcdef0123456789abcdef01234567"},
    "candidate": {"ref": null, "commit": "0123456789abcdef0123456789abcdef01234567", "diff_sha256": "ab12", "diff_lines": 9},
    "workflows": [{"workflow": "example-train", "verdict": "regression", "result": {
      "n_baseline": 10, "n_candidate": 10, "median_baseline_ms": 120.0, "median_candidate_ms": 160.5,
      "effect_pct": 33.4, "ci_low_pct": 29.0, "ci_high_pct": 38.1, "p_value": 1.2e-9, "threshold_pct": 3.0,
      "outliers_baseline": 1, "outliers_candidate": 0,
      "rank_test": {"test": "mann_whitney_u", "method": "exact", "p_value": 1.1e-5, "hl_shift_pct": 32.9},
      "phases": [{"name": "imports", "delta_ms": 40.1}, {"name": "data", "delta_ms": 0.1}]}}]})").as_object();
  v["status"] = status;
  if (verdict) v["verdict"] = verdict;
  return v;
}

TEST(Report, ExitCodesFollowTheVerdict) {
  EXPECT_EQ(exit_code(experiment("done", "regression")), kExitRegression);
  EXPECT_EQ(exit_code(experiment("done", "no_change")), kExitNoRegression);
  EXPECT_EQ(exit_code(experiment("done", "improvement")), kExitNoRegression);
  EXPECT_EQ(exit_code(experiment("done", "inconclusive")), kExitInconclusive);
  EXPECT_EQ(exit_code(experiment("error", "error")), kExitError);
  EXPECT_EQ(exit_code(experiment("cancelled", nullptr)), kExitError);
}

TEST(Report, TableShowsNumbersVerdictAndMovedPhase) {
  std::string t = format_experiment(experiment("done", "regression"));
  EXPECT_NE(t.find("10/10"), std::string::npos) << t;
  EXPECT_NE(t.find("120.0 ms"), std::string::npos) << t;
  EXPECT_NE(t.find("+33.4% [+29.0, +38.1]"), std::string::npos) << t;
  EXPECT_NE(t.find("1.2e-09"), std::string::npos) << t;
  EXPECT_NE(t.find("regression"), std::string::npos) << t;
  EXPECT_NE(t.find("imports +40.1 ms"), std::string::npos) << t;
  EXPECT_EQ(t.find("data +0.1"), std::string::npos) << "phases that did not move are left out";
  EXPECT_NE(t.find("base + diff (9 lines"), std::string::npos) << t;
  EXPECT_NE(t.find("rank test (Mann-Whitney) p 1.1e-05, Hodges-Lehmann shift +32.9%"), std::string::npos) << t;
  EXPECT_NE(t.find("outliers removed (|ln x - median| > 3.5 MAD): 1 baseline, 0 candidate"), std::string::npos) << t;
}

}  // namespace
}  // namespace ttfb::cli
