// Unit tests of the anytime-valid sequential test (proxy/analysis/sequential.h): its false-abort
// rate on seeded A/A rollouts (Clopper-Pearson bound, so the check cannot flake near the bound),
// its power on 1 % -> 2 %, the stratification, the upper confidence bound, and persistence.
#include "analysis/sequential.h"

#include <gtest/gtest.h>

#include <cmath>

#include "sim.h"

namespace canary::analysis {
namespace {

using testing::clopper_pearson_lower;
using testing::clopper_pearson_upper;
using testing::simulate_rollout;
using testing::stratum;

// Rollouts (of `intervals` looks each) in which the test rejected at some look.
std::uint64_t count_rejections(int rollouts, double r0, double confidence, double ratio,
                               int intervals, std::uint64_t seed0) {
  std::uint64_t rejected = 0;
  for (int k = 0; k < rollouts; ++k) {
    sequential_test t(r0, confidence);
    bool hit = false;
    simulate_rollout(
        seed0 + k, 0.01, ratio, intervals,
        [&](const stratum& s) { t.add_stratum(s.n_c, s.n_s, s.bad_c, s.bad_s); },
        [&](int) { return hit = t.rejected(); });
    rejected += hit;
  }
  return rejected;
}

TEST(SequentialTest, AaFalseAbortRateStaysUnderAlpha) {
  // Both variants 1 % (drifting together), a look after every interval for 60 intervals.
  const int rollouts = 2000;
  const std::uint64_t aborts = count_rejections(rollouts, 1.0, 0.95, 1.0, 60, 1000);
  EXPECT_LE(clopper_pearson_upper(aborts, rollouts), 0.05) << aborts << " of " << rollouts;
}

TEST(SequentialTest, TheAaCheckHasPowerAgainstAWrongNull) {
  // The same harness must notice a miscalibrated test: testing "r <= 0.8" on A/A data rejects
  // far more often than alpha, so the Clopper-Pearson lower bound clears 0.05.
  const int rollouts = 300;
  const std::uint64_t aborts = count_rejections(rollouts, 0.8, 0.95, 1.0, 60, 5000);
  EXPECT_GT(clopper_pearson_lower(aborts, rollouts), 0.05) << aborts << " of " << rollouts;
}

TEST(SequentialTest, CatchesADoubledErrorRateInMostRollouts) {
  const int rollouts = 300;
  const std::uint64_t caught = count_rejections(rollouts, 1.0, 0.99, 2.0, 60, 9000);
  EXPECT_GE(caught, static_cast<std::uint64_t>(rollouts * 0.9)) << caught << " of " << rollouts;
}

TEST(SequentialTest, StrataKeepAWeightChangeDuringAnIncidentFromLookingLikeARegression) {
  // Same bad rate for both variants within each stratum; the canary had 50 % during a 5 %
  // incident and 5 % afterwards at 0.1 %. Pooled, the canary's rate is 4x the stable's.
  sequential_test t(1.0, 0.99);
  t.add_stratum(5000, 5000, 250, 250);
  t.add_stratum(5000, 95000, 5, 95);
  EXPECT_FALSE(t.rejected()) << t.e_value();
  const double pooled_c = 255.0 / 10000, pooled_s = 345.0 / 100000;
  EXPECT_GT(pooled_c / pooled_s, 4);

  // Pooling the same counts into one stratum does reject: the stratification is what matters.
  sequential_test pooled(1.0, 0.99);
  pooled.add_stratum(10000, 100000, 255, 345);
  EXPECT_TRUE(pooled.rejected());
}

TEST(SequentialTest, UninformativeStrataOnlyAddToTheTotals) {
  sequential_test t(1.0, 0.99);
  t.add_stratum(100, 0, 5, 0);
  t.add_stratum(0, 100, 0, 5);
  t.add_stratum(100, 100, 0, 0);
  EXPECT_EQ(t.strata(), 0u);
  EXPECT_EQ(t.canary_requests(), 200u);
  EXPECT_EQ(t.canary_bad(), 5u);
  EXPECT_DOUBLE_EQ(t.log_e_value(), 0.0);
  EXPECT_FALSE(t.upper_bound().has_value());
}

TEST(SequentialTest, RejectsAClearRegressionAndTheRejectionIsFinal) {
  sequential_test t(1.0, 0.99);
  t.add_stratum(1000, 4000, 41, 36);
  ASSERT_TRUE(t.rejected());
  EXPECT_LT(t.p_value(), 0.01);
  // Evidence the other way afterwards lowers M, not the verdict.
  for (int i = 0; i < 50; ++i) t.add_stratum(1000, 4000, 0, 40);
  EXPECT_LT(t.e_value(), 1.0 / 0.01);
  EXPECT_TRUE(t.rejected());
}

TEST(SequentialTest, ToleratesTheConfiguredIncrease) {
  // 1.4x stable with max_increase 0.5 is inside the tolerance: a lot of data, no rejection;
  // the same data against max_increase 0 rejects.
  sequential_test tolerant(1.5, 0.99), strict(1.0, 0.99);
  for (int i = 0; i < 100; ++i) {
    tolerant.add_stratum(1000, 1000, 14, 10);
    strict.add_stratum(1000, 1000, 14, 10);
  }
  EXPECT_FALSE(tolerant.rejected());
  EXPECT_TRUE(strict.rejected());
}

TEST(SequentialTest, UpperBoundNarrowsWithDataAndCoversTheTruth) {
  sequential_test t(1.0, 0.99);
  t.add_stratum(1000, 1000, 10, 10);
  const auto early = t.upper_bound();
  for (int i = 0; i < 200; ++i) t.add_stratum(1000, 1000, 10, 10);
  const auto late = t.upper_bound();
  ASSERT_TRUE(late.has_value());
  EXPECT_GT(*late, 1.0);
  EXPECT_LT(*late, 1.25);
  if (early) {
    EXPECT_GT(*early, *late);
  }
}

TEST(SequentialTest, UpperBoundIsAnytimeValid) {
  // True ratio 1.5: the bound must stay above 1.5 at every look in all but <= alpha of rollouts.
  const int rollouts = 400;
  std::uint64_t missed = 0;
  for (int k = 0; k < rollouts; ++k) {
    sequential_test t(1.0, 0.95);
    bool miss = false;
    simulate_rollout(
        20000 + k, 0.01, 1.5, 60,
        [&](const stratum& s) { t.add_stratum(s.n_c, s.n_s, s.bad_c, s.bad_s); },
        [&](int) {
          const auto ub = t.upper_bound();
          miss = miss || (ub && *ub <= 1.5);
          return false;
        });
    missed += miss;
  }
  EXPECT_LE(clopper_pearson_upper(missed, rollouts), 0.05) << missed << " of " << rollouts;
}

TEST(SequentialTest, PersistedDataContinuesIdentically) {
  sequential_test a(1.2, 0.99);
  a.add_stratum(300, 700, 4, 5);
  auto b = sequential_test::from_data(a.data());
  ASSERT_TRUE(b.has_value());
  a.add_stratum(500, 500, 9, 3);
  b->add_stratum(500, 500, 9, 3);
  EXPECT_EQ(a.log_e_value(), b->log_e_value());
  EXPECT_EQ(a.upper_bound(), b->upper_bound());

  sequential_data bad = a.data();
  bad.log_lik.pop_back();
  EXPECT_FALSE(sequential_test::from_data(bad).has_value());
  bad = a.data();
  bad.r0 = 0.5;
  EXPECT_FALSE(sequential_test::from_data(bad).has_value());
}

}  // namespace
}  // namespace canary::analysis
