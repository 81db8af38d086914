// Tests for the `setMirror` step of config::load_string (docs/config-reference.md): defaults,
// explicit values, and every error with its FILE:LINE:COL and key path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/load.h"

namespace canary::config {
namespace {

using ::testing::ElementsAre;

constexpr const char* kFile = "/etc/canary/proxy.yaml";

// Lines 1-7: a route whose steps start on line 8.
const std::string kHead =
    "upstreams:\n"                                   // 1
    "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"    // 2
    "  green: {endpoints: [\"127.0.0.1:9002\"]}\n"   // 3
    "routes:\n"                                      // 4
    "  - name: r\n"                                  // 5
    "    upstream: blue\n"                           // 6
    "    steps:\n";                                  // 7

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_string(yaml, kFile).errors) out.push_back(e.to_string());
  return out;
}

std::string at(int line, int col, const std::string& rest) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + rest;
}

TEST(MirrorConfig, DefaultsAndValues) {
  auto r = load_string(kHead +
                           "      - setMirror: {percent: 20}\n"                         // 8
                           "      - setMirror: {percent: 5, methods: [get, OPTIONS, GET], "
                           "max_body_bytes: 0}\n"                                       // 9
                           "      - setMirror: {percent: 100, methods: [POST, GET], "
                           "allow_unsafe: true}\n"                                      // 10
                           "      - setMirror: {percent: 0}\n",                         // 11
                       kFile);
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const auto& steps = r.config->routes.at(0).steps;
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].what, step_config::kind::set_mirror);
  EXPECT_EQ(steps[0].mirror.percent, 20);
  EXPECT_EQ(steps[0].mirror.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(steps[0].mirror.max_body_bytes, 65536u);
  EXPECT_FALSE(steps[0].mirror.allow_unsafe);
  // Methods are upper-cased and listed once.
  EXPECT_EQ(steps[1].mirror.methods, (std::vector<std::string>{"GET", "OPTIONS"}));
  EXPECT_EQ(steps[1].mirror.max_body_bytes, 0u);
  EXPECT_EQ(steps[2].mirror.methods, (std::vector<std::string>{"POST", "GET"}));
  EXPECT_TRUE(steps[2].mirror.allow_unsafe);
  EXPECT_EQ(steps[3].mirror.percent, 0);
}

TEST(MirrorConfig, Errors) {
  EXPECT_THAT(
      errors_of(kHead +
                "      - setMirror: {percent: 101}\n"                                    // 8
                "      - setMirror: {percent: -1}\n"                                     // 9
                "      - setMirror: {methods: [GET]}\n"                                  // 10
                "      - setMirror: {percent: 10, methods: [GET, FETCH]}\n"              // 11
                "      - setMirror: {percent: 10, methods: [GET, POST, delete]}\n"       // 12
                "      - setMirror: {percent: 10, methods: []}\n"                        // 13
                "      - setMirror: {percent: 10, allow_unsafe: maybe}\n"                // 14
                "      - setMirror: {percent: 10, mirror: all}\n"                        // 15
                "      - setMirror: 20\n"),                                              // 16
      ElementsAre(
          at(8, 30, "routes[0].steps[0].setMirror.percent: must be between 0 and 100"),
          at(9, 30, "routes[0].steps[1].setMirror.percent: must be between 0 and 100"),
          at(10, 20, "routes[0].steps[2].setMirror: missing required key \"percent\""),
          at(11, 49,
             "routes[0].steps[3].setMirror.methods[1]: unknown method \"FETCH\" (expected GET, "
             "HEAD, OPTIONS, TRACE, POST, PUT, PATCH or DELETE)"),
          at(12, 49,
             "routes[0].steps[4].setMirror.methods[1]: method POST is unsafe to mirror: the "
             "canary would perform it a second time (a mirrored checkout charges twice); set "
             "allow_unsafe: true to mirror it anyway"),
          at(12, 55,
             "routes[0].steps[4].setMirror.methods[2]: method DELETE is unsafe to mirror: the "
             "canary would perform it a second time (a mirrored checkout charges twice); set "
             "allow_unsafe: true to mirror it anyway"),
          at(13, 43, "routes[0].steps[5].setMirror.methods: expected at least one method"),
          at(14, 48, "routes[0].steps[6].setMirror.allow_unsafe: expected true or false"),
          at(15, 34,
             "routes[0].steps[7].setMirror.mirror: unknown key \"mirror\" (expected one of: "
             "percent, methods, max_body_bytes, allow_unsafe)"),
          at(16, 20,
             "routes[0].steps[8].setMirror: expected a mapping: setMirror: {percent: 20, "
             "methods: [GET, HEAD]}")));
}

}  // namespace
}  // namespace canary::config
