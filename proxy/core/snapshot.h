// The immutable view a worker routes with: config, compiled rules, rollout weights, endpoints and
// metric ids. Built on the control thread on every config load and rollout change, published to
// each worker as shared_ptr<const snapshot>; a request pins the snapshot it started with.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
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
  bool any_up(upstream::steady::time_point now) const {
    for (const auto& e : endpoints)
      if (e->up(now)) return true;
    return false;
  }
};

struct route_view {
  const config::route_config* config = nullptr;  // points into snapshot::config
  routing::canary_rule rule;
  int stable = -1;  // index into snapshot::upstreams
  int canary = -1;  // -1: no canary
  bool canary_active = false;  // canary present and not aborted
  int weight = 0;              // set weight routing applies
  std::uint32_t metric_route_id = 0;
  std::uint32_t metric_series[2] = {0, 0};  // [variant]: (route, variant, that side's upstream)
};

struct snapshot {
  std::shared_ptr<const config::proxy_config> config;
  std::vector<upstream_view> upstreams;
  std::vector<route_view> routes;
  routing::route_table table;
  std::uint64_t generation = 0;
};

}  // namespace canary::core
