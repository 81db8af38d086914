#include "upstream/select.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace canary::upstream {
namespace {

std::vector<std::shared_ptr<endpoint>> endpoints(std::size_t n) {
  std::vector<std::shared_ptr<endpoint>> out;
  for (std::size_t i = 0; i < n; ++i) {
    auto e = std::make_shared<endpoint>();
    e->id = static_cast<std::uint32_t>(i);
    out.push_back(e);
  }
  return out;
}

std::vector<std::uint32_t> walk(const std::vector<std::shared_ptr<endpoint>>& eps,
                                std::uint32_t start, steady::time_point now) {
  std::vector<std::uint32_t> ids;
  round_robin_walk w(eps, start);
  while (const auto* ep = w.next(now)) ids.push_back((*ep)->id);
  return ids;
}

const steady::time_point t0{std::chrono::seconds(1000)};

TEST(round_robin_walk, visits_each_endpoint_once_from_the_start) {
  const auto eps = endpoints(3);
  EXPECT_EQ(walk(eps, 0, t0), (std::vector<std::uint32_t>{0, 1, 2}));
  EXPECT_EQ(walk(eps, 4, t0), (std::vector<std::uint32_t>{1, 2, 0}));
  EXPECT_EQ(walk(eps, 0xffffffffu, t0), (std::vector<std::uint32_t>{0, 1, 2}));
}

TEST(round_robin_walk, skips_endpoints_that_are_down) {
  const auto eps = endpoints(3);
  eps[1]->mark_down(t0, std::chrono::seconds(1));
  eps[2]->health_down = true;
  EXPECT_EQ(walk(eps, 1, t0), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(walk(eps, 1, t0 + std::chrono::seconds(2)), (std::vector<std::uint32_t>{1, 0}));
}

TEST(round_robin_walk, an_endpoint_marked_down_during_the_walk_is_skipped) {
  const auto eps = endpoints(2);
  round_robin_walk w(eps, 0);
  const auto* first = w.next(t0);
  ASSERT_NE(first, nullptr);
  eps[1]->mark_down(t0, std::chrono::seconds(1));  // as a failed connect would
  EXPECT_EQ(w.next(t0), nullptr);
}

TEST(round_robin_walk, no_endpoints) {
  const std::vector<std::shared_ptr<endpoint>> none;
  round_robin_walk w(none, 7);
  EXPECT_EQ(w.next(t0), nullptr);
}

}  // namespace
}  // namespace canary::upstream
