// Outlier ejection and active health-check thresholds, with an injected clock.
#include "upstream/outlier.h"

#include <gtest/gtest.h>

#include "upstream/health_checker.h"

namespace canary::upstream {
namespace {

using namespace std::chrono_literals;

struct side_fixture {
  std::vector<std::shared_ptr<endpoint>> eps;
  explicit side_fixture(int n) {
    for (int i = 0; i < n; ++i) eps.push_back(std::make_shared<endpoint>());
  }
};

config::outlier_config outlier(int failures, int pct) {
  config::outlier_config c;
  c.consecutive_failures = failures;
  c.base_ejection = 10s;
  c.max_ejected_percent = pct;
  return c;
}

TEST(Outlier, EjectsAfterConsecutiveFailures) {
  side_fixture side(2);
  const auto cfg = outlier(3, 50);
  const auto t0 = steady::time_point(100s);
  auto& ep = *side.eps[0];
  EXPECT_FALSE(record_failure(ep, side.eps, cfg, t0).ejected);
  EXPECT_FALSE(record_failure(ep, side.eps, cfg, t0).ejected);
  auto e = record_failure(ep, side.eps, cfg, t0);
  EXPECT_TRUE(e.ejected);
  EXPECT_EQ(e.duration, 10s);
  EXPECT_FALSE(ep.up(t0 + 9s));
  EXPECT_TRUE(ep.up(t0 + 10s));
}

TEST(Outlier, SuccessResetsTheRun) {
  side_fixture side(2);
  const auto cfg = outlier(2, 50);
  const auto t0 = steady::time_point(100s);
  auto& ep = *side.eps[0];
  record_failure(ep, side.eps, cfg, t0);
  record_success(ep, cfg, t0);
  EXPECT_FALSE(record_failure(ep, side.eps, cfg, t0).ejected);
  EXPECT_TRUE(record_failure(ep, side.eps, cfg, t0).ejected);
}

TEST(Outlier, EjectionGrowsWithEachEjectionAndResetsAfterAQuietPeriod) {
  side_fixture side(2);
  const auto cfg = outlier(1, 50);
  auto& ep = *side.eps[0];
  auto t = steady::time_point(100s);
  EXPECT_EQ(record_failure(ep, side.eps, cfg, t).duration, 10s);
  t += 10s;  // back in rotation, fails at once
  EXPECT_EQ(record_failure(ep, side.eps, cfg, t).duration, 20s);
  t += 20s;
  EXPECT_EQ(record_failure(ep, side.eps, cfg, t).duration, 30s);
  t += 30s;
  record_success(ep, cfg, t + 10s);  // a whole base_ejection back without trouble
  EXPECT_EQ(record_failure(ep, side.eps, cfg, t + 11s).duration, 10s);
}

TEST(Outlier, EjectionIsCapped) {
  side_fixture side(2);
  auto cfg = outlier(1, 50);
  cfg.base_ejection = 2min;
  auto& ep = *side.eps[0];
  auto t = steady::time_point(100s);
  for (int i = 0; i < 10; ++i) {
    auto e = record_failure(ep, side.eps, cfg, t);
    ASSERT_TRUE(e.ejected);
    EXPECT_LE(e.duration, max_ejection);
    t += e.duration;
  }
}

TEST(Outlier, NeverMoreThanMaxEjectedPercent) {
  side_fixture side(4);
  const auto cfg = outlier(1, 50);
  const auto t0 = steady::time_point(100s);
  EXPECT_TRUE(record_failure(*side.eps[0], side.eps, cfg, t0).ejected);
  EXPECT_TRUE(record_failure(*side.eps[1], side.eps, cfg, t0).ejected);
  EXPECT_FALSE(record_failure(*side.eps[2], side.eps, cfg, t0).ejected);  // would be 75 %
  EXPECT_TRUE(side.eps[2]->up(t0));
  // Once one is back, another may go.
  EXPECT_TRUE(record_failure(*side.eps[2], side.eps, cfg, t0 + 10s).ejected);
}

TEST(Outlier, SingleEndpointSideIsNeverEjectedBelowHundredPercent) {
  side_fixture side(1);
  const auto t0 = steady::time_point(100s);
  EXPECT_FALSE(record_failure(*side.eps[0], side.eps, outlier(1, 99), t0).ejected);
  EXPECT_TRUE(record_failure(*side.eps[0], side.eps, outlier(1, 100), t0).ejected);
}

TEST(HealthState, Thresholds) {
  config::health_check_config cfg;
  cfg.healthy = 2;
  cfg.unhealthy = 3;
  health_state s;
  EXPECT_FALSE(s.record(false, cfg));
  EXPECT_FALSE(s.record(false, cfg));
  EXPECT_FALSE(s.down);
  EXPECT_TRUE(s.record(false, cfg));
  EXPECT_TRUE(s.down);
  EXPECT_FALSE(s.record(false, cfg));  // no change
  EXPECT_FALSE(s.record(true, cfg));
  EXPECT_FALSE(s.record(false, cfg));  // a failure breaks the success run
  EXPECT_FALSE(s.record(true, cfg));
  EXPECT_TRUE(s.record(true, cfg));
  EXPECT_FALSE(s.down);
}

}  // namespace
}  // namespace canary::upstream
