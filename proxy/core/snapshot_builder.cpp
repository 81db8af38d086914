// Snapshot assembly: compiled rules, upstream indices, rollout weights, metric ids.
#include "core/snapshot_builder.h"

#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace canary::core {

std::shared_ptr<const snapshot> build_snapshot(std::shared_ptr<const config::proxy_config> cfg,
                                               const rollout::state_map& states,
                                               upstream::endpoint_registry& endpoints,
                                               metrics::series_registry& series,
                                               std::uint64_t generation) {
  auto s = std::make_shared<snapshot>(snapshot{cfg, {}, {}, routing::route_table(cfg->routes),
                                               generation});
  for (const auto& u : cfg->upstreams) {
    upstream_view v;
    v.name = u.name;
    v.metric_id = series.upstream_id(u.name);
    v.outlier = u.outlier;
    v.health_check = u.health_check;
    for (const auto& e : u.endpoints) v.endpoints.push_back(endpoints.get(e.address, e.port));
    s->upstreams.push_back(std::move(v));
  }
  // By name, not a scan per route: a config may hold thousands of routes and upstreams.
  std::unordered_map<std::string_view, int> upstream_index;
  for (std::size_t i = 0; i < cfg->upstreams.size(); ++i)
    upstream_index.emplace(cfg->upstreams[i].name, static_cast<int>(i));
  auto index_of = [&](const std::string& name) {
    if (auto it = upstream_index.find(name); it != upstream_index.end()) return it->second;
    throw std::logic_error("snapshot: unknown upstream " + name);
  };
  for (const auto& r : cfg->routes) {
    const auto& st = states.at(r.name);
    route_view v;
    v.config = &r;
    v.rule = routing::compile_rule(r);
    v.stable = index_of(st.stable);
    v.canary = st.canary.empty() ? -1 : index_of(st.canary);
    v.canary_active = st.canary_active();
    v.weight = v.canary_active ? st.weight : 0;
    v.metric_route_id = series.route_id(r.name);
    v.metric_series[0] = series.series_id(r.name, "stable", st.stable);
    v.metric_series[1] = series.series_id(r.name, "canary", st.canary.empty() ? st.stable : st.canary);
    s->routes.push_back(std::move(v));
  }
  return s;
}

}  // namespace canary::core
