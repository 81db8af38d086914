// The in-memory state store; see state_store.h.
#include "rollout/state_store.h"

namespace canary::rollout {

loaded_state memory_state_store::load() {
  loaded_state out;
  out.exists = stored_.has_value() || !load_error_.empty();
  out.error = load_error_;
  out.from_cache = from_cache_;
  if (stored_ && load_error_.empty()) out.states = *stored_;
  return out;
}

std::string memory_state_store::save(const state_map& states) {
  if (failure_) return *failure_;
  if (conflicts_ > 0) {
    --conflicts_;
    if (conflict_change_ && stored_) conflict_change_(*stored_);
    return std::string(save_conflict_prefix) + "another replica changed the rollout state first";
  }
  stored_ = states;
  ++saves_;
  return "";
}

}  // namespace canary::rollout
