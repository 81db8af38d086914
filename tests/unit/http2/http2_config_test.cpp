// The `http2:` config block (config/read_root.cpp): defaults, values, ranges and unknown keys
// with their FILE:LINE:COL, and the ALPN list it selects (tls/context.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/load.h"
#include "tls/context.h"

namespace canary::config {
namespace {

using namespace std::string_view_literals;
using ::testing::ElementsAre;

constexpr const char* kFile = "/etc/canary/proxy.yaml";
// Lines 1-5: the smallest valid config; a test's own lines start on line 6.
const std::string kBase =
    "upstreams:\n"
    "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"
    "  green: {endpoints: [\"127.0.0.1:9002\"]}\n"
    "routes:\n"
    "  - {name: r, upstream: blue}\n";

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_string(yaml, kFile).errors) out.push_back(e.to_string());
  return out;
}

std::string at(int line, int col, const std::string& rest) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
         rest;
}

TEST(Http2Config, Defaults) {
  const auto r = load_string(kBase, kFile);
  ASSERT_TRUE(r.errors.empty());
  const auto& h = r.config->http2;
  EXPECT_TRUE(h.enabled);
  EXPECT_FALSE(h.h2c);
  EXPECT_EQ(h.max_concurrent_streams, 128u);
  EXPECT_EQ(h.initial_window, 65535u);
}

TEST(Http2Config, Values) {
  const auto r = load_string(kBase +
                                 "http2: {enabled: false, h2c: true, max_concurrent_streams: 7, "
                                 "initial_window: 1048576}\n",
                             kFile);
  ASSERT_TRUE(r.errors.empty());
  const auto& h = r.config->http2;
  EXPECT_FALSE(h.enabled);
  EXPECT_TRUE(h.h2c);
  EXPECT_EQ(h.max_concurrent_streams, 7u);
  EXPECT_EQ(h.initial_window, 1048576u);
}

TEST(Http2Config, RangesAndUnknownKeys) {
  EXPECT_THAT(errors_of(kBase +
                        "http2:\n"                          // 6
                        "  max_concurrent_streams: 0\n"     // 7
                        "  initial_window: 2147483648\n"    // 8
                        "  push: true\n"),                  // 9
              ElementsAre(at(7, 27, "http2.max_concurrent_streams: must be at least 1"),
                          at(8, 19, "http2.initial_window: must be at most 2147483647"),
                          at(9, 3,
                             "http2.push: unknown key \"push\" (expected one of: enabled, h2c, "
                             "max_concurrent_streams, initial_window)")));
}

TEST(Http2Alpn, H2IsOfferedFirstWhenEnabled) {
  EXPECT_EQ(tls::select_protocol(tls::offered_protocols(true), "\x08http/1.1\x02h2"sv), "h2");
  EXPECT_EQ(tls::select_protocol(tls::offered_protocols(true), "\x08http/1.1"sv), "http/1.1");
  EXPECT_EQ(tls::select_protocol(tls::offered_protocols(false), "\x02h2\x08http/1.1"sv),
            "http/1.1");
}

}  // namespace
}  // namespace canary::config
