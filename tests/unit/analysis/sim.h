// Seeded traffic for the analysis tests: rollouts whose canary weight steps through 5 %..50 %
// (changing mid-interval), 10..2000 requests per interval, and a base error rate that drifts the
// same way for both variants (an incident hits both). Test helper only; single thread.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>

namespace canary::analysis::testing {

struct stratum {
  std::uint64_t n_c, n_s, bad_c, bad_s;
};

// Calls `on_stratum` for each stratum and `on_interval` after each interval's last stratum;
// stops early when on_interval returns true. Canary bad rate = base * ratio.
inline void simulate_rollout(std::uint64_t seed, double base_rate, double ratio, int intervals,
                             const std::function<void(const stratum&)>& on_stratum,
                             const std::function<bool(int interval)>& on_interval) {
  std::mt19937_64 rng(seed);
  static constexpr std::array<double, 6> weights = {0.05, 0.10, 0.20, 0.30, 0.40, 0.50};
  std::uniform_int_distribution<std::uint64_t> traffic(10, 2000);
  std::uniform_real_distribution<double> drift(0.5, 2.0), unit(0, 1);
  std::size_t step = 0;
  const int per_step = std::max(1, intervals / static_cast<int>(weights.size()));
  for (int i = 0; i < intervals; ++i) {
    const double base = std::min(0.5, base_rate * drift(rng));
    const std::uint64_t n = traffic(rng);
    // The weight changes inside the interval at a random point: two strata.
    const bool change = i > 0 && i % per_step == 0 && step + 1 < weights.size();
    const double cut = change ? unit(rng) : 1.0;
    const std::uint64_t first = static_cast<std::uint64_t>(std::llround(cut * n));
    for (int part = 0; part < (change ? 2 : 1); ++part) {
      if (part == 1) ++step;
      const std::uint64_t m = part == 0 ? first : n - first;
      std::binomial_distribution<std::uint64_t> split(m, weights[step]);
      const std::uint64_t n_c = split(rng);
      const std::uint64_t n_s = m - n_c;
      std::binomial_distribution<std::uint64_t> bc(n_c, std::min(1.0, base * ratio));
      std::binomial_distribution<std::uint64_t> bs(n_s, base);
      on_stratum({n_c, n_s, bc(rng), bs(rng)});
    }
    if (on_interval(i)) return;
  }
}

// P(X <= k) for X ~ Binomial(n, p), summed in log space.
inline double binomial_cdf(std::uint64_t k, std::uint64_t n, double p) {
  if (p <= 0) return 1;
  if (p >= 1) return k >= n ? 1 : 0;
  double sum = 0;
  const double lp = std::log(p), lq = std::log1p(-p);
  for (std::uint64_t i = 0; i <= k && i <= n; ++i) {
    const double di = static_cast<double>(i), dn = static_cast<double>(n);
    sum += std::exp(std::lgamma(dn + 1) - std::lgamma(di + 1) - std::lgamma(dn - di + 1) +
                    di * lp + (dn - di) * lq);
  }
  return std::min(1.0, sum);
}

// Exact (Clopper-Pearson) two-sided 95 % bounds of a binomial proportion, by bisection on the
// binomial CDF (equivalent to the beta quantiles).
inline double clopper_pearson_upper(std::uint64_t k, std::uint64_t n) {
  if (k >= n) return 1;
  double lo = 0, hi = 1;
  for (int it = 0; it < 100; ++it) {
    const double mid = (lo + hi) / 2;
    (binomial_cdf(k, n, mid) > 0.025 ? lo : hi) = mid;
  }
  return hi;
}

inline double clopper_pearson_lower(std::uint64_t k, std::uint64_t n) {
  if (k == 0) return 0;
  double lo = 0, hi = 1;
  for (int it = 0; it < 100; ++it) {
    const double mid = (lo + hi) / 2;
    // P(X >= k) = 1 - P(X <= k - 1)
    (1 - binomial_cdf(k - 1, n, mid) < 0.025 ? lo : hi) = mid;
  }
  return lo;
}

}  // namespace canary::analysis::testing
