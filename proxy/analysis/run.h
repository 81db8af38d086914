// One analysis run of a route (docs/analysis-method.md): the measurements of every metric and
// the outcome rules (failure_limit, error_limit, inconclusive_limit, dry_run). Pure: the caller
// passes counter deltas, provider results and `now`; no I/O, no timers. The rollout engine owns
// one run_state per route with analysis, calls these on its control thread, and persists the
// state (run_json.h). A run lives from the start of a canary to its completion or abort.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/provider.h"
#include "analysis/quantile.h"
#include "analysis/sequential.h"
#include "config/analysis_config.h"

namespace canary::analysis {

using wall_time = std::chrono::system_clock::time_point;

// At most this many distinct `slow` durations per route (the config loader refuses more).
inline constexpr std::size_t max_slow_thresholds = 4;
inline constexpr std::size_t max_history = 1000;

// Counter deltas of one variant over a span.
struct variant_sample {
  // Requests decided by weight, sticky hash or mirroring (never header/cookie forced): the
  // sequential metrics' input. bad = 5xx / bad gRPC status / failed mirror copy.
  std::uint64_t requests = 0, bad = 0;
  // slow[k]: decided requests slower than slow_thresholds(cfg)[k].
  std::array<std::uint64_t, max_slow_thresholds> slow{};
  // Every request of the variant (forced ones too): the threshold metrics' input.
  std::uint64_t total = 0, errors = 0;
  latency_counts latency{};

  variant_sample& operator+=(const variant_sample& o);
};

struct interval_sample {
  variant_sample stable, canary;
  interval_sample& operator+=(const interval_sample& o);
};

// The distinct `slow` durations of the latency_vs_stable metrics, in metric order (index k of
// variant_sample::slow). The data plane counts one slow counter per entry.
std::vector<std::chrono::milliseconds> slow_thresholds(const config::analysis_config& cfg);

enum class metric_phase { pending, successful, failed, inconclusive, error };
std::string_view to_string(metric_phase p);  // "Pending" | "Successful" | "Failed" | ...
std::optional<metric_phase> metric_phase_from_string(std::string_view s);

enum class run_phase { running, successful, failed, inconclusive, error, dry_run };
std::string_view to_string(run_phase p);  // "Running" | "Successful" | ... | "DryRun"
std::optional<run_phase> run_phase_from_string(std::string_view s);

// What a metric is for status and persistence: a configured metric's kind, or a judged webhook
// (pre-rollout / rollout) whose results the engine passes to measure() under its name.
enum class metric_kind { sequential, threshold, prometheus, web, webhook };
std::string_view to_string(metric_kind k);  // "sequential" | "threshold" | ... | "webhook"
std::optional<metric_kind> metric_kind_from_string(std::string_view s);
metric_kind kind_of(const config::metric_config& m);

// One measurement of one metric. value / stable_value (canary_proxy_analysis_value):
//   sequential: the bad rates of canary / stable over the run (fractions);
//   threshold:  the canary's statistic in the interval / the stable's same statistic (0 when
//               the stable had no request);
//   prometheus, web: the provider's number / 0;  webhook: the HTTP status / 0.
struct measurement {
  wall_time time;
  std::string metric;
  metric_phase phase = metric_phase::pending;
  double value = 0;
  double stable_value = 0;
  std::uint64_t canary_requests = 0, stable_requests = 0;
  std::string message;  // "errors: canary 4.1 % (41/1000) vs stable 0.9 % (36/4000), p < 0.01"
};

struct metric_state {
  std::string name;
  metric_kind kind = metric_kind::threshold;
  // The definition's fields that change its meaning; a reload keeps the counts only when equal.
  std::string fingerprint;
  int successful = 0, failed = 0, inconclusive = 0, errors = 0;
  int consecutive_inconclusive = 0, consecutive_errors = 0;
  std::optional<measurement> last;
  std::optional<sequential_test> sequential;  // kind sequential only
  bool sticky_failed = false;  // sequential: rejected once, Failed for the rest of the run
};

struct run_state {
  std::string id;
  wall_time started;
  run_phase phase = run_phase::running;
  std::vector<metric_state> metrics;  // configured metrics in config order, then webhooks
  std::deque<measurement> history;   // the last max_history measurements, oldest first
  interval_sample interval;          // accumulated since the last measure() (threshold metrics)
  int measurements = 0;              // measure() calls in the run

  const metric_state* find(std::string_view metric) const;
  metric_state* find(std::string_view metric);
};

std::string fingerprint(const config::metric_config& m);

// A new run: every configured metric Pending, counts zero. Phase DryRun when cfg.dry_run.
run_state start_run(const config::analysis_config& cfg, std::string id, wall_time now);

// Closes a stratum of every sequential metric (call at a weight change, with the deltas since
// the last stratum); threshold metrics keep accumulating the interval.
void add_stratum(run_state& run, const config::analysis_config& cfg, const interval_sample& delta);

struct decision {
  enum class action { none, abort, pause };
  action act = action::none;
  std::string metric;   // the metric that decided
  std::string message;  // "AnalysisFailed: errors: canary 4.1 % ..." / "AnalysisInconclusive: ..."
};

// One measurement of every metric at the end of an interval: `delta` (since the last stratum)
// closes the last stratum; threshold metrics judge the interval accumulated since the last
// measure(); provider metrics and judged webhooks judge `providers[name]` (a configured provider
// metric missing from `providers` is an Error). Applies the outcome rules, first metric in
// config order wins, abort before pause: Failed count > failure_limit or consecutive Errors >
// error_limit -> abort (run phase Failed / Error); consecutive Inconclusive >
// inconclusive_limit -> pause (run phase Inconclusive). dry_run (analysis-wide or per metric)
// records the measurement but never acts.
decision measure(run_state& run, const config::analysis_config& cfg, const interval_sample& delta,
                 const std::map<std::string, provider_result>& providers, wall_time now);

// Judges webhook results alone (pre-rollout / rollout hooks, between intervals): 2xx
// Successful, anything else Failed; more Failed than cfg.failure_limit -> abort.
decision judge_webhooks(run_state& run, const config::analysis_config& cfg,
                        const std::map<std::string, provider_result>& webhooks, wall_time now);

// resume / promote from paused_by analysis: the inconclusive streaks restart at zero.
void reset_inconclusive(run_state& run);

// The end of a run that completed (Successful unless it already Failed / is DryRun).
void complete_run(run_state& run);

// The first of `names` (every configured metric when empty) whose last measurement is not
// Successful: gates a timed pause and an inline analysis step. nullopt = all passed.
std::optional<std::string> waiting_for(const run_state& run, const config::analysis_config& cfg,
                                       const std::vector<std::string>& names);

// An inline analysis step may complete: each named metric has at least one Successful
// measurement and none is beyond its limits (failed <= failure_limit, errors streak <=
// error_limit).
bool inline_step_passed(const run_state& run, const config::analysis_config& cfg,
                        const std::vector<std::string>& names);

// A reload mid-run: metrics with the same name and fingerprint keep their state, changed ones
// restart (warning), removed ones are dropped (warning), new ones start Pending. Webhook
// states are kept. The run phase follows the new dry_run.
void reconcile(run_state& run, const config::analysis_config& old_cfg,
               const config::analysis_config& new_cfg, std::vector<std::string>& warnings);

}  // namespace canary::analysis
