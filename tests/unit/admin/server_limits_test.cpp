// The admin listener's descriptor budget derived from RLIMIT_NOFILE (admin/server.h).
#include "admin/server.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace canary::admin {
namespace {

TEST(AdminLimits, AnEighthOfTheDescriptorsThreeQuartersOfThemForWatchers) {
  auto l = limits_for_nofile(64);
  EXPECT_EQ(l.max_connections, 8u);
  EXPECT_EQ(l.max_watchers, 6u);
  l = limits_for_nofile(1024);
  EXPECT_EQ(l.max_connections, 128u);
  EXPECT_EQ(l.max_watchers, 96u);
}

TEST(AdminLimits, BoundedBelowAndAbove) {
  auto l = limits_for_nofile(10);
  EXPECT_EQ(l.max_connections, 4u);
  EXPECT_EQ(l.max_watchers, 3u);
  l = limits_for_nofile(UINT64_MAX);  // RLIM_INFINITY
  EXPECT_EQ(l.max_connections, 1024u);
  EXPECT_EQ(l.max_watchers, 768u);
}

TEST(AdminLimits, ThisProcessLeavesMostDescriptorsToTheRest) {
  const auto l = limits_for_this_process();
  EXPECT_GE(l.max_connections, 4u);
  EXPECT_LT(l.max_watchers, l.max_connections);
}

}  // namespace
}  // namespace canary::admin
