// route_table (see step 1 of docs/routing.md): Host routes before host-less ones, longest byte
// prefix of the path within each group; the Host header's case, port, IPv6 brackets and trailing
// dot do not matter, nor does the query or the absolute form of the target.
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

// The lookup by host: every one of thousands of hosts finds its own route (also the last of
// the file, and in any case), the host-less routes still catch the rest, and names that differ
// only slightly (a prefix or suffix of a configured host) match nothing.
TEST(RouteTable, ManyHosts) {
  constexpr int n = 5000;
  std::vector<config::route_config> rs;
  for (int i = 0; i < n; ++i) {
    const auto h = "host-" + std::to_string(i) + ".example.com";
    rs.push_back(route(h, {h}, "/"));
  }
  rs.push_back(route("any", {}, "/"));
  route_table t(rs);
  for (int i = 0; i < n; ++i) {
    const auto h = "host-" + std::to_string(i) + ".example.com";
    ASSERT_EQ(t.match(h, "/x"), i) << h;
    ASSERT_EQ(t.match("HOST-" + std::to_string(i) + ".Example.Com:8080", "/"), i) << h;
  }
  EXPECT_EQ(t.match("host-5000.example.com", "/"), n);
  EXPECT_EQ(t.match("host-1.example.co", "/"), n);
  EXPECT_EQ(t.match("host-1.example.com.org", "/"), n);
  EXPECT_EQ(t.match("ost-1.example.com", "/"), n);
}

// One prefix in several hosts: each host has its own longest-prefix choice, and a route naming
// several hosts competes in each of them.
TEST(RouteTable, SamePrefixInSeveralHosts) {
  route_table t({
      route("a-api", {"a.example"}, "/api"),           // 0
      route("b-api", {"b.example"}, "/api"),           // 1
      route("ab-root", {"a.example", "b.example"}, "/"),  // 2
      route("c-api-v2", {"c.example"}, "/api/v2"),     // 3
      route("any-api", {}, "/api"),                    // 4
  });
  EXPECT_EQ(t.match("a.example", "/api/x"), 0);
  EXPECT_EQ(t.match("b.example", "/api/x"), 1);
  EXPECT_EQ(t.match("a.example", "/x"), 2);
  EXPECT_EQ(t.match("b.example", "/"), 2);
  EXPECT_EQ(t.match("c.example", "/api/v2/y"), 3);
  EXPECT_EQ(t.match("c.example", "/api/v1"), 4);  // c's only prefix misses: host-less routes
  EXPECT_EQ(t.match("d.example", "/api"), 4);
  EXPECT_EQ(t.match("d.example", "/"), -1);
}

// Two routes naming the same host with the same prefix: the first in the file wins, also when
// the host is written differently (case, port, trailing dot) in each.
TEST(RouteTable, SameHostAndPrefixFileOrderDecides) {
  route_table t({
      route("other", {"x.example"}, "/"),
      route("first", {"Shop.Example.COM:8443"}, "/api"),
      route("second", {"shop.example.com."}, "/api"),
      route("root", {"SHOP.example.com"}, "/"),
  });
  EXPECT_EQ(t.match("shop.example.com", "/api/1"), 1);
  EXPECT_EQ(t.match("sHoP.eXaMpLe.CoM:80", "/api"), 1);
  EXPECT_EQ(t.match("shop.example.com", "/ap"), 3);
}

// A configured host written with a port, and a route listing one host twice: the port is not
// part of the name, and the duplicate changes nothing.
TEST(RouteTable, ConfiguredHostWithPortAndDuplicates) {
  route_table t({
      route("shop", {"shop.example.com:8080", "SHOP.EXAMPLE.COM", "[::1]:9000"}, "/"),
      route("any", {}, "/"),
  });
  EXPECT_EQ(t.match("shop.example.com", "/"), 0);
  EXPECT_EQ(t.match("shop.example.com:9999", "/"), 0);
  EXPECT_EQ(t.match("[::1]", "/"), 0);
  EXPECT_EQ(t.match("shop.example.org", "/"), 1);
}

}  // namespace
}  // namespace canary::routing
