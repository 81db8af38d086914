// endpoint::mark_down under concurrency: workers racing short connect hold-offs against a long
// outlier ejection never shorten the ejection. Bounded: a fixed number of rounds of two threads.
#include "upstream/endpoint.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace canary::upstream {
namespace {

using namespace std::chrono_literals;

TEST(EndpointMarkDown, NeverShortensALongerHold) {
  endpoint ep;
  const auto t0 = steady::time_point(100s);
  ep.mark_down(t0, 10s);
  ep.mark_down(t0, 1s);
  EXPECT_EQ(ep.down_until_ns.load(), (t0 + 10s).time_since_epoch().count());
  ep.mark_down(t0 + 5s, 20s);
  EXPECT_EQ(ep.down_until_ns.load(), (t0 + 25s).time_since_epoch().count());
  EXPECT_FALSE(ep.up(t0 + 24s));
  EXPECT_TRUE(ep.up(t0 + 25s));
}

// Each round: one thread keeps storing ever later short hold-offs (every call of it moves the
// deadline, so it keeps going through mark_down's read-and-write); once it is running, a second
// thread ejects the endpoint for an hour. Whatever the interleaving, the hour must remain. With
// a load-then-store, a short hold-off that read the value before the ejection and stored after
// it wins, and the endpoint comes back after a millisecond.
TEST(EndpointMarkDown, RacingHoldsTheLongestAlwaysWins) {
  constexpr int rounds = 1000;
  constexpr int short_calls = 20000;
  const auto t0 = steady::time_point(1000s);
  const auto ejected_until = (t0 + std::chrono::hours(1)).time_since_epoch().count();
  int lost = 0;
  for (int r = 0; r < rounds; ++r) {
    endpoint ep;
    std::atomic<int> progress{0};
    std::thread shorts([&] {
      for (int i = 1; i <= short_calls; ++i) {
        ep.mark_down(t0 + std::chrono::microseconds(i), 1ms);
        if (i == 64) progress.store(1, std::memory_order_release);
      }
      progress.store(2, std::memory_order_release);
    });
    std::thread eject([&] {
      while (progress.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      ep.mark_down(t0, std::chrono::hours(1));
    });
    shorts.join();
    eject.join();
    if (ep.down_until_ns.load() != ejected_until) ++lost;
  }
  EXPECT_EQ(lost, 0) << lost << " of " << rounds
                     << " rounds ended with a short hold-off over the ejection";
}

TEST(EndpointRegistry, OneObjectPerAddressWhileUsedAndDeadEntriesAreForgotten) {
  endpoint_registry reg;
  auto a = reg.get("127.0.0.1", 9001);
  EXPECT_EQ(reg.get("127.0.0.1", 9001), a);
  EXPECT_EQ(a->text, "127.0.0.1:9001");
  EXPECT_EQ(reg.get("::1", 9001)->text, "[::1]:9001");
  {
    // A long run of reloads that each name other addresses.
    std::vector<std::shared_ptr<endpoint>> held;
    for (std::uint16_t port = 20000; port < 20200; ++port)
      held.push_back(reg.get("127.0.0.1", port));
  }
  auto b = reg.get("127.0.0.1", 9002);
  EXPECT_EQ(reg.size(), 2u) << "entries of addresses no snapshot uses are kept";
  EXPECT_EQ(reg.get("127.0.0.1", 9001), a) << "a used endpoint is the same object";
  const auto old_id = b->id;
  b.reset();
  EXPECT_NE(reg.get("127.0.0.1", 9002)->id, old_id) << "ids are never reused";
}

}  // namespace
}  // namespace canary::upstream
