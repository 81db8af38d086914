// The immutable view a worker routes with: config, compiled rules, rollout weights, endpoints and
// metric ids. Built on the control thread (the config part once per config load, the rest on
// every rollout change), published to each worker as shared_ptr<const snapshot>; a request pins
// the snapshot it started with, which keeps its compiled config alive.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "routing/router.h"
#include "upstream/endpoint.h"

namespace canary::core {

struct upstream_view {
  std::string name;
  std::uint32_t metric_id = 0;
  std::vector<std::shared_ptr<upstream::endpoint>> endpoints;
  std::optional<config::outlier_config> outlier;
  std::optional<config::health_check_config> health_check;
  bool h2c = false;  // protocol h2c: requests go through the worker's http2::client_pool
  bool any_up(upstream::steady::time_point now) const {
    for (const auto& e : endpoints)
      if (e->up(now)) return true;
    return false;
  }
};

// Everything that depends on the config alone (route table, RE2 rules, upstreams): compiled once
// per config load and shared by every snapshot built for that config.
struct compiled_config {
  std::shared_ptr<const config::proxy_config> config;
  routing::route_table table;
  std::vector<routing::canary_rule> rules;       // by route index
  std::vector<std::uint32_t> route_metric_ids;   // by route index
  std::vector<upstream_view> upstreams;          // in config order
  // By name, not a scan per route: a config may hold thousands of routes and upstreams.
  std::unordered_map<std::string, int> upstream_indices;
  // Index into upstreams, or -1.
  int upstream_index(const std::string& name) const {
    const auto it = upstream_indices.find(name);
    return it == upstream_indices.end() ? -1 : it->second;
  }
};

struct route_view {
  const config::route_config* config = nullptr;  // points into snapshot::config
  const routing::canary_rule& rule;              // points into snapshot::compiled
  int stable = -1;  // index into snapshot::upstreams
  int canary = -1;  // -1: no canary
  bool canary_active = false;  // canary present and not aborted
  int weight = 0;              // set weight routing applies
  std::uint32_t metric_route_id = 0;
  std::uint32_t metric_series[2] = {0, 0};  // [variant]: (route, variant, that side's upstream)
  // The route's latency_vs_stable `slow` values (microseconds) in the order of
  // analysis::slow_thresholds; only the first slow_count are used.
  std::array<std::uint64_t, 4> slow_us{};
  std::uint8_t slow_count = 0;
  // Shadow traffic to the canary (http/mirror.h): 0 = off; set only with an active canary.
  int mirror_percent = 0;
  std::vector<std::string> mirror_methods{};  // upper case
  std::uint64_t mirror_max_body = 0;
};

struct snapshot {
  snapshot(std::shared_ptr<const compiled_config> c, std::vector<route_view> r,
           std::uint64_t gen)
      : compiled(std::move(c)),
        config(compiled->config),
        upstreams(compiled->upstreams),
        table(compiled->table),
        routes(std::move(r)),
        generation(gen) {}
  snapshot(const snapshot&) = delete;
  snapshot& operator=(const snapshot&) = delete;

  std::shared_ptr<const compiled_config> compiled;
  std::shared_ptr<const config::proxy_config> config;  // compiled->config
  const std::vector<upstream_view>& upstreams;         // compiled->upstreams
  const routing::route_table& table;                   // compiled->table
  std::vector<route_view> routes;                      // by route index
  std::uint64_t generation = 0;
};

}  // namespace canary::core
