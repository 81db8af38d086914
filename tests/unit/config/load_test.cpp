// Tests for config::load_string / load_file (see docs/config-reference.md): defaults, every
// validation error with its exact FILE:LINE:COL and key path, several errors at once, path
// resolution and name resolution. YAML is written inline, one line per string literal, so the
// expected positions can be read off.
#include "config/load.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#ifndef CANARY_SOURCE_DIR
#define CANARY_SOURCE_DIR "."
#endif

namespace canary::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

constexpr const char* kFile = "/etc/canary/proxy.yaml";

// Lines 1-3: two upstreams; routes start on line 4.
const std::string kUpstreams =
    "upstreams:\n"                                   // 1
    "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"    // 2
    "  green: {endpoints: [\"127.0.0.1:9002\"]}\n";  // 3

// Lines 1-5: the smallest valid config; a test's own lines start on line 6.
const std::string kBase = kUpstreams +
                          "routes:\n"                         // 4
                          "  - {name: r, upstream: blue}\n";  // 5

const std::string kNameRule =
    " (use 1-128 letters, digits, \".\", \"_\" and \"-\", not \".\" or \"..\": it is a URL "
    "path segment)";

const std::string kDurationForms = "(use 30s, 1m30s, 1.5h, 250ms or an integer number of seconds)";

std::vector<std::string> errors_of(const std::string& yaml, const std::string& file = kFile) {
  std::vector<std::string> out;
  for (const auto& e : load_string(yaml, file).errors) out.push_back(e.to_string());
  return out;
}

proxy_config load_ok(const std::string& yaml, const std::string& file = kFile) {
  load_result r = load_string(yaml, file);
  std::string all;
  for (const auto& e : r.errors) all += e.to_string() + "\n";
  EXPECT_TRUE(r.errors.empty()) << all;
  EXPECT_EQ(r.config.has_value(), r.errors.empty());
  return r.config.value_or(proxy_config{});
}

std::string at(int line, int col, const std::string& rest) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + rest;
}

// ---- valid configs

// The full example config, every key at its default (see docs/config-reference.md).
const char* const kDesignExample = R"yaml(listen: "127.0.0.1:8080"          # data plane
workers: 0                        # worker threads; 0 = one per CPU
admin:
  listen: "127.0.0.1:9901"        # control API, /metrics, dashboard
  token_file: ""                  # if set: mutating calls need "Authorization: Bearer <token>"
                                  # (the file's content, surrounding whitespace trimmed)
state_file: "canary-proxy.state.json"
limits:
  max_request_header_bytes: 16384 # 431 above
  max_header_fields: 100          # 431 above
  max_request_body_bytes: 10485760  # 413 above, also for chunked bodies as they stream
  max_connections: 10000          # global; above it a new connection gets 503 + close at once
timeouts:                         # durations: 30s, 1m30s, 1.5h, 250ms, or an integer = seconds
  client_header: 10s              # the whole request head must arrive within this (408 + close)
  client_idle: 60s                # keep-alive idle
  client_body_idle: 60s           # between two reads of a request body
  upstream_connect: 2s
  upstream_response: 30s          # wait for the response head (not a long streamed body)
  upstream_idle: 30s              # pooled connection idle (keep below the backends' keep-alive)
  drain: 15s
access_log: { enabled: false, path: "-", format: json }   # "-" = stdout

upstreams:
  blue:
    endpoints: ["127.0.0.1:9001"] # host:port; names resolved at load and on reload
  green:
    endpoints: ["127.0.0.1:9002"]
    # health_check: { path: /healthz, interval: 5s, timeout: 1s, healthy: 2, unhealthy: 3 }
    # outlier: { consecutive_failures: 5, base_ejection: 30s, max_ejected_percent: 50 }

routes:
  - name: canary-demo
    hosts: []                       # e.g. ["canary.auto"]; empty = any host
    path_prefix: "/"
    upstream: blue                  # the DESIRED version; change it and reload to start a rollout
    canary:
      by_header: "X-Canary"         # header name; "" = off
      by_header_value: ""           # optional exact value
      by_header_pattern: ""         # optional RE2 pattern, unanchored search (like ingress-nginx)
      by_cookie: ""                 # optional cookie name ("always" / "never")
      weight_total: 100             # denominator of setWeight (1000 gives 0.1 % steps)
      sticky: ""                    # optional: "header:X-User-Id" | "cookie:NAME" | "client_ip"
      sticky_cookie_max_age: 24h    # with "cookie:NAME": lifetime of the cookie the proxy issues
    steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 50
      - pause: { duration: 30s }
      - setWeight: 70
      - pause: { duration: 30s }
)yaml";

TEST(LoadConfig, DesignExampleLoads) {
  proxy_config c = load_ok(kDesignExample, "/srv/proxy/design.yaml");
  EXPECT_EQ(c.file, "/srv/proxy/design.yaml");
  EXPECT_EQ(c.listen.text, "127.0.0.1:8080");
  EXPECT_EQ(c.admin.listen.port, 9901);
  EXPECT_EQ(c.state_file, "/srv/proxy/canary-proxy.state.json");
  EXPECT_EQ(c.timeouts.drain, 15s);
  ASSERT_EQ(c.upstreams.size(), 2u);
  EXPECT_EQ(c.upstreams[0].name, "blue");
  EXPECT_EQ(c.upstreams[1].name, "green");
  EXPECT_FALSE(c.upstreams[1].health_check.has_value());
  ASSERT_EQ(c.routes.size(), 1u);
  const route_config& r = c.routes[0];
  EXPECT_EQ(r.name, "canary-demo");
  EXPECT_EQ(r.upstream, "blue");
  EXPECT_EQ(r.canary.by_header, "X-Canary");
  EXPECT_EQ(r.canary.sticky_cookie_max_age, 24h);
  ASSERT_EQ(r.steps.size(), 6u);
  EXPECT_EQ(r.steps[3].duration, std::optional<duration>(30s));
}

// The classic canary of `make run`: 20 % -> manual approval -> 50 % -> 70 % -> 100 %.
TEST(LoadConfig, DemoConfigLoads) {
  const std::string path = std::string(CANARY_SOURCE_DIR) + "/config/canary-demo.yaml";
  load_result r = load_file(path);
  ASSERT_THAT(r.errors, IsEmpty()) << r.errors.front().to_string();
  ASSERT_TRUE(r.config.has_value());
  const proxy_config& c = *r.config;
  EXPECT_EQ(c.file, path);
  std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
  EXPECT_EQ(c.state_file, (dir / "canary-proxy.state.json").lexically_normal().string());
  EXPECT_EQ(c.access_log.path, "-");
  ASSERT_EQ(c.upstreams.size(), 3u);
  EXPECT_EQ(c.upstreams[0].name, "blue");
  EXPECT_EQ(c.upstreams[0].endpoints.at(0).text, "127.0.0.1:9001");
  EXPECT_EQ(c.upstreams[1].name, "green");
  EXPECT_EQ(c.upstreams[1].endpoints.at(0).port, 9002);
  EXPECT_EQ(c.upstreams[2].name, "yellow");  // the faulty version
  EXPECT_EQ(c.upstreams[2].endpoints.at(0).port, 9003);
  ASSERT_EQ(c.routes.size(), 1u);
  const route_config& route = c.routes[0];
  EXPECT_EQ(route.name, "canary-demo");
  EXPECT_THAT(route.hosts, IsEmpty());
  EXPECT_EQ(route.upstream, "blue");
  EXPECT_EQ(route.canary.by_header, "X-Canary");
  EXPECT_EQ(route.canary.weight_total, 100);
  using k = step_config::kind;
  ASSERT_EQ(route.steps.size(), 6u);
  EXPECT_EQ(route.steps[0].what, k::set_weight);
  EXPECT_EQ(route.steps[0].weight, 20);
  EXPECT_EQ(route.steps[1].what, k::pause);
  EXPECT_EQ(route.steps[1].duration, std::nullopt);
  EXPECT_EQ(route.steps[2].weight, 50);
  EXPECT_EQ(route.steps[3].what, k::pause);
  EXPECT_EQ(route.steps[3].duration, std::optional<duration>(30s));
  EXPECT_EQ(route.steps[4].weight, 70);
  EXPECT_EQ(route.steps[5].duration, std::optional<duration>(30s));
}

TEST(LoadConfig, EveryDefault) {
  proxy_config c = load_ok(kBase);
  EXPECT_EQ(c.file, kFile);
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8080);
  EXPECT_EQ(c.listen.text, "127.0.0.1:8080");
  EXPECT_EQ(c.workers, 0);
  EXPECT_EQ(c.admin.listen.host, "127.0.0.1");
  EXPECT_EQ(c.admin.listen.port, 9901);
  EXPECT_EQ(c.admin.listen.text, "127.0.0.1:9901");
  EXPECT_EQ(c.admin.token_file, "");
  EXPECT_EQ(c.state_file, "/etc/canary/canary-proxy.state.json");
  EXPECT_EQ(c.limits.max_request_header_bytes, 16384u);
  EXPECT_EQ(c.limits.max_header_fields, 100u);
  EXPECT_EQ(c.limits.max_request_body_bytes, 10485760u);
  EXPECT_EQ(c.limits.max_connections, 10000u);
  EXPECT_EQ(c.timeouts.client_header, 10s);
  EXPECT_EQ(c.timeouts.client_idle, 60s);
  EXPECT_EQ(c.timeouts.client_body_idle, 60s);
  EXPECT_EQ(c.timeouts.upstream_connect, 2s);
  EXPECT_EQ(c.timeouts.upstream_response, 30s);
  EXPECT_EQ(c.timeouts.upstream_idle, 30s);
  EXPECT_EQ(c.timeouts.drain, 15s);
  EXPECT_FALSE(c.access_log.enabled);
  EXPECT_EQ(c.access_log.path, "-");
  EXPECT_EQ(c.access_log.format, "json");

  ASSERT_EQ(c.upstreams.size(), 2u);
  const upstream_config& u = c.upstreams[0];
  EXPECT_EQ(u.name, "blue");
  ASSERT_EQ(u.endpoints.size(), 1u);
  EXPECT_EQ(u.endpoints[0].text, "127.0.0.1:9001");
  EXPECT_EQ(u.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(u.endpoints[0].address, "127.0.0.1");
  EXPECT_EQ(u.endpoints[0].port, 9001);
  EXPECT_FALSE(u.health_check.has_value());
  EXPECT_FALSE(u.outlier.has_value());

  ASSERT_EQ(c.routes.size(), 1u);
  const route_config& r = c.routes[0];
  EXPECT_EQ(r.name, "r");
  EXPECT_THAT(r.hosts, IsEmpty());
  EXPECT_EQ(r.path_prefix, "/");
  EXPECT_EQ(r.upstream, "blue");
  EXPECT_EQ(r.canary.by_header, "X-Canary");
  EXPECT_EQ(r.canary.by_header_value, "");
  EXPECT_EQ(r.canary.by_header_pattern, "");
  EXPECT_EQ(r.canary.by_cookie, "");
  EXPECT_EQ(r.canary.weight_total, 100);
  EXPECT_EQ(r.canary.sticky.how, sticky_config::kind::none);
  EXPECT_EQ(r.canary.sticky.name, "");
  EXPECT_EQ(r.canary.sticky_cookie_max_age, 24h);
  EXPECT_THAT(r.steps, IsEmpty());
}

// An empty health_check / outlier mapping turns the feature on with its defaults.
TEST(LoadConfig, HealthCheckAndOutlierDefaultsAndValues) {
  proxy_config c = load_ok(
      "upstreams:\n"
      "  blue:\n"
      "    endpoints: [\"127.0.0.1:9001\"]\n"
      "    health_check: {}\n"
      "    outlier: {}\n"
      "  green:\n"
      "    endpoints: [\"127.0.0.1:9002\"]\n"
      "    health_check: {path: /ready, interval: 2s, timeout: 500ms, healthy: 1, unhealthy: 4}\n"
      "    outlier: {consecutive_failures: 3, base_ejection: 1m, max_ejected_percent: 100}\n"
      "routes:\n"
      "  - {name: r, upstream: blue}\n");
  ASSERT_EQ(c.upstreams.size(), 2u);
  const auto& hc = c.upstreams[0].health_check;
  ASSERT_TRUE(hc.has_value());
  EXPECT_EQ(hc->path, "/healthz");
  EXPECT_EQ(hc->interval, 5s);
  EXPECT_EQ(hc->timeout, 1s);
  EXPECT_EQ(hc->healthy, 2);
  EXPECT_EQ(hc->unhealthy, 3);
  const auto& od = c.upstreams[0].outlier;
  ASSERT_TRUE(od.has_value());
  EXPECT_EQ(od->consecutive_failures, 5);
  EXPECT_EQ(od->base_ejection, 30s);
  EXPECT_EQ(od->max_ejected_percent, 50);

  const auto& hc2 = c.upstreams[1].health_check;
  ASSERT_TRUE(hc2.has_value());
  EXPECT_EQ(hc2->path, "/ready");
  EXPECT_EQ(hc2->interval, 2s);
  EXPECT_EQ(hc2->timeout, 500ms);
  EXPECT_EQ(hc2->healthy, 1);
  EXPECT_EQ(hc2->unhealthy, 4);
  const auto& od2 = c.upstreams[1].outlier;
  ASSERT_TRUE(od2.has_value());
  EXPECT_EQ(od2->consecutive_failures, 3);
  EXPECT_EQ(od2->base_ejection, 1min);
  EXPECT_EQ(od2->max_ejected_percent, 100);
}

TEST(LoadConfig, ExplicitValuesOverrideDefaults) {
  proxy_config c = load_ok(kBase +
                           "listen: \"0.0.0.0:80\"\n"
                           "workers: 4\n"
                           "limits: {max_request_header_bytes: 8192, max_header_fields: 50,\n"
                           "         max_request_body_bytes: 18446744073709551615,\n"
                           "         max_connections: 1}\n"
                           "timeouts: {client_header: 1.5s, client_idle: 90, drain: 0,\n"
                           "           upstream_idle: 1m30s}\n"
                           "access_log: {enabled: true, path: \"-\", format: text}\n");
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 80);
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.limits.max_request_header_bytes, 8192u);
  EXPECT_EQ(c.limits.max_header_fields, 50u);
  EXPECT_EQ(c.limits.max_request_body_bytes, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(c.limits.max_connections, 1u);
  EXPECT_EQ(c.timeouts.client_header, 1500ms);
  EXPECT_EQ(c.timeouts.client_idle, 90s);
  EXPECT_EQ(c.timeouts.drain, 0s);  // zero drain is allowed: cut at once
  EXPECT_EQ(c.timeouts.upstream_idle, 90s);
  EXPECT_EQ(c.timeouts.upstream_connect, 2s);
  EXPECT_TRUE(c.access_log.enabled);
  EXPECT_EQ(c.access_log.format, "text");
}

TEST(LoadConfig, Positions) {
  proxy_config c = load_ok(
      "upstreams:\n"                           // 1
      "  blue:\n"                              // 2
      "    endpoints: [\"127.0.0.1:9001\"]\n"  // 3
      "routes:\n"                              // 4
      "  - name: r\n"                          // 5
      "    upstream:   blue\n");               // 6
  EXPECT_EQ(c.upstreams[0].pos.line, 2);
  EXPECT_EQ(c.upstreams[0].pos.col, 3);
  EXPECT_EQ(c.routes[0].pos.line, 5);
  EXPECT_EQ(c.routes[0].pos.col, 5);
  EXPECT_EQ(c.routes[0].upstream_pos.line, 6);
  EXPECT_EQ(c.routes[0].upstream_pos.col, 17);
}

// ---- structure: types, unknown and duplicate keys

TEST(LoadErrors, UnknownRootKey) {
  EXPECT_THAT(errors_of(kBase + "foo: 1\n"),
              ElementsAre(at(6, 1,
                             "foo: unknown key \"foo\" (expected one of: listen, tls, workers, "
                             "admin, state_file, state_store, limits, timeouts, access_log, "
                             "upstreams, routes)")));
}

TEST(LoadErrors, UnknownKeysAtAnyDepth) {
  EXPECT_THAT(
      errors_of("upstreams:\n"                                     // 1
                "  blue:\n"                                        // 2
                "    endpoints: [\"127.0.0.1:9001\"]\n"            // 3
                "    health_check: {path: /h, intervall: 5s}\n"    // 4
                "    outlier:\n"                                   // 5
                "      base_ejection: 10s\n"                       // 6
                "      max_ejected: 5\n"                           // 7
                "routes:\n"                                        // 8
                "  - name: r\n"                                    // 9
                "    upstream: blue\n"                             // 10
                "    canary:\n"                                    // 11
                "      weigth_total: 10\n"                         // 12
                "    stepz: []\n"                                  // 13
                "admin: {listen: \"127.0.0.1:9901\", token: x}\n"  // 14
                "limits: {max_body: 1}\n"                          // 15
                "timeouts: {connect: 1s}\n"                        // 16
                "access_log: {file: x}\n"),                        // 17
      ElementsAre(
          at(4, 30,
             "upstreams.blue.health_check.intervall: unknown key \"intervall\" (expected one of: "
             "path, interval, timeout, healthy, unhealthy)"),
          at(7, 7,
             "upstreams.blue.outlier.max_ejected: unknown key \"max_ejected\" (expected one of: "
             "consecutive_failures, base_ejection, max_ejected_percent)"),
          at(12, 7,
             "routes[0].canary.weigth_total: unknown key \"weigth_total\" (expected one of: "
             "by_header, by_header_value, by_header_pattern, by_cookie, weight_total, sticky, "
             "sticky_cookie_max_age)"),
          at(13, 5,
             "routes[0].stepz: unknown key \"stepz\" (expected one of: name, hosts, path_prefix, "
             "upstream, canary, steps, analysis, webhooks)"),
          at(14, 35, "admin.token: unknown key \"token\" (expected one of: listen, token_file)"),
          at(15, 10,
             "limits.max_body: unknown key \"max_body\" (expected one of: "
             "max_request_header_bytes, max_header_fields, max_request_body_bytes, "
             "max_connections)"),
          at(16, 12,
             "timeouts.connect: unknown key \"connect\" (expected one of: client_header, "
             "client_idle, client_body_idle, upstream_connect, upstream_response, upstream_idle, "
             "drain, resolve, tunnel_idle)"),
          at(17, 14,
             "access_log.file: unknown key \"file\" (expected one of: enabled, path, format)")));
}

TEST(LoadErrors, DuplicateKeysAtAnyDepth) {
  EXPECT_THAT(
      errors_of("upstreams:\n"                                        // 1
                "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"         // 2
                "  blue: {endpoints: [\"127.0.0.1:9003\"]}\n"         // 3
                "routes:\n"                                           // 4
                "  - name: r\n"                                       // 5
                "    upstream: blue\n"                                // 6
                "    canary: {weight_total: 10, weight_total: 20}\n"  // 7
                "    name: s\n"                                       // 8
                "    steps:\n"                                        // 9
                "      - pause: {duration: 1s, duration: 2s}\n"       // 10
                "workers: 1\n"                                        // 11
                "workers: 2\n"),                                      // 12
      ElementsAre(at(3, 3, "upstreams.blue: duplicate key \"blue\""),
                  at(7, 32, "routes[0].canary.weight_total: duplicate key \"weight_total\""),
                  at(8, 5, "routes[0].name: duplicate key \"name\""),
                  at(10, 31, "routes[0].steps[0].pause.duration: duplicate key \"duration\""),
                  at(12, 1, "workers: duplicate key \"workers\"")));
}

TEST(LoadErrors, WrongTypes) {
  EXPECT_THAT(
      errors_of(kBase + "workers: \"4\"\n"              // 6: quoted: a string, not 4
                        "listen: [a]\n"                 // 7
                        "limits: 5\n"                   // 8
                        "access_log: {enabled: yes}\n"  // 9
                        "timeouts: {drain: [1]}\n"      // 10
                        "state_file: {a: 1}\n"          // 11
                        "admin: [1]\n"),                // 12
      ElementsAre(at(6, 10, "workers: expected an integer"), at(7, 9, "listen: expected a string"),
                  at(8, 9, "limits: expected a mapping"),
                  at(9, 23, "access_log.enabled: expected true or false"),
                  at(10, 19, "timeouts.drain: expected a duration " + kDurationForms),
                  at(11, 13, "state_file: expected a string"),
                  at(12, 8, "admin: expected a mapping")));
}

TEST(LoadErrors, NonIntegers) {
  EXPECT_THAT(errors_of(kBase + "workers: 1.5\n"                       // 6
                                "limits:\n"                            // 7
                                "  max_connections: 1e3\n"             // 8
                                "  max_header_fields: 0x10\n"          // 9
                                "  max_request_header_bytes: 12k\n"),  // 10
              ElementsAre(at(6, 10, "workers: expected an integer"),
                          at(8, 20, "limits.max_connections: expected an integer"),
                          at(9, 22, "limits.max_header_fields: expected an integer"),
                          at(10, 29, "limits.max_request_header_bytes: expected an integer")));
}

TEST(LoadErrors, TopLevelTypes) {
  EXPECT_THAT(
      errors_of("upstreams: []\n"
                "routes: {}\n"),
      ElementsAre(at(1, 12, "upstreams: expected a mapping"), at(2, 9, "routes: expected a list")));
  EXPECT_THAT(errors_of("- a\n"), ElementsAre(at(1, 1, "expected a mapping")));
}

TEST(LoadErrors, MissingRequiredKeys) {
  EXPECT_THAT(errors_of("workers: 1\n"), ElementsAre(at(1, 1, "missing required key \"upstreams\""),
                                                     at(1, 1, "missing required key \"routes\"")));
  EXPECT_THAT(errors_of(kUpstreams + "routes:\n"                // 4
                                     "  - path_prefix: /x\n"),  // 5
              ElementsAre(at(5, 5, "routes[0]: missing required key \"name\""),
                          at(5, 5, "routes[0]: missing required key \"upstream\"")));
}

TEST(LoadErrors, EmptyUpstreamsAndRoutes) {
  EXPECT_THAT(errors_of("upstreams: {}\n"
                        "routes: []\n"),
              ElementsAre(at(1, 12, "upstreams: expected at least one upstream"),
                          at(2, 9, "routes: expected at least one route")));
}

TEST(LoadErrors, EmptyConfig) {
  EXPECT_THAT(errors_of(""),
              ElementsAre(std::string(kFile) +
                          ": the config is empty (upstreams and routes are required)"));
  EXPECT_THAT(errors_of("# nothing but a comment\n"),
              ElementsAre(std::string(kFile) +
                          ": the config is empty (upstreams and routes are required)"));
}

TEST(LoadErrors, OnlyOneDocument) {
  EXPECT_THAT(errors_of(kBase + "---\n"           // 6
                                "workers: 1\n"),  // 7
              ElementsAre(at(7, 1, "only one YAML document is allowed in a config file")));
}

TEST(LoadErrors, YamlSyntaxError) {
  EXPECT_THAT(errors_of("upstreams: [1,\n"
                        "routes: 2\n"),
              ElementsAre(at(3, 1, "end of sequence flow not found")));
  EXPECT_THAT(errors_of("upstreams: 1\n"
                        "  routes: 2\n"),
              ElementsAre(at(2, 9, "illegal map value")));
}

// A null value has no position of its own in yaml-cpp: the error points at its key.
TEST(LoadErrors, EmptyValuePointsAtItsKey) {
  EXPECT_THAT(errors_of(kBase + "state_file:\n"  // 6
                                "workers: 1\n"),
              ElementsAre(at(6, 1, "state_file: expected a string")));
}

// ---- cross-references and routes

TEST(LoadErrors, UnknownUpstream) {
  EXPECT_THAT(errors_of(kUpstreams + "routes:\n"                 // 4
                                     "  - name: r\n"             // 5
                                     "    upstream: purple\n"),  // 6
              ElementsAre(at(6, 15,
                             "routes[0].upstream: unknown upstream \"purple\" (defined: blue, "
                             "green)")));
}

TEST(LoadErrors, DuplicateRouteNamesAndOverlappingRoutes) {
  EXPECT_THAT(
      errors_of(kUpstreams +
                "routes:\n"  // 4
                "  - {name: a, upstream: blue, hosts: [A.example, b.example], path_prefix: /api}\n"
                "  - {name: b, upstream: blue, hosts: [B.Example, a.example], path_prefix: /api}\n"
                "  - {name: a, upstream: green, path_prefix: /other}\n"
                "  - {name: c, upstream: green, hosts: [a.example], path_prefix: /api}\n"
                "  - {name: d, upstream: green, hosts: [b.example, a.example], path_prefix: /ap}\n"
                "  - {name: e, upstream: green}\n"
                "  - {name: f, upstream: green, path_prefix: /}\n"),
      ElementsAre(at(6, 5,
                     "routes[1]: same hosts and path_prefix as routes[0] (\"a\"): this route "
                     "could never match"),
                  at(7, 12, "routes[2].name: duplicate route name \"a\" (first at routes[0])"),
                  at(11, 5,
                     "routes[6]: same hosts and path_prefix as routes[5] (\"e\"): this route "
                     "could never match")));
}

TEST(LoadErrors, EmptyEndpointLists) {
  EXPECT_THAT(errors_of("upstreams:\n"               // 1
                        "  blue: {endpoints: []}\n"  // 2
                        "  green: {}\n"              // 3
                        "routes:\n"                  // 4
                        "  - {name: r, upstream: blue}\n"),
              ElementsAre(at(2, 21, "upstreams.blue.endpoints: expected at least one endpoint"),
                          at(3, 10, "upstreams.green: missing required key \"endpoints\"")));
}

TEST(LoadErrors, BadHostPort) {
  const std::string example = " (expected host:port, e.g. 127.0.0.1:9001 or [::1]:9001)";
  EXPECT_THAT(
      errors_of("upstreams:\n"                   // 1
                "  blue:\n"                      // 2
                "    endpoints:\n"               // 3
                "      - \"127.0.0.1\"\n"        // 4
                "      - \"127.0.0.1:0\"\n"      // 5
                "      - \"127.0.0.1:70000\"\n"  // 6
                "      - \"::1:80\"\n"           // 7
                "      - \"[zz]:80\"\n"          // 8
                "      - \":80\"\n"              // 9
                "      - \"a b:80\"\n"           // 10
                "      - \"[::1]80\"\n"          // 11
                "      - \"127.0.0.1:80x\"\n"    // 12
                "      - \"[::1]:80\"\n"         // 13: fine
                "routes:\n"                      // 14
                "  - {name: r, upstream: blue}\n"
                "listen: \"0.0.0.0\"\n"          // 16
                "admin: {listen: \"[::1\"}\n"),  // 17
      ElementsAre(
          at(4, 9,
             "upstreams.blue.endpoints[0]: bad address \"127.0.0.1\": missing \":port\"" + example),
          at(5, 9,
             "upstreams.blue.endpoints[1]: bad address \"127.0.0.1:0\": port must be 1-65535"),
          at(6, 9,
             "upstreams.blue.endpoints[2]: bad address \"127.0.0.1:70000\": port must be 1-65535"),
          at(7, 9,
             "upstreams.blue.endpoints[3]: bad address \"::1:80\": IPv6 addresses need brackets, "
             "e.g. [::1]:9001"),
          at(8, 9,
             "upstreams.blue.endpoints[4]: bad address \"[zz]:80\": \"zz\" is not an IPv6 "
             "address"),
          at(9, 9, "upstreams.blue.endpoints[5]: bad address \":80\": missing host" + example),
          at(10, 9,
             "upstreams.blue.endpoints[6]: bad address \"a b:80\": \"a b\" is not a host name or "
             "IP address"),
          at(11, 9,
             "upstreams.blue.endpoints[7]: bad address \"[::1]80\": missing \":port\"" + example),
          at(12, 9,
             "upstreams.blue.endpoints[8]: bad address \"127.0.0.1:80x\": port must be 1-65535"),
          at(16, 9, "listen: bad address \"0.0.0.0\": missing \":port\"" + example),
          at(17, 17, "admin.listen: bad address \"[::1\": missing \"]\"" + example)));
}

TEST(LoadConfig, ResolvesNamesOncePreferringIpv4) {
  proxy_config c = load_ok(
      "upstreams:\n"
      "  blue: {endpoints: [\"localhost:9001\", \"[::1]:9002\", \"[::FFFF:127.0.0.1]:9003\"]}\n"
      "routes:\n"
      "  - {name: r, upstream: blue}\n"
      "listen: \"localhost:8081\"\n");
  const auto& eps = c.upstreams.at(0).endpoints;
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[0].text, "localhost:9001");
  EXPECT_EQ(eps[0].host, "localhost");
  EXPECT_EQ(eps[0].address, "127.0.0.1");
  EXPECT_EQ(eps[0].port, 9001);
  EXPECT_EQ(eps[1].host, "::1");
  EXPECT_EQ(eps[1].address, "::1");
  EXPECT_EQ(eps[1].port, 9002);
  EXPECT_EQ(eps[2].address, "::ffff:127.0.0.1");
  // The listener keeps what was written in `text` and the numeric address to bind in `host`.
  EXPECT_EQ(c.listen.text, "localhost:8081");
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8081);
}

TEST(LoadErrors, UnresolvableName) {
  std::vector<std::string> errors = errors_of(
      "upstreams:\n"
      "  blue: {endpoints: [\"127.0.0.1:9001\", \"no-such-host.invalid:80\"]}\n"
      "routes:\n"
      "  - {name: r, upstream: blue}\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], StartsWith(at(2, 40,
                                       "upstreams.blue.endpoints[1]: cannot resolve "
                                       "\"no-such-host.invalid\": ")));
}

TEST(LoadErrors, BadNames) {
  EXPECT_THAT(errors_of("upstreams:\n"                                                // 1
                        "  \"bl ue\": {endpoints: [\"127.0.0.1:9001\"]}\n"            // 2
                        "routes:\n"                                                   // 3
                        "  - {name: \"a/b\", upstream: \"bl ue\"}\n"                  // 4
                        "  - {name: \"\", upstream: \"bl ue\", path_prefix: /x}\n"),  // 5
              ElementsAre(at(2, 3, "upstreams.bl ue: bad upstream name \"bl ue\"" + kNameRule),
                          at(4, 12, "routes[0].name: bad route name \"a/b\"" + kNameRule),
                          at(5, 12, "routes[1].name: bad route name \"\"" + kNameRule)));
}

// A route name is one URL path segment (/api/v1/rollouts/NAME): "." and ".." would be collapsed
// by the browser (the dashboard's "abort" on route ".." would call /api/v1/abort), and anything
// outside letters, digits, ".", "_", "-" would need escaping. Bounded to 128 bytes.
TEST(LoadErrors, RouteNamesAreSafeUrlPathSegments) {
  const std::string long_name(129, 'a');
  EXPECT_THAT(errors_of(kUpstreams + "routes:\n"                                  // 4
                                     "  - {name: ., upstream: blue, path_prefix: /a}\n"      // 5
                                     "  - {name: .., upstream: blue, path_prefix: /b}\n"     // 6
                                     "  - {name: \"a b\", upstream: blue, path_prefix: /c}\n"  // 7
                                     "  - {name: \"a%2F\", upstream: blue, path_prefix: /d}\n"  // 8
                                     "  - {name: \"r~1\", upstream: blue, path_prefix: /e}\n"  // 9
                                     "  - {name: \"é\", upstream: blue, path_prefix: /f}\n"  // 10
                                     "  - {name: " + long_name + ", upstream: blue}\n"),  // 11
              ElementsAre(at(5, 12, "routes[0].name: bad route name \".\"" + kNameRule),
                          at(6, 12, "routes[1].name: bad route name \"..\"" + kNameRule),
                          at(7, 12, "routes[2].name: bad route name \"a b\"" + kNameRule),
                          at(8, 12, "routes[3].name: bad route name \"a%2F\"" + kNameRule),
                          at(9, 12, "routes[4].name: bad route name \"r~1\"" + kNameRule),
                          at(10, 12, "routes[5].name: bad route name \"é\"" + kNameRule),
                          at(11, 12, "routes[6].name: bad route name \"" + long_name + "\"" +
                                         kNameRule)));
  // Dots are fine when the segment is not a dot segment; 128 bytes is the limit.
  proxy_config c = load_ok(kUpstreams + "routes:\n"
                                        "  - {name: ..., upstream: blue, path_prefix: /a}\n"
                                        "  - {name: .a, upstream: blue, path_prefix: /b}\n"
                                        "  - {name: v1.2_x-y, upstream: blue, path_prefix: /c}\n"
                                        "  - {name: " + std::string(128, 'z') +
                                        ", upstream: blue}\n");
  ASSERT_EQ(c.routes.size(), 4u);
  EXPECT_EQ(c.routes[0].name, "...");
  EXPECT_EQ(c.routes[3].name.size(), 128u);
  // Upstream names follow the same rule (URLs of the dashboard, metric labels).
  EXPECT_THAT(errors_of("upstreams:\n"
                        "  ..: {endpoints: [\"127.0.0.1:9001\"]}\n"
                        "routes:\n"
                        "  - {name: r, upstream: ..}\n"),
              ElementsAre(at(2, 3, "upstreams...: bad upstream name \"..\"" + kNameRule)));
}

TEST(LoadErrors, PathPrefix) {
  EXPECT_THAT(errors_of(kUpstreams + "routes:\n"                                               // 4
                                     "  - {name: r, upstream: blue, path_prefix: api}\n"       // 5
                                     "  - {name: s, upstream: blue, path_prefix: \"/a?b\"}\n"  // 6
                                     "  - {name: t, upstream: blue, path_prefix: \"\"}\n"),    // 7
              ElementsAre(at(5, 44, "routes[0].path_prefix: must start with \"/\""),
                          at(6, 44,
                             "routes[1].path_prefix: must not contain \"?\" or \"#\" (it matches "
                             "the path before the query)"),
                          at(7, 44, "routes[2].path_prefix: must start with \"/\"")));
}

TEST(LoadConfig, HostsAreLowerCased) {
  proxy_config c = load_ok(kUpstreams +
                           "routes:\n"
                           "  - {name: a, upstream: blue, hosts: [Canary.Example.COM, \"[::1]\"]}\n"
                           "  - {name: b, upstream: blue, hosts: [canary.example.com]}\n");
  EXPECT_THAT(c.routes.at(0).hosts, ElementsAre("canary.example.com", "[::1]"));
  EXPECT_THAT(c.routes.at(1).hosts, ElementsAre("canary.example.com"));
}

TEST(LoadErrors, HostsWithPortsOrBadCharacters) {
  EXPECT_THAT(
      errors_of(kUpstreams + "routes:\n"                                                     // 4
                             "  - {name: a, upstream: blue, hosts: [a.example]}\n"           // 5
                             "  - {name: b, upstream: blue, hosts: [\"b.example:8080\"]}\n"  // 6
                             "  - {name: c, upstream: blue, hosts: [\"bad host\", \"\"]}\n"  // 7
                             "  - {name: d, upstream: blue, hosts: [\"[::1]:80\"]}\n"),      // 8
      ElementsAre(at(6, 39,
                     "routes[1].hosts[0]: host \"b.example:8080\" must not have a port "
                     "(the request's port is ignored when matching)"),
                  at(7, 39,
                     "routes[2].hosts[0]: bad host \"bad host\" (expected a host name or "
                     "IP address)"),
                  at(7, 51,
                     "routes[2].hosts[1]: bad host \"\" (expected a host name or IP "
                     "address)"),
                  at(8, 39,
                     "routes[3].hosts[0]: host \"[::1]:80\" must not have a port (the "
                     "request's port is ignored when matching)")));
}

// ---- steps and weights

TEST(LoadConfig, Steps) {
  proxy_config c = load_ok(kUpstreams +
                           "routes:\n"
                           "  - name: r\n"
                           "    upstream: blue\n"
                           "    steps:\n"
                           "      - setWeight: 0\n"
                           "      - pause: {}\n"
                           "      - setWeight: 100\n"
                           "      - pause: {duration: 1m30s}\n"
                           "      - pause:\n"
                           "          duration: 90\n"
                           "      - pause: {duration: 250ms}\n");
  using k = step_config::kind;
  const auto& s = c.routes.at(0).steps;
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[0].what, k::set_weight);
  EXPECT_EQ(s[0].weight, 0);
  EXPECT_EQ(s[1].what, k::pause);
  EXPECT_EQ(s[1].duration, std::nullopt);
  EXPECT_EQ(s[2].what, k::set_weight);
  EXPECT_EQ(s[2].weight, 100);
  EXPECT_EQ(s[3].what, k::pause);
  EXPECT_EQ(s[3].duration, std::optional<duration>(90s));
  EXPECT_EQ(s[4].duration, std::optional<duration>(90s));
  EXPECT_EQ(s[5].duration, std::optional<duration>(250ms));
}

TEST(LoadConfig, EmptyStepListPromotesAtOnce) {
  proxy_config c = load_ok(kUpstreams +
                           "routes:\n"
                           "  - {name: r, upstream: blue, steps: []}\n");
  EXPECT_THAT(c.routes.at(0).steps, IsEmpty());
}

TEST(LoadErrors, BadSteps) {
  const std::string step_shape =
      "a step is a mapping with one key: setWeight: N, pause: {}, pause: {duration: 30s}, "
      "analysis: {duration: 2m} or setMirror: {percent: 20}";
  EXPECT_THAT(
      errors_of(kUpstreams + "routes:\n"                               // 4
                             "  - name: r\n"                           // 5
                             "    upstream: blue\n"                    // 6
                             "    steps:\n"                            // 7
                             "      - setWeight: 120\n"                // 8
                             "      - setWeight: -1\n"                 // 9
                             "      - setWeight: 2.5\n"                // 10
                             "      - pause: {duration: 0s}\n"         // 11
                             "      - pause: {duration: 5x}\n"         // 12
                             "      - pause: null\n"                   // 13
                             "      - pause: {duration: 30s, x: 1}\n"  // 14
                             "      - {setWeight: 10, pause: {}}\n"    // 15
                             "      - wait: 10s\n"                     // 16
                             "      - 20\n"                            // 17
                             "      - pause: []\n"),                   // 18
      ElementsAre(
          at(8, 20, "routes[0].steps[0].setWeight: setWeight 120 is outside 0..100 (weight_total)"),
          at(9, 20, "routes[0].steps[1].setWeight: setWeight -1 is outside 0..100 (weight_total)"),
          at(10, 20, "routes[0].steps[2].setWeight: expected an integer"),
          at(11, 27, "routes[0].steps[3].pause.duration: must be greater than 0"),
          at(12, 27, "routes[0].steps[4].pause.duration: bad duration \"5x\" " + kDurationForms),
          at(13, 16,
             "routes[0].steps[5].pause: expected a mapping: pause: {} or pause: {duration: 30s}"),
          at(14, 32, "routes[0].steps[6].pause.x: unknown key \"x\" (expected one of: duration)"),
          at(15, 9, "routes[0].steps[7]: " + step_shape),
          at(16, 9,
             "routes[0].steps[8].wait: unknown key \"wait\" (expected one of: setWeight, pause, "
             "analysis, setMirror)"),
          at(17, 9, "routes[0].steps[9]: " + step_shape),
          at(18, 16,
             "routes[0].steps[10].pause: expected a mapping: pause: {} or pause: {duration: "
             "30s}")));
}

TEST(LoadConfig, WeightsFollowWeightTotal) {
  proxy_config c = load_ok(kUpstreams +
                           "routes:\n"
                           "  - name: r\n"
                           "    upstream: blue\n"
                           "    canary: {weight_total: 1000}\n"
                           "    steps: [{setWeight: 1}, {setWeight: 120}, {setWeight: 1000}]\n");
  EXPECT_EQ(c.routes.at(0).canary.weight_total, 1000);
  EXPECT_EQ(c.routes.at(0).steps.at(1).weight, 120);
  // weight_total is read before steps whatever the key order.
  EXPECT_THAT(errors_of(kUpstreams + "routes:\n"                                       // 4
                                     "  - name: r\n"                                   // 5
                                     "    upstream: blue\n"                            // 6
                                     "    steps: [{setWeight: 5}, {setWeight: 11}]\n"  // 7
                                     "    canary: {weight_total: 10}\n"),              // 8
              ElementsAre(at(7, 41,
                             "routes[0].steps[1].setWeight: setWeight 11 is outside 0..10 "
                             "(weight_total)")));
}

TEST(LoadErrors, WeightTotalRange) {
  EXPECT_THAT(
      errors_of(kUpstreams +
                "routes:\n"                                                                 // 4
                "  - {name: a, upstream: blue, canary: {weight_total: 0}}\n"                // 5
                "  - {name: b, upstream: blue, path_prefix: /b,\n"                          // 6
                "     canary: {weight_total: 1000001}, steps: [{setWeight: 2000000}]}\n"),  // 7
      ElementsAre(at(5, 54, "routes[0].canary.weight_total: must be between 1 and 1000000"),
                  at(7, 29, "routes[1].canary.weight_total: must be between 1 and 1000000")));
}

// ---- canary rules

TEST(LoadConfig, StickyForms) {
  proxy_config c = load_ok(
      kUpstreams +
      "routes:\n"
      "  - {name: a, upstream: blue, canary: {sticky: \"\"}}\n"
      "  - {name: b, upstream: blue, path_prefix: /b, canary: {sticky: client_ip}}\n"
      "  - {name: c, upstream: blue, path_prefix: /c, canary: {sticky: \"header:X-User-Id\"}}\n"
      "  - {name: d, upstream: blue, path_prefix: /d,\n"
      "     canary: {sticky: \"cookie:canary_id\", sticky_cookie_max_age: 168h}}\n");
  using k = sticky_config::kind;
  ASSERT_EQ(c.routes.size(), 4u);
  EXPECT_EQ(c.routes[0].canary.sticky.how, k::none);
  EXPECT_EQ(c.routes[1].canary.sticky.how, k::client_ip);
  EXPECT_EQ(c.routes[1].canary.sticky.name, "");
  EXPECT_EQ(c.routes[2].canary.sticky.how, k::header);
  EXPECT_EQ(c.routes[2].canary.sticky.name, "X-User-Id");
  EXPECT_EQ(c.routes[3].canary.sticky.how, k::cookie);
  EXPECT_EQ(c.routes[3].canary.sticky.name, "canary_id");
  EXPECT_EQ(c.routes[3].canary.sticky_cookie_max_age, 168h);
}

TEST(LoadErrors, BadStickyForms) {
  EXPECT_THAT(
      errors_of(kUpstreams +
                "routes:\n"                                              // 4
                "  - {name: a, upstream: blue, canary: {sticky: ip}}\n"  // 5
                "  - {name: b, upstream: blue, canary: {sticky: \"header:\"}, path_prefix: /b}\n"
                "  - {name: c, upstream: blue, canary: {sticky: \"cookie:a b\"}, path_prefix: /c}\n"
                "  - {name: d, upstream: blue, canary: {sticky: \"Header:X\"}, path_prefix: /d}\n"
                "  - {name: e, upstream: blue, canary: {sticky: [client_ip]}, path_prefix: /e}\n"),
      ElementsAre(at(5, 48,
                     "routes[0].canary.sticky: bad sticky \"ip\" (expected \"\", \"client_ip\", "
                     "\"header:NAME\" or \"cookie:NAME\")"),
                  at(6, 48,
                     "routes[1].canary.sticky: bad sticky \"header:\": \"\" is not a valid header "
                     "name (an HTTP token)"),
                  at(7, 48,
                     "routes[2].canary.sticky: bad sticky \"cookie:a b\": \"a b\" is not a valid "
                     "cookie name (an HTTP token)"),
                  at(8, 48,
                     "routes[3].canary.sticky: bad sticky \"Header:X\" (expected \"\", "
                     "\"client_ip\", \"header:NAME\" or \"cookie:NAME\")"),
                  at(9, 48, "routes[4].canary.sticky: expected a string")));
}

TEST(LoadErrors, Re2Pattern) {
  EXPECT_THAT(errors_of(kUpstreams +
                        "routes:\n"                                                            // 4
                        "  - {name: a, upstream: blue, canary: {by_header_pattern: \"(\"}}\n"  // 5
                        "  - {name: b, upstream: blue, canary: {by_header_pattern: \"x**\"},\n"
                        "     path_prefix: /b}\n"),
              ElementsAre(at(5, 59,
                             "routes[0].canary.by_header_pattern: invalid RE2 pattern \"(\": "
                             "missing ): ("),
                          at(6, 59,
                             "routes[1].canary.by_header_pattern: invalid RE2 pattern \"x**\": "
                             "bad repetition operator: **")));
}

// ingress-nginx allows both: the exact value is tried first (see step 3 of docs/routing.md).
TEST(LoadConfig, HeaderValueAndPatternTogether) {
  proxy_config c = load_ok(
      kUpstreams +
      "routes:\n"
      "  - name: r\n"
      "    upstream: blue\n"
      "    canary: {by_header: X-Beta, by_header_value: \"1\", by_header_pattern: \"^(yes|on)$\",\n"
      "             by_cookie: canary}\n");
  const canary_config& k = c.routes.at(0).canary;
  EXPECT_EQ(k.by_header, "X-Beta");
  EXPECT_EQ(k.by_header_value, "1");
  EXPECT_EQ(k.by_header_pattern, "^(yes|on)$");
  EXPECT_EQ(k.by_cookie, "canary");
}

TEST(LoadErrors, HeaderAndCookieNames) {
  EXPECT_THAT(
      errors_of(
          kUpstreams +
          "routes:\n"  // 4
          "  - {name: a, upstream: blue, canary: {by_header: \"X Canary\", by_cookie: \"c;\"}}\n"
          "  - {name: b, upstream: blue, path_prefix: /b, canary: {by_header: \"\", "
          "by_header_value: \"1\"}}\n"),
      ElementsAre(
          at(5, 51,
             "routes[0].canary.by_header: bad header name \"X Canary\" (expected an HTTP "
             "token)"),
          at(5, 74, "routes[0].canary.by_cookie: bad cookie name \"c;\" (expected an HTTP token)"),
          at(6, 89,
             "routes[1].canary.by_header_value: by_header_value has no effect without "
             "by_header")));
}

// ---- values

TEST(LoadErrors, Durations) {
  EXPECT_THAT(
      errors_of(kBase + "timeouts:\n"                // 6
                        "  client_header: 0\n"       // 7
                        "  client_idle: 5x\n"        // 8
                        "  drain: 0\n"               // 9: zero drain is fine
                        "  upstream_connect: 1.5\n"  // 10
                        "  upstream_idle: -1s\n"),   // 11
      ElementsAre(at(7, 18, "timeouts.client_header: must be greater than 0"),
                  at(8, 16, "timeouts.client_idle: bad duration \"5x\" " + kDurationForms),
                  at(10, 21, "timeouts.upstream_connect: bad duration \"1.5\" " + kDurationForms),
                  at(11, 18, "timeouts.upstream_idle: bad duration \"-1s\" " + kDurationForms)));
}

TEST(LoadErrors, Limits) {
  EXPECT_THAT(errors_of(kBase + "limits:\n"                                         // 6
                                "  max_request_header_bytes: 0\n"                   // 7
                                "  max_header_fields: -3\n"                         // 8
                                "  max_request_body_bytes: 18446744073709551616\n"  // 9
                                "  max_connections: \"5\"\n"                        // 10
                                "workers: -1\n"),                                   // 11
              ElementsAre(at(7, 29, "limits.max_request_header_bytes: must be at least 1"),
                          at(8, 22, "limits.max_header_fields: must be at least 1"),
                          at(9, 27,
                             "limits.max_request_body_bytes: \"18446744073709551616\" is out of "
                             "range"),
                          at(10, 20, "limits.max_connections: expected an integer"),
                          at(11, 10, "workers: must be at least 0")));
}

TEST(LoadErrors, IntegersBeyondTheirType) {
  EXPECT_THAT(errors_of(kBase + "workers: 3000000000\n"),
              ElementsAre(at(6, 10, "workers: must be at most 2147483647")));
  EXPECT_THAT(errors_of(kBase + "workers: 99999999999999999999\n"),
              ElementsAre(at(6, 10, "workers: \"99999999999999999999\" is out of range")));
}

TEST(LoadErrors, HealthCheckAndOutlierValues) {
  EXPECT_THAT(
      errors_of("upstreams:\n"                                                        // 1
                "  blue:\n"                                                           // 2
                "    endpoints: [\"127.0.0.1:9001\"]\n"                               // 3
                "    health_check: {path: healthz, healthy: 0, interval: 0}\n"        // 4
                "    outlier: {max_ejected_percent: 101, consecutive_failures: 0}\n"  // 5
                "routes:\n"
                "  - {name: r, upstream: blue}\n"),
      ElementsAre(
          at(4, 26, "upstreams.blue.health_check.path: must start with \"/\""),
          at(4, 44, "upstreams.blue.health_check.healthy: must be at least 1"),
          at(4, 57, "upstreams.blue.health_check.interval: must be greater than 0"),
          at(5, 36, "upstreams.blue.outlier.max_ejected_percent: must be between 0 and 100"),
          at(5, 63, "upstreams.blue.outlier.consecutive_failures: must be at least 1")));
}

TEST(LoadErrors, AccessLog) {
  EXPECT_THAT(errors_of(kBase + "access_log: {format: xml, path: \"\", enabled: 1}\n"),
              ElementsAre(at(6, 22,
                             "access_log.format: unknown format \"xml\" (expected json or "
                             "text)"),
                          at(6, 33, "access_log.path: must not be empty (use \"-\" for stdout)"),
                          at(6, 46, "access_log.enabled: expected true or false")));
}

// ---- admin exposure

TEST(LoadErrors, AdminOnNonLoopbackNeedsToken) {
  const std::string exposed =
      "admin.listen: admin listens on a non-loopback address without admin.token_file: anyone "
      "who can reach it could shift traffic";
  EXPECT_THAT(errors_of(kBase + "admin:\n"                        // 6
                                "  listen: \"0.0.0.0:9901\"\n"),  // 7
              ElementsAre(at(7, 11, exposed)));
  EXPECT_THAT(errors_of(kBase + "admin: {listen: \"[::]:9901\"}\n"),
              ElementsAre(at(6, 17, exposed)));
  EXPECT_THAT(errors_of(kBase + "admin: {listen: \"10.1.2.3:9901\", token_file: \"\"}\n"),
              ElementsAre(at(6, 17, exposed)));
}

TEST(LoadConfig, AdminOnNonLoopbackWithToken) {
  proxy_config c = load_ok(kBase +
                           "admin:\n"
                           "  listen: \"0.0.0.0:9901\"\n"
                           "  token_file: secrets/admin.token\n");
  EXPECT_EQ(c.admin.listen.host, "0.0.0.0");
  EXPECT_EQ(c.admin.token_file, "/etc/canary/secrets/admin.token");
}

TEST(LoadConfig, AdminOnLoopbackNeedsNoToken) {
  for (const char* listen : {"127.0.0.1:9901", "127.5.6.7:9901", "[::1]:9901", "localhost:9901",
                             "[::ffff:127.0.0.1]:9901"}) {
    load_result r = load_string(kBase + "admin: {listen: \"" + listen + "\"}\n", kFile);
    EXPECT_THAT(r.errors, IsEmpty()) << listen;
  }
  proxy_config c = load_ok(kBase + "admin: {listen: \"localhost:9902\"}\n");
  EXPECT_EQ(c.admin.listen.text, "localhost:9902");
  EXPECT_EQ(c.admin.listen.host, "127.0.0.1");
  EXPECT_EQ(c.admin.listen.port, 9902);
}

// ---- relative paths

TEST(LoadConfig, RelativePathsResolveAgainstTheConfigDirectory) {
  proxy_config c = load_ok(kBase +
                           "state_file: state/./s.json\n"
                           "admin: {token_file: ../secret/token}\n"
                           "access_log: {path: logs/access.log}\n");
  EXPECT_EQ(c.state_file, "/etc/canary/state/s.json");
  EXPECT_EQ(c.admin.token_file, "/etc/secret/token");
  EXPECT_EQ(c.access_log.path, "/etc/canary/logs/access.log");
}

TEST(LoadConfig, AbsolutePathsAndStdoutStay) {
  proxy_config c = load_ok(kBase +
                           "state_file: /var/lib/canary//x/../s.json\n"
                           "access_log: {path: \"-\"}\n");
  EXPECT_EQ(c.state_file, "/var/lib/canary/s.json");
  EXPECT_EQ(c.access_log.path, "-");
  EXPECT_EQ(c.admin.token_file, "");
}

TEST(LoadConfig, RelativeConfigFileResolvesAgainstTheWorkingDirectory) {
  proxy_config c = load_ok(kBase, "conf/proxy.yaml");
  EXPECT_EQ(c.file, "conf/proxy.yaml");
  EXPECT_EQ(c.state_file,
            (std::filesystem::current_path() / "conf/canary-proxy.state.json").string());
}

TEST(LoadErrors, EmptyStateFile) {
  EXPECT_THAT(errors_of(kBase + "state_file: \"\"\n"),
              ElementsAre(at(6, 13,
                             "state_file: must not be empty (the rollout state is kept "
                             "there)")));
}

// ---- several errors at once, sorted by position

TEST(LoadErrors, AllErrorsAtOnceInFileOrder) {
  EXPECT_THAT(
      errors_of("workers: -1\n"                                // 1
                "upstreams:\n"                                 // 2
                "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"  // 3
                "routes:\n"                                    // 4
                "  - {name: r, upstream: green}\n"             // 5
                "listen: \"nowhere\"\n"                        // 6
                "timeouts: {drain: soon}\n"),                  // 7
      ElementsAre(at(1, 10, "workers: must be at least 0"),
                  at(5, 25, "routes[0].upstream: unknown upstream \"green\" (defined: blue)"),
                  at(6, 9,
                     "listen: bad address \"nowhere\": missing \":port\" (expected "
                     "host:port, e.g. 127.0.0.1:9001 or [::1]:9001)"),
                  at(7, 19, "timeouts.drain: bad duration \"soon\" " + kDurationForms)));
  load_result r = load_string("workers: -1\n" + kBase, kFile);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, kFile);
  EXPECT_EQ(r.errors[0].line, 1);
  EXPECT_EQ(r.errors[0].col, 10);
  EXPECT_EQ(r.errors[0].key_path, "workers");
  EXPECT_EQ(r.errors[0].message, "must be at least 0");
}

// ---- files and error text

TEST(ConfigError, ToStringFormats) {
  EXPECT_EQ((config_error{"c.yaml", 3, 7, "routes[0].canary.weight_total", "bad"}).to_string(),
            "c.yaml:3:7: routes[0].canary.weight_total: bad");
  EXPECT_EQ((config_error{"c.yaml", 3, 7, "", "bad"}).to_string(), "c.yaml:3:7: bad");
  EXPECT_EQ((config_error{"c.yaml", 0, 0, "state_file", "bad"}).to_string(),
            "c.yaml: state_file: bad");
  EXPECT_EQ((config_error{"c.yaml", 0, 0, "", "bad"}).to_string(), "c.yaml: bad");
}

TEST(LoadFile, MissingFile) {
  load_result r = load_file("/nonexistent-dir/proxy.yaml");
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].col, 0);
  EXPECT_EQ(r.errors[0].to_string(),
            "/nonexistent-dir/proxy.yaml: cannot read file: No such file or directory");
}

TEST(LoadFile, DirectoryIsNotAFile) {
  const std::string dir = std::string(CANARY_SOURCE_DIR) + "/config";
  load_result r = load_file(dir);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), dir + ": cannot read file: Is a directory");
}

}  // namespace
}  // namespace canary::config
