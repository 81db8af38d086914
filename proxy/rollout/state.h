// Rollout state of one route and the pure state machine that moves it (see docs/rollouts.md).
// Pure: every function takes `now` (wall clock) and returns; no I/O, no timers, no threads.
// The engine (rollout/engine.h) owns the states, calls these on the control thread, persists and
// publishes the result.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/run.h"
#include "config/config.h"

namespace canary::rollout {

using wall_clock = std::chrono::system_clock;
using wall_time = wall_clock::time_point;

enum class phase { healthy, progressing, paused, degraded };
enum class paused_by { none, step, user, analysis, webhook };
enum class cause { step, api, config, timer, analysis, webhook };
// A webhook gate before the canary's first step (docs/webhooks.md): confirm-rollout is asked
// until every such webhook answers 2xx, then pre-rollout is called once. No traffic meanwhile.
enum class rollout_gate { none, confirm_rollout, pre_rollout };

std::string_view to_string(phase p);      // "Healthy" | "Progressing" | "Paused" | "Degraded"
std::string_view to_string(paused_by p);  // "" | "step" | "user" | "analysis" | "webhook"
std::string_view to_string(cause c);  // "step" | "api" | "config" | "timer" | "analysis" | "webhook"
std::optional<phase> phase_from_string(std::string_view s);
std::optional<paused_by> paused_by_from_string(std::string_view s);
std::optional<cause> cause_from_string(std::string_view s);
std::string_view to_string(rollout_gate g);  // "" | "confirm-rollout" | "pre-rollout"
std::optional<rollout_gate> gate_from_string(std::string_view s);

struct event {
  wall_time time;
  phase from = phase::healthy;
  phase to = phase::healthy;
  std::size_t step = 0;
  int weight = 0;
  enum cause cause = cause::step;
  std::string message;

  bool operator==(const event&) const = default;
};

// The route's analysis run (docs/analysis.md); the engine starts, measures and ends it.
struct analysis_slot {
  std::optional<analysis::run_state> run;  // the current or the last run; nullopt = none yet
  bool active = false;  // measuring now; false once the run ended (completion, abort)
  std::string canary;   // the canary version the run judges
  std::uint64_t runs = 0;  // runs started on this route: the next run's id
  // Bumped on every change of `run`: route_state's == compares this instead of the whole run
  // (whose measurements have no ==), so the engine still skips saves when nothing changed.
  std::uint64_t revision = 0;

  bool operator==(const analysis_slot& o) const {
    return active == o.active && canary == o.canary && runs == o.runs &&
           revision == o.revision && run.has_value() == o.run.has_value() &&
           (!run || run->id == o.run->id);
  }
};

// Shadow traffic a `setMirror` step started (docs/mirroring.md): a share of stable-bound
// requests is copied to the canary. Ends at setMirror {percent: 0}, the next setWeight, abort,
// completion, rollback, retry and a new canary.
struct mirror_state {
  int percent = 0;                   // 1..100
  std::vector<std::string> methods;  // upper case
  std::uint64_t max_body_bytes = 0;

  bool operator==(const mirror_state&) const = default;
};

// Events kept per route (oldest dropped first).
inline constexpr std::size_t max_events = 200;

struct route_state {
  std::string stable;  // upstream name
  std::string canary;  // "" = no canary
  std::size_t step = 0;  // index into steps; == steps.size() when complete
  int weight = 0;        // set weight (0..weight_total)
  // The route's weight_total that `weight` counts in; 0 = unknown (a state written by a build
  // that did not store it). on_config_load rescales `weight` when the config's differs.
  int weight_total = 0;
  enum phase phase = phase::healthy;
  std::string message;
  enum paused_by paused_by = paused_by::none;
  std::optional<wall_time> pause_deadline;  // running timed pause
  // A timed pause held by the user: its clock is stopped and this much remains.
  std::optional<std::chrono::milliseconds> pause_remaining;
  bool aborted = false;
  std::string seen_upstream;  // the route's `upstream` value at the last config load
  wall_time updated_at;
  std::deque<event> events;  // newest last, at most max_events
  // The stable a completed rollout replaced ("" = none): what undo() makes stable again.
  std::string previous_stable;
  analysis_slot analysis;
  std::optional<mirror_state> mirror;  // nullopt = not mirroring
  // The canary is pending behind this gate (Paused by webhook, or by a user meanwhile).
  rollout_gate gate = rollout_gate::none;

  // True while traffic may go to the canary: a canary exists, the rollout is not aborted and no
  // confirm-rollout or pre-rollout gate holds it (a pending canary gets no override or mirror).
  bool canary_active() const {
    return !canary.empty() && !aborted && gate == rollout_gate::none;
  }
  bool in_progress() const { return !canary.empty(); }

  // Lets the engine skip a save when an operation or reload changed nothing.
  bool operator==(const route_state&) const = default;
};

using state_map = std::map<std::string, route_state>;  // by route name

// Result of an operation: ok, or refused with the reason (the API answers 409 with it).
struct op_result {
  bool ok = true;
  std::string error;
  static op_result refused(std::string why) { return {false, std::move(why)}; }
};

// The route's first state with no state file: stable := upstream, Healthy, no canary,
// step = steps.size(), seen_upstream = upstream.
route_state initial_state(const config::route_config& route, wall_time now);

// A desired upstream arrives (config load with a changed `upstream`, or PUT .../upstream).
// Applies the four rules of docs/rollouts.md and then runs steps (setWeight continues at once).
void set_desired(route_state& s, const config::route_config& route, const std::string& upstream,
                 cause why, wall_time now);

// Config (re)load: rescales the weight to the route's weight_total (see rescale_weight); if
// route.upstream differs from s.seen_upstream, set_desired(cause::config); records
// seen_upstream; clamps the step index to the (possibly changed) step list.
void on_config_load(route_state& s, const config::route_config& route, wall_time now);

// Makes s.weight count in `weight_total`: proportionally when s.weight_total is known (rounded
// down, so the canary never gets a larger share than before), else clamped to 0..weight_total.
// Records an event when the weight changes. Sets s.weight_total.
void rescale_weight(route_state& s, int weight_total, wall_time now);

// Operations table of docs/rollouts.md; each refuses (409) outside its phases with a reason such as
// "promote is not valid in phase Healthy".
op_result promote(route_state& s, const config::route_config& route, wall_time now);
op_result promote_full(route_state& s, const config::route_config& route, wall_time now);
// `why` and `message` name who aborted (the analysis: cause::analysis, "AnalysisFailed: ...").
op_result abort(route_state& s, const config::route_config& route, wall_time now,
                cause why = cause::api, const std::string& message = "");
op_result retry(route_state& s, const config::route_config& route, wall_time now);
op_result pause(route_state& s, const config::route_config& route, wall_time now);
op_result resume(route_state& s, const config::route_config& route, wall_time now);
// 0 <= weight <= weight_total is checked by the caller (400); this checks the phase.
op_result set_weight(route_state& s, const config::route_config& route, int weight,
                     wall_time now);

// Undo: with no canary, makes previous_stable stable again at once (no steps) and keeps the
// replaced one as previous_stable, so a second undo redoes. Refused while a canary exists or with
// no previous stable; the caller checks that previous_stable is still configured.
op_result undo(route_state& s, const config::route_config& route, wall_time now);
// The analysis (or a webhook gate) holds the rollout: Paused by `who`, a running timed pause or
// inline step keeps its remaining time (as a user's pause does). Valid when Progressing or
// Paused by step; returns false (nothing changed) otherwise.
bool hold(route_state& s, const config::route_config& route, enum paused_by who, cause why,
          const std::string& message, wall_time now);

// The current inline `analysis` step is over (passed, or dry run): the rollout moves on.
void complete_analysis_step(route_state& s, const config::route_config& route, cause why,
                            const std::string& message, wall_time now);

// Confirm-promotion (docs/analysis.md#webhooks): with such webhooks the rollout holds after
// its last step (Paused, paused_by webhook) until confirm_promotion() or promote.
bool has_confirm_promotion(const config::route_config& route);
bool awaiting_promotion(const route_state& s, const config::route_config& route);
void confirm_promotion(route_state& s, const config::route_config& route,
                       const std::string& message, wall_time now);

// Confirm-rollout and pre-rollout (docs/webhooks.md): with such webhooks a new canary (or a
// retry) starts behind s.gate instead of at its first step. open_gate() passes the current gate
// (confirm-rollout -> pre-rollout when the route has one -> the steps); promote passes every gate.
bool has_webhook(const config::route_config& route, config::webhook_config::kind type);
bool gated(const route_state& s);  // Paused by webhook behind a gate: what the engine asks for
void open_gate(route_state& s, const config::route_config& route, const std::string& message,
               wall_time now);

// The current step is an inline analysis step (whatever the phase).
bool at_analysis_step(const route_state& s, const config::route_config& route);

// True when tick() would move `s` at `now`: a step's timed pause whose deadline has come.
bool tick_due(const route_state& s, wall_time now);

// Timer: a timed pause whose deadline is <= now continues the rollout (cause::timer).
// Returns true if anything changed.
bool tick(route_state& s, const config::route_config& route, wall_time now);

// Time left on the current timed pause (running or held), for status and the engine's timer.
std::optional<std::chrono::milliseconds> pause_remaining(const route_state& s, wall_time now);

}  // namespace canary::rollout
