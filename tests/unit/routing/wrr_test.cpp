// wrr_state: nginx's smooth weighted round-robin over canary:stable = weight:(total-weight).
// The contract (see step 5 of docs/routing.md) is exactness: every window of `total` consecutive
// weight-decided picks on a worker holds exactly `weight` canary picks, and a weight change starts
// afresh.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "routing/router.h"

namespace canary::routing {
namespace {

std::vector<int> picks(wrr_state& wrr, int weight, int total, int n) {
  std::vector<int> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(wrr.next(weight, total) == variant::canary);
  return out;
}

// Every window of `total` consecutive picks in `seq` holds exactly `weight` canary picks.
void expect_exact_windows(const std::vector<int>& seq, int weight, int total) {
  ASSERT_GE(seq.size(), static_cast<std::size_t>(total));
  int in_window = 0;
  for (int i = 0; i < total; ++i) in_window += seq[i];
  ASSERT_EQ(in_window, weight) << "window at 0 for " << weight << "/" << total;
  for (std::size_t i = total; i < seq.size(); ++i) {
    in_window += seq[i] - seq[i - total];
    ASSERT_EQ(in_window, weight) << "window ending at " << i << " for " << weight << "/" << total;
  }
}

TEST(Wrr, EverySlidingWindowIsExact) {
  const std::vector<std::pair<int, int>> cases = {{20, 100}, {1, 1000}, {999, 1000}, {50, 100},
                                                  {33, 100}, {1, 2},    {0, 100},    {100, 100},
                                                  {7, 10},   {1, 100},  {99, 100},   {333, 1000}};
  for (auto [weight, total] : cases) {
    wrr_state wrr;
    expect_exact_windows(picks(wrr, weight, total, 3 * total), weight, total);
  }
}

// Spreading, not bunching: at 1 in 4 the picks are evenly spaced, as nginx's smooth variant
// promises (a plain WRR would give canary four times in a row at 4/5).
TEST(Wrr, IsSmooth) {
  wrr_state wrr;
  EXPECT_EQ(picks(wrr, 1, 4, 8), (std::vector<int>{0, 1, 0, 0, 0, 1, 0, 0}));
  wrr_state wrr2;
  EXPECT_EQ(picks(wrr2, 3, 4, 8), (std::vector<int>{1, 1, 0, 1, 1, 1, 0, 1}));
}

TEST(Wrr, ExtremesNeverCrossOver) {
  wrr_state wrr;
  for (int i = 0; i < 500; ++i) ASSERT_EQ(wrr.next(0, 100), variant::stable);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(wrr.next(100, 100), variant::canary);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(wrr.next(1000, 1000), variant::canary);
}

// After a change the new pair is exact from its first pick, whatever state the old one left.
TEST(Wrr, WeightChangeResets) {
  wrr_state wrr;
  picks(wrr, 20, 100, 37);  // mid-period of the old weight
  EXPECT_EQ(wrr.weight, 20);
  EXPECT_NE(wrr.current_canary, 0);
  auto after = picks(wrr, 50, 100, 300);
  EXPECT_EQ(wrr.weight, 50);
  wrr_state fresh;
  EXPECT_EQ(after, picks(fresh, 50, 100, 300));
  expect_exact_windows(after, 50, 100);
}

TEST(Wrr, TotalChangeResets) {
  wrr_state wrr;
  picks(wrr, 1, 3, 1);
  auto after = picks(wrr, 1, 4, 8);
  EXPECT_EQ(after, (std::vector<int>{0, 1, 0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(wrr.weight_total, 4);
}

// Header and cookie decisions are not weight decisions: the round-robin sequence of the requests
// that do reach step 5 is the same as if the overrides never happened.
TEST(Wrr, OverridesDoNotAdvanceIt) {
  config::route_config route;
  route.name = "demo";
  route.canary.by_header = "X-Canary";
  route.canary.by_cookie = "c";
  const auto rule = compile_rule(route);

  request_inputs plain, header, cookie;
  header.canary_header = "always";
  cookie.cookies = "c=never";

  wrr_state reference;
  const auto want = picks(reference, 33, 100, 300);

  wrr_state wrr;
  std::vector<int> got;
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(decide(rule, true, 33, header, wrr, 0).why, reason::header);
    ASSERT_EQ(decide(rule, true, 33, cookie, wrr, 0).why, reason::cookie);
    ASSERT_EQ(decide(rule, false, 33, plain, wrr, 0).why, reason::no_canary);
    auto d = decide(rule, true, 33, plain, wrr, 0);
    ASSERT_EQ(d.why, reason::weight);
    got.push_back(d.side == variant::canary);
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace canary::routing
