// Builds the immutable snapshot from a config and the rollout states. Control thread only.
#pragma once

#include <memory>

#include "core/snapshot.h"
#include "metrics/registry.h"
#include "rollout/state_file.h"
#include "upstream/endpoint.h"

namespace canary::core {

// Every route of `cfg` must have a state in `states` naming upstreams `cfg` defines (the engine
// guarantees it).
std::shared_ptr<const snapshot> build_snapshot(std::shared_ptr<const config::proxy_config> cfg,
                                               const rollout::state_map& states,
                                               upstream::endpoint_registry& endpoints,
                                               metrics::series_registry& series,
                                               std::uint64_t generation);

}  // namespace canary::core
