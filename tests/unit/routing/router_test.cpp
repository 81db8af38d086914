// decide(): the precedence of steps 2-5 of docs/routing.md, checked against the ingress-nginx e2e
// cases (ingress-nginx test/e2e/annotations/canary.go) that apply to one
// route. Also compile_rule and the to_string names, which are part of the metrics/log contract.
#include "routing/router.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace canary::routing {
namespace {

using config::route_config;

struct fixture {
  route_config route;
  fixture() {
    route.name = "demo";
    route.upstream = "blue";
    route.canary.by_header = "X-Canary";
  }
  canary_rule rule() const { return compile_rule(route); }
};

request_inputs with_header(std::string_view v) {
  request_inputs in;
  in.canary_header = v;
  return in;
}

request_inputs with_cookies(std::string_view c) {
  request_inputs in;
  in.cookies = c;
  return in;
}

// Decides with a fresh round-robin at the given weight; the weight rule matters only where the
// case falls through, so tests pick weight 0 (fall-through = stable) or 100 (= canary).
decision decide_at(const canary_rule& r, int weight, const request_inputs& in) {
  wrr_state wrr;
  return decide(r, true, weight, in, wrr, 0);
}

TEST(RouterNames, ToString) {
  EXPECT_EQ(to_string(variant::stable), "stable");
  EXPECT_EQ(to_string(variant::canary), "canary");
  EXPECT_EQ(to_string(reason::header), "header");
  EXPECT_EQ(to_string(reason::cookie), "cookie");
  EXPECT_EQ(to_string(reason::weight), "weight");
  EXPECT_EQ(to_string(reason::sticky), "sticky");
  EXPECT_EQ(to_string(reason::no_canary), "no_canary");
  EXPECT_EQ(to_string(reason::failover), "failover");
}

TEST(CompileRule, CopiesFieldsAndCompilesPatternOnce) {
  fixture f;
  f.route.canary.by_header_value = "v";
  f.route.canary.by_header_pattern = "^a+$";
  f.route.canary.by_cookie = "c";
  f.route.canary.weight_total = 1000;
  f.route.canary.sticky = {config::sticky_config::kind::cookie, "sid"};
  f.route.canary.sticky_cookie_max_age = std::chrono::minutes(90);
  auto r = f.rule();
  EXPECT_EQ(r.route_name, "demo");
  EXPECT_EQ(r.by_header, "X-Canary");
  EXPECT_EQ(r.by_header_value, "v");
  ASSERT_NE(r.by_header_pattern, nullptr);
  EXPECT_TRUE(r.by_header_pattern->ok());
  EXPECT_EQ(r.by_header_pattern->pattern(), "^a+$");
  EXPECT_EQ(r.by_cookie, "c");
  EXPECT_EQ(r.weight_total, 1000);
  EXPECT_EQ(r.sticky.how, config::sticky_config::kind::cookie);
  EXPECT_EQ(r.sticky.name, "sid");
  EXPECT_EQ(r.sticky_cookie_max_age_s, 5400);
}

TEST(CompileRule, EmptyPatternIsNull) {
  fixture f;
  EXPECT_EQ(f.rule().by_header_pattern, nullptr);
  EXPECT_EQ(f.rule().sticky_cookie_max_age_s, 86400);  // the 24h default
}

// e2e 1: no signals and weight 0 -> stable.
TEST(Decide, NoSignalsWeightZeroIsStable) {
  auto d = decide_at(fixture().rule(), 0, {});
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
  EXPECT_TRUE(d.set_cookie.empty());
}

// Step 2: an inactive (or aborted) canary wins over every override.
TEST(Decide, InactiveCanaryIsStableEvenWithAlways) {
  fixture f;
  f.route.canary.by_cookie = "c";
  auto r = f.rule();
  request_inputs in = with_header("always");
  in.cookies = "c=always";
  wrr_state wrr;
  auto d = decide(r, false, 100, in, wrr, 0);
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::no_canary);
  EXPECT_EQ(wrr.weight, -1);  // not advanced, not even reset
}

// e2e 3/7: header without value or pattern.
TEST(Decide, HeaderAlwaysIsCanary) {
  auto d = decide_at(fixture().rule(), 0, with_header("always"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::header);
}

TEST(Decide, HeaderNeverIsStableEvenAtFullWeight) {
  auto d = decide_at(fixture().rule(), 100, with_header("never"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::header);
}

TEST(Decide, HeaderOtherValueFallsThroughToWeight) {
  auto r = fixture().rule();
  auto d = decide_at(r, 0, with_header("badheadervalue"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
  d = decide_at(r, 100, with_header("badheadervalue"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::weight);
}

TEST(Decide, HeaderValuesAreCaseSensitive) {
  auto d = decide_at(fixture().rule(), 0, with_header("Always"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
}

// balancer_test.lua: a different header name carrying "always" -> not canary.
TEST(Decide, HeaderAbsentFallsThrough) {
  auto d = decide_at(fixture().rule(), 0, {});
  EXPECT_EQ(d.why, reason::weight);
  EXPECT_EQ(d.side, variant::stable);
}

TEST(Decide, HeaderIgnoredWhenByHeaderOff) {
  fixture f;
  f.route.canary.by_header = "";
  auto d = decide_at(f.rule(), 0, with_header("always"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
}

// e2e 8: with a value configured, always/never lose their meaning.
TEST(Decide, HeaderValue) {
  fixture f;
  f.route.canary.by_header_value = "DoCanary";
  auto r = f.rule();
  auto d = decide_at(r, 0, with_header("DoCanary"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::header);
  for (std::string_view v : {"always", "otherheadervalue", "docanary", "DoCanaryX"}) {
    d = decide_at(r, 0, with_header(v));
    EXPECT_EQ(d.side, variant::stable) << v;
    EXPECT_EQ(d.why, reason::weight) << v;
  }
  // "never" does not force stable either: it falls through, here to a full weight.
  d = decide_at(r, 100, with_header("never"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::weight);
}

// e2e 9: the pattern is case-sensitive; an anchored pattern needs the whole value.
TEST(Decide, HeaderPatternAnchored) {
  fixture f;
  f.route.canary.by_header_pattern = "^Do[A-Z][a-z]+y$";
  auto r = f.rule();
  auto d = decide_at(r, 0, with_header("DoCanary"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::header);
  d = decide_at(r, 0, with_header("Docanary"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
  d = decide_at(r, 0, with_header("xDoCanary"));
  EXPECT_EQ(d.side, variant::stable);
}

// ngx.re.match is a search, not a full match.
TEST(Decide, HeaderPatternIsUnanchored) {
  fixture f;
  f.route.canary.by_header_pattern = "Canary";
  auto r = f.rule();
  auto d = decide_at(r, 0, with_header("DoCanaryX"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::header);
  d = decide_at(r, 0, with_header("DoCanarX"));
  EXPECT_EQ(d.side, variant::stable);
}

// With a pattern, "always" is just a string that does not match.
TEST(Decide, HeaderPatternDisablesAlways) {
  fixture f;
  f.route.canary.by_header_pattern = "^yes$";
  auto d = decide_at(f.rule(), 0, with_header("always"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
}

// e2e 10: value beats pattern; "DoCananry" matches the pattern only.
TEST(Decide, HeaderValueBeatsPattern) {
  fixture f;
  f.route.canary.by_header_value = "DoCanary";
  f.route.canary.by_header_pattern = "^Do[A-Z][a-z]+y$";
  auto r = f.rule();
  ASSERT_TRUE(RE2::PartialMatch("DoCananry", *r.by_header_pattern));
  auto d = decide_at(r, 0, with_header("DoCananry"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
  d = decide_at(r, 0, with_header("DoCanary"));
  EXPECT_EQ(d.side, variant::canary);
}

// e2e 13: cookie only.
TEST(Decide, Cookie) {
  fixture f;
  f.route.canary.by_header = "";
  f.route.canary.by_cookie = "Canary-By-Cookie";
  auto r = f.rule();
  auto d = decide_at(r, 0, with_cookies("a=1; Canary-By-Cookie=always"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::cookie);
  d = decide_at(r, 100, with_cookies("Canary-By-Cookie=never; b=2"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::cookie);
  d = decide_at(r, 0, with_cookies("Canary-By-Cookie=badcookievalue"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
  d = decide_at(r, 100, with_cookies("Canary-By-Cookie=badcookievalue"));
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::weight);
}

// balancer_test.lua: a different cookie name carrying "always" -> not canary.
TEST(Decide, OtherCookieNameIgnored) {
  fixture f;
  f.route.canary.by_cookie = "Canary-By-Cookie";
  auto d = decide_at(f.rule(), 0, with_cookies("canary-by-cookie=always; Other=always"));
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::weight);
}

TEST(Decide, HeaderBeatsCookie) {
  fixture f;
  f.route.canary.by_cookie = "c";
  auto r = f.rule();
  request_inputs in = with_header("never");
  in.cookies = "c=always";
  auto d = decide_at(r, 0, in);
  EXPECT_EQ(d.side, variant::stable);
  EXPECT_EQ(d.why, reason::header);
  in = with_header("always");
  in.cookies = "c=never";
  d = decide_at(r, 0, in);
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::header);
}

// e2e 12: a header that does not match its value falls through to the cookie.
TEST(Decide, NonMatchingHeaderFallsToCookie) {
  fixture f;
  f.route.canary.by_header_value = "DoCanary";
  f.route.canary.by_cookie = "CanaryByCookie";
  request_inputs in = with_header("otherheadervalue");
  in.cookies = "CanaryByCookie=always";
  auto d = decide_at(f.rule(), 0, in);
  EXPECT_EQ(d.side, variant::canary);
  EXPECT_EQ(d.why, reason::cookie);
}

// e2e 14/15/16: the weight extremes, with no signals.
TEST(Decide, WeightExtremes) {
  struct c {
    int weight, total;
    variant want;
  };
  for (auto [weight, total, want] : {c{0, 100, variant::stable}, c{100, 100, variant::canary},
                                     c{1000, 1000, variant::canary}, c{0, 1000, variant::stable}}) {
    fixture f;
    f.route.canary.weight_total = total;
    auto r = f.rule();
    wrr_state wrr;
    for (int i = 0; i < 2 * total; ++i) {
      auto d = decide(r, true, weight, {}, wrr, 0);
      ASSERT_EQ(d.side, want) << weight << "/" << total << " request " << i;
      ASSERT_EQ(d.why, reason::weight);
    }
  }
}

// e2e 17/18 (exact here, not just >= 40 %): 50 of 100, and 100 of 200.
TEST(Decide, HalfWeightSplitsExactly) {
  for (auto [weight, total] : {std::pair{50, 100}, std::pair{100, 200}}) {
    fixture f;
    f.route.canary.weight_total = total;
    auto r = f.rule();
    wrr_state wrr;
    int canary = 0;
    for (int i = 0; i < 2 * total; ++i)
      canary += decide(r, true, weight, {}, wrr, 0).side == variant::canary;
    EXPECT_EQ(canary, total);
  }
}

}  // namespace
}  // namespace canary::routing
