// Rollout engine; see engine.h. Every change goes: state machine on a copy -> snapshot built ->
// save -> commit -> publish -> notify; a failure before the commit leaves everything as it was.
#include "rollout/engine.h"

#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "core/snapshot_builder.h"
#include "rollout/state_file.h"

namespace canary::rollout {

namespace {

// The upstream names a state refers to that `cfg` lacks.
std::vector<std::string> missing_upstreams(const route_state& s, const config::proxy_config& cfg) {
  std::vector<std::string> missing;
  if (!cfg.find_upstream(s.stable)) missing.push_back(s.stable);
  if (!s.canary.empty() && !cfg.find_upstream(s.canary)) missing.push_back(s.canary);
  return missing;
}

// The previous stable is kept only while it could be undone to: an upstream the config no longer
// defines is dropped (it is not in use, so removing it is no reason to refuse the config).
void drop_unconfigured_previous(route_state& s, const config::proxy_config& cfg,
                                const std::string& route, std::string_view where) {
  if (s.previous_stable.empty() || cfg.find_upstream(s.previous_stable)) return;
  spdlog::warn("{}: route \"{}\": previous stable \"{}\" is no longer configured; undo to it "
               "is no longer possible",
               where, route, s.previous_stable);
  s.previous_stable.clear();
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

config::route_config effective_route(const config::route_config& route, const route_state& shared,
                                     const std::map<std::string, std::string>* replica_seen,
                                     std::string_view where) {
  if (!replica_seen || route.upstream == shared.seen_upstream) return route;
  const auto it = replica_seen->find(route.name);
  // Never loaded by this replica: its file is new to it, so it acts.
  if (it == replica_seen->end() || it->second != route.upstream) return route;
  spdlog::warn("{}: config drift: route \"{}\": this replica's config says upstream \"{}\" "
               "(unchanged since its last load) but the fleet's rollout is for \"{}\"; "
               "leaving the rollout alone (load the newer config here)",
               where, route.name, route.upstream, shared.seen_upstream);
  config::route_config kept = route;
  kept.upstream = shared.seen_upstream;
  return kept;
}

state_map restore_states(const config::proxy_config& cfg, const loaded_state& loaded,
                         const std::string& where, wall_time now,
                         const std::map<std::string, std::string>* replica_seen) {
  if (loaded.exists && loaded.error.starts_with(store_unavailable_prefix))
    throw std::runtime_error(where + ": " + loaded.error);
  if (loaded.exists && !loaded.error.empty())
    throw std::runtime_error(where + ": " + loaded.error +
                             " (refusing to start: a guessed state could shift traffic; move "
                             "the file away to start fresh)");
  std::set<std::string_view> routes;  // by name: the file may name thousands
  for (const auto& r : cfg.routes) routes.insert(r.name);
  state_map states;
  for (const auto& [name, st] : loaded.states) {
    if (!routes.contains(name)) {
      spdlog::warn("{}: route \"{}\" is not in the config; its state is dropped", where, name);
      continue;
    }
    if (auto missing = missing_upstreams(st, cfg); !missing.empty())
      throw std::runtime_error(where + ": route \"" + name + "\" uses upstream " +
                               join(missing) +
                               " which the config does not define (refusing to start)");
    auto& kept = states.emplace(name, st).first->second;
    drop_unconfigured_previous(kept, cfg, name, where);
  }
  for (const auto& r : cfg.routes) {
    auto it = states.find(r.name);
    if (it == states.end()) {
      states.emplace(r.name, initial_state(r, now));
    } else {
      auto& st = it->second;
      if (st.analysis.run && r.analysis) {
        // The config may have changed while we were down: the stored fingerprints decide which
        // metrics keep their counts.
        std::vector<std::string> warnings;
        analysis::reconcile(*st.analysis.run, *r.analysis, *r.analysis, warnings);
        for (const auto& w : warnings) spdlog::warn("{}: route \"{}\": {}", where, r.name, w);
      }
      const auto eff = effective_route(r, st, replica_seen, where);
      on_config_load(st, eff, now);
      // A pause that ended while we were down continues now, unless the analysis gates it.
      if (!st.analysis.active || !r.analysis || r.analysis->dry_run) rollout::tick(st, eff, now);
      sync_analysis_run(st, eff, now);
    }
  }
  return states;
}

engine::engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock,
               publish_fn publisher)
    : engine(cfg, std::move(clock), std::move(publisher),
             std::make_shared<file_state_store>(cfg->state_file)) {}

engine::engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock,
               publish_fn publisher, std::shared_ptr<state_store> store)
    : cfg_(std::move(cfg)),
      clock_(std::move(clock)),
      publish_(std::move(publisher)),
      store_(std::move(store)) {
  compiled_ = core::compile_config(cfg_, endpoints_, series_);
  // Replicas starting together may race to write the first states: the loser re-reads.
  replica_seen_ = store_->load_replica_seen();
  for (int attempt = 0;; ++attempt) {
    const auto loaded = store_->load();
    state_map next = restore_states(*cfg_, loaded, store_->describe(), clock_(),
                                    replica_seen_ ? &*replica_seen_ : nullptr);
    snapshot_ = core::build_snapshot(compiled_, next, series_, generation_ + 1);
    if (loaded.from_cache) {
      // The shared store is down: serve what it last held; the watch brings it in line later.
      spdlog::warn("{}: unreachable; serving the cached rollout state until it is back",
                   store_->describe());
    } else if (!loaded.exists || next != loaded.states) {
      // What the config changed in the stored state (or a first state) must be durable before
      // it routes: refuse to start rather than serve a state a restart would not find.
      if (auto err = save(next); !err.empty()) {
        if (err.starts_with(save_conflict_prefix) && attempt < max_conflict_retries) continue;
        throw std::runtime_error(err + " (refusing to start: the rollout state must be durable)");
      }
    }
    states_ = std::move(next);
    if (!loaded.from_cache) remember_loaded_upstreams();
    break;
  }
  ++generation_;
  if (publish_) publish_(snapshot_);
}

std::vector<route_status> engine::statuses() const {
  // Not through status(name): its lookup by name is linear, so all routes would be quadratic.
  std::vector<route_status> out;
  out.reserve(cfg_->routes.size());
  for (const auto& r : cfg_->routes) out.push_back(status_of(r));
  return out;
}

std::optional<route_status> engine::status(const std::string& route) const {
  const auto* r = cfg_->find_route(route);
  if (!r) return std::nullopt;
  return status_of(*r);
}

route_status engine::status_of(const config::route_config& route) const {
  const auto* r = &route;
  const auto& st = states_.at(route.name);
  int actual = 0;
  if (st.canary_active() && !stale_) {
    for (const auto& u : snapshot_->upstreams)
      if (u.name == st.canary && u.any_up(std::chrono::steady_clock::now())) actual = st.weight;
  }
  return route_status{r, &st, actual, pause_remaining(st, clock_())};
}

api_result engine::apply(const std::string& route, operation op, int weight,
                         const std::string& upstream) {
  // Another replica committed first: the operation runs again on what it wrote, so it is
  // applied once, to the newest state, or refused (409) if that state no longer allows it.
  for (int attempt = 0;; ++attempt) {
    std::optional<route_state> attempted;
    auto res = apply_once(route, op, weight, upstream, &attempted);
    if (res.status == 200 || !res.error.starts_with(save_conflict_prefix)) {
      if (res.status == 503 || res.status == 500) res.error += "; nothing changed";
      return res;
    }
    if (attempt == max_conflict_retries) {
      res.status = 409;
      res.error += " (still after " + std::to_string(max_conflict_retries + 1) +
                   " attempts); nothing changed";
      return res;
    }
    if (!refresh_after_conflict())
      return {503, std::string(store_unavailable_prefix) +
                       "cannot re-read the state after a conflict; nothing changed", {}};
    // A write sent again after no answer conflicts with itself when the first one landed:
    // what is stored is exactly what this call wrote (its timestamps included). Done, once.
    if (attempted && states_.contains(route) && states_.at(route) == *attempted) return {};
  }
}

bool engine::refresh_after_conflict() {
  auto loaded = store_->load();
  if (!loaded.error.empty() || loaded.from_cache) {
    spdlog::error("{}: re-reading after a conflict: {}", store_->describe(),
                  loaded.error.empty() ? "unreachable" : loaded.error);
    return false;
  }
  adopt_remote(loaded.states);
  return true;
}

std::vector<std::string> engine::adopt_remote(const state_map& remote) {
  state_map changed;
  for (const auto& r : cfg_->routes) {
    auto it = remote.find(r.name);
    if (it == remote.end() || it->second == states_.at(r.name)) continue;
    if (auto missing = missing_upstreams(it->second, *cfg_); !missing.empty()) {
      spdlog::warn("config drift: route \"{}\": the shared state uses upstream {} which this "
                   "replica's config does not define; keeping the local state",
                   r.name, join(missing));
      continue;
    }
    changed.emplace(r.name, it->second);
  }
  std::vector<std::string> names;
  if (changed.empty()) return names;
  for (auto& [name, st] : changed) {
    names.push_back(name);
    std::swap(states_.at(name), st);  // `changed` now holds the states before
  }
  std::shared_ptr<const core::snapshot> snap;
  try {
    snap = build(compiled_, states_);
  } catch (const std::exception& e) {
    for (auto& [name, st] : changed) std::swap(states_.at(name), st);
    spdlog::error("cannot route the shared rollout state: {}; keeping the local one", e.what());
    return {};
  }
  install(std::move(snap), names);
  // The replica that committed it may be a follower: the leader sends the events.
  if (leader_)
    for (const auto& [name, old] : changed) webhooks_after_commit(name, old, states_.at(name));
  return names;
}

void engine::set_leader(bool leader) {
  if (leader == leader_) return;
  leader_ = leader;
  // A new leader measures from now: its counters' baselines from an earlier term are stale.
  analysis_clocks_.clear();
  spdlog::info("{} the rollout leader", leader ? "this replica is now" : "this replica is not");
}

void engine::remember_loaded_upstreams() {
  if (!replica_seen_) return;
  std::map<std::string, std::string> seen;
  for (const auto& r : cfg_->routes) seen.emplace(r.name, r.upstream);
  if (seen == *replica_seen_) return;
  replica_seen_ = std::move(seen);
  store_->save_replica_seen(*replica_seen_);
}

std::vector<std::string> engine::config_drift() const {
  std::vector<std::string> out;
  for (const auto& r : cfg_->routes)
    if (auto it = states_.find(r.name); it != states_.end() && it->second.seen_upstream != r.upstream)
      out.push_back(r.name);
  return out;
}

void engine::set_store_down(std::optional<std::string> reason) { store_down_ = std::move(reason); }

void engine::set_stale(bool stale) {
  if (stale == stale_) return;
  stale_ = stale;
  if (stale)
    spdlog::error("STATE STORE DISCONNECTED TOO LONG: routing every canary's traffic (weights "
                  "and header overrides) to stable until it is back");
  else
    spdlog::warn("state store back: canaries route as their rollout state says again");
  std::vector<std::string> names;
  for (const auto& r : cfg_->routes) names.push_back(r.name);
  install(build(compiled_, states_), names);
}

std::shared_ptr<const core::snapshot> engine::build(
    const std::shared_ptr<const core::compiled_config>& compiled, const state_map& states) {
  if (!stale_) return core::build_snapshot(compiled, states, series_, generation_ + 1);
  state_map held = states;
  for (auto& [name, st] : held)
    if (st.in_progress()) st.aborted = true;  // no weight, override or mirror for it
  return core::build_snapshot(compiled, held, series_, generation_ + 1);
}

api_result engine::apply_once(const std::string& route, operation op, int weight,
                              const std::string& upstream, std::optional<route_state>* attempted) {
  const auto* r = cfg_->find_route(route);
  if (!r) return {404, "no rollout named \"" + route + "\"", {}};
  // The operation runs on a copy: the state in force changes only once the copy is durable.
  route_state st = states_.at(route);
  const auto& before = states_.at(route);
  const auto now = clock_();
  op_result res;
  switch (op) {
    case operation::promote:
      res = rollout::promote(st, *r, now);
      break;
    case operation::promote_full:
      res = rollout::promote_full(st, *r, now);
      break;
    case operation::abort:
      res = rollout::abort(st, *r, now);
      break;
    case operation::retry:
      res = rollout::retry(st, *r, now);
      break;
    case operation::pause:
      res = rollout::pause(st, *r, now);
      break;
    case operation::resume:
      res = rollout::resume(st, *r, now);
      break;
    case operation::set_weight:
      if (weight < 0 || weight > r->canary.weight_total)
        return {400,
                "weight " + std::to_string(weight) + " is outside 0.." +
                    std::to_string(r->canary.weight_total) + " (weight_total)",
                {}};
      res = rollout::set_weight(st, *r, weight, now);
      break;
    case operation::set_upstream:
      if (!cfg_->find_upstream(upstream)) {
        std::vector<std::string> names;
        for (const auto& u : cfg_->upstreams) names.push_back(u.name);
        return {400, "unknown upstream \"" + upstream + "\" (defined: " + join(names) + ")", {}};
      }
      set_desired(st, *r, upstream, cause::api, now);
      break;
    case operation::undo:
      if (!st.previous_stable.empty() && !cfg_->find_upstream(st.previous_stable))
        return {409, "cannot undo: previous stable \"" + st.previous_stable +
                         "\" is no longer configured", {}};
      res = rollout::undo(st, *r, now);
      break;
  }
  if (!res.ok) return {409, res.error, {}};
  analysis_after_change(before, st, *r, now);
  if (attempted) *attempted = st;
  state_map changed;
  changed.emplace(route, std::move(st));
  return commit_routes(std::move(changed));
}

api_result engine::reload() {
  auto loaded = config::load_file(cfg_->file);
  if (!loaded.config) {
    ++reloads_failed_;
    api_result out{422, "config " + cfg_->file + " has errors; the old config keeps serving", {}};
    for (const auto& e : loaded.errors) out.errors.push_back(e.to_string());
    for (const auto& e : out.errors) spdlog::error("reload: {}", e);
    return out;
  }
  return reload(*loaded.config);
}

api_result engine::reload(const config::proxy_config& next) {
  api_result refused{422, "config " + next.file + " refused; the old config keeps serving", {}};
  for (std::size_t i = 0; i < next.routes.size(); ++i) {
    const auto& r = next.routes[i];
    auto it = states_.find(r.name);
    if (it == states_.end()) continue;
    for (const auto& name : missing_upstreams(it->second, next)) {
      config::config_error e{next.file, r.pos.line, r.pos.col,
                             "routes[" + std::to_string(i) + "]",
                             "upstream \"" + name + "\" is removed but the rollout of route \"" +
                                 r.name + "\" still uses it; finish or cancel the rollout first"};
      refused.errors.push_back(e.to_string());
    }
  }
  if (!refused.errors.empty()) {
    ++reloads_failed_;
    for (const auto& e : refused.errors) spdlog::error("reload: {}", e);
    return refused;
  }
  const auto tls_listen = [](const config::proxy_config& c) {
    return c.tls ? c.tls->listen.text : std::string();
  };
  if (next.listen.text != cfg_->listen.text || next.admin.listen.text != cfg_->admin.listen.text ||
      tls_listen(next) != tls_listen(*cfg_) || next.workers != cfg_->workers)
    spdlog::warn("reload: listen addresses and workers change only on restart");

  const auto& ns = next.state_store;
  const auto& os = cfg_->state_store;
  if (ns.type != os.type || ns.endpoints != os.endpoints || ns.prefix != os.prefix ||
      ns.lease_ttl != os.lease_ttl || ns.dial_timeout != os.dial_timeout ||
      ns.replica_id != os.replica_id || ns.stale_canary_after != os.stale_canary_after)
    spdlog::warn("reload: state_store changes only on restart");
  if (next.state_file != cfg_->state_file)
    spdlog::warn("reload: state_file changes only on restart; the state stays in {}",
                 store_->describe());

  // Everything for the new config is built before anything changes, so that any failure leaves
  // the old config and state fully in force.
  const auto now = clock_();
  auto cfg = std::make_shared<const config::proxy_config>(next);
  state_map kept;
  std::vector<std::string> names;
  std::shared_ptr<const core::compiled_config> compiled;
  try {
    for (const auto& r : cfg->routes) {
      auto it = states_.find(r.name);
      route_state st = it == states_.end() ? initial_state(r, now) : it->second;
      if (it != states_.end()) {
        const auto* old_route = cfg_->find_route(r.name);
        if (st.analysis.run && old_route && old_route->analysis && r.analysis) {
          std::vector<std::string> warnings;
          analysis::reconcile(*st.analysis.run, *old_route->analysis, *r.analysis, warnings);
          ++st.analysis.revision;
          for (const auto& w : warnings) spdlog::warn("reload: route \"{}\": {}", r.name, w);
        }
        const auto eff = effective_route(r, it->second, replica_seen_ ? &*replica_seen_ : nullptr,
                                         "reload");
        on_config_load(st, eff, now);
        analysis_after_change(it->second, st, eff, now);
      }
      drop_unconfigured_previous(st, *cfg, r.name, "reload");
      kept.emplace(r.name, std::move(st));
      names.push_back(r.name);
    }
    compiled = core::compile_config(cfg, endpoints_, series_);
  } catch (const std::exception& e) {
    ++reloads_failed_;
    spdlog::error("reload: config {} cannot be applied: {}", next.file, e.what());
    return {500, "config " + next.file + " cannot be applied: " + e.what() +
                     "; the old config keeps serving", {}};
  }
  std::vector<std::string> removed;
  for (const auto& [name, st] : states_)
    if (!kept.contains(name)) removed.push_back(name);
  if (auto res = commit_config(std::move(kept), std::move(compiled), names); res.status != 200) {
    if (res.error.starts_with(save_conflict_prefix) && reload_attempt_ < max_conflict_retries &&
        refresh_after_conflict()) {
      ++reload_attempt_;
      auto again = reload(next);
      reload_attempt_ = 0;
      return again;
    }
    reload_attempt_ = 0;
    ++reloads_failed_;
    spdlog::error("reload: config {} not applied: {}", next.file, res.error);
    res.error = "config " + next.file + " not applied: " + res.error +
                "; the old config keeps serving";
    return res;
  }
  for (const auto& name : removed) spdlog::info("reload: route \"{}\" removed", name);
  remember_loaded_upstreams();
  ++reloads_ok_;
  spdlog::info("config {} reloaded", cfg_->file);
  return {};
}

void engine::tick() {
  // Followers leave timers, measurements and webhooks to the leader; without the store nothing
  // may move (a pause that ends now ends once it is back: its deadline is in the state).
  if (!leader_ || store_down_) return;
  const auto now = clock_();
  state_map changed;
  for (const auto& r : cfg_->routes) {
    const auto& current = states_.at(r.name);
    if (!tick_due(current, now)) continue;  // copies only what a timer moves
    // A running analysis gates the pause's end (analysis_tick).
    if (r.analysis && current.analysis.active && !r.analysis->dry_run) continue;
    route_state st = current;
    rollout::tick(st, r, now);
    analysis_after_change(current, st, r, now);
    changed.emplace(r.name, std::move(st));
  }
  // Failed: the pause holds; the next tick, finding it still due, tries again.
  if (auto res = changed.empty() ? api_result{} : commit_routes(changed); res.status != 200) {
    if (res.error.starts_with(save_conflict_prefix)) refresh_after_conflict();
    std::vector<std::string> names;
    for (const auto& [name, st] : changed) names.push_back(name);
    spdlog::warn("rollout timer: {} holds until the state can be saved", join(names));
  }
  analysis_tick(now);
  webhook_tick(now);
}

std::uint64_t engine::subscribe(std::function<void(const std::string&)> fn) {
  watchers_.emplace(next_watcher_, std::move(fn));
  return next_watcher_++;
}

void engine::unsubscribe(std::uint64_t id) { watchers_.erase(id); }

std::string engine::save(const state_map& states) {
  if (store_down_) return *store_down_;
  auto err = store_->save(states);
  if (!err.empty()) {
    ++state_write_errors_;
    spdlog::error("{}", err);
  }
  return err;
}

api_result engine::commit_routes(state_map changed) {
  std::vector<std::string> names;
  bool differs = false;
  for (const auto& [name, st] : changed) {
    names.push_back(name);
    differs = differs || st != states_.at(name);
  }
  if (!differs) return {};
  // Swapped in place rather than copying every route's state: the store and the snapshot see
  // the whole new map, and `changed` holds the old states until the swap is kept or undone.
  auto swap_in = [&] {
    for (auto& [name, st] : changed) std::swap(states_.at(name), st);
  };
  swap_in();
  std::shared_ptr<const core::snapshot> snap;
  try {
    snap = build(compiled_, states_);
  } catch (const std::exception& e) {
    swap_in();
    return {500, std::string("cannot build the routing snapshot: ") + e.what(), {}};
  }
  if (auto err = save(states_); !err.empty()) {
    swap_in();
    return {503, err, {}};
  }
  install(std::move(snap), names);
  // `changed` now holds the states before the change. In a fleet the leader sends the events,
  // for its own changes and (adopt_remote) the ones others commit.
  if (leader_)
    for (const auto& [name, old] : changed) webhooks_after_commit(name, old, states_.at(name));
  return {};
}

api_result engine::commit_config(state_map next,
                                 std::shared_ptr<const core::compiled_config> compiled,
                                 const std::vector<std::string>& routes) {
  std::shared_ptr<const core::snapshot> snap;
  try {
    snap = build(compiled, next);
  } catch (const std::exception& e) {
    return {500, std::string("cannot build the routing snapshot: ") + e.what(), {}};
  }
  if (next != states_)
    if (auto err = save(next); !err.empty()) return {503, err, {}};
  state_map before = std::exchange(states_, std::move(next));
  cfg_ = compiled->config;
  compiled_ = std::move(compiled);
  install(std::move(snap), routes);
  for (const auto& name : routes)
    if (auto it = before.find(name); leader_ && it != before.end())
      webhooks_after_commit(name, it->second, states_.at(name));
  return {};
}

void engine::install(std::shared_ptr<const core::snapshot> snap,
                     const std::vector<std::string>& routes) {
  ++generation_;
  snapshot_ = std::move(snap);
  if (publish_) publish_(snapshot_);
  // A watcher may unsubscribe while being told; iterate over a copy of the ids.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, fn] : watchers_) ids.push_back(id);
  for (const auto& name : routes)
    for (auto id : ids)
      if (auto it = watchers_.find(id); it != watchers_.end()) it->second(name);
}

}  // namespace canary::rollout
