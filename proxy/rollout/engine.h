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
#include <string_view>
#include <set>
#include <tuple>
#include <vector>

#include "analysis/http_client.h"
#include "analysis/providers.h"
#include "analysis/run.h"
#include "analysis/webhooks.h"
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

// Starts, ends and restarts the route's analysis run as the rollout moves (docs/analysis.md): a
// run lives while the canary is active (background), or from the first inline analysis step;
// a new canary or a retry starts a new run; completion marks it Successful, abort ends it.
// Pure; the engine calls it on every changed state before saving it.
void sync_analysis_run(route_state& s, const config::route_config& route, wall_time now);

// The production provider: prometheus and web metrics asked through `client` (which must
// outlive the engine's use of it), answers parsed by analysis/providers.h.
std::function<void(const config::metric_config&, const analysis::template_vars&,
                   std::function<void(analysis::provider_result)>)>
http_provider(analysis::http_client& client);

// The states a start with `cfg` begins from: what the store loaded (`where` names it in
// messages), checked against `cfg`, plus a fresh state for every route it lacks. Pure: the engine
// and `canary-proxy --check` run the same checks. Throws std::runtime_error with a
// message naming the file and the problem when the state cannot be used.
// `replica_seen` (a fleet store's, see state_store.h): a route whose upstream this replica's
// config has not changed since its own last load keeps the shared state's (config drift).
state_map restore_states(const config::proxy_config& cfg, const loaded_state& loaded,
                         const std::string& where, wall_time now,
                         const std::map<std::string, std::string>* replica_seen = nullptr);

// The route as a load should apply it: in a fleet, a route whose `upstream` this replica's file
// did not change since its own last load (`replica_seen`) but which differs from the shared
// state's seen_upstream is left as the shared state has it — an old file never cancels or
// restarts the rollout another replica's newer file started. Logs "config drift" then.
config::route_config effective_route(const config::route_config& route, const route_state& shared,
                                     const std::map<std::string, std::string>* replica_seen,
                                     std::string_view where);

class engine {
 public:
  using publish_fn = std::function<void(std::shared_ptr<const core::snapshot>)>;
  using clock_fn = std::function<wall_time()>;
  // The route's cumulative analysis counts since the process started, summed over workers.
  using sampler_fn = std::function<analysis::interval_sample(const std::string& route)>;
  // Asks one provider metric; `done` runs later on the control thread (never inside the call)
  // exactly once, a timeout included.
  using provider_fn = std::function<void(const config::metric_config& metric,
                                         const analysis::template_vars& vars,
                                         std::function<void(analysis::provider_result)> done)>;

  // Restores the stored state (or starts fresh without one) for `cfg`. Throws std::runtime_error
  // with a message naming the store and the problem when the state cannot be used, or when the
  // state as the config changes it cannot be saved.
  engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock, publish_fn publisher,
         std::shared_ptr<state_store> store);
  // The same with a file_state_store on cfg->state_file.
  engine(std::shared_ptr<const config::proxy_config> cfg, clock_fn clock, publish_fn publisher);

  // Without a sampler no measurement is taken (runs still start and end with the rollout).
  void set_analysis_inputs(sampler_fn sampler, provider_fn provider);

  // Webhooks (every type: events, gates, judged and rollback calls) go through `hooks` (nullptr: none are called). It
  // must outlive the engine's ticks and commits.
  void set_webhooks(analysis::webhook_dispatcher* hooks) { hooks_ = hooks; }
  const analysis::webhook_dispatcher* webhooks() const { return hooks_; }

  // canary_proxy_analysis_measurements_total: (route, metric, phase) -> count since start.
  using measurement_key = std::tuple<std::string, std::string, std::string>;
  const std::map<measurement_key, std::uint64_t>& measurement_counts() const {
    return measurement_counts_;
  }

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
  // Timed pauses, analysis intervals and gates: call periodically (every 200 ms or less). A pause that ended while the state cannot be saved holds
  // (nothing changes) and is retried on the next call.
  void tick();

  // Watchers get the names of routes that changed.
  std::uint64_t subscribe(std::function<void(const std::string&)> fn);
  void unsubscribe(std::uint64_t id);

  // While another process takes over (binary upgrade) this one must write nothing: provider,
  // webhook and gate answers that arrive are dropped (the successor measures again).
  void hold_writes(bool hold) { writes_held_ = hold; }
  bool writes_held() const { return writes_held_; }

  // ---- fleet (docs/fleet.md): replicas sharing one store (etcd).
  // Takes the states another replica committed (the store's watch) as they are: rebuilds and
  // publishes the snapshot and tells watchers, without saving. Routes the config lacks are
  // ignored (config drift); a route the store lacks keeps its state here; a stored state naming
  // an upstream this config lacks is not taken (logged). Returns the routes that changed.
  std::vector<std::string> adopt_remote(const state_map& remote);
  // Only the leader runs timed pauses, analysis measurements and webhooks (tick(), events);
  // every replica applies API operations. A replica alone is its own leader (the default).
  void set_leader(bool leader);
  bool leader() const { return leader_; }
  // While the store is known unreachable (`reason`, e.g. "state store unavailable: ..."),
  // changes answer 503 with it at once and timers wait; nullopt: reachable again.
  void set_store_down(std::optional<std::string> reason);
  const std::optional<std::string>& store_down() const { return store_down_; }
  // Stale (disconnected longer than stale_canary_after): routing sends canary-bound traffic
  // (weight and header overrides) to stable; the states themselves are unchanged.
  void set_stale(bool stale);
  bool stale() const { return stale_; }
  const state_map& states() const { return states_; }
  // Routes whose upstream in this replica's config differs from the shared state's (another
  // replica loaded a newer, or older, file).
  std::vector<std::string> config_drift() const;
  // How many times an operation re-reads and re-applies after losing a compare-and-swap.
  static constexpr int max_conflict_retries = 5;

  std::uint64_t reloads_ok() const { return reloads_ok_; }
  std::uint64_t reloads_failed() const { return reloads_failed_; }
  std::uint64_t state_write_errors() const { return state_write_errors_; }

 private:
  route_status status_of(const config::route_config& route) const;
  api_result apply_once(const std::string& route, operation op, int weight,
                        const std::string& upstream);
  // After a save lost its compare-and-swap: takes what the store holds now. False when the
  // store could not be read.
  bool refresh_after_conflict();
  // The snapshot of `states` under `compiled` (stale: canaries held back).
  std::shared_ptr<const core::snapshot> build(
      const std::shared_ptr<const core::compiled_config>& compiled, const state_map& states);
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

  // engine_analysis.cpp. What the control thread keeps per route beside the persisted run.
  struct analysis_clock {
    std::string run_id;  // the run these belong to; another id resets them
    wall_time next_due;
    analysis::interval_sample baseline;  // cumulative counts at the last stratum boundary
    bool measuring = false;  // provider answers outstanding
  };
  // After an operation or reload changed `st` (`before` is the state in force): run lifecycle,
  // a stratum at a weight change, the inconclusive streak reset on resume/promote.
  void analysis_after_change(const route_state& before, route_state& st,
                             const config::route_config& route, wall_time now);
  // tick(): measurements due, inline steps and timed pauses gated on the analysis.
  void analysis_tick(wall_time now);
  void start_measurement(const config::route_config& route, const route_state& st,
                         analysis_clock& clk, wall_time now);
  void finish_measurement(const std::string& route, const std::string& run_id,
                          const analysis::interval_sample& delta,
                          const std::map<std::string, analysis::provider_result>& answers);
  // Moves `st` when an inline step or a timed pause may end; true when it changed.
  bool analysis_gates(route_state& st, const config::route_config& route, wall_time now);
  analysis::interval_sample take_delta(const std::string& route, analysis_clock& clk);

  // engine_webhooks.cpp: after a committed change of `route` from `before` to `after`: event
  // notifications, post-rollout calls.
  void webhooks_after_commit(const std::string& route, const route_state& before,
                             const route_state& after);
  // rollback webhooks, asked every analysis interval (10 s without analysis) while live.
  void webhook_tick(wall_time now);
  void confirm_tick(const config::route_config& route, wall_time now);
  void confirm_answered(const std::string& route, const std::string& canary,
                        const std::vector<std::pair<std::string, analysis::webhook_result>>& all);
  void rollback_answered(const std::string& route, const std::string& canary,
                         const std::string& hook, const analysis::webhook_result& result);
  // confirm-rollout (asked every interval) and pre-rollout (called once) while a gate holds the
  // canary (state.h rollout_gate); all answers of one round are judged together.
  void gate_tick(const config::route_config& route, wall_time now);
  void gate_answered(const std::string& route, const std::string& canary, rollout_gate gate,
                     const std::vector<std::pair<std::string, analysis::webhook_result>>& all);

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
  bool writes_held_ = false;
  bool leader_ = true;
  int reload_attempt_ = 0;  // reload(next) re-run after a conflict
  bool stale_ = false;
  std::optional<std::string> store_down_;
  std::optional<std::map<std::string, std::string>> replica_seen_;  // fleet stores only
  // After a load committed: this replica's upstreams become its "seen at last load".
  void remember_loaded_upstreams();
  sampler_fn sampler_;
  provider_fn provider_;
  std::map<std::string, analysis_clock> analysis_clocks_;  // by route
  std::map<measurement_key, std::uint64_t> measurement_counts_;
  analysis::webhook_dispatcher* hooks_ = nullptr;
  std::map<std::string, wall_time> rollback_due_;  // by route
  std::map<std::string, int> rollback_in_flight_;  // by route: calls not yet answered
  std::map<std::string, wall_time> confirm_due_;   // by route: next confirm-promotion ask
  std::set<std::string> confirm_in_flight_;        // by route
  std::map<std::string, wall_time> gate_due_;      // by route: next confirm-rollout ask
  std::set<std::string> gate_in_flight_;           // by route
  // Provider answers may arrive after the engine is gone: they check this first.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace canary::rollout
