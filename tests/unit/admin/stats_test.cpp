// Unit tests of /api/v1/stats (proxy/admin/stats.cpp): quantiles interpolated like Prometheus'
// histogram_quantile, windowed rates, error rate and share from synthetic samples, the ring, the
// JSON shape, and sampling real cells. No clock, no sockets.
#include "admin/stats.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace canary::admin {
namespace {

using buckets_t = std::array<std::uint64_t, metrics::duration_buckets.size() + 1>;
constexpr std::size_t inf_bucket = metrics::duration_buckets.size();

TEST(HistogramQuantile, EmptyIsNull) {
  EXPECT_FALSE(histogram_quantile(0.5, buckets_t{}).has_value());
}

TEST(HistogramQuantile, InterpolatesFromZeroInTheFirstBucket) {
  buckets_t b{};
  b[0] = 10;  // all <= 0.5 ms
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.5, b), 0.00025);
  EXPECT_DOUBLE_EQ(*histogram_quantile(1.0, b), 0.0005);
}

TEST(HistogramQuantile, InterpolatesWithinTheBucketHoldingTheRank) {
  buckets_t b{};
  b[1] = 6;  // (0.5 ms, 1 ms]
  b[2] = 4;  // (1 ms, 2.5 ms]
  // rank 5 of 10 lies in bucket 1: 0.0005 + 0.0005 * 5/6.
  EXPECT_NEAR(*histogram_quantile(0.5, b), 0.0005 + 0.0005 * 5.0 / 6.0, 1e-12);
  // rank 9.9: bucket 2, (9.9 - 6) / 4 of the way from 1 ms to 2.5 ms.
  EXPECT_NEAR(*histogram_quantile(0.99, b), 0.001 + 0.0015 * 3.9 / 4.0, 1e-12);
}

TEST(HistogramQuantile, InfBucketAnswersTheHighestFiniteBound) {
  buckets_t b{};
  b[0] = 1;
  b[inf_bucket] = 99;
  EXPECT_DOUBLE_EQ(*histogram_quantile(0.99, b), metrics::duration_buckets.back());
}

variant_counts counts(std::uint64_t requests, std::uint64_t errors, std::size_t bucket,
                      std::uint64_t in_bucket) {
  variant_counts c;
  c.requests = requests;
  c.errors = errors;
  c.latency[bucket] = in_bucket;
  return c;
}

TEST(ComputeStats, RatesErrorRateShareAndQuantilesOverTheWindow) {
  stats_sample older;
  older.time_s = 100;
  older.routes["web"] = {counts(1000, 10, 3, 990), counts(50, 0, 3, 50)};
  stats_sample newer;
  newer.time_s = 110;
  newer.routes["web"] = {counts(1800, 10, 3, 1790), counts(250, 20, 3, 230)};

  auto out = compute_stats(older, newer, {"web"});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].route, "web");
  const auto& stable = out[0].variants[0];
  const auto& canary = out[0].variants[1];
  EXPECT_EQ(stable.requests, 800u);
  EXPECT_DOUBLE_EQ(stable.rps, 80);
  EXPECT_DOUBLE_EQ(stable.error_rate, 0);
  EXPECT_DOUBLE_EQ(stable.share, 0.8);
  EXPECT_EQ(canary.requests, 200u);
  EXPECT_DOUBLE_EQ(canary.rps, 20);
  EXPECT_DOUBLE_EQ(canary.error_rate, 0.1);  // 20 proxy/upstream 5xx of 200 responses
  EXPECT_DOUBLE_EQ(canary.share, 0.2);
  // Every observation in bucket 3 (2.5 ms, 5 ms]: p50 is its middle, p99 near its top.
  EXPECT_NEAR(*stable.p50_ms, 3.75, 1e-9);
  EXPECT_NEAR(*stable.p99_ms, 2.5 + 2.5 * 0.99, 1e-9);
}

TEST(ComputeStats, NoTrafficGivesZerosAndNullQuantiles) {
  stats_sample a, b;
  a.time_s = 0;
  b.time_s = 10;
  a.routes["web"] = {counts(5, 1, 0, 5), counts(0, 0, 0, 0)};
  b.routes["web"] = a.routes["web"];
  auto out = compute_stats(a, b, {"web", "new-route"});
  ASSERT_EQ(out.size(), 2u);
  for (const auto& r : out)
    for (const auto& v : r.variants) {
      EXPECT_EQ(v.requests, 0u);
      EXPECT_EQ(v.rps, 0);
      EXPECT_EQ(v.error_rate, 0);
      EXPECT_EQ(v.share, 0);
      EXPECT_FALSE(v.p50_ms.has_value());
      EXPECT_FALSE(v.p99_ms.has_value());
    }
  EXPECT_EQ(out[1].route, "new-route");
}

TEST(ComputeStats, ARouteNewerThanTheOldSampleCountsFromZero) {
  stats_sample a, b;
  a.time_s = 0;
  b.time_s = 5;
  b.routes["web"] = {counts(10, 0, 0, 10), counts(0, 0, 0, 0)};
  auto out = compute_stats(a, b, {"web"});
  EXPECT_DOUBLE_EQ(out[0].variants[0].rps, 2);
  EXPECT_DOUBLE_EQ(out[0].variants[0].share, 1);
}

TEST(StatsRing, KeepsElevenSamplesAndDifferencesOldestAndNewest) {
  stats_ring ring;
  EXPECT_EQ(ring.compute({"web"})[0].variants[0].rps, 0);
  for (int i = 0; i <= 20; ++i) {
    stats_sample s;
    s.time_s = i;
    s.routes["web"] = {counts(static_cast<std::uint64_t>(i) * 30, 0, 0,
                              static_cast<std::uint64_t>(i) * 30),
                       counts(static_cast<std::uint64_t>(i) * i, 0, 0,
                              static_cast<std::uint64_t>(i) * i)};
    ring.push(std::move(s));
  }
  EXPECT_EQ(ring.size(), stats_ring::capacity);
  auto out = ring.compute({"web"});
  // Window [10 s, 20 s]: stable 300 requests, canary 400 - 100 = 300.
  EXPECT_DOUBLE_EQ(out[0].variants[0].rps, 30);
  EXPECT_DOUBLE_EQ(out[0].variants[1].rps, 30);
  EXPECT_DOUBLE_EQ(out[0].variants[1].share, 0.5);
}

TEST(StatsJson, HasTheShapeOfDesignSection5) {
  route_stats r;
  r.route = "we\"b";
  r.variants[0].rps = 12.5;
  r.variants[0].share = 1;
  r.variants[0].requests = 125;
  r.variants[0].p50_ms = 1.23456;
  r.variants[0].p99_ms = 4.5;
  auto text = stats_json(10, {r});
  auto v = boost::json::parse(text);
  EXPECT_EQ(v.at("window_s").as_int64(), 10);
  const auto& route = v.at("routes").as_array().at(0);
  EXPECT_EQ(route.at("route").as_string(), "we\"b");
  const auto& stable = route.at("variants").at("stable");
  EXPECT_DOUBLE_EQ(stable.at("rps").to_number<double>(), 12.5);
  EXPECT_DOUBLE_EQ(stable.at("share").to_number<double>(), 1);
  EXPECT_DOUBLE_EQ(stable.at("p50_ms").to_number<double>(), 1.235);
  EXPECT_DOUBLE_EQ(stable.at("p99_ms").to_number<double>(), 4.5);
  EXPECT_DOUBLE_EQ(stable.at("error_rate").to_number<double>(), 0);
  const auto& canary = route.at("variants").at("canary");
  EXPECT_TRUE(canary.at("p50_ms").is_null());
  EXPECT_TRUE(canary.at("p99_ms").is_null());
  EXPECT_NE(text.find("\"rps\": 12.5,"), std::string::npos) << text;
}

TEST(TakeSample, SumsWorkersAndUpstreamsPerRouteAndVariant) {
  metrics::series_registry reg;
  const auto s_blue = reg.series_id("web", "stable", "blue");
  const auto c_green = reg.series_id("web", "canary", "green");
  const auto s_green = reg.series_id("web", "stable", "green");  // after a promotion
  metrics::worker_cells w1, w2;
  w1.series(s_blue).by_code[200].add(5);
  w1.series(s_blue).observe_latency(700);  // 0.7 ms -> bucket 1
  w2.series(s_blue).by_code[502].add(2);
  w2.series(s_green).by_code[200].add(3);
  w2.series(c_green).by_code[503].add(1);
  w2.series(c_green).by_code[200].add(4);
  auto s = take_sample(7.5, reg, {&w1, &w2});
  EXPECT_EQ(s.time_s, 7.5);
  const auto& web = s.routes.at("web");
  EXPECT_EQ(web[0].requests, 10u);
  EXPECT_EQ(web[0].errors, 2u);
  EXPECT_EQ(web[0].latency[1], 1u);
  EXPECT_EQ(web[1].requests, 5u);
  EXPECT_EQ(web[1].errors, 1u);
}

}  // namespace
}  // namespace canary::admin
