// Id assignment for metric label sets; see registry.h. Ids are dense from 0 and uncapped: the
// cells (cells.h) take any 32-bit id.
#include "metrics/registry.h"

namespace canary::metrics {

std::uint32_t series_registry::series_id(const std::string& route, const std::string& variant,
                                         const std::string& upstream) {
  auto [it, inserted] = series_ids_.try_emplace({route, variant, upstream},
                                                static_cast<std::uint32_t>(series_.size()));
  if (inserted) series_.push_back({route, variant, upstream});
  return it->second;
}

std::uint32_t series_registry::route_id(const std::string& route) {
  auto [it, inserted] = route_ids_.try_emplace(route, static_cast<std::uint32_t>(routes_.size()));
  if (inserted) routes_.push_back(route);
  return it->second;
}

std::uint32_t series_registry::upstream_id(const std::string& upstream) {
  auto [it, inserted] =
      upstream_ids_.try_emplace(upstream, static_cast<std::uint32_t>(upstreams_.size()));
  if (inserted) upstreams_.push_back(upstream);
  return it->second;
}

}  // namespace canary::metrics
