// The routing decision of every request (see docs/routing.md): route lookup, the canary decision
// for each kind of input (header, cookie, weight, sticky) and the smooth weighted round-robin.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "routing/router.h"

namespace {

using namespace canary;
using routing::request_inputs;

config::route_config route(std::string name, std::string prefix, std::vector<std::string> hosts) {
  config::route_config r;
  r.name = std::move(name);
  r.path_prefix = std::move(prefix);
  r.hosts = std::move(hosts);
  r.upstream = "blue";
  return r;
}

// A rule like the demo config's: X-Canary header override, weight_total 100.
routing::canary_rule rule(void (*tweak)(config::canary_config&) = nullptr) {
  auto r = route("shop", "/", {});
  if (tweak) tweak(r.canary);
  return routing::compile_rule(r);
}

void run_decide(benchmark::State& state, const routing::canary_rule& rule,
                const request_inputs& in) {
  routing::wrr_state wrr;
  std::uint64_t random = 0x9e3779b97f4a7c15ULL;
  for (auto _ : state) {
    auto d = routing::decide(rule, true, 20, in, wrr, random);
    benchmark::DoNotOptimize(d.side);
    benchmark::DoNotOptimize(d.set_cookie.data());
    random += 0x9e3779b97f4a7c15ULL;
  }
}

// No rollout in progress: the first check decides.
void BM_decide_no_canary(benchmark::State& state) {
  const auto r = rule();
  request_inputs in;
  routing::wrr_state wrr;
  for (auto _ : state) {
    auto d = routing::decide(r, false, 0, in, wrr, 0);
    benchmark::DoNotOptimize(d.side);
  }
}
BENCHMARK(BM_decide_no_canary);

// Plain 80/20 weight split, no override present (the common request).
void BM_decide_weight(benchmark::State& state) {
  run_decide(state, rule(), request_inputs{});
}
BENCHMARK(BM_decide_weight);

// X-Canary: always.
void BM_decide_header_always(benchmark::State& state) {
  request_inputs in;
  in.canary_header = "always";
  run_decide(state, rule(), in);
}
BENCHMARK(BM_decide_header_always);

// by_header_pattern (RE2, unanchored) that matches.
void BM_decide_header_pattern(benchmark::State& state) {
  const auto r = rule([](config::canary_config& c) { c.by_header_pattern = "^(beta|internal)-"; });
  request_inputs in;
  in.canary_header = "internal-qa-team";
  run_decide(state, r, in);
}
BENCHMARK(BM_decide_header_pattern);

// by_cookie, the cookie third of four in a typical Cookie header.
void BM_decide_cookie(benchmark::State& state) {
  const auto r = rule([](config::canary_config& c) { c.by_cookie = "canary"; });
  request_inputs in;
  in.cookies = "session=3f2a9c1b7d4e8a60; theme=dark; canary=always; _ga=GA1.2.1234567890";
  run_decide(state, r, in);
}
BENCHMARK(BM_decide_cookie);

// sticky: "header:X-User" with the header present (hash of route name + key).
void BM_decide_sticky_header(benchmark::State& state) {
  const auto r = rule([](config::canary_config& c) {
    c.sticky = {config::sticky_config::kind::header, "X-User"};
  });
  request_inputs in;
  in.sticky_header = "user-4711@example.com";
  run_decide(state, r, in);
}
BENCHMARK(BM_decide_sticky_header);

// sticky: "cookie:cid" with the cookie present.
void BM_decide_sticky_cookie(benchmark::State& state) {
  const auto r = rule([](config::canary_config& c) {
    c.sticky = {config::sticky_config::kind::cookie, "cid"};
  });
  request_inputs in;
  in.cookies = "session=3f2a9c1b7d4e8a60; cid=0123456789abcdef; theme=dark";
  run_decide(state, r, in);
}
BENCHMARK(BM_decide_sticky_cookie);

// sticky: "cookie:cid", first visit: an id is drawn and a Set-Cookie value built (allocates).
void BM_decide_sticky_cookie_issue(benchmark::State& state) {
  const auto r = rule([](config::canary_config& c) {
    c.sticky = {config::sticky_config::kind::cookie, "cid"};
  });
  request_inputs in;
  in.cookies = "session=3f2a9c1b7d4e8a60; theme=dark";
  run_decide(state, r, in);
}
BENCHMARK(BM_decide_sticky_cookie_issue);

// sticky: "client_ip".
void BM_decide_sticky_client_ip(benchmark::State& state) {
  const auto r = rule([](config::canary_config& c) {
    c.sticky = {config::sticky_config::kind::client_ip, ""};
  });
  request_inputs in;
  in.client_ip = "192.168.17.201";
  run_decide(state, r, in);
}
BENCHMARK(BM_decide_sticky_client_ip);

// Smooth weighted round-robin alone, 20/100.
void BM_wrr_next(benchmark::State& state) {
  routing::wrr_state wrr;
  for (auto _ : state) benchmark::DoNotOptimize(wrr.next(20, 100));
}
BENCHMARK(BM_wrr_next);

// route_table::match over a table of 8 routes (host-bound and host-less), a host with a port
// and a target with a query: the typical lookup falls through the host-bound routes.
void BM_route_match(benchmark::State& state) {
  std::vector<config::route_config> routes = {
      route("admin", "/admin", {"admin.example.com"}),
      route("shop-api", "/api", {"shop.example.com", "www.shop.example.com"}),
      route("shop", "/", {"shop.example.com", "www.shop.example.com"}),
      route("blog", "/", {"blog.example.com"}),
      route("api-v2", "/api/v2/", {}),
      route("api", "/api/", {}),
      route("static", "/static/", {}),
      route("default", "/", {}),
  };
  const routing::route_table table(routes);
  const std::string_view hosts[] = {"shop.example.com:8080", "other.example.org",
                                    "Blog.Example.com"};
  const std::string_view targets[] = {"/api/v1/items/12345?view=full", "/static/app.js",
                                      "/index.html?utm_source=x"};
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.match(hosts[i % 3], targets[i % 3]));
    ++i;
  }
}
BENCHMARK(BM_route_match);

// route_table::match with `n` host routes (host-NNNNN.example.com, prefix "/") plus a host-less
// catch-all: the request names the first or the last host of the file. A lookup that scans the
// host routes makes the last host slower the more routes there are; a lookup by host does not.
void run_many_hosts(benchmark::State& state, bool last) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<config::route_config> routes;
  routes.reserve(n + 1);
  for (std::size_t i = 0; i < n; ++i) {
    const auto name = "host-" + std::to_string(i);
    routes.push_back(route(name, "/", {name + ".example.com"}));
  }
  routes.push_back(route("default", "/", {}));
  const routing::route_table table(routes);
  const std::string host = "host-" + std::to_string(last ? n - 1 : 0) + ".example.com:8080";
  const int want = last ? static_cast<int>(n - 1) : 0;
  if (table.match(host, "/index.html?x=1") != want) state.SkipWithError("wrong route");
  for (auto _ : state) benchmark::DoNotOptimize(table.match(host, "/index.html?x=1"));
}
void BM_route_match_first_host(benchmark::State& state) { run_many_hosts(state, false); }
void BM_route_match_last_host(benchmark::State& state) { run_many_hosts(state, true); }
BENCHMARK(BM_route_match_first_host)->Arg(1000)->Arg(10000);
BENCHMARK(BM_route_match_last_host)->Arg(1000)->Arg(10000);

}  // namespace
