// Sticky weighting (see step 5 of docs/routing.md): hash(route, key) mod weight_total < weight, so
// a user keeps its side and raising the weight only moves users stable -> canary. Covers the three
// key sources, the proxy-issued cookie, the no-key fallback, sticky_hash's pinned values and
// find_cookie.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "routing/router.h"

namespace canary::routing {
namespace {

using kind = config::sticky_config::kind;

canary_rule sticky_rule(kind how, std::string name = "", int total = 100) {
  config::route_config route;
  route.name = "demo";
  route.canary.by_header = "X-Canary";
  route.canary.weight_total = total;
  route.canary.sticky = {how, std::move(name)};
  route.canary.sticky_cookie_max_age = std::chrono::hours(1);
  return compile_rule(route);
}

// A fixed stand-in for the caller's random source (splitmix64 stepping), so runs repeat.
struct fake_random {
  std::uint64_t state = 42;
  std::uint64_t operator()() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

decision decide_key(const canary_rule& r, int weight, std::string_view key) {
  request_inputs in;
  in.sticky_header = key;
  wrr_state wrr;
  return decide(r, true, weight, in, wrr, 0);
}

// Changing these values moves every sticky user: the hash is part of the contract. Computed
// independently from the documented algorithm (FNV-1a 64 over route, 0, key; splitmix64 finalizer).
TEST(StickyHash, PinnedValues) {
  EXPECT_EQ(sticky_hash("", ""), 0x25fc6dd36ce04b20ULL);
  EXPECT_EQ(sticky_hash("demo", "user-1"), 0xd85b4011c413b76fULL);
  EXPECT_EQ(sticky_hash("demo", "user-2"), 0x86d665e3deaa02f1ULL);
  EXPECT_EQ(sticky_hash("other", "user-1"), 0xfeae499b809dea2bULL);
}

// The 0 separator keeps ("ab","c") and ("a","bc") apart.
TEST(StickyHash, RouteAndKeyAreSeparated) {
  EXPECT_NE(sticky_hash("ab", "c"), sticky_hash("a", "bc"));
  EXPECT_NE(sticky_hash("demo", "k"), sticky_hash("demo2", "k"));
}

TEST(Sticky, SameKeySameSide) {
  auto r = sticky_rule(kind::header, "X-User-Id");
  for (int k = 0; k < 200; ++k) {
    std::string key = "user-" + std::to_string(k);
    auto first = decide_key(r, 50, key);
    ASSERT_EQ(first.why, reason::sticky);
    EXPECT_TRUE(first.set_cookie.empty());
    // Interleaving requests through one round-robin state changes nothing for a keyed user.
    wrr_state shared;
    for (int i = 0; i < 5; ++i) {
      request_inputs in;
      in.sticky_header = key;
      ASSERT_EQ(decide(r, true, 50, in, shared, 0).side, first.side) << key;
    }
  }
}

// Raising the weight in steps never sends a user back to stable, and each step's canary share is
// the weight's share (10 000 keys: one standard deviation is at most 0.5 %).
TEST(Sticky, MonotoneAndProportional) {
  auto r = sticky_rule(kind::header, "X-User-Id");
  constexpr int keys = 10000;
  std::vector<bool> canary(keys, false);
  for (int w = 0; w <= 100; w += 10) {
    int share = 0;
    for (int k = 0; k < keys; ++k) {
      bool now = decide_key(r, w, "user-" + std::to_string(k)).side == variant::canary;
      ASSERT_FALSE(canary[k] && !now) << "key " << k << " moved back to stable at weight " << w;
      canary[k] = now;
      share += now;
    }
    EXPECT_NEAR(share, keys * w / 100, keys * 2 / 100) << "weight " << w;
  }
}

TEST(Sticky, FineWeightTotal) {
  auto r = sticky_rule(kind::header, "X-User-Id", 1000);
  int share = 0;
  for (int k = 0; k < 10000; ++k)
    share += decide_key(r, 5, std::to_string(k)).side == variant::canary;
  EXPECT_NEAR(share, 50, 25);  // 0.5 %
  EXPECT_GT(share, 0);
}

TEST(Sticky, ClientIpMode) {
  auto r = sticky_rule(kind::client_ip);
  // Two addresses on opposite sides at 50 %, found by the hash itself.
  std::string on_canary, on_stable;
  for (int i = 0; on_canary.empty() || on_stable.empty(); ++i) {
    std::string ip = "10.0.0." + std::to_string(i);
    (sticky_hash("demo", ip) % 100 < 50 ? on_canary : on_stable) = ip;
  }
  for (int i = 0; i < 10; ++i) {
    request_inputs in;
    in.client_ip = on_canary;
    in.sticky_header = on_stable;  // not the key in this mode
    in.cookies = "sid=" + on_stable;
    wrr_state wrr;
    auto d = decide(r, true, 50, in, wrr, 0);
    EXPECT_EQ(d.side, variant::canary);
    EXPECT_EQ(d.why, reason::sticky);
    in.client_ip = on_stable;
    d = decide(r, true, 50, in, wrr, 0);
    EXPECT_EQ(d.side, variant::stable);
    EXPECT_EQ(d.why, reason::sticky);
  }
}

TEST(Sticky, CookieModeUsesTheCookie) {
  auto r = sticky_rule(kind::cookie, "sid");
  int canary = 0;
  for (int k = 0; k < 1000; ++k) {
    std::string id = "id" + std::to_string(k);
    request_inputs in;
    std::string cookies = "a=1; sid=" + id + "; b=2";
    in.cookies = cookies;
    wrr_state wrr;
    auto d = decide(r, true, 30, in, wrr, 0);
    ASSERT_EQ(d.why, reason::sticky);
    ASSERT_TRUE(d.set_cookie.empty());
    ASSERT_EQ(d.side, sticky_hash("demo", id) % 100 < 30 ? variant::canary : variant::stable);
    canary += d.side == variant::canary;
  }
  EXPECT_NEAR(canary, 300, 60);
}

TEST(Sticky, CookieModeIssuesCookie) {
  auto r = sticky_rule(kind::cookie, "sid");
  request_inputs in;
  in.cookies = "other=1";
  wrr_state wrr;
  auto d = decide(r, true, 50, in, wrr, 0x0123456789abcdefULL);
  EXPECT_EQ(d.why, reason::sticky);
  EXPECT_EQ(d.set_cookie, "sid=0123456789abcdef; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
  EXPECT_EQ(wrr.weight, -1);  // not a round-robin decision
}

// The first request goes where the issued id will send every later one.
TEST(Sticky, IssuedCookieRoutesLikeLaterRequests) {
  auto r = sticky_rule(kind::cookie, "sid");
  fake_random rnd;
  int seen[2] = {0, 0};
  for (int i = 0; i < 400; ++i) {
    request_inputs first;
    wrr_state wrr;
    auto d = decide(r, true, 50, first, wrr, rnd());
    const std::string prefix = "sid=";
    ASSERT_EQ(d.set_cookie.rfind(prefix, 0), 0u) << d.set_cookie;
    auto semi = d.set_cookie.find(';');
    std::string id = d.set_cookie.substr(prefix.size(), semi - prefix.size());
    ASSERT_EQ(id.size(), 16u);
    ASSERT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;

    request_inputs later;
    std::string cookie = "sid=" + id;
    later.cookies = cookie;
    auto again = decide(r, true, 50, later, wrr, rnd());
    ASSERT_TRUE(again.set_cookie.empty());
    ASSERT_EQ(again.side, d.side) << id;
    ++seen[static_cast<int>(d.side)];
  }
  EXPECT_GT(seen[0], 100);  // both sides issued, so the check above is not vacuous
  EXPECT_GT(seen[1], 100);
}

// An empty cookie value identifies no one: issue a fresh id rather than hash "".
TEST(Sticky, EmptyStickyCookieIsReissued) {
  auto r = sticky_rule(kind::cookie, "sid");
  request_inputs in;
  in.cookies = "sid=; a=1";
  wrr_state wrr;
  auto d = decide(r, true, 50, in, wrr, 0xffULL);
  EXPECT_EQ(d.set_cookie, "sid=00000000000000ff; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax");
  EXPECT_EQ(d.side,
            sticky_hash("demo", "00000000000000ff") % 100 < 50 ? variant::canary : variant::stable);
}

// No key (missing or empty header, no peer address) -> the exact round-robin, reason weight.
TEST(Sticky, NoKeyFallsBackToRoundRobin) {
  for (auto how : {kind::header, kind::client_ip}) {
    auto r = sticky_rule(how, how == kind::header ? "X-User-Id" : "");
    wrr_state wrr, reference;
    for (int i = 0; i < 300; ++i) {
      request_inputs in;
      if (i % 2 == 0 && how == kind::header) in.sticky_header = "";
      auto d = decide(r, true, 20, in, wrr, 0);
      ASSERT_EQ(d.why, reason::weight);
      ASSERT_TRUE(d.set_cookie.empty());
      ASSERT_EQ(d.side, reference.next(20, 100)) << i;
    }
  }
}

// Overrides come before stickiness and issue no cookie.
TEST(Sticky, HeaderOverrideBeatsSticky) {
  auto r = sticky_rule(kind::cookie, "sid");
  request_inputs in;
  in.canary_header = "always";
  wrr_state wrr;
  auto d = decide(r, true, 0, in, wrr, 1);
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::header);
  EXPECT_TRUE(d.set_cookie.empty());
}

TEST(Sticky, WeightExtremes) {
  auto r = sticky_rule(kind::header, "X-User-Id");
  for (int k = 0; k < 1000; ++k) {
    std::string key = std::to_string(k);
    ASSERT_EQ(decide_key(r, 0, key).side, variant::stable);
    ASSERT_EQ(decide_key(r, 100, key).side, variant::canary);
  }
}

TEST(FindCookie, Basic) {
  EXPECT_EQ(find_cookie("a=1; b=2", "a"), "1");
  EXPECT_EQ(find_cookie("a=1; b=2", "b"), "2");
  EXPECT_EQ(find_cookie("a=1; b=2", "c"), std::nullopt);
  EXPECT_EQ(find_cookie("", "a"), std::nullopt);
}

TEST(FindCookie, Whitespace) {
  EXPECT_EQ(find_cookie("a=1;b=2", "b"), "2");
  EXPECT_EQ(find_cookie("  a = 1 ;\tb=2  ", "a"), "1");
  EXPECT_EQ(find_cookie("  a = 1 ;\tb=2  ", "b"), "2");
}

TEST(FindCookie, NameIsExactAndCaseSensitive) {
  EXPECT_EQ(find_cookie("A=1", "a"), std::nullopt);
  EXPECT_EQ(find_cookie("xa=1; ax=2", "a"), std::nullopt);
  EXPECT_EQ(find_cookie("b=a=1", "a"), std::nullopt);  // '=' inside a value is not a name
  EXPECT_EQ(find_cookie("b=a=1", "b"), "a=1");
}

TEST(FindCookie, FirstMatchWins) { EXPECT_EQ(find_cookie("a=1; a=2", "a"), "1"); }

TEST(FindCookie, QuotedValue) {
  EXPECT_EQ(find_cookie("a=\"x y\"; b=2", "a"), "x y");
  EXPECT_EQ(find_cookie("a=\"\"", "a"), "");
  EXPECT_EQ(find_cookie("a=\"", "a"), "\"");  // a lone quote is just a byte
}

TEST(FindCookie, EmptyValueAndJunk) {
  EXPECT_EQ(find_cookie("a=; b=2", "a"), "");
  EXPECT_EQ(find_cookie(";;junk; b=2;", "b"), "2");
  EXPECT_EQ(find_cookie("junk", "junk"), std::nullopt);
}

}  // namespace
}  // namespace canary::routing
