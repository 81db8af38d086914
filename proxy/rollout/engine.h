// The rollout engine: owns the config in force and every route's rollout state; applies API
// operations, config reloads and pause timers through the pure state machine (state.h) to a copy,
// saves the copy through its state_store, and only once that is durable commits it, publishes a
// new snapshot to the workers and tells watchers. Control thread only; clock and store injected.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/load.h"
#include "core/snapshot.h"
#include "metrics/registry.h"
#include "rollout/state.h"
#include "rollout/state_store.h"
#include "upstream/endpoint.h"

namespace canary::rollout {

enum class operation { promote, promote_full, abort, retry, pause, resume, set_weight,
                       set_upstream, undo };

// What the API answers: 200 with the route's status, or an error status with a message
// (503 when the change could not be made durable: nothing changed).
struct api_result {
  int status = 200;
  std::string error;
  std::vector<std::string> errors;  // 422: one line per config error
};

struct route_status {
  const config::route_config* route;
  const route_state* state;
  int actual_weight;
  std::optional<std::chrono::milliseconds> pause_remaining;
};

// The states a start with `cfg` begins from: what the store loaded (`where` names it in
// messages), checked against `cfg`, plus a fresh state for every route it lacks. Pure: the engine
// and `canary-proxy --check` run the same checks. Throws std::runtime_error with a
// message naming the file and the problem when the state cannot be used.
state_map restore_states(const config::proxy_config& cfg, const loaded_state& loaded,
                         const std::string& where, wall_time now);

class engine {
 public:
  using publish_fn = std::function<void(std::shared_ptr<const core::snapshot>)>;
  using clock_fn = std::function<wall_time()>;

  // Restores the stored state (or starts fresh without one) for `cfg`. Throws std::runtime_error
  // with a message naming the store and the problem when the state cannot be used, or when the
  // state as the config changes it cannot be saved.
  engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock, publish_fn publisher,
         std::shared_ptr<state_store> store);
  // The same with a file_state_store on cfg->state_file.
  engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock, publish_fn publisher);

  const std::shared_ptr<const core::snapshot>& snapshot() const { return snapshot_; }
  const config::proxy_config& config() const { return *cfg_; }
  metrics::series_registry& series() { return series_; }

  std::vector<route_status> statuses() const;
  std::optional<route_status> status(const std::string& route) const;

  api_result apply(const std::string& route, operation op, int weight = 0,
                   const std::string& upstream = "");
  // Re-reads the config file; on errors the old config and state keep serving (422 for a config
  // refused, 500 when it cannot be compiled, 503 when the state cannot be saved).
  api_result reload();
  // Applies a loaded config (reload() and tests). `state_file` changes only on restart.
  api_result reload(const config::proxy_config& next);
  // Timed pauses: call periodically. A pause that ended while the state cannot be saved holds
  // (nothing changes) and is retried on the next call.
  void tick();

  // Watchers get the names of routes that changed.
  std::uint64_t subscribe(std::function<void(const std::string&)> fn);
  void unsubscribe(std::uint64_t id);

  std::uint64_t reloads_ok() const { return reloads_ok_; }
  std::uint64_t reloads_failed() const { return reloads_failed_; }
  std::uint64_t state_write_errors() const { return state_write_errors_; }

 private:
  route_status status_of(const config::route_config& route) const;
  // Saves the states with `changed` (whole route states by name) in place of the ones in force,
  // then keeps them, publishes and tells watchers. Otherwise nothing changed and the result says
  // why: 500 (the snapshot cannot be built) or 503 (not saved). No save when nothing differs.
  api_result commit_routes(state_map changed);
  // The same for a reload: `next` replaces every state and `compiled` the config in force.
  api_result commit_config(state_map next, std::shared_ptr<const core::compiled_config> compiled,
                           const std::vector<std::string>& routes);
  // Makes `snap` the one in force, publishes it and tells watchers about `routes`.
  void install(std::shared_ptr<const core::snapshot> snap, const std::vector<std::string>& routes);
  // The store's save, with a failure logged and counted.
  std::string save(const state_map& states);

  std::shared_ptr<const config::proxy_config> cfg_;
  std::shared_ptr<const core::compiled_config> compiled_;
  clock_fn clock_;
  publish_fn publish_;
  std::shared_ptr<state_store> store_;
  state_map states_;
  upstream::endpoint_registry endpoints_;
  metrics::series_registry series_;
  std::shared_ptr<const core::snapshot> snapshot_;
  std::uint64_t generation_ = 0;
  std::map<std::uint64_t, std::function<void(const std::string&)>> watchers_;
  std::uint64_t next_watcher_ = 1;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
  std::uint64_t state_write_errors_ = 0;
};

}  // namespace canary::rollout
