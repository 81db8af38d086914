// The rollout engine: owns the config in force and every route's rollout state; applies API
// operations, config reloads and pause timers through the pure state machine (state.h), then
// persists the state file, publishes a new snapshot to the workers and tells watchers.
// Control thread only; the clock is injected.
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
#include "rollout/state_file.h"
#include "upstream/endpoint.h"

namespace canary::rollout {

enum class operation { promote, promote_full, abort, retry, pause, resume, set_weight,
                       set_upstream };

// What the API answers: 200 with the route's status, or an error status with a message.
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

// The states a start with `cfg` begins from: the state file's, checked against `cfg`, plus a
// fresh state for every route the file lacks. Reads the file and writes nothing, so
// `canary-proxy --check` runs the same checks as a start. Throws std::runtime_error with a
// message naming the file and the problem when the state cannot be used.
state_map restore_states(const config::proxy_config& cfg, wall_time now);

class engine {
 public:
  using publish_fn = std::function<void(std::shared_ptr<const core::snapshot>)>;
  using clock_fn = std::function<wall_time()>;

  // Restores the state file (or starts fresh without one) for `cfg`. Throws std::runtime_error
  // with a message naming the file and the problem when the state cannot be used.
  engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock, publish_fn publisher);

  const std::shared_ptr<const core::snapshot>& snapshot() const { return snapshot_; }
  const config::proxy_config& config() const { return *cfg_; }
  metrics::series_registry& series() { return series_; }

  std::vector<route_status> statuses() const;
  std::optional<route_status> status(const std::string& route) const;

  api_result apply(const std::string& route, operation op, int weight = 0,
                   const std::string& upstream = "");
  // Re-reads the config file; on errors the old config keeps serving (422).
  api_result reload();
  // Applies a loaded config (reload() and tests).
  api_result reload(const config::proxy_config& next);
  // Timed pauses: call periodically.
  void tick();

  // Watchers get the names of routes that changed.
  std::uint64_t subscribe(std::function<void(const std::string&)> fn);
  void unsubscribe(std::uint64_t id);

  std::uint64_t reloads_ok() const { return reloads_ok_; }
  std::uint64_t reloads_failed() const { return reloads_failed_; }

 private:
  route_status status_of(const config::route_config& route) const;
  void changed(const std::vector<std::string>& routes);
  void publish();
  void persist();

  std::shared_ptr<const config::proxy_config> cfg_;
  clock_fn clock_;
  publish_fn publish_;
  state_map states_;
  upstream::endpoint_registry endpoints_;
  metrics::series_registry series_;
  std::shared_ptr<const core::snapshot> snapshot_;
  std::uint64_t generation_ = 0;
  std::map<std::uint64_t, std::function<void(const std::string&)>> watchers_;
  std::uint64_t next_watcher_ = 1;
  std::uint64_t reloads_ok_ = 0;
  std::uint64_t reloads_failed_ = 0;
};

}  // namespace canary::rollout
