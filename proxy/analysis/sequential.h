// The anytime-valid sequential test of one `*_vs_stable` metric (docs/analysis-method.md): a
// mixture likelihood-ratio test of "canary bad rate <= r0 x stable bad rate" over strata, and the
// anytime-valid upper confidence bound of the ratio. Pure value type: no clock, no I/O; one thread
// at a time (the rollout engine's control thread). Lives in its analysis run (run.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace canary::analysis {

// Every hypothesis the test compares lies on one log grid anchored at r0:
// rho_j = r0 * 2^(j / grid_per_octave) for j in [-grid_half, grid_half]. The log likelihood of a
// stratum is additive per grid point, so the whole history reduces to one double per grid point
// (the sufficient statistic persisted in the state file), whatever the number of strata.
inline constexpr int grid_per_octave = 8;
inline constexpr int grid_half = 48;  // r0 / 64 .. r0 * 64
inline constexpr int grid_size = 2 * grid_half + 1;

// What persists of a test: enough to continue it after a restart with the same result.
struct sequential_data {
  double r0 = 1;
  double confidence = 0.99;
  std::uint64_t canary_requests = 0, stable_requests = 0;  // every stratum added
  std::uint64_t canary_bad = 0, stable_bad = 0;
  std::uint64_t strata = 0;  // informative strata added
  double max_log_e = 0;      // the largest log e-value seen (the anytime p-value is exp(-it))
  std::vector<double> log_lik;  // grid_size entries: sum over strata of log P(C | B, split, rho_j)
};

class sequential_test {
 public:
  // r0 = 1 + max_increase (>= 1); confidence in (0.5, 1): alpha = 1 - confidence.
  sequential_test(double r0, double confidence);
  // Restores a persisted test; nullopt if `d` is inconsistent (wrong grid size, r0 < 1, ...).
  static std::optional<sequential_test> from_data(sequential_data d);

  // One stratum: requests and bad requests of each variant over a span with one weight. A
  // stratum without canary or stable requests, or without any bad request, carries no
  // information about the ratio: it only adds to the totals.
  void add_stratum(std::uint64_t n_c, std::uint64_t n_s, std::uint64_t bad_c, std::uint64_t bad_s);

  // The mixture e-value M (>= 0): under r <= r0, P(M ever >= 1/alpha) <= alpha (Ville).
  double e_value() const;
  double log_e_value() const;
  // M >= 1/alpha, now or at any earlier look (a rejection is final for the run).
  bool rejected() const;
  // The anytime-valid p-value: min(1, 1 / max over looks of M).
  double p_value() const;
  // Anytime-valid upper confidence bound of r at level `confidence`; nullopt = unbounded by the
  // data so far (too few bad requests). Conservative by one grid step (9 %).
  std::optional<double> upper_bound() const;

  double r0() const { return d_.r0; }
  double alpha() const { return 1 - d_.confidence; }
  std::uint64_t canary_requests() const { return d_.canary_requests; }
  std::uint64_t stable_requests() const { return d_.stable_requests; }
  std::uint64_t canary_bad() const { return d_.canary_bad; }
  std::uint64_t stable_bad() const { return d_.stable_bad; }
  std::uint64_t strata() const { return d_.strata; }
  const sequential_data& data() const { return d_; }

 private:
  explicit sequential_test(sequential_data d) : d_(std::move(d)) {}
  double mixture_log(int null_index, bool upward) const;

  sequential_data d_;
};

}  // namespace canary::analysis
