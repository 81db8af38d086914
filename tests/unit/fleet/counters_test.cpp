// Unit tests of the fleet-wide analysis counts (proxy/fleet/counters.h): JSON round trip, and
// the leader's sum of other replicas' increments that never loses a dead replica's requests.
#include "fleet/counters.h"

#include <gtest/gtest.h>

namespace canary::fleet {
namespace {

analysis::interval_sample sample(std::uint64_t canary_requests, std::uint64_t canary_bad,
                                 std::uint64_t stable_requests = 0) {
  analysis::interval_sample s;
  s.canary.requests = canary_requests;
  s.canary.bad = canary_bad;
  s.canary.total = canary_requests;
  s.canary.latency[2] = canary_requests;
  s.stable.requests = stable_requests;
  s.stable.slow[1] = stable_requests / 2;
  return s;
}

TEST(FleetCounters, JsonRoundTrip) {
  std::map<std::string, analysis::interval_sample> in{{"web", sample(10, 2, 30)},
                                                      {"api", sample(1, 0)}};
  auto out = decode_counters(encode_counters(in));
  ASSERT_TRUE(out);
  ASSERT_EQ(out->size(), 2u);
  const auto& w = out->at("web");
  EXPECT_EQ(w.canary.requests, 10u);
  EXPECT_EQ(w.canary.bad, 2u);
  EXPECT_EQ(w.canary.latency[2], 10u);
  EXPECT_EQ(w.stable.requests, 30u);
  EXPECT_EQ(w.stable.slow[1], 15u);
  EXPECT_FALSE(decode_counters("{\"web\": {\"stable\": [1], \"canary\": []}}"));
  EXPECT_FALSE(decode_counters("nope"));
}

TEST(FleetCounters, OthersIncrementsSinceFirstSeenAndDeadReplicasStayCounted) {
  fleet_counters c;
  c.update("a/1", {{"web", sample(100, 5)}});  // counted before: only later increments count
  c.update("b/1", {{"web", sample(7, 0)}});
  c.update("self/1", {{"web", sample(50, 50)}});
  EXPECT_EQ(c.others("web", "self/1").canary.requests, 0u);
  c.update("a/1", {{"web", sample(130, 6)}});
  c.update("b/1", {{"web", sample(17, 1)}});
  c.update("self/1", {{"web", sample(60, 60)}});
  auto s = c.others("web", "self/1");
  EXPECT_EQ(s.canary.requests, 40u);
  EXPECT_EQ(s.canary.bad, 2u);
  // b dies (its key went with its lease): what it published stays counted.
  fleet_counters after = c;
  after.update("a/1", {{"web", sample(140, 6)}});
  EXPECT_EQ(after.others("web", "self/1").canary.requests, 50u);
  // b restarts (a new incarnation): its counts start from its first value again.
  after.update("b/2", {{"web", sample(3, 0)}});
  after.update("b/2", {{"web", sample(8, 0)}});
  EXPECT_EQ(after.others("web", "self/1").canary.requests, 55u);
  EXPECT_EQ(after.others("api", "self/1").canary.requests, 0u);
}

}  // namespace
}  // namespace canary::fleet
