// Unit tests of the shadow-traffic pieces that are pure (proxy/http/mirror.h): the smooth share
// picks exactly `percent` of N eligible requests, evenly; the copy's head gains X-Canary-Mirror;
// the body capture stops at max_body_bytes and re-chunks a chunked body.
#include "http/mirror.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace canary::http {
namespace {

int picks(int percent, int n) {
  mirror_share share;
  int picked = 0;
  for (int i = 0; i < n; ++i) picked += share.pick(percent) ? 1 : 0;
  return picked;
}

TEST(mirror_share, picks_exactly_percent_of_every_hundred) {
  for (int percent : {0, 1, 7, 20, 33, 50, 99, 100}) {
    EXPECT_EQ(picks(percent, 100), percent) << percent;
    EXPECT_EQ(picks(percent, 1000), 10 * percent) << percent;
  }
  // Of N that is not a multiple of 100: floor(N * percent / 100).
  EXPECT_EQ(picks(50, 7), 3);
  EXPECT_EQ(picks(20, 9), 1);
  EXPECT_EQ(picks(30, 10), 3);
}

TEST(mirror_share, spreads_the_picks_evenly) {
  mirror_share share;
  std::string seq;
  for (int i = 0; i < 10; ++i) seq += share.pick(50) ? 'x' : '.';
  EXPECT_EQ(seq, ".x.x.x.x.x");
  mirror_share quarter;
  seq.clear();
  for (int i = 0; i < 8; ++i) seq += quarter.pick(25) ? 'x' : '.';
  EXPECT_EQ(seq, "...x...x");
}

TEST(mirror_head, adds_the_marker_before_the_empty_line) {
  EXPECT_EQ(mirror_head("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"),
            "GET /a HTTP/1.1\r\nHost: x\r\nX-Canary-Mirror: 1\r\n\r\n");
}

TEST(mirror_drop, names_are_the_metric_reasons) {
  EXPECT_EQ(to_string(mirror_drop::body_too_large), "body_too_large");
  EXPECT_EQ(to_string(mirror_drop::queue_full), "queue_full");
}

// A copy bound to a one-route snapshot whose mirror allows `max_body` bytes.
struct copy_fixture {
  explicit copy_fixture(std::uint64_t max_body) {
    auto cfg = std::make_shared<config::proxy_config>();
    config::route_config r;
    r.name = "web";
    r.upstream = "blue";
    cfg->routes.push_back(r);
    auto compiled = std::make_shared<core::compiled_config>(
        core::compiled_config{cfg, routing::route_table(cfg->routes), {}, {}, {}, {}});
    compiled->rules.push_back(routing::compile_rule(cfg->routes[0]));
    std::vector<core::route_view> routes;
    routes.push_back(core::route_view{&cfg->routes[0], compiled->rules[0]});
    routes.back().mirror_max_body = max_body;
    copy.snap = std::make_shared<core::snapshot>(compiled, std::move(routes), 1);
  }
  mirror_copy copy;
};

TEST(mirror_copy, keeps_a_body_up_to_the_limit) {
  copy_fixture f(10);
  f.copy.capture("hello", 5);
  f.copy.capture("world", 5);
  EXPECT_FALSE(f.copy.too_large);
  EXPECT_EQ(f.copy.body, "helloworld");
}

TEST(mirror_copy, a_body_over_the_limit_is_not_kept) {
  copy_fixture f(10);
  f.copy.capture("hello", 5);
  f.copy.capture("world!", 6);
  EXPECT_TRUE(f.copy.too_large);
  EXPECT_EQ(f.copy.body, "");
  f.copy.capture("x", 1);
  EXPECT_EQ(f.copy.body, "");
}

TEST(mirror_copy, a_chunked_body_is_re_chunked) {
  copy_fixture f(100);
  f.copy.chunked = true;
  f.copy.capture("0123456789abcdefg", 17);
  EXPECT_EQ(f.copy.body, "11\r\n0123456789abcdefg\r\n");
}

}  // namespace
}  // namespace canary::http
