// Noisy jobs (noisy_jobs.hpp): a job several times noisier than the others is flagged, against
// the median of the jobs or a given usual noise; its own bursts do not make a quiet job noisy.
#include "server/stats/noisy_jobs.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace ttfb::stats {
namespace {

struct Runs {
  std::vector<double> b, c;
  std::vector<long> bj, cj;
  void job(std::mt19937_64& engine, long id, int n, double sigma) {
    std::normal_distribution<double> z(0.0, 1.0);
    for (int i = 0; i < n; ++i) {
      b.push_back(200 * std::exp(sigma * z(engine)));
      bj.push_back(id);
      c.push_back(200 * std::exp(sigma * z(engine)));
      cj.push_back(id);
    }
  }
};

TEST(NoisyJobs, AJobFiveTimesNoisierIsFlagged) {
  std::mt19937_64 engine(5);
  Runs r;
  r.job(engine, 11, 10, 0.02);
  r.job(engine, 12, 10, 0.10);
  r.job(engine, 13, 10, 0.02);
  EXPECT_EQ(noisy_jobs(r.b, r.bj, r.c, r.cj), std::vector<long>{12});
  const auto spreads = job_spreads(r.b, r.bj, r.c, r.cj);
  ASSERT_EQ(spreads.size(), 3u);
  EXPECT_NEAR(spreads[1].sigma, 0.10, 0.04);
  EXPECT_GT(spreads[0].sigma, 0.005);
  EXPECT_LT(spreads[0].sigma, 0.03);
  EXPECT_GT(spreads[1].sigma, 3.0 * spreads[0].sigma);
  // Two jobs: no median to compare with, unless the usual noise is given.
  Runs two;
  two.job(engine, 1, 10, 0.02);
  two.job(engine, 2, 10, 0.10);
  EXPECT_TRUE(noisy_jobs(two.b, two.bj, two.c, two.cj).empty());
  EXPECT_EQ(noisy_jobs(two.b, two.bj, two.c, two.cj, 0.02), std::vector<long>{2});
}

TEST(NoisyJobs, BurstsInAQuietJobAndSmallJobsAreNotNoise) {
  std::mt19937_64 engine(6);
  Runs r;
  r.job(engine, 1, 10, 0.02);
  r.job(engine, 2, 10, 0.02);
  r.job(engine, 3, 10, 0.02);
  r.b[12] *= 1.8;  // two slowdown bursts in job 2
  r.c[15] *= 1.6;
  EXPECT_TRUE(noisy_jobs(r.b, r.bj, r.c, r.cj).empty());
  Runs small;
  small.job(engine, 1, 4, 0.5);  // 4 runs per arm: too few to judge, never flagged
  EXPECT_TRUE(noisy_jobs(small.b, small.bj, small.c, small.cj, 0.01).empty());
  small.job(engine, 2, 8, 0.5);  // 8 per arm: judged
  EXPECT_EQ(noisy_jobs(small.b, small.bj, small.c, small.cj, 0.01), std::vector<long>{2});
  EXPECT_THROW(noisy_jobs(r.b, std::vector<long>{1}, r.c, r.cj), std::invalid_argument);
}

}  // namespace
}  // namespace ttfb::stats
