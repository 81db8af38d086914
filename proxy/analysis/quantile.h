// Threshold statistics of one interval (success_rate, error_rate, latency quantiles) from the
// counter deltas of the data plane. Pure functions, any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "metrics/cells.h"

namespace canary::analysis {

// Non-cumulative latency bucket counts: one per metrics::duration_buckets bound, last = +Inf.
using latency_counts = std::array<std::uint64_t, metrics::duration_buckets.size() + 1>;

// The q-quantile (0 <= q <= 1) in milliseconds, interpolated linearly inside its bucket like
// Prometheus' histogram_quantile: the first bucket starts at 0; a rank in the +Inf bucket gives
// the last finite bound. nullopt when the histogram is empty.
std::optional<double> histogram_quantile_ms(double q, const latency_counts& buckets);

// Share of requests that were not errors; nullopt when total == 0.
std::optional<double> success_rate(std::uint64_t total, std::uint64_t errors);
std::optional<double> error_rate(std::uint64_t total, std::uint64_t errors);

}  // namespace canary::analysis
