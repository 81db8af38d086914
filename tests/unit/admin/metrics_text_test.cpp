// Unit tests of the /metrics exposition (proxy/admin/metrics_text.cpp): exact sums over
// workers, the label sets of docs/architecture.md#metrics (the histogram is {route, variant}),
// cumulative buckets whose +Inf equals _count, and the rollout gauges. Serialized with
// prometheus-cpp's TextSerializer, as /metrics does.
#include "admin/metrics_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include <sstream>

namespace canary::admin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string text_of(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

TEST(CollectCells, SumsWorkersWithTheLabelsOfDesignSection6) {
  metrics::series_registry reg;
  const auto route = reg.route_id("web");
  const auto s_blue = reg.series_id("web", "stable", "blue");
  const auto c_green = reg.series_id("web", "canary", "green");
  const auto s_green = reg.series_id("web", "stable", "green");
  const auto blue = reg.upstream_id("blue");
  metrics::worker_cells w1, w2;
  w1.series(s_blue).by_code[200].add(60);
  w2.series(s_blue).by_code[200].add(20);
  w2.series(s_blue).by_code[502].add(1);
  w1.series(c_green).by_code[200].add(20);
  w1.series(s_green).by_code[404].add(3);
  for (int i = 0; i < 3; ++i) w1.series(s_blue).observe_latency(700);      // 0.7 ms
  w2.series(s_blue).observe_latency(3'000'000);                              // 3 s
  w1.series(s_green).observe_latency(20'000);                                // 20 ms
  w1.series(c_green).observe_latency(20'000'000);                            // 20 s: +Inf
  w1.route(route).decisions[0][2].add(80);  // stable, weight
  w2.route(route).decisions[1][2].add(20);  // canary, weight
  w2.route(route).decisions[1][0].add(4);   // canary, header
  w1.local_reply(404);
  w2.local_reply(404);
  w2.local_reply(503);
  w1.upstream(blue).errors[static_cast<int>(metrics::upstream_error::connect)].add(2);
  w2.upstream(blue).ejections.add();
  w1.connection_opened();
  w1.connection_opened();
  w2.connection_opened();
  w1.connection_closed();

  const auto text = text_of(collect_cells(reg, {&w1, &w2}));
  EXPECT_THAT(text, HasSubstr("# TYPE canary_proxy_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_requests_total{route=\"web\",variant=\"stable\","
                              "upstream=\"blue\",code=\"200\"} 80\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_requests_total{route=\"web\",variant=\"stable\","
                              "upstream=\"blue\",code=\"502\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_requests_total{route=\"web\",variant=\"canary\","
                              "upstream=\"green\",code=\"200\"} 20\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_requests_total{route=\"web\",variant=\"stable\","
                              "upstream=\"green\",code=\"404\"} 3\n"));

  // The histogram is per {route, variant}: stable sums blue and green.
  EXPECT_THAT(text, HasSubstr("# TYPE canary_proxy_request_duration_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_request_duration_seconds_count{route=\"web\","
                              "variant=\"stable\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_request_duration_seconds_bucket{route=\"web\","
                              "variant=\"stable\",le=\"0.001\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_request_duration_seconds_bucket{route=\"web\","
                              "variant=\"stable\",le=\"0.025\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_request_duration_seconds_bucket{route=\"web\","
                              "variant=\"stable\",le=\"+Inf\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_request_duration_seconds_bucket{route=\"web\","
                              "variant=\"canary\",le=\"10\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_request_duration_seconds_bucket{route=\"web\","
                              "variant=\"canary\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("canary_proxy_request_duration_seconds_count{route=\"web\","
                                  "variant=\"stable\",upstream")));

  EXPECT_THAT(text, HasSubstr("canary_proxy_routing_decisions_total{route=\"web\","
                              "variant=\"stable\",reason=\"weight\"} 80\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_routing_decisions_total{route=\"web\","
                              "variant=\"canary\",reason=\"weight\"} 20\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_routing_decisions_total{route=\"web\","
                              "variant=\"canary\",reason=\"header\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_local_replies_total{code=\"404\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_local_replies_total{code=\"503\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_upstream_errors_total{upstream=\"blue\","
                              "reason=\"connect\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_upstream_ejections_total{upstream=\"blue\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_connections_active 2\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_connections_total 3\n"));
}

TEST(CollectCells, HistogramBucketsAreCumulativeAndEndAtTheCount) {
  metrics::series_registry reg;
  const auto id = reg.series_id("r", "stable", "u");
  metrics::worker_cells w;
  std::uint64_t us = 100;
  for (int i = 0; i < 40; ++i, us = us * 13 / 10 + 1) w.series(id).observe_latency(us);
  auto families = collect_cells(reg, {&w});
  const prometheus::MetricFamily* h = nullptr;
  for (const auto& f : families)
    if (f.name == "canary_proxy_request_duration_seconds") h = &f;
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->metric.size(), 1u);
  const auto& hist = h->metric[0].histogram;
  ASSERT_EQ(hist.bucket.size(), metrics::duration_buckets.size() + 1);
  for (std::size_t i = 1; i < hist.bucket.size(); ++i)
    EXPECT_LE(hist.bucket[i - 1].cumulative_count, hist.bucket[i].cumulative_count);
  EXPECT_EQ(hist.bucket.back().cumulative_count, 40u);
  EXPECT_EQ(hist.sample_count, 40u);
  EXPECT_GT(hist.sample_sum, 0);
}

TEST(CollectCells, EveryFamilyIsThereBeforeAnyTraffic) {
  metrics::series_registry reg;
  reg.series_id("web", "stable", "blue");
  metrics::worker_cells w;
  const auto text = text_of(collect_cells(reg, {&w}));
  for (const char* name :
       {"canary_proxy_requests_total", "canary_proxy_request_duration_seconds",
        "canary_proxy_routing_decisions_total", "canary_proxy_local_replies_total",
        "canary_proxy_upstream_errors_total", "canary_proxy_connections_active",
        "canary_proxy_connections_total"})
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + " ")) << name;
  EXPECT_THAT(text, HasSubstr("canary_proxy_connections_total 0\n"));
}

TEST(CollectCells, GrpcStatusesSummedOverWorkersAndCountedAsErrors) {
  metrics::series_registry reg;
  const auto c_green = reg.series_id("rpc", "canary", "green");
  reg.series_id("rpc", "stable", "blue");
  metrics::worker_cells w1, w2;
  w1.series(c_green).by_code[200].add(10);
  w1.series(c_green).grpc_status[0].add(6);
  w2.series(c_green).grpc_status[0].add(1);
  w1.series(c_green).grpc_status[14].add(3);
  w1.series(c_green).grpc_status[17].add(1);  // a value outside 0-16
  w1.series(c_green).grpc_errors.add(3);
  w2.series(c_green).by_code[503].add(2);
  const auto text = text_of(collect_cells(reg, {&w1, &w2}));
  EXPECT_THAT(text, HasSubstr("# TYPE canary_proxy_grpc_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_grpc_requests_total{route=\"rpc\",variant=\"canary\","
                              "upstream=\"green\",grpc_status=\"0\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_grpc_requests_total{route=\"rpc\",variant=\"canary\","
                              "upstream=\"green\",grpc_status=\"14\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_grpc_requests_total{route=\"rpc\",variant=\"canary\","
                              "upstream=\"green\",grpc_status=\"other\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("grpc_status=\"1\"")));
  // The threshold metrics' errors: the 5xx and the failing gRPC statuses of 200 responses.
  const auto sample = sample_route(reg, {&w1, &w2}, "rpc", "blue", "green");
  EXPECT_EQ(sample.canary.total, 12u);
  EXPECT_EQ(sample.canary.errors, 5u);
}

TEST(CollectRollouts, WeightInPercentStepAndInfo) {
  config::route_config route;
  route.name = "web";
  route.canary.weight_total = 1000;
  rollout::route_state st;
  st.stable = "blue";
  st.canary = "green";
  st.step = 2;
  st.weight = 125;
  st.phase = rollout::phase::paused;
  config::route_config other;
  other.name = "api";
  rollout::route_state healthy;
  healthy.stable = "v1";
  healthy.step = 3;
  std::vector<rollout::route_status> statuses = {{&route, &st, 125, std::nullopt},
                                                 {&other, &healthy, 0, std::nullopt}};
  const auto text = text_of(collect_rollouts(statuses, 4, 1));
  EXPECT_THAT(text, HasSubstr("canary_proxy_rollout_weight{route=\"web\"} 12.5\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_rollout_step{route=\"web\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_rollout_info{route=\"web\",phase=\"Paused\","
                              "stable=\"blue\",canary=\"green\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_rollout_weight{route=\"api\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_rollout_info{route=\"api\",phase=\"Healthy\","
                              "stable=\"v1\",canary=\"\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_config_reloads_total{result=\"success\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("canary_proxy_config_reloads_total{result=\"failure\"} 1\n"));
}

}  // namespace
}  // namespace canary::admin
