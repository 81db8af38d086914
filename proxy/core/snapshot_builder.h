// Builds the immutable snapshot in two parts: compile_config (route table, RE2 rules, upstream
// endpoints: once per config load) and build_snapshot (rollout weights and metric series: on
// every rollout change, reusing the compiled part). Control thread only.
#pragma once

#include <memory>

#include "core/snapshot.h"
#include "metrics/registry.h"
#include "rollout/state.h"
#include "upstream/endpoint.h"

namespace canary::core {

// Throws on a config the loader should have refused (e.g. an RE2 pattern that does not compile).
std::shared_ptr<const compiled_config> compile_config(
    std::shared_ptr<const config::proxy_config> cfg, upstream::endpoint_registry& endpoints,
    metrics::series_registry& series);

// Every route of the compiled config must have a state in `states` naming upstreams it defines;
// throws std::logic_error otherwise.
std::shared_ptr<const snapshot> build_snapshot(std::shared_ptr<const compiled_config> compiled,
                                               const rollout::state_map& states,
                                               metrics::series_registry& series,
                                               std::uint64_t generation);

}  // namespace canary::core
