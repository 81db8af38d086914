// Where the engine keeps the rollout states durably: load the whole map once at start, save the
// whole map after every change and say whether it is durable. The file store (state_file.h) is
// the production one; memory_state_store serves tests. Control thread only; the engine shares
// ownership of its store for its whole life.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "rollout/state.h"

namespace canary::rollout {

struct loaded_state {
  bool exists = false;  // false: nothing stored yet (a first start)
  std::string error;    // non-empty: something is stored but cannot be used
  state_map states;     // meaningful when exists and error is empty
  // The store itself could not be asked; `states` come from its local cache (a fleet replica
  // started while etcd is down): serve them, write nothing until the store is back.
  bool from_cache = false;
};

// A save that lost its compare-and-swap: another replica changed the stored states first.
// The engine re-reads (load()), re-applies its operation and saves again.
inline constexpr std::string_view save_conflict_prefix = "conflict: ";
// The store could not be asked at all (nothing changed).
inline constexpr std::string_view store_unavailable_prefix = "state store unavailable: ";

class state_store {
 public:
  virtual ~state_store() = default;

  virtual loaded_state load() = 0;
  // Returns "" once `states` is durable (a crash after it returns keeps them); else the reason,
  // naming where it tried to write, and what was stored before is still there, whole.
  virtual std::string save(const state_map& states) = 0;
  // For messages, e.g. "state file /var/lib/canary/state.json".
  virtual std::string describe() const = 0;

  // A store shared by a fleet keeps, per replica, each route's `upstream` in that replica's own
  // config at its last load: a load acts on a route only when this replica's file changed it
  // (docs/fleet.md, config drift). nullopt: not shared (every load acts, as seen_upstream says).
  virtual std::optional<std::map<std::string, std::string>> load_replica_seen() {
    return std::nullopt;
  }
  virtual void save_replica_seen(const std::map<std::string, std::string>&) {}
};

// Keeps the last saved map in memory; can be told to fail, to test what depends on durability.
class memory_state_store final : public state_store {
 public:
  memory_state_store() = default;
  explicit memory_state_store(state_map initial) : stored_(std::move(initial)) {}

  loaded_state load() override;
  std::string save(const state_map& states) override;
  std::string describe() const override { return "memory state store"; }

  // Every save answers `reason` until cleared with std::nullopt.
  void fail_saves(std::optional<std::string> reason) { failure_ = std::move(reason); }
  // As another replica's write would: the next `times` saves find `newer` stored instead of
  // what they expected and answer "conflict: ..." (nothing written), once each; load() then
  // returns `newer` (modified by `each_time` before every conflict, when given).
  void conflict_next(int times, state_map newer,
                     std::function<void(state_map&)> each_time = nullptr) {
    conflicts_ = times;
    stored_ = std::move(newer);
    conflict_change_ = std::move(each_time);
  }
  int conflicts_left() const { return conflicts_; }
  // load() says its states come from a local cache (the store itself unreachable).
  void serve_from_cache(bool cached) { from_cache_ = cached; }
  // Makes load() report a stored but unusable state.
  void fail_load(std::string reason) { load_error_ = std::move(reason); }

  const std::optional<state_map>& stored() const { return stored_; }

  // Plays a fleet store: replica_seen is what load_replica_seen answers and saves update.
  std::optional<std::map<std::string, std::string>> replica_seen;
  std::optional<std::map<std::string, std::string>> load_replica_seen() override {
    return replica_seen;
  }
  void save_replica_seen(const std::map<std::string, std::string>& seen) override {
    replica_seen = seen;
  }
  std::uint64_t saves() const { return saves_; }  // successful ones

 private:
  std::optional<state_map> stored_;
  std::optional<std::string> failure_;
  std::string load_error_;
  std::uint64_t saves_ = 0;
  int conflicts_ = 0;
  bool from_cache_ = false;
  std::function<void(state_map&)> conflict_change_;
};

}  // namespace canary::rollout
