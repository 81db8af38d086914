// Rollout engine; see engine.h. Every change goes: state machine -> persist -> publish -> notify.
#include "rollout/engine.h"

#include <set>
#include <stdexcept>
#include <string_view>

#include <spdlog/spdlog.h>

#include "core/snapshot_builder.h"

namespace canary::rollout {

namespace {

// The upstream names a state refers to that `cfg` lacks.
std::vector<std::string> missing_upstreams(const route_state& s, const config::proxy_config& cfg) {
  std::vector<std::string> missing;
  if (!cfg.find_upstream(s.stable)) missing.push_back(s.stable);
  if (!s.canary.empty() && !cfg.find_upstream(s.canary)) missing.push_back(s.canary);
  return missing;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

state_map restore_states(const config::proxy_config& cfg, wall_time now) {
  state_map states;
  auto read = read_state_file(cfg.state_file);
  if (read.exists) {
    if (!read.state.ok)
      throw std::runtime_error("state file " + cfg.state_file + ": " + read.state.error +
                               " (refusing to start: a guessed state could shift traffic; move "
                               "the file away to start fresh)");
    std::set<std::string_view> routes;  // by name: the file may name thousands
    for (const auto& r : cfg.routes) routes.insert(r.name);
    for (auto& [name, st] : read.state.states) {
      if (!routes.contains(name)) {
        spdlog::warn("state file {}: route \"{}\" is not in the config; its state is dropped",
                     cfg.state_file, name);
        continue;
      }
      if (auto missing = missing_upstreams(st, cfg); !missing.empty())
        throw std::runtime_error("state file " + cfg.state_file + ": route \"" + name +
                                 "\" uses upstream " + join(missing) +
                                 " which the config does not define (refusing to start)");
      states.emplace(name, std::move(st));
    }
  }
  for (const auto& r : cfg.routes) {
    auto it = states.find(r.name);
    if (it == states.end()) {
      states.emplace(r.name, initial_state(r, now));
    } else {
      on_config_load(it->second, r, now);
      rollout::tick(it->second, r, now);  // a pause that ended while we were down continues now
    }
  }
  return states;
}

engine::engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock,
               publish_fn publisher)
    : cfg_(std::move(cfg)), clock_(std::move(clock)), publish_(std::move(publisher)) {
  states_ = restore_states(*cfg_, clock_());
  publish();
  persist();
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
  if (st.canary_active()) {
    for (const auto& u : snapshot_->upstreams)
      if (u.name == st.canary && u.any_up(std::chrono::steady_clock::now())) actual = st.weight;
  }
  return route_status{r, &st, actual, pause_remaining(st, clock_())};
}

api_result engine::apply(const std::string& route, operation op, int weight,
                         const std::string& upstream) {
  const auto* r = cfg_->find_route(route);
  if (!r) return {404, "no rollout named \"" + route + "\"", {}};
  auto& st = states_.at(route);
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
  }
  if (!res.ok) return {409, res.error, {}};
  changed({route});
  return {};
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
  if (next.listen.text != cfg_->listen.text || next.admin.listen.text != cfg_->admin.listen.text ||
      next.workers != cfg_->workers)
    spdlog::warn("reload: listen addresses and workers change only on restart");

  const auto now = clock_();
  auto cfg = std::make_shared<const config::proxy_config>(next);
  state_map kept;
  std::vector<std::string> names;
  for (const auto& r : cfg->routes) {
    auto it = states_.find(r.name);
    route_state st = it == states_.end() ? initial_state(r, now) : std::move(it->second);
    if (it != states_.end()) on_config_load(st, r, now);
    kept.emplace(r.name, std::move(st));
    names.push_back(r.name);
  }
  for (const auto& [name, st] : states_)
    if (!kept.contains(name)) spdlog::info("reload: route \"{}\" removed", name);
  states_ = std::move(kept);
  cfg_ = std::move(cfg);
  ++reloads_ok_;
  spdlog::info("config {} reloaded", cfg_->file);
  changed(names);
  return {};
}

void engine::tick() {
  const auto now = clock_();
  std::vector<std::string> names;
  for (const auto& r : cfg_->routes)
    if (rollout::tick(states_.at(r.name), r, now)) names.push_back(r.name);
  if (!names.empty()) changed(names);
}

std::uint64_t engine::subscribe(std::function<void(const std::string&)> fn) {
  watchers_.emplace(next_watcher_, std::move(fn));
  return next_watcher_++;
}

void engine::unsubscribe(std::uint64_t id) { watchers_.erase(id); }

void engine::changed(const std::vector<std::string>& routes) {
  persist();
  publish();
  // A watcher may unsubscribe while being told; iterate over a copy of the ids.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, fn] : watchers_) ids.push_back(id);
  for (const auto& name : routes)
    for (auto id : ids)
      if (auto it = watchers_.find(id); it != watchers_.end()) it->second(name);
}

void engine::publish() {
  snapshot_ = core::build_snapshot(cfg_, states_, endpoints_, series_, ++generation_);
  if (publish_) publish_(snapshot_);
}

void engine::persist() {
  if (auto err = write_state_file(cfg_->state_file, serialize_state(states_)); !err.empty())
    spdlog::error("{} (the rollout state in memory is ahead of the file)", err);
}

}  // namespace canary::rollout
