// histogram_quantile the way Prometheus computes it (promql/quantile.go): find the bucket holding
// rank q * count and interpolate linearly between its bounds.
#include "analysis/quantile.h"

namespace canary::analysis {

std::optional<double> histogram_quantile_ms(double q, const latency_counts& buckets) {
  std::uint64_t total = 0;
  for (auto c : buckets) total += c;
  if (total == 0 || !(q >= 0 && q <= 1)) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const std::uint64_t in = buckets[i];
    if (in == 0 || static_cast<double>(below + in) < rank) {
      below += in;
      continue;
    }
    // Past the last finite bound nothing is known but "slower": report that bound.
    if (i == metrics::duration_buckets.size()) return metrics::duration_buckets.back() * 1000.0;
    const double lower = i == 0 ? 0.0 : metrics::duration_buckets[i - 1];
    const double upper = metrics::duration_buckets[i];
    const double frac = (rank - static_cast<double>(below)) / static_cast<double>(in);
    return (lower + (upper - lower) * frac) * 1000.0;
  }
  return metrics::duration_buckets.back() * 1000.0;
}

std::optional<double> success_rate(std::uint64_t total, std::uint64_t errors) {
  if (total == 0) return std::nullopt;
  if (errors > total) errors = total;
  return static_cast<double>(total - errors) / static_cast<double>(total);
}

std::optional<double> error_rate(std::uint64_t total, std::uint64_t errors) {
  if (total == 0) return std::nullopt;
  if (errors > total) errors = total;
  return static_cast<double>(errors) / static_cast<double>(total);
}

}  // namespace canary::analysis
