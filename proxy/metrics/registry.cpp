// Id assignment for metric label sets; see registry.h.
#include "metrics/registry.h"

#include <stdexcept>

#include "metrics/cells.h"

namespace canary::metrics {

std::uint32_t series_registry::series_id(const std::string& route, const std::string& variant,
                                         const std::string& upstream) {
  auto [it, inserted] = series_ids_.try_emplace({route, variant, upstream},
                                                static_cast<std::uint32_t>(series_.size()));
  if (inserted) {
    if (series_.size() >= max_series) throw std::runtime_error("too many metric series");
    series_.push_back({route, variant, upstream});
  }
  return it->second;
}

std::uint32_t series_registry::route_id(const std::string& route) {
  auto [it, inserted] = route_ids_.try_emplace(route, static_cast<std::uint32_t>(routes_.size()));
  if (inserted) {
    if (routes_.size() >= max_routes) throw std::runtime_error("too many routes for metrics");
    routes_.push_back(route);
  }
  return it->second;
}

std::uint32_t series_registry::upstream_id(const std::string& upstream) {
  auto [it, inserted] =
      upstream_ids_.try_emplace(upstream, static_cast<std::uint32_t>(upstreams_.size()));
  if (inserted) {
    if (upstreams_.size() >= max_upstreams) throw std::runtime_error("too many upstreams");
    upstreams_.push_back(upstream);
  }
  return it->second;
}

}  // namespace canary::metrics
