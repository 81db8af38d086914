// The rollout engine's webhooks (docs/analysis.md#webhooks): `event` notifications of every
// transition, `post-rollout` after completion or abort, `rollback` asked every interval while
// the canary is live (2xx aborts), `confirm-rollout` and `pre-rollout` gates before any traffic,
// `confirm-promotion` before completion. Calls go through analysis::webhook_dispatcher, which never
// blocks; answers come back on the control thread. See engine.h; control thread only.
#include <spdlog/spdlog.h>

#include "rollout/engine.h"

namespace canary::rollout {

namespace {

using hook_kind = config::webhook_config::kind;

analysis::webhook_payload payload_of(const std::string& route, const route_state& s,
                                     std::string event, std::string message) {
  analysis::webhook_payload p;
  p.route = route;
  p.phase = std::string(to_string(s.phase));
  p.stable = s.stable;
  p.canary = s.canary;
  p.step = s.step;
  p.weight = s.weight;
  p.event = std::move(event);
  p.message = std::move(message);
  return p;
}

// The events `after` recorded since `before` (histories only grow at the back, bounded).
std::vector<const event*> new_events(const route_state& before, const route_state& after) {
  std::vector<const event*> out;
  std::size_t first = 0;
  if (!before.events.empty()) {
    bool found = false;
    for (std::size_t i = after.events.size(); i-- > 0;)
      if (after.events[i] == before.events.back()) {
        first = i + 1;
        found = true;
        break;
      }
    if (!found) first = 0;  // the history was replaced: every event is new
  }
  for (std::size_t i = first; i < after.events.size(); ++i) out.push_back(&after.events[i]);
  return out;
}

bool live(const route_state& s) {
  return s.canary_active() && (s.phase == phase::progressing || s.phase == phase::paused);
}

}  // namespace

void engine::webhooks_after_commit(const std::string& route, const route_state& before,
                                   const route_state& after) {
  if (hooks_ == nullptr) return;
  const auto* r = cfg_->find_route(route);
  if (r == nullptr || r->webhooks.empty()) return;
  const auto events = new_events(before, after);
  // Completion (the canary became stable) or an abort ends the rollout: post-rollout once.
  const bool completed = !before.canary.empty() && after.canary.empty() &&
                         after.stable == before.canary;
  const bool aborted = !before.aborted && after.aborted;
  for (const auto& hook : r->webhooks) {
    if (hook.type == hook_kind::event) {
      for (const auto* e : events) {
        // The event's own transition, not the state after the whole change.
        auto p = payload_of(route, after, std::string(to_string(e->cause)), e->message);
        p.phase = std::string(to_string(e->to));
        p.step = e->step;
        p.weight = e->weight;
        hooks_->notify(route, hook, p);
      }
    } else if (hook.type == hook_kind::post_rollout && (completed || aborted)) {
      const std::string name = hook.name;
      hooks_->call(route, hook,
                   payload_of(route, after, completed ? "completed" : "aborted", after.message),
                   [route, name](analysis::webhook_result res) {
                     // Failures are only logged: the rollout is over either way.
                     if (!res.ok)
                       spdlog::warn("route \"{}\": post-rollout webhook {} failed: {}", route,
                                    name, res.detail);
                   });
    }
  }
}

void engine::webhook_tick(wall_time now) {
  if (hooks_ == nullptr) return;
  for (const auto& r : cfg_->routes) {
    if (has_confirm_promotion(r)) confirm_tick(r, now);
    if (has_webhook(r, hook_kind::confirm_rollout) || has_webhook(r, hook_kind::pre_rollout))
      gate_tick(r, now);
    bool any = false;
    for (const auto& hook : r.webhooks) any = any || hook.type == hook_kind::rollback;
    if (!any) continue;
    const auto& st = states_.at(r.name);
    if (!live(st)) {
      rollback_due_.erase(r.name);
      continue;
    }
    const auto every = r.analysis ? r.analysis->interval : std::chrono::milliseconds(10000);
    auto [due, fresh] = rollback_due_.try_emplace(r.name, now + every);
    if (fresh || now < due->second || rollback_in_flight_[r.name] > 0) continue;
    due->second = now + every;
    const std::weak_ptr<int> alive = alive_;
    for (const auto& hook : r.webhooks) {
      if (hook.type != hook_kind::rollback) continue;
      ++rollback_in_flight_[r.name];
      hooks_->call(r.name, hook, payload_of(r.name, st, "rollback", st.message),
                   [this, alive, route = r.name, canary = st.canary,
                    name = hook.name](analysis::webhook_result res) {
                     if (alive.expired()) return;
                     rollback_answered(route, canary, name, res);
                   });
    }
  }
}

void engine::confirm_tick(const config::route_config& r, wall_time now) {
  const auto& st = states_.at(r.name);
  if (!awaiting_promotion(st, r)) {
    confirm_due_.erase(r.name);
    return;
  }
  // Asked at once when the hold starts, then every interval (10 s without analysis).
  const auto every = r.analysis ? r.analysis->interval : std::chrono::milliseconds(10000);
  auto [due, fresh] = confirm_due_.try_emplace(r.name, now);
  if (now < due->second || confirm_in_flight_.contains(r.name)) return;
  due->second = now + every;
  (void)fresh;
  struct pending {
    std::vector<std::pair<std::string, analysis::webhook_result>> answers;
    std::size_t left = 0;
  };
  auto p = std::make_shared<pending>();
  for (const auto& hook : r.webhooks)
    if (hook.type == hook_kind::confirm_promotion) ++p->left;
  confirm_in_flight_.insert(r.name);
  const std::weak_ptr<int> alive = alive_;
  for (const auto& hook : r.webhooks) {
    if (hook.type != hook_kind::confirm_promotion) continue;
    hooks_->call(r.name, hook, payload_of(r.name, st, "confirm-promotion", st.message),
                 [this, alive, p, route = r.name, canary = st.canary,
                  name = hook.name](analysis::webhook_result res) {
                   if (alive.expired()) return;
                   p->answers.emplace_back(name, std::move(res));
                   if (--p->left == 0) confirm_answered(route, canary, p->answers);
                 });
  }
}

void engine::confirm_answered(
    const std::string& route, const std::string& canary,
    const std::vector<std::pair<std::string, analysis::webhook_result>>& all) {
  confirm_in_flight_.erase(route);
  if (writes_held_) return;
  const auto* r = cfg_->find_route(route);
  auto it = states_.find(route);
  if (r == nullptr || it == states_.end() || !awaiting_promotion(it->second, *r) ||
      it->second.canary != canary)
    return;
  const auto now = clock_();
  const route_state& before = it->second;
  route_state st = before;
  std::string refused;
  for (const auto& [name, res] : all)
    if (!res.ok && refused.empty())
      refused = "waiting for confirm-promotion webhook " + name + ": " + res.detail;
  if (refused.empty()) {
    confirm_promotion(st, *r,
                      "Rollout completed: " + canary +
                          " is now stable (confirm-promotion webhooks answered 2xx)",
                      now);
    analysis_after_change(before, st, *r, now);
  } else if (st.message != refused) {
    st.message = refused;
    st.updated_at = now;
  } else {
    return;
  }
  state_map changed;
  changed.emplace(route, std::move(st));
  if (auto res = commit_routes(std::move(changed)); res.status != 200)
    spdlog::error("route \"{}\": the confirm-promotion answer could not be saved: {}", route,
                  res.error);
}

void engine::gate_tick(const config::route_config& r, wall_time now) {
  const auto& st = states_.at(r.name);
  if (!gated(st)) {
    gate_due_.erase(r.name);
    return;
  }
  if (gate_in_flight_.contains(r.name)) return;
  const hook_kind type =
      st.gate == rollout_gate::confirm_rollout ? hook_kind::confirm_rollout : hook_kind::pre_rollout;
  if (type == hook_kind::confirm_rollout) {
    // Asked at once when the gate starts, then every interval (10 s without analysis).
    const auto every = r.analysis ? r.analysis->interval : std::chrono::milliseconds(10000);
    auto due = gate_due_.try_emplace(r.name, now).first;
    if (now < due->second) return;
    due->second = now + every;
  } else {
    // pre-rollout is called once: its answer always moves the state (steps or abort). Only an
    // answer that could not be saved, or a restart meanwhile, calls it again.
    gate_due_.erase(r.name);
  }
  struct pending {
    std::vector<std::pair<std::string, analysis::webhook_result>> answers;
    std::size_t left = 0;
  };
  auto p = std::make_shared<pending>();
  for (const auto& hook : r.webhooks)
    if (hook.type == type) ++p->left;
  if (p->left == 0) return;
  gate_in_flight_.insert(r.name);
  const std::weak_ptr<int> alive = alive_;
  const std::string event(to_string(st.gate));
  for (const auto& hook : r.webhooks) {
    if (hook.type != type) continue;
    hooks_->call(r.name, hook, payload_of(r.name, st, event, st.message),
                 [this, alive, p, route = r.name, canary = st.canary, gate = st.gate,
                  name = hook.name](analysis::webhook_result res) {
                   if (alive.expired()) return;
                   p->answers.emplace_back(name, std::move(res));
                   if (--p->left == 0) gate_answered(route, canary, gate, p->answers);
                 });
  }
}

void engine::gate_answered(
    const std::string& route, const std::string& canary, rollout_gate gate,
    const std::vector<std::pair<std::string, analysis::webhook_result>>& all) {
  gate_in_flight_.erase(route);
  if (writes_held_) return;
  const auto* r = cfg_->find_route(route);
  auto it = states_.find(route);
  // A promote, abort, pause, new canary or reload meanwhile: this round is moot.
  if (r == nullptr || it == states_.end() || !gated(it->second) || it->second.gate != gate ||
      it->second.canary != canary)
    return;
  const auto now = clock_();
  const route_state& before = it->second;
  route_state st = before;
  if (gate == rollout_gate::confirm_rollout) {
    std::string refused;
    for (const auto& [name, res] : all)
      if (!res.ok && refused.empty())
        refused = "waiting for confirm-rollout webhook " + name + ": " + res.detail;
    if (refused.empty()) {
      open_gate(st, *r, "confirm-rollout webhooks answered 2xx", now);
    } else if (st.message != refused) {
      st.message = refused;
      st.updated_at = now;
    } else {
      return;
    }
  } else {
    // Judged like a metric named after the webhook (kind webhook): 2xx Successful, anything
    // else Failed; one call, so it fails the gate only past the analysis' failure_limit.
    const int limit = r->analysis ? r->analysis->failure_limit : 0;
    const bool dry_run = r->analysis && r->analysis->dry_run;
    std::string failed;
    for (const auto& [name, res] : all) {
      if (res.ok) continue;
      const std::string why = "PreRolloutWebhook: " + name + " failed: " + res.detail;
      if (limit >= 1) {
        spdlog::warn("route \"{}\": {} (within failure_limit {})", route, why, limit);
      } else if (dry_run) {
        spdlog::warn("route \"{}\": {}; dry run: not aborted", route, why);
      } else if (failed.empty()) {
        failed = why;
      }
    }
    if (!failed.empty()) {
      spdlog::warn("route \"{}\": {}", route, failed);
      if (!rollout::abort(st, *r, now, cause::webhook, failed).ok) return;
    } else {
      open_gate(st, *r, "pre-rollout webhooks passed", now);
    }
  }
  analysis_after_change(before, st, *r, now);
  state_map changed;
  changed.emplace(route, std::move(st));
  if (auto res = commit_routes(std::move(changed)); res.status != 200)
    spdlog::error("route \"{}\": the {} answer could not be saved: {}", route, to_string(gate),
                  res.error);
}

void engine::rollback_answered(const std::string& route, const std::string& canary,
                               const std::string& hook, const analysis::webhook_result& result) {
  if (auto it = rollback_in_flight_.find(route); it != rollback_in_flight_.end() && it->second > 0)
    --it->second;
  if (!result.ok || writes_held_) return;  // anything but 2xx: carry on
  const auto* r = cfg_->find_route(route);
  auto it = states_.find(route);
  if (r == nullptr || it == states_.end() || !live(it->second) || it->second.canary != canary)
    return;
  const std::string message =
      "RollbackWebhook: " + hook + " asked for a rollback (HTTP " +
      std::to_string(result.status) + ")";
  if (r->analysis && r->analysis->dry_run) {
    spdlog::warn("route \"{}\": {}; dry run: not aborted", route, message);
    return;
  }
  spdlog::warn("route \"{}\": {}", route, message);
  const auto now = clock_();
  const route_state& before = it->second;
  route_state st = before;
  if (!rollout::abort(st, *r, now, cause::webhook, message).ok) return;
  analysis_after_change(before, st, *r, now);
  state_map changed;
  changed.emplace(route, std::move(st));
  if (auto res = commit_routes(std::move(changed)); res.status != 200)
    spdlog::error("route \"{}\": the rollback could not be saved: {}", route, res.error);
}

}  // namespace canary::rollout
