// Tests for the `state_store:` section (docs/fleet.md): defaults, an etcd store's keys, and each
// error with its FILE:LINE:COL.
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

// Lines 1-5: the smallest valid config; a test's own lines start on line 6.
const std::string kBase =
    "upstreams:\n"                                  // 1
    "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"   // 2
    "  green: {endpoints: [\"127.0.0.1:9002\"]}\n"  // 3
    "routes:\n"                                     // 4
    "  - {name: r, upstream: blue}\n";              // 5

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : load_string(yaml, kFile).errors) out.push_back(e.to_string());
  return out;
}

std::string at(int line, int col, const std::string& rest) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + rest;
}

TEST(StateStoreConfig, DefaultsToTheFile) {
  auto r = load_string(kBase, kFile);
  ASSERT_TRUE(r.config);
  const auto& s = r.config->state_store;
  EXPECT_EQ(s.type, state_store_config::kind::file);
  EXPECT_EQ(s.endpoints, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(s.prefix, "/canary-proxy/");
  EXPECT_EQ(s.lease_ttl, 10s);
  EXPECT_EQ(s.dial_timeout, 2s);
  EXPECT_EQ(s.replica_id, "");
  EXPECT_EQ(s.stale_canary_after, 5min);
}

TEST(StateStoreConfig, EtcdWithEveryKey) {
  auto r = load_string(kBase +
                           "state_store:\n"
                           "  type: etcd\n"
                           "  etcd:\n"
                           "    endpoints: [\"http://10.0.0.1:2379\", \"http://etcd-2:2379\"]\n"
                           "    prefix: /prod/canary/\n"
                           "    lease_ttl: 15s\n"
                           "    dial_timeout: 500ms\n"
                           "    replica_id: edge-1\n"
                           "    stale_canary_after: 1m\n",
                       kFile);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].to_string();
  const auto& s = r.config->state_store;
  EXPECT_EQ(s.type, state_store_config::kind::etcd);
  EXPECT_EQ(s.endpoints,
            (std::vector<std::string>{"http://10.0.0.1:2379", "http://etcd-2:2379"}));
  EXPECT_EQ(s.prefix, "/prod/canary/");
  EXPECT_EQ(s.lease_ttl, 15s);
  EXPECT_EQ(s.dial_timeout, 500ms);
  EXPECT_EQ(s.replica_id, "edge-1");
  EXPECT_EQ(s.stale_canary_after, 1min);
}

TEST(StateStoreConfig, Errors) {
  EXPECT_THAT(errors_of(kBase + "state_store: {type: consul}\n"),  // 6
              ElementsAre(at(6, 21, "state_store.type: unknown type \"consul\" (expected file "
                                    "or etcd)")));
  EXPECT_THAT(
      errors_of(kBase + "state_store:\n"                                         // 6
                        "  etcd:\n"                                              // 7
                        "    endpoints: [\"https://e:2379\", \"e:2379\"]\n"      // 8
                        "    prefix: /canary\n"                                  // 9
                        "    lease_ttl: 1500ms\n"                                // 10
                        "    replica_id: \"a b\"\n"                              // 11
                        "    stale: 1m\n"),                                      // 12
      ElementsAre(
          at(8, 17, "state_store.etcd.endpoints[0]: https etcd endpoints are not supported yet "
                    "(use http:// on a trusted network)"),
          at(8, 35, "state_store.etcd.endpoints[1]: bad etcd endpoint \"e:2379\" (expected "
                    "http://HOST:PORT)"),
          at(9, 13, "state_store.etcd.prefix: must end with \"/\" (keys are "
                    "<prefix>routes/<name>)"),
          at(10, 16, "state_store.etcd.lease_ttl: must be a whole number of seconds, at least 1s"),
          at(11, 17, "state_store.etcd.replica_id: bad replica_id \"a b\" (use up to 128 "
                     "letters, digits, \".\", \"_\" and \"-\"; \"\" = <hostname>-<admin port>)"),
          at(12, 5, "state_store.etcd.stale: unknown key \"stale\" (expected one of: endpoints, "
                    "prefix, lease_ttl, dial_timeout, replica_id, stale_canary_after)")));
}

}  // namespace
}  // namespace canary::config
