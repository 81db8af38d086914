// Snapshot assembly: compiled rules, upstream indices, rollout weights, metric ids.
#include "core/snapshot_builder.h"

#include <algorithm>
#include <stdexcept>

#include "analysis/run.h"

namespace canary::core {

std::shared_ptr<const compiled_config> compile_config(
    std::shared_ptr<const config::proxy_config> cfg, upstream::endpoint_registry& endpoints,
    metrics::series_registry& series) {
  auto c = std::make_shared<compiled_config>(
      compiled_config{cfg, routing::route_table(cfg->routes), {}, {}, {}, {}});
  for (const auto& u : cfg->upstreams) {
    upstream_view v;
    v.name = u.name;
    v.metric_id = series.upstream_id(u.name);
    v.outlier = u.outlier;
    v.health_check = u.health_check;
    v.h2c = u.protocol == config::upstream_protocol::h2c;
    for (const auto& e : u.endpoints) {
      try {
        v.endpoints.push_back(endpoints.get(e.address, e.port));
      } catch (const std::exception& ex) {
        // Named, because a reload answers with this message.
        throw std::runtime_error("upstream " + u.name + ": endpoint \"" + e.address + "\": " +
                                 ex.what());
      }
    }
    c->upstream_indices.emplace(u.name, static_cast<int>(c->upstreams.size()));
    c->upstreams.push_back(std::move(v));
  }
  c->rules.reserve(cfg->routes.size());
  for (const auto& r : cfg->routes) {
    c->rules.push_back(routing::compile_rule(r));
    c->route_metric_ids.push_back(series.route_id(r.name));
  }
  return c;
}

std::shared_ptr<const snapshot> build_snapshot(std::shared_ptr<const compiled_config> compiled,
                                               const rollout::state_map& states,
                                               metrics::series_registry& series,
                                               std::uint64_t generation) {
  const auto& cfg = *compiled->config;
  auto index_of = [&](const std::string& name) {
    const int i = compiled->upstream_index(name);
    if (i < 0) throw std::logic_error("snapshot: unknown upstream " + name);
    return i;
  };
  std::vector<route_view> routes;
  routes.reserve(cfg.routes.size());
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const auto& r = cfg.routes[i];
    const auto it = states.find(r.name);
    if (it == states.end()) throw std::logic_error("snapshot: no rollout state for route " + r.name);
    const auto& st = it->second;
    const auto& rule = compiled->rules[i];
    const bool active = st.canary_active();
    // Never above weight_total: decide() would send everything to the canary.
    const int weight = active ? std::clamp(st.weight, 0, std::max(rule.weight_total, 0)) : 0;
    routes.push_back(route_view{
        &r,
        rule,
        index_of(st.stable),
        st.canary.empty() ? -1 : index_of(st.canary),
        active,
        weight,
        compiled->route_metric_ids[i],
        {series.series_id(r.name, "stable", st.stable),
         series.series_id(r.name, "canary", st.canary.empty() ? st.stable : st.canary)}});
    // Copies are sent over HTTP/1.1 (http/mirror.h): an h2c canary gets none.
    const int canary_index = routes.back().canary;
    const bool canary_h2c =
        canary_index >= 0 && compiled->upstreams[static_cast<std::size_t>(canary_index)].h2c;
    if (st.mirror && active && st.mirror->percent > 0 && !canary_h2c) {
      auto& view = routes.back();
      view.mirror_percent = std::min(st.mirror->percent, 100);
      view.mirror_methods = st.mirror->methods;
      view.mirror_max_body = st.mirror->max_body_bytes;
    }
    if (r.analysis) {
      auto& view = routes.back();
      for (const auto& slow : analysis::slow_thresholds(*r.analysis)) {
        if (view.slow_count == view.slow_us.size()) break;  // the loader refuses more
        view.slow_us[view.slow_count++] =
            static_cast<std::uint64_t>(std::chrono::microseconds(slow).count());
      }
    }
  }
  return std::make_shared<const snapshot>(std::move(compiled), std::move(routes), generation);
}

}  // namespace canary::core
