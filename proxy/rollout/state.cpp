// The rollout state machine of docs/rollouts.md (Argo Rollouts' canary strategy where the design is
// silent). Pure: callers pass `now` and get the new state back in place; no I/O, clocks or
// threads, so every transition is unit-tested with a fixed time. Every change records events
// (one per phase move or step moved) so the API and CLI can show the history.
#include "rollout/state.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "util/duration.h"

namespace canary::rollout {

std::string_view to_string(phase p) {
  switch (p) {
    case phase::healthy:
      return "Healthy";
    case phase::progressing:
      return "Progressing";
    case phase::paused:
      return "Paused";
    case phase::degraded:
      return "Degraded";
  }
  return "Healthy";
}

std::string_view to_string(paused_by p) {
  switch (p) {
    case paused_by::none:
      return "";
    case paused_by::step:
      return "step";
    case paused_by::user:
      return "user";
    case paused_by::analysis:
      return "analysis";
    case paused_by::webhook:
      return "webhook";
  }
  return "";
}

std::string_view to_string(cause c) {
  switch (c) {
    case cause::step:
      return "step";
    case cause::api:
      return "api";
    case cause::config:
      return "config";
    case cause::timer:
      return "timer";
    case cause::analysis:
      return "analysis";
    case cause::webhook:
      return "webhook";
  }
  return "step";
}

std::optional<phase> phase_from_string(std::string_view s) {
  for (phase p : {phase::healthy, phase::progressing, phase::paused, phase::degraded})
    if (to_string(p) == s) return p;
  return std::nullopt;
}

std::optional<paused_by> paused_by_from_string(std::string_view s) {
  for (paused_by p : {paused_by::none, paused_by::step, paused_by::user, paused_by::analysis,
                      paused_by::webhook})
    if (to_string(p) == s) return p;
  return std::nullopt;
}

std::optional<cause> cause_from_string(std::string_view s) {
  for (cause c : {cause::step, cause::api, cause::config, cause::timer, cause::analysis,
                  cause::webhook})
    if (to_string(c) == s) return c;
  return std::nullopt;
}

std::string_view to_string(rollout_gate g) {
  switch (g) {
    case rollout_gate::none:
      return "";
    case rollout_gate::confirm_rollout:
      return "confirm-rollout";
    case rollout_gate::pre_rollout:
      return "pre-rollout";
  }
  return "";
}

std::optional<rollout_gate> gate_from_string(std::string_view s) {
  for (rollout_gate g :
       {rollout_gate::none, rollout_gate::confirm_rollout, rollout_gate::pre_rollout})
    if (to_string(g) == s) return g;
  return std::nullopt;
}

namespace {

using step_kind = config::step_config::kind;
using hook_kind = config::webhook_config::kind;

// Argo's Progressing message while a canary has steps left.
constexpr std::string_view progressing_message = "waiting for all steps to complete";
// Argo's pause-condition reason, shown as the message while a step holds the rollout.
constexpr std::string_view step_pause_message = "CanaryPauseStep";
constexpr std::string_view user_pause_message = "manually paused";

using util::format_duration;

// Argo's CanaryStepString: "setWeight: 20", "pause", "pause: 30s".
std::string step_string(const config::step_config& st) {
  if (st.what == step_kind::set_weight) return "setWeight: " + std::to_string(st.weight);
  if (st.what == step_kind::set_mirror) return "setMirror: " + std::to_string(st.mirror.percent);
  if (st.what == step_kind::analysis)
    return st.duration ? "analysis: " + format_duration(*st.duration) : "analysis";
  if (!st.duration) return "pause";
  return "pause: " + format_duration(*st.duration);
}

// "i/n" with a 1-based i, as Argo numbers steps in its events.
std::string step_number(std::size_t index, std::size_t count) {
  return std::to_string(index + 1) + "/" + std::to_string(count);
}

const config::step_config* current_step(const route_state& s, const config::route_config& route) {
  return s.step < route.steps.size() ? &route.steps[s.step] : nullptr;
}

std::chrono::milliseconds time_left(wall_time deadline, wall_time now) {
  // Rounded up so that 0 means "due", matching tick's `deadline <= now`.
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
}

// Appends the event for a change already applied to `s` (`from` is the phase before it).
void record(route_state& s, wall_time now, phase from, cause why, std::string message) {
  s.events.push_back(event{now, from, s.phase, s.step, s.weight, why, std::move(message)});
  while (s.events.size() > max_events) s.events.pop_front();
  s.updated_at = now;
}

void clear_pause(route_state& s) {
  s.paused_by = paused_by::none;
  s.pause_deadline.reset();
  s.pause_remaining.reset();
}

void set_progressing(route_state& s) {
  clear_pause(s);
  s.phase = phase::progressing;
  s.message = progressing_message;
}

// The canary becomes stable (Argo: weight 100, then the stable service selects the new version,
// then the canary weight goes back to 0). Accepts any state with a canary.
void complete(route_state& s, const config::route_config& route) {
  if (!s.canary.empty()) s.previous_stable = std::exchange(s.stable, std::exchange(s.canary, {}));
  s.step = route.steps.size();
  s.weight = 0;
  s.phase = phase::healthy;
  s.message.clear();
  s.aborted = false;
  s.mirror.reset();
  s.gate = rollout_gate::none;
  clear_pause(s);
}

// Runs steps from s.step while they continue at once (setWeight), stops at a pause, or completes
// after the last one. Accepts a state with a canary that is not aborted.
void advance(route_state& s, const config::route_config& route, wall_time now) {
  const auto count = route.steps.size();
  while (s.step < count) {
    const auto& st = route.steps[s.step];
    const phase from = s.phase;
    if (st.what == step_kind::set_weight) {
      s.weight = st.weight;
      s.mirror.reset();  // a weight step hands real traffic to the canary: the shadow ends
      set_progressing(s);
      ++s.step;
      record(s, now, from, cause::step,
             "Rollout step " + step_number(s.step - 1, count) + " completed (" + step_string(st) +
                 ")");
      continue;
    }
    if (st.what == step_kind::set_mirror) {
      // Completes at once, like setWeight: the copies run in the background from now on.
      if (st.mirror.percent > 0)
        s.mirror = mirror_state{st.mirror.percent, st.mirror.methods, st.mirror.max_body_bytes};
      else
        s.mirror.reset();
      set_progressing(s);
      ++s.step;
      record(s, now, from, cause::step,
             "Rollout step " + step_number(s.step - 1, count) + " completed (" + step_string(st) +
                 ")");
      continue;
    }
    if (st.what == step_kind::analysis) {
      // Inline analysis: the rollout stays Progressing on this step while the engine measures;
      // the step's clock is the pause deadline (so a user's pause stops it like a timed pause).
      set_progressing(s);
      s.message = "running analysis step " + step_number(s.step, count);
      auto length = st.duration.value_or(
          route.analysis ? route.analysis->interval : std::chrono::milliseconds(0));
      s.pause_deadline = now + length;
      record(s, now, from, cause::step,
             "Rollout step " + step_number(s.step, count) + " started (" + step_string(st) + ")");
      return;
    }
    clear_pause(s);
    s.phase = phase::paused;
    s.paused_by = paused_by::step;
    s.message = step_pause_message;
    if (st.duration) s.pause_deadline = now + *st.duration;
    record(
        s, now, from, cause::step,
        "Rollout is paused at step " + step_number(s.step, count) + " (" + step_string(st) + ")");
    return;
  }
  const phase from = s.phase;
  if (has_confirm_promotion(route)) {
    // Flagger's confirm-promotion: the engine asks the webhooks and completes on their 2xx
    // (confirm_promotion), or a person does with promote.
    if (s.phase == phase::paused && s.paused_by == paused_by::webhook) return;
    clear_pause(s);
    s.phase = phase::paused;
    s.paused_by = paused_by::webhook;
    s.message = "waiting for confirm-promotion webhook gate";
    record(s, now, from, cause::step, "Rollout is waiting for the confirm-promotion webhooks");
    return;
  }
  const std::string version = s.canary;
  complete(s, route);
  record(s, now, from, cause::step, "Rollout completed: " + version + " is now stable");
}

std::string gate_message(rollout_gate g) {
  return g == rollout_gate::confirm_rollout ? "waiting for confirm-rollout webhooks"
                                            : "running pre-rollout webhooks";
}

// Holds `s` (Paused by webhook) behind `g`; the engine asks the webhooks.
void enter_gate(route_state& s, rollout_gate g, wall_time now) {
  const phase from = s.phase;
  clear_pause(s);
  s.gate = g;
  s.phase = phase::paused;
  s.paused_by = paused_by::webhook;
  s.message = gate_message(g);
  record(s, now, from, cause::webhook,
         g == rollout_gate::confirm_rollout
             ? "Rollout is waiting for the confirm-rollout webhooks before any traffic"
             : "Rollout is calling the pre-rollout webhooks before any traffic");
}

// A canary starts (new, or retried after an abort): behind the first gate the route has, or at
// its first step. Flagger asks these before the canary is scaled up, so before any traffic.
void begin_steps(route_state& s, const config::route_config& route, wall_time now) {
  s.gate = rollout_gate::none;
  if (has_webhook(route, hook_kind::confirm_rollout))
    enter_gate(s, rollout_gate::confirm_rollout, now);
  else if (has_webhook(route, hook_kind::pre_rollout))
    enter_gate(s, rollout_gate::pre_rollout, now);
  else
    advance(s, route, now);
}

std::string phase_label(const route_state& s) {
  std::string label(to_string(s.phase));
  if (s.phase == phase::paused && s.paused_by != paused_by::none)
    label += std::string(" by ") + std::string(to_string(s.paused_by));
  return label;
}

// The 409 reason: what was asked, the phase that forbids it, and when it would be valid.
op_result refuse(std::string_view op, const route_state& s, std::string_view valid_when) {
  return op_result::refused("cannot " + std::string(op) + ": rollout is " + phase_label(s) + " (" +
                            std::string(op) + " is valid when " + std::string(valid_when) + ")");
}

bool is(const route_state& s, std::initializer_list<phase> phases) {
  return std::find(phases.begin(), phases.end(), s.phase) != phases.end();
}

}  // namespace

bool has_webhook(const config::route_config& route, config::webhook_config::kind type) {
  for (const auto& h : route.webhooks)
    if (h.type == type) return true;
  return false;
}

bool gated(const route_state& s) {
  return s.gate != rollout_gate::none && s.in_progress() && !s.aborted &&
         s.phase == phase::paused && s.paused_by == paused_by::webhook;
}

void open_gate(route_state& s, const config::route_config& route, const std::string& message,
               wall_time now) {
  if (s.gate == rollout_gate::none) return;
  const phase from = s.phase;
  if (s.gate == rollout_gate::confirm_rollout && has_webhook(route, hook_kind::pre_rollout)) {
    s.gate = rollout_gate::pre_rollout;
    s.message = gate_message(s.gate);
    record(s, now, from, cause::webhook, message);
    return;
  }
  s.gate = rollout_gate::none;
  set_progressing(s);
  record(s, now, from, cause::webhook, message);
  advance(s, route, now);
}

bool has_confirm_promotion(const config::route_config& route) {
  for (const auto& h : route.webhooks)
    if (h.type == config::webhook_config::kind::confirm_promotion) return true;
  return false;
}

bool awaiting_promotion(const route_state& s, const config::route_config& route) {
  return s.in_progress() && !s.aborted && s.gate == rollout_gate::none &&
         s.phase == phase::paused && s.paused_by == paused_by::webhook &&
         s.step >= route.steps.size();
}

void confirm_promotion(route_state& s, const config::route_config& route,
                       const std::string& message, wall_time now) {
  const phase from = s.phase;
  complete(s, route);
  record(s, now, from, cause::webhook, message);
}

route_state initial_state(const config::route_config& route, wall_time now) {
  route_state s;
  s.stable = route.upstream;
  s.step = route.steps.size();
  s.seen_upstream = route.upstream;
  s.weight_total = route.canary.weight_total;
  s.updated_at = now;
  return s;
}

void rescale_weight(route_state& s, int weight_total, wall_time now) {
  if (weight_total <= 0 || s.weight_total == weight_total) return;
  const int before = s.weight;
  const int before_total = s.weight_total;
  long long scaled = s.weight;
  if (before_total > 0) scaled = static_cast<long long>(s.weight) * weight_total / before_total;
  s.weight = static_cast<int>(std::clamp(scaled, 0LL, static_cast<long long>(weight_total)));
  s.weight_total = weight_total;
  if (s.weight == before) return;
  record(s, now, s.phase, cause::config,
         "Traffic weight rescaled from " + std::to_string(before) + "/" +
             (before_total > 0 ? std::to_string(before_total) : std::string("?")) + " to " +
             std::to_string(s.weight) + "/" + std::to_string(weight_total) +
             " (weight_total changed)");
}

void set_desired(route_state& s, const config::route_config& route, const std::string& upstream,
                 cause why, wall_time now) {
  // An empty name would read as "no canary"; config and API validation reject it before here.
  if (upstream.empty()) return;
  if (upstream == s.stable) {
    if (!s.in_progress()) return;
    const phase from = s.phase;
    const std::string cancelled = std::exchange(s.canary, std::string());
    s.step = route.steps.size();
    s.weight = 0;
    s.phase = phase::healthy;
    s.message = "rolled back";
    s.aborted = false;
    s.mirror.reset();
    s.gate = rollout_gate::none;
    clear_pause(s);
    record(s, now, from, why,
           "Rolled back to " + s.stable + ": update to " + cancelled + " cancelled");
    return;
  }
  if (upstream == s.canary) return;
  const phase from = s.phase;
  const std::string replaced = std::exchange(s.canary, upstream);
  s.step = 0;
  s.weight = 0;
  s.aborted = false;
  s.mirror.reset();
  set_progressing(s);
  record(s, now, from, why,
         replaced.empty() ? "Update to " + upstream + " started"
                          : "Update to " + upstream + " started, replacing update to " + replaced);
  begin_steps(s, route, now);
}

void on_config_load(route_state& s, const config::route_config& route, wall_time now) {
  // First, so that every rule below (and routing) reads the weight in the config's units.
  rescale_weight(s, route.canary.weight_total, now);
  if (route.upstream != s.seen_upstream) {
    set_desired(s, route, route.upstream, cause::config, now);
    s.seen_upstream = route.upstream;
    s.updated_at = now;
  }
  const auto count = route.steps.size();
  if (!s.in_progress()) {
    // "Complete" is step == step count; keep that true for a list that grew or shrank.
    if (s.step != count) {
      s.step = count;
      s.updated_at = now;
    }
    return;
  }
  if (s.aborted) {
    // Abort resets the index to 0, which every list (even an empty one) accepts.
    s.step = std::min(s.step, count);
    return;
  }
  const phase from = s.phase;
  if (s.gate != rollout_gate::none) {
    // A gate whose webhooks the new config dropped opens; the canary stays pending otherwise.
    if (s.gate == rollout_gate::confirm_rollout && !has_webhook(route, hook_kind::confirm_rollout))
      open_gate(s, route, "Rollout gate changed: no confirm-rollout webhook left", now);
    if (s.gate == rollout_gate::pre_rollout && !has_webhook(route, hook_kind::pre_rollout))
      open_gate(s, route, "Rollout gate changed: no pre-rollout webhook left", now);
    return;
  }
  if (awaiting_promotion(s, route) && has_confirm_promotion(route)) return;  // still gated
  if (s.step >= count) {
    // The position is kept, but no step is left at or after it: the rollout is complete.
    const std::string why =
        s.step > count ? "Rollout steps changed: step index clamped from " +
                             std::to_string(s.step) + " to " + std::to_string(count)
                       : "Rollout steps changed: no step left at index " + std::to_string(s.step);
    s.step = count;
    set_progressing(s);
    record(s, now, from, cause::config, why);
    advance(s, route, now);
    return;
  }
  if (s.phase != phase::paused || s.paused_by != paused_by::step) return;
  // A step holds the rollout: make the hold match what the step at this index now says.
  const auto& st = route.steps[s.step];
  const std::string where = "step " + step_number(s.step, count);
  if (st.what != step_kind::pause) {
    set_progressing(s);
    record(s, now, from, cause::config,
           "Rollout steps changed: " + where + " is no longer a pause");
    advance(s, route, now);
  } else if (!st.duration && s.pause_deadline) {
    s.pause_deadline.reset();
    record(s, now, from, cause::config, "Rollout steps changed: " + where + " waits for promote");
  } else if (st.duration && !s.pause_deadline) {
    s.pause_deadline = now + *st.duration;
    record(s, now, from, cause::config,
           "Rollout steps changed: " + where + " is now a timed pause (" + step_string(st) + ")");
  }
}

op_result promote(route_state& s, const config::route_config& route, wall_time now) {
  if (!is(s, {phase::progressing, phase::paused}))
    return refuse("promote", s, "Progressing or Paused");
  const phase from = s.phase;
  const auto count = route.steps.size();
  std::string message;
  if (s.gate != rollout_gate::none) {
    // A person decides over the confirm-rollout / pre-rollout gate: the canary starts its steps.
    const std::string which(to_string(s.gate));
    s.gate = rollout_gate::none;
    set_progressing(s);
    record(s, now, from, cause::api, "Rollout promoted over the " + which + " gate");
    advance(s, route, now);
    return {};
  }
  if (awaiting_promotion(s, route)) {
    // A person decides over the confirm-promotion gate.
    const std::string version = s.canary;
    complete(s, route);
    record(s, now, from, cause::api,
           "Rollout promoted over the confirm-promotion gate: " + version + " is now stable");
    return {};
  }
  if (const auto* st = current_step(s, route); st == nullptr) {
    message = "Rollout promoted";
  } else if (s.phase == phase::paused && st->what == step_kind::set_weight) {
    // Only a manual hold on a step that is not a pause: ending the hold is the whole promotion.
    message = "Rollout promoted: pause ended";
  } else {
    // Paused at a pause step: that step completes. Progressing: the current step is skipped.
    message = "Rollout promoted: step " + step_number(s.step, count) +
              (s.phase == phase::paused ? " completed (" : " skipped (") + step_string(*st) + ")";
    ++s.step;
  }
  set_progressing(s);
  record(s, now, from, cause::api, std::move(message));
  advance(s, route, now);
  return {};
}

op_result promote_full(route_state& s, const config::route_config& route, wall_time now) {
  if (!is(s, {phase::progressing, phase::paused, phase::degraded}))
    return refuse("promote full", s, "Progressing, Paused or Degraded");
  const phase from = s.phase;
  const std::string version = s.canary;
  complete(s, route);
  record(s, now, from, cause::api, "Rollout fully promoted: " + version + " is now stable");
  return {};
}

op_result abort(route_state& s, const config::route_config& /*route*/, wall_time now, cause why,
                const std::string& message) {
  if (!is(s, {phase::progressing, phase::paused}))
    return refuse("abort", s, "Progressing or Paused");
  const phase from = s.phase;
  // The canary keeps its name: it is still the desired version (Argo: "spec.template still
  // represents the new version"), so the rollout stays Degraded until retried or replaced.
  s.aborted = true;
  s.weight = 0;
  s.mirror.reset();
  s.gate = rollout_gate::none;
  s.step = 0;
  s.phase = phase::degraded;
  s.message =
      message.empty() ? "RolloutAborted: Rollout aborted update to " + s.canary : message;
  clear_pause(s);
  record(s, now, from, why, s.message);
  return {};
}

op_result retry(route_state& s, const config::route_config& route, wall_time now) {
  if (s.phase != phase::degraded || !s.aborted)
    return refuse("retry", s, "Degraded after an abort");
  const phase from = s.phase;
  s.aborted = false;
  s.step = 0;
  s.mirror.reset();  // the steps run again from the start and set it again if they say so
  set_progressing(s);
  record(s, now, from, cause::api, "Retrying Rollout after abort");
  begin_steps(s, route, now);
  return {};
}

op_result pause(route_state& s, const config::route_config& route, wall_time now) {
  const bool by_step = s.phase == phase::paused &&
                       (s.paused_by == paused_by::step || s.paused_by == paused_by::analysis ||
                        s.paused_by == paused_by::webhook);
  if (s.phase != phase::progressing && !by_step)
    return refuse("pause", s, "Progressing or Paused by step, analysis or webhook");
  const phase from = s.phase;
  std::string message = "Rollout is paused by user";
  if (s.pause_deadline) {
    // The timed pause's clock stops; resume restarts it with what was left.
    s.pause_remaining = time_left(*s.pause_deadline, now);
    s.pause_deadline.reset();
    message += " (" + format_duration(*s.pause_remaining) + " left on the pause at step " +
               step_number(s.step, route.steps.size()) + ")";
  }
  s.phase = phase::paused;
  s.paused_by = paused_by::user;
  s.message = user_pause_message;
  record(s, now, from, cause::api, std::move(message));
  return {};
}

op_result resume(route_state& s, const config::route_config& route, wall_time now) {
  if (s.phase == phase::paused && s.paused_by == paused_by::step)
    return refuse("resume", s, "Paused by user or analysis; promote ends a step's pause");
  if (s.phase != phase::paused ||
      (s.paused_by != paused_by::user && s.paused_by != paused_by::analysis))
    return refuse("resume", s, "Paused by user or analysis");
  const phase from = s.phase;
  if (s.gate != rollout_gate::none) {
    // Paused by the user while pending: back behind the gate, whose webhooks decide again.
    s.paused_by = paused_by::webhook;
    s.message = gate_message(s.gate);
    record(s, now, from, cause::api,
           "Rollout is resumed (waiting for the " + std::string(to_string(s.gate)) +
               " webhooks)");
    return {};
  }
  const auto* st = current_step(s, route);
  if (st != nullptr && st->what == step_kind::analysis && s.pause_remaining) {
    // The inline step's clock runs again with what was left.
    const auto left = *s.pause_remaining;
    set_progressing(s);
    s.pause_deadline = now + left;
    s.message = "running analysis step " + step_number(s.step, route.steps.size());
    record(s, now, from, cause::api,
           "Rollout is resumed (the analysis at step " + step_number(s.step, route.steps.size()) +
               " continues: " + format_duration(left) + " left)");
    return {};
  }
  const bool pause_step = st != nullptr && st->what == step_kind::pause;
  if (pause_step && st->duration && s.pause_remaining) {
    s.pause_deadline = now + *s.pause_remaining;
    s.pause_remaining.reset();
    s.paused_by = paused_by::step;
    s.message = step_pause_message;
    record(s, now, from, cause::api,
           "Rollout is resumed (the pause at step " + step_number(s.step, route.steps.size()) +
               " continues: " + format_duration(time_left(*s.pause_deadline, now)) + " left)");
    return {};
  }
  if (pause_step && !st->duration) {
    clear_pause(s);
    s.paused_by = paused_by::step;
    s.message = step_pause_message;
    record(s, now, from, cause::api,
           "Rollout is resumed (step " + step_number(s.step, route.steps.size()) +
               " waits for promote)");
    return {};
  }
  // Nothing else holds the rollout: run the steps (a timed pause step not yet started starts).
  set_progressing(s);
  record(s, now, from, cause::api, "Rollout is resumed");
  advance(s, route, now);
  return {};
}

op_result set_weight(route_state& s, const config::route_config& /*route*/, int weight,
                     wall_time now) {
  if (!is(s, {phase::progressing, phase::paused}))
    return refuse("set weight", s, "Progressing or Paused");
  if (weight == s.weight) return {};
  const int previous = std::exchange(s.weight, weight);
  record(
      s, now, s.phase, cause::api,
      "Traffic weight updated from " + std::to_string(previous) + " to " + std::to_string(weight));
  return {};
}

op_result undo(route_state& s, const config::route_config& route, wall_time now) {
  if (s.in_progress())
    return op_result::refused("cannot undo: a rollout to " + s.canary +
                              " exists (undo is valid when no rollout is in progress)");
  if (s.previous_stable.empty())
    return op_result::refused(
        "cannot undo: no previous stable to return to (undo is valid "
        "after a rollout completed)");
  const phase from = s.phase;
  const std::string replaced = s.stable;
  std::swap(s.stable, s.previous_stable);
  s.step = route.steps.size();
  s.weight = 0;
  s.phase = phase::healthy;
  s.message.clear();
  s.aborted = false;
  clear_pause(s);
  record(s, now, from, cause::api,
         "Rollout undone: " + s.stable + " is stable again, replacing " + replaced);
  return {};
}

bool hold(route_state& s, const config::route_config& /*route*/, enum paused_by who, cause why,
          const std::string& message, wall_time now) {
  const bool by_step = s.phase == phase::paused && s.paused_by == paused_by::step;
  if (s.phase != phase::progressing && !by_step) return false;
  const phase from = s.phase;
  if (s.pause_deadline) {
    s.pause_remaining = time_left(*s.pause_deadline, now);
    s.pause_deadline.reset();
  }
  s.phase = phase::paused;
  s.paused_by = who;
  s.message = message;
  record(s, now, from, why, message);
  return true;
}

void complete_analysis_step(route_state& s, const config::route_config& route, cause why,
                            const std::string& message, wall_time now) {
  const phase from = s.phase;
  ++s.step;
  set_progressing(s);
  record(s, now, from, why, message);
  advance(s, route, now);
}

bool at_analysis_step(const route_state& s, const config::route_config& route) {
  const auto* st = current_step(s, route);
  return st != nullptr && st->what == step_kind::analysis;
}

bool tick_due(const route_state& s, wall_time now) {
  return s.phase == phase::paused && s.paused_by == paused_by::step && s.pause_deadline &&
         *s.pause_deadline <= now;
}

bool tick(route_state& s, const config::route_config& route, wall_time now) {
  if (!tick_due(s, now)) return false;
  const phase from = s.phase;
  std::string message = "Rollout pause ended";
  if (const auto* st = current_step(s, route); st != nullptr && st->what == step_kind::pause) {
    message = "Rollout step " + step_number(s.step, route.steps.size()) + " completed (" +
              step_string(*st) + ")";
    ++s.step;
  }
  set_progressing(s);
  record(s, now, from, cause::timer, std::move(message));
  advance(s, route, now);
  return true;
}

std::optional<std::chrono::milliseconds> pause_remaining(const route_state& s, wall_time now) {
  if (s.pause_deadline) return time_left(*s.pause_deadline, now);
  return s.pause_remaining;
}

}  // namespace canary::rollout
