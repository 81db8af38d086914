// The mixture likelihood-ratio test of sequential.h; the derivation of its guarantee is in
// docs/analysis-method.md. In short: within a stratum, given the canary/stable split (n_c, n_s)
// and the number of bad requests B of both variants, the canary's share C of them is
// Binomial(B, p(r)) with p(r) = n_c r / (n_c r + n_s) when bad requests arrive as Poisson
// processes whose rates have ratio r. For a fixed alternative r1 > r0 the stratum's likelihood
// ratio has expectation (p q1/q0 + (1-p)(1-q1)/(1-q0))^B, increasing in p and 1 at p = q0, so
// at most 1 whenever r <= r0: the running product is a supermartingale, so is a mixture with
// weights summing to 1, and Ville's inequality bounds the chance it ever reaches 1/alpha.
#include "analysis/sequential.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace canary::analysis {

namespace {

// Alternatives, in grid steps from the null (8 steps = a doubling): from +9 % to 16x. Denser at
// small effects, where the evidence grows slowest; equal weights.
constexpr std::array<int, 10> alternative_steps = {1, 2, 3, 4, 6, 8, 11, 16, 24, 32};

double grid_ratio(int index) {
  return std::exp2(static_cast<double>(index - grid_half) / grid_per_octave);
}

}  // namespace

sequential_test::sequential_test(double r0, double confidence) {
  d_.r0 = r0;
  d_.confidence = confidence;
  d_.log_lik.assign(grid_size, 0.0);
}

std::optional<sequential_test> sequential_test::from_data(sequential_data d) {
  if (!(d.r0 >= 1) || !std::isfinite(d.r0)) return std::nullopt;
  if (!(d.confidence > 0.5 && d.confidence < 1)) return std::nullopt;
  if (d.log_lik.size() != static_cast<std::size_t>(grid_size)) return std::nullopt;
  for (double v : d.log_lik)
    if (!std::isfinite(v) || v > 0) return std::nullopt;  // sums of log probabilities
  if (!std::isfinite(d.max_log_e) || d.max_log_e < 0) return std::nullopt;
  if (d.canary_bad > d.canary_requests || d.stable_bad > d.stable_requests) return std::nullopt;
  return sequential_test(std::move(d));
}

void sequential_test::add_stratum(std::uint64_t n_c, std::uint64_t n_s, std::uint64_t bad_c,
                                  std::uint64_t bad_s) {
  // A variant cannot have more bad requests than requests; clamp rather than poison the sums
  // (counters are read without a common snapshot, a bad one may be seen before its request).
  bad_c = std::min(bad_c, n_c);
  bad_s = std::min(bad_s, n_s);
  d_.canary_requests += n_c;
  d_.stable_requests += n_s;
  d_.canary_bad += bad_c;
  d_.stable_bad += bad_s;
  if (n_c == 0 || n_s == 0 || bad_c + bad_s == 0) return;
  ++d_.strata;
  const double c = static_cast<double>(bad_c), s = static_cast<double>(bad_s);
  const double nc = static_cast<double>(n_c), ns = static_cast<double>(n_s);
  for (int i = 0; i < grid_size; ++i) {
    const double a = nc * d_.r0 * grid_ratio(i);
    // log p = -log1p(n_s / a), log(1 - p) = -log1p(a / n_s): no cancellation at extreme splits.
    d_.log_lik[i] -= c * std::log1p(ns / a) + s * std::log1p(a / ns);
  }
  d_.max_log_e = std::max(d_.max_log_e, log_e_value());
}

// log of sum_k w_k L(rho_{null +- k}) / L(rho_null), by log-sum-exp. Alternatives off the grid are
// left out: the weights then sum to less than 1, which keeps the supermartingale property.
double sequential_test::mixture_log(int null_index, bool upward) const {
  const double base = d_.log_lik[null_index];
  double terms[alternative_steps.size()];
  std::size_t n = 0;
  double top = -std::numeric_limits<double>::infinity();
  for (int k : alternative_steps) {
    const int j = upward ? null_index + k : null_index - k;
    if (j < 0 || j >= grid_size) continue;
    terms[n] = d_.log_lik[j] - base;
    top = std::max(top, terms[n]);
    ++n;
  }
  if (n == 0) return -std::numeric_limits<double>::infinity();
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += std::exp(terms[i] - top);
  return top + std::log(sum) - std::log(static_cast<double>(alternative_steps.size()));
}

double sequential_test::log_e_value() const { return mixture_log(grid_half, true); }

double sequential_test::e_value() const { return std::exp(log_e_value()); }

bool sequential_test::rejected() const { return d_.max_log_e >= -std::log(alpha()); }

double sequential_test::p_value() const { return std::min(1.0, std::exp(-d_.max_log_e)); }

// The confidence sequence {rho : "r >= rho" not rejected now}, read on the grid. With i* the
// largest grid point <= the true r, "r >= rho_i*" is true, so its (mirrored) mixture reaches
// 1/alpha with probability <= alpha, ever; while it has not, the largest non-rejected point is
// >= i* and the bound returned, one step above it, is > r.
std::optional<double> sequential_test::upper_bound() const {
  const double threshold = -std::log(alpha());
  for (int i = grid_size - 1; i >= 0; --i) {
    if (mixture_log(i, false) < threshold) {
      if (i == grid_size - 1) return std::nullopt;
      return d_.r0 * grid_ratio(i + 1);
    }
  }
  return d_.r0 * grid_ratio(0);
}

}  // namespace canary::analysis
