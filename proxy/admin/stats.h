// GET /api/v1/stats (see docs/control-api.md): per route and variant, the request rate, error rate,
// latency quantiles and traffic share over the last 10 s. The control thread samples the cumulative
// series cells once per second into a ring (take_sample + stats_ring::push) and answers by
// differencing the newest and oldest samples: nothing is added to the data plane. Everything
// but take_sample is pure (samples in, numbers / JSON out). Control thread only.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "metrics/cells.h"
#include "metrics/registry.h"

namespace canary::admin {

// Cumulative counts of one (route, variant), summed over workers and upstreams.
struct variant_counts {
  std::uint64_t requests = 0;  // every status recorded on the series (the proxy's 5xx included)
  std::uint64_t errors = 0;    // 5xx among them
  std::array<std::uint64_t, metrics::duration_buckets.size() + 1> latency{};  // last = +Inf
};

struct stats_sample {
  double time_s = 0;  // steady clock, seconds
  std::map<std::string, std::array<variant_counts, 2>, std::less<>> routes;  // [stable, canary]
};

// Sums every worker's cells per (route, variant). Control thread (the registry is not shared).
stats_sample take_sample(double time_s, const metrics::series_registry& registry,
                         const std::vector<const metrics::worker_cells*>& workers);

struct variant_stats {
  std::uint64_t requests = 0;  // in the window
  double rps = 0;
  double error_rate = 0;  // 0-1; 0 without requests
  std::optional<double> p50_ms, p99_ms;  // null without latency observations
  double share = 0;       // this variant's requests / the route's requests, 0-1
};

struct route_stats {
  std::string route;
  std::array<variant_stats, 2> variants;  // [stable, canary]
};

// The q-quantile (0..1) of a histogram given as non-cumulative bucket counts over
// metrics::duration_buckets (+Inf last), in seconds, interpolated linearly within the bucket as
// Prometheus' histogram_quantile() does; the +Inf bucket answers the highest finite bound. Null
// when the histogram is empty.
std::optional<double> histogram_quantile(
    double q, const std::array<std::uint64_t, metrics::duration_buckets.size() + 1>& buckets);

// Differences `newer` - `older` for `routes` (in that order; a route absent from a sample counts
// as zero there).
std::vector<route_stats> compute_stats(const stats_sample& older, const stats_sample& newer,
                                       const std::vector<std::string>& routes);

std::string stats_json(int window_s, const std::vector<route_stats>& stats);

// The last `capacity` samples (one per second: 11 samples span 10 s).
class stats_ring {
 public:
  static constexpr std::size_t capacity = 11;
  static constexpr int window_s = 10;

  void push(stats_sample s);
  std::size_t size() const { return samples_.size(); }
  // Stats between the oldest and the newest sample (zeros before two samples exist).
  std::vector<route_stats> compute(const std::vector<std::string>& routes) const;
  std::string json(const std::vector<std::string>& routes) const {
    return stats_json(window_s, compute(routes));
  }

 private:
  std::deque<stats_sample> samples_;
};

}  // namespace canary::admin
