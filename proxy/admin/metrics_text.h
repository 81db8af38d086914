// /metrics (see docs/architecture.md#metrics). The data-plane series live in per-worker cells
// (metrics/cells.h) and are summed only here, at scrape time, by a prometheus::Collectable;
// process-level metrics that never move on the request path (build_info) use prometheus-cpp's own
// Registry. Both are serialized with prometheus-cpp's TextSerializer. Control thread only (it reads
// the engine and the series registry, which are not shared with workers).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "analysis/run.h"
#include "metrics/cells.h"
#include "metrics/registry.h"
#include "rollout/engine.h"

namespace canary::admin {

// requests_total, request_duration_seconds, routing_decisions_total, local_replies_total,
// upstream_errors_total, connections_active / _total: the workers' cells summed with relaxed
// loads. Families are always present (possibly without samples).
std::vector<prometheus::MetricFamily> collect_cells(
    const metrics::series_registry& registry,
    const std::vector<const metrics::worker_cells*>& workers);

// rollout_weight / _step / _info and config_reloads_total from the engine's view.
std::vector<prometheus::MetricFamily> collect_rollouts(
    const std::vector<rollout::route_status>& statuses, std::uint64_t reloads_ok,
    std::uint64_t reloads_failed);

// analysis_measurements_total, analysis_value and analysis_phase from the engine's runs.
std::vector<prometheus::MetricFamily> collect_analysis(const rollout::engine& engine);

// The engine's analysis sampler: `route`'s cumulative counts for the stable and canary
// upstreams given, summed over the workers' cells (the decided counts from the route cells,
// totals, errors and latency from the (route, variant, upstream) series).
analysis::interval_sample sample_route(metrics::series_registry& registry,
                                       const std::vector<const metrics::worker_cells*>& workers,
                                       const std::string& route, const std::string& stable,
                                       const std::string& canary);

// Everything the engine and the workers know, gathered at each Collect().
// `load_failures` (may be empty): reloads refused before they reached the engine (a file with
// errors, loaded by admin::reloader), added to the engine's failures.
class proxy_collector final : public prometheus::Collectable {
 public:
  proxy_collector(rollout::engine& engine, std::vector<const metrics::worker_cells*> workers,
                  std::function<std::uint64_t()> load_failures = {})
      : engine_(&engine), workers_(std::move(workers)), load_failures_(std::move(load_failures)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  rollout::engine* engine_;
  std::vector<const metrics::worker_cells*> workers_;
  std::function<std::uint64_t()> load_failures_;
};

// The /metrics body: a prometheus::Registry (build_info) plus the proxy_collector. Lives on the
// control thread as long as the admin server.
class metrics_exposition {
 public:
  metrics_exposition(rollout::engine& engine, std::vector<const metrics::worker_cells*> workers,
                     std::function<std::uint64_t()> load_failures = {});
  std::string render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
};

// One-shot rendering (tests, tools).
std::string render_metrics(rollout::engine& engine,
                           const std::vector<const metrics::worker_cells*>& workers);

}  // namespace canary::admin
