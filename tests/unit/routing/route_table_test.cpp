// route_table: DESIGN §3.1. Host routes before host-less ones, longest byte prefix of the path
// within each group; the Host header's case, port, IPv6 brackets and trailing dot do not matter,
// nor does the query or the absolute form of the target.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "routing/router.h"

namespace canary::routing {
namespace {

config::route_config route(std::string name, std::vector<std::string> hosts, std::string prefix) {
  config::route_config r;
  r.name = std::move(name);
  r.hosts = std::move(hosts);
  r.path_prefix = std::move(prefix);
  r.upstream = "blue";
  return r;
}

// Indexes: 0 any /, 1 any /api, 2 shop /, 3 shop /api/v2, 4 [v6] /, 5 any /api/v2/admin
const std::vector<config::route_config> routes = {
    route("any-root", {}, "/"),
    route("any-api", {}, "/api"),
    route("shop-root", {"shop.example.com", "www.example.com"}, "/"),
    route("shop-api-v2", {"shop.example.com"}, "/api/v2"),
    route("v6", {"::1"}, "/"),
    route("any-admin", {}, "/api/v2/admin"),
};

TEST(RouteTable, HostLessLongestPrefix) {
  route_table t(routes);
  EXPECT_EQ(t.match("other.example.com", "/"), 0);
  EXPECT_EQ(t.match("other.example.com", "/index.html"), 0);
  EXPECT_EQ(t.match("other.example.com", "/api"), 1);
  EXPECT_EQ(t.match("other.example.com", "/api/v2/x"), 1);
  EXPECT_EQ(t.match("other.example.com", "/api/v2/admin/users"), 5);
}

TEST(RouteTable, PrefixIsBytePrefix) {
  route_table t(routes);
  EXPECT_EQ(t.match("x", "/apix"), 1);  // byte prefix, not segment
  EXPECT_EQ(t.match("x", "/API"), 0);   // paths are case-sensitive
}

// A host route wins even over a longer host-less prefix.
TEST(RouteTable, HostMatchBeatsHostLess) {
  route_table t(routes);
  EXPECT_EQ(t.match("shop.example.com", "/"), 2);
  EXPECT_EQ(t.match("shop.example.com", "/api/v1"), 2);
  EXPECT_EQ(t.match("shop.example.com", "/api/v2/admin"), 3);
  EXPECT_EQ(t.match("www.example.com", "/api/v2/admin"), 2);  // its second host
}

TEST(RouteTable, HostIsCaseInsensitive) {
  route_table t(routes);
  EXPECT_EQ(t.match("SHOP.Example.COM", "/api/v2"), 3);
  EXPECT_EQ(t.match("Www.Example.Com", "/"), 2);
}

TEST(RouteTable, ConfiguredHostCaseDoesNotMatter) {
  route_table t({route("mixed", {"Shop.Example.com"}, "/"), route("any", {}, "/")});
  EXPECT_EQ(t.match("shop.example.com", "/"), 0);
}

TEST(RouteTable, PortIgnored) {
  route_table t(routes);
  EXPECT_EQ(t.match("shop.example.com:8080", "/api/v2"), 3);
  EXPECT_EQ(t.match("Shop.Example.com:80", "/"), 2);
}

TEST(RouteTable, TrailingDotIgnored) {
  route_table t(routes);
  EXPECT_EQ(t.match("shop.example.com.", "/api/v2"), 3);
  EXPECT_EQ(t.match("shop.example.com.:443", "/api/v2"), 3);
}

TEST(RouteTable, Ipv6LiteralHost) {
  route_table t(routes);
  EXPECT_EQ(t.match("[::1]:8080", "/"), 4);
  EXPECT_EQ(t.match("[::1]", "/"), 4);
  EXPECT_EQ(t.match("[::2]:8080", "/"), 0);
  // Written with brackets in the config, too.
  route_table bracketed({route("v6", {"[::1]"}, "/")});
  EXPECT_EQ(bracketed.match("[::1]:8080", "/"), 0);
}

TEST(RouteTable, QueryIgnored) {
  route_table t(routes);
  EXPECT_EQ(t.match("x", "/?q=/api"), 0);
  EXPECT_EQ(t.match("x", "/api?x=1"), 1);
  EXPECT_EQ(t.match("shop.example.com", "/api/v2?a=b"), 3);
  EXPECT_EQ(t.match("shop.example.com", "/api/v?2"), 2);
}

// The query is never part of what a prefix is compared with, even a prefix that looks like one.
TEST(RouteTable, PrefixNeverMatchesIntoQuery) {
  route_table t({route("odd", {}, "/search?q"), route("any", {}, "/")});
  EXPECT_EQ(t.match("x", "/search?q=1"), 1);
}

TEST(RouteTable, AbsoluteFormUsesItsPath) {
  route_table t(routes);
  EXPECT_EQ(t.match("shop.example.com", "http://shop.example.com/api/v2/x?y"), 3);
  EXPECT_EQ(t.match("x", "http://x:8080/api"), 1);
  EXPECT_EQ(t.match("x", "https://x"), 0);  // empty path = "/"
  EXPECT_EQ(t.match("x", "http://x?q=/api"), 0);
}

TEST(RouteTable, NoMatch) {
  route_table only_hosts({route("a", {"a.example"}, "/"), route("b", {}, "/b")});
  EXPECT_EQ(only_hosts.match("c.example", "/"), -1);
  EXPECT_EQ(only_hosts.match("c.example", "/b"), 1);
  EXPECT_EQ(only_hosts.match("", "/"), -1);  // no Host: host-less routes only
  EXPECT_EQ(only_hosts.match("a.example", "/"), 0);
  EXPECT_EQ(only_hosts.match("a.example.org", "/"), -1);  // whole-name compare
  EXPECT_EQ(only_hosts.match("a.exampl", "/"), -1);
  route_table none({});
  EXPECT_EQ(none.match("x", "/"), -1);
}

// Host routes are tried only when their prefix matches; otherwise host-less ones still apply.
TEST(RouteTable, HostRouteWithoutMatchingPrefixFallsToHostLess) {
  route_table t({route("h", {"h.example"}, "/app"), route("any", {}, "/")});
  EXPECT_EQ(t.match("h.example", "/app/x"), 0);
  EXPECT_EQ(t.match("h.example", "/other"), 1);
}

TEST(RouteTable, IndexIsConfigOrder) {
  route_table t({route("long", {}, "/a/b/c"), route("short", {}, "/a")});
  EXPECT_EQ(t.match("x", "/a/b/c/d"), 0);
  EXPECT_EQ(t.match("x", "/a/b"), 1);
}

}  // namespace
}  // namespace canary::routing
