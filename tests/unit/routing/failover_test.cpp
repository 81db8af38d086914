#include "routing/failover.h"

#include <gtest/gtest.h>

namespace canary::routing {
namespace {

struct ups {
  bool stable = true;
  bool canary = true;
  int asked = 0;
  bool operator()(variant v) {
    ++asked;
    return v == variant::canary ? canary : stable;
  }
};

TEST(failover, the_decided_side_when_it_is_up_without_asking_about_the_other) {
  ups u;
  const auto c = choose_side(variant::canary, reason::weight, true, u);
  EXPECT_EQ(c.side, variant::canary);
  EXPECT_EQ(c.why, reason::weight);
  EXPECT_TRUE(c.available);
  EXPECT_EQ(u.asked, 1);
}

TEST(failover, a_down_canary_fails_over_to_stable) {
  ups u{.stable = true, .canary = false};
  const auto c = choose_side(variant::canary, reason::header, true, u);
  EXPECT_EQ(c.side, variant::stable);
  EXPECT_EQ(c.why, reason::failover);
  EXPECT_TRUE(c.available);
}

TEST(failover, a_down_stable_fails_over_only_to_an_active_canary) {
  ups u{.stable = false, .canary = true};
  const auto active = choose_side(variant::stable, reason::weight, true, u);
  EXPECT_EQ(active.side, variant::canary);
  EXPECT_EQ(active.why, reason::failover);
  ups v{.stable = false, .canary = true};
  const auto aborted = choose_side(variant::stable, reason::no_canary, false, v);
  EXPECT_FALSE(aborted.available);
  EXPECT_EQ(aborted.side, variant::stable);
  EXPECT_EQ(aborted.why, reason::no_canary);
  EXPECT_EQ(v.asked, 1);  // the canary side is not even looked at
}

TEST(failover, both_down_is_unavailable) {
  ups u{.stable = false, .canary = false};
  EXPECT_FALSE(choose_side(variant::canary, reason::weight, true, u).available);
}

TEST(failover, after_connect_failures) {
  ups u;
  EXPECT_EQ(failover_side(variant::canary, false, u), variant::stable);
  EXPECT_EQ(failover_side(variant::stable, true, u), variant::canary);
  EXPECT_EQ(failover_side(variant::stable, false, u), std::nullopt);
  ups down{.stable = false, .canary = true};
  EXPECT_EQ(failover_side(variant::canary, true, down), std::nullopt);
}

}  // namespace
}  // namespace canary::routing
