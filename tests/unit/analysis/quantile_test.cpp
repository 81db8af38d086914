// Unit tests of the threshold statistics (proxy/analysis/quantile.h): Prometheus-style
// interpolation inside the duration buckets, the +Inf bucket, and empty input.
#include "analysis/quantile.h"

#include <gtest/gtest.h>

namespace canary::analysis {
namespace {

TEST(Quantile, InterpolatesLinearlyInsideTheBucket) {
  latency_counts b{};
  b[8] = 10;  // (100 ms, 250 ms]
  EXPECT_DOUBLE_EQ(*histogram_quantile_ms(0.5, b), 175.0);
  EXPECT_DOUBLE_EQ(*histogram_quantile_ms(1.0, b), 250.0);
}

TEST(Quantile, FirstBucketStartsAtZeroAndRanksCrossBuckets) {
  latency_counts b{};
  b[0] = 50;  // (0, 0.5 ms]
  b[3] = 50;  // (2.5 ms, 5 ms]
  EXPECT_DOUBLE_EQ(*histogram_quantile_ms(0.25, b), 0.25);
  EXPECT_NEAR(*histogram_quantile_ms(0.9, b), 4.5, 1e-9);
}

TEST(Quantile, RankInTheInfBucketGivesTheLastFiniteBound) {
  latency_counts b{};
  b[0] = 1;
  b[14] = 99;
  EXPECT_DOUBLE_EQ(*histogram_quantile_ms(0.99, b), 10000.0);
}

TEST(Quantile, EmptyHistogramHasNoQuantile) {
  EXPECT_FALSE(histogram_quantile_ms(0.5, latency_counts{}).has_value());
  EXPECT_FALSE(success_rate(0, 0).has_value());
}

TEST(Quantile, Rates) {
  EXPECT_DOUBLE_EQ(*success_rate(200, 3), 0.985);
  EXPECT_DOUBLE_EQ(*error_rate(200, 3), 0.015);
}

}  // namespace
}  // namespace canary::analysis
