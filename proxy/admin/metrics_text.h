// /metrics: sums every worker's cells (relaxed loads) and the engine's gauges into prometheus-cpp
// metric families and serializes them in the Prometheus text format. Control thread only.
#pragma once

#include <string>
#include <vector>

#include "metrics/cells.h"
#include "rollout/engine.h"

namespace canary::admin {

std::string render_metrics(rollout::engine& engine,
                           const std::vector<const metrics::worker_cells*>& workers);

}  // namespace canary::admin
