// Where the engine keeps the rollout states durably: load the whole map once at start, save the
// whole map after every change and say whether it is durable. The file store (state_file.h) is
// the production one; memory_state_store serves tests. Control thread only; the engine shares
// ownership of its store for its whole life.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "rollout/state.h"

namespace canary::rollout {

struct loaded_state {
  bool exists = false;  // false: nothing stored yet (a first start)
  std::string error;    // non-empty: something is stored but cannot be used
  state_map states;     // meaningful when exists and error is empty
};

class state_store {
 public:
  virtual ~state_store() = default;

  virtual loaded_state load() = 0;
  // Returns "" once `states` is durable (a crash after it returns keeps them); else the reason,
  // naming where it tried to write, and what was stored before is still there, whole.
  virtual std::string save(const state_map& states) = 0;
  // For messages, e.g. "state file /var/lib/canary/state.json".
  virtual std::string describe() const = 0;
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
  // Makes load() report a stored but unusable state.
  void fail_load(std::string reason) { load_error_ = std::move(reason); }

  const std::optional<state_map>& stored() const { return stored_; }
  std::uint64_t saves() const { return saves_; }  // successful ones

 private:
  std::optional<state_map> stored_;
  std::optional<std::string> failure_;
  std::string load_error_;
  std::uint64_t saves_ = 0;
};

}  // namespace canary::rollout
