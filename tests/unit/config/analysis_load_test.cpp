// Tests of the loader's `analysis:`, `webhooks:` and `- analysis:` step (config/read_analysis.cpp,
// docs/config-reference.md): what a valid section gives, and every config error of
// docs/analysis.md with its FILE:LINE:COL and key path. YAML is written one line per string
// literal, so the expected positions can be read off.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/load.h"

namespace canary::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

constexpr const char* kFile = "/etc/canary/proxy.yaml";

// Lines 1-6; a test's route body starts on line 7.
const std::string kHead =
    "upstreams:\n"                                  // 1
    "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"   // 2
    "  green: {endpoints: [\"127.0.0.1:9002\"]}\n"  // 3
    "routes:\n"                                     // 4
    "  - name: r\n"                                 // 5
    "    upstream: blue\n";                         // 6

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_string(yaml, kFile).errors) out.push_back(e.to_string());
  return out;
}

std::string at(int line, int col, const std::string& rest) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + rest;
}

TEST(AnalysisLoadTest, AValidSectionWithDefaultsAndUnits) {
  auto r = load_string(kHead +
                           "    steps:\n"                                               // 7
                           "      - setWeight: 20\n"                                    // 8
                           "      - analysis: {duration: 2m, metrics: [errors]}\n"      // 9
                           "      - analysis:\n"                                        // 10
                           "    analysis:\n"                                            // 11
                           "      interval: 5s\n"                                       // 12
                           "      metrics:\n"                                           // 13
                           "        - {name: errors, builtin: error_rate_vs_stable}\n"  // 14
                           "        - {name: slow, builtin: latency_vs_stable, slow: 250ms,"
                           " max_increase: 0.5, pass_margin: 0.2}\n"                    // 15
                           "        - {name: p99, builtin: latency_p99, max: 1.5s}\n"   // 16
                           "        - {name: apdex, min: 0.9, prometheus: {address: "
                           "\"http://127.0.0.1:9090\", query: 'x{v=\"{{canary}}\"}'}}\n"  // 17
                           "        - {name: smoke, max: 3, web: {url: \"https://t/s?v={{canary}}\","
                           " json_path: $.score, headers: {Authorization: B}}}\n"       // 18
                           "    webhooks:\n"                                            // 19
                           "      - {name: gate, type: confirm-promotion, url: \"http://h/g\"}\n"
                           "      - {name: chat, type: event, url: \"http://h/c\", format: slack,"
                           " retries: 2, metadata: {team: a}}\n",
                       kFile);
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& route = r.config->routes[0];
  ASSERT_TRUE(route.analysis);
  const auto& a = *route.analysis;
  EXPECT_TRUE(a.background);
  EXPECT_EQ(a.interval, 5s);
  EXPECT_EQ(a.failure_limit, 0);
  EXPECT_EQ(a.inconclusive_limit, 3);
  EXPECT_EQ(a.error_limit, 4);
  ASSERT_EQ(a.metrics.size(), 5u);
  EXPECT_EQ(a.metrics[0].what, metric_config::kind::sequential);
  EXPECT_EQ(a.metrics[0].confidence, 0.99);
  EXPECT_EQ(a.metrics[0].effective_min_requests(), 100u);
  EXPECT_EQ(a.metrics[1].slow, 250ms);
  EXPECT_EQ(a.metrics[1].pass_margin, 0.2);
  EXPECT_EQ(a.metrics[2].what, metric_config::kind::threshold);
  EXPECT_EQ(a.metrics[2].max, 1500.0);  // latencies in milliseconds
  EXPECT_EQ(a.metrics[3].what, metric_config::kind::prometheus);
  EXPECT_EQ(a.metrics[3].target.url, "http://127.0.0.1:9090");
  EXPECT_EQ(a.metrics[4].what, metric_config::kind::web);
  EXPECT_EQ(a.metrics[4].json_path, "$.score");
  EXPECT_EQ(a.metrics[4].target.headers.at("Authorization"), "B");
  ASSERT_EQ(route.steps.size(), 3u);
  EXPECT_EQ(route.steps[1].what, step_config::kind::analysis);
  EXPECT_EQ(route.steps[1].duration, 2min);
  EXPECT_EQ(route.steps[1].metrics, std::vector<std::string>{"errors"});
  EXPECT_FALSE(route.steps[2].duration);
  ASSERT_EQ(route.webhooks.size(), 2u);
  EXPECT_EQ(route.webhooks[0].type, webhook_config::kind::confirm_promotion);
  EXPECT_EQ(route.webhooks[0].target.timeout, 10s);
  EXPECT_EQ(route.webhooks[1].format, webhook_config::body_format::slack);
  EXPECT_EQ(route.webhooks[1].retries, 2);
  EXPECT_EQ(route.webhooks[1].metadata.at("team"), "a");
}

TEST(AnalysisLoadTest, EveryAnalysisErrorWithItsPosition) {
  const std::string yaml =
      kHead +
      "    steps:\n"                                                              // 7
      "      - analysis: {duration: 2m, metrics: [errors, nope]}\n"               // 8
      "    analysis:\n"                                                           // 9
      "      metrics:\n"                                                          // 10
      "        - {name: errors, builtin: error_rate_vs_stable, confidence: 0.5}\n"  // 11
      "        - {name: s, builtin: success_rate}\n"                              // 12
      "        - {name: x, builtin: bogus}\n"                                     // 13
      "        - {name: p, prometheus: {address: \"http://x\", query: \"a{{foo}}\"}, min: 1}\n"
      "        - {name: q, builtin: error_rate, web: {url: \"http://x\"}, max: 1}\n"  // 15
      "        - {name: l1, builtin: latency_vs_stable, slow: 100ms}\n"           // 16
      "        - {name: l2, builtin: latency_vs_stable, slow: 200ms}\n"           // 17
      "        - {name: l3, builtin: latency_vs_stable, slow: 300ms}\n"           // 18
      "        - {name: l4, builtin: latency_vs_stable, slow: 400ms}\n"           // 19
      "        - {name: l5, builtin: latency_vs_stable, slow: 500ms}\n"           // 20
      "    webhooks:\n"                                                           // 21
      "      - {name: w, type: nope, url: \"http://x\", format: xml}\n"           // 22
      "  - name: r2\n"                                                            // 23
      "    upstream: blue\n"                                                      // 24
      "    hosts: [a]\n"                                                          // 25
      "    steps:\n"                                                              // 26
      "      - analysis: {}\n";                                                   // 27
  EXPECT_THAT(
      errors_of(yaml),
      ElementsAre(
          at(8, 52,
             "routes[0].steps[0].analysis.metrics[1]: unknown metric \"nope\" (not in the "
             "route's analysis.metrics)"),
          at(11, 69,
             "routes[0].analysis.metrics[0].confidence: confidence must be strictly between 0.5 "
             "and 1"),
          at(12, 11, "routes[0].analysis.metrics[1]: metric \"s\" needs min or max"),
          at(13, 30,
             "routes[0].analysis.metrics[2].builtin: unknown builtin \"bogus\" (expected one of: "
             "error_rate_vs_stable, latency_vs_stable, success_rate, error_rate, latency_p50, "
             "latency_p90, latency_p99)"),
          at(14, 62,
             "routes[0].analysis.metrics[3].prometheus.query: unknown template variable {{foo}} "
             "(expected {{route}}, {{stable}}, {{canary}} or {{interval}})"),
          at(15, 47,
             "routes[0].analysis.metrics[4].web: several providers on one metric (use one of: "
             "builtin, prometheus, web)"),
          at(20, 11,
             "routes[0].analysis.metrics[9]: more than 4 distinct `slow` values on one route "
             "(each costs counters on every request)"),
          at(22, 25,
             "routes[0].webhooks[0].type: unknown webhook type \"nope\" (expected one of: "
             "confirm-rollout, pre-rollout, rollout, confirm-promotion, post-rollout, rollback, "
             "event)"),
          at(22, 56,
             "routes[0].webhooks[0].format: unknown webhook format \"xml\" (expected json or "
             "slack)"),
          at(27, 19,
             "routes[1].steps[0].analysis: an analysis step needs the route's `analysis:` "
             "section")));
}

TEST(AnalysisLoadTest, ThresholdAndProviderMetricsNeedABound) {
  EXPECT_THAT(errors_of(kHead +
                        "    analysis:\n"                                                // 7
                        "      metrics:\n"                                               // 8
                        "        - {name: w, web: {url: \"http://x/{{route}}\"}}\n"),     // 9
              ElementsAre(at(9, 11, "routes[0].analysis.metrics[0]: metric \"w\" needs min or "
                                    "max")));
}

// A rollout webhook is judged with each analysis interval: without analysis it would never be
// called, so it is refused rather than accepted and ignored.
TEST(AnalysisLoadTest, RolloutWebhookNeedsAnalysis) {
  EXPECT_THAT(errors_of(kHead +
                        "    webhooks:\n"                                                  // 7
                        "      - {name: judge, type: rollout, url: \"http://127.0.0.1:1/\"}\n"  // 8
                        "      - {name: chat, type: event, url: \"http://127.0.0.1:1/\"}\n"),   // 9
              ElementsAre(at(8, 29, "routes[0].webhooks[0].type: a rollout webhook is judged "
                                    "with each analysis interval: it needs the route's "
                                    "`analysis:` section")));
  EXPECT_THAT(errors_of(kHead +
                        "    analysis:\n"
                        "      metrics: [{name: e, builtin: error_rate_vs_stable}]\n"
                        "    webhooks:\n"
                        "      - {name: judge, type: rollout, url: \"http://127.0.0.1:1/\"}\n"),
              ElementsAre());
}

}  // namespace
}  // namespace canary::config
