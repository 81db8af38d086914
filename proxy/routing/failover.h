// Which side (stable or canary) serves a request once the router decided: the decided one, or
// the other when the decided one has no endpoint to offer, but never into a canary that is
// absent or aborted. Pure: whether a side has an endpoint up is a caller-given predicate (the
// session asks the snapshot's endpoints at `now`); any thread.
#pragma once

#include <optional>

#include "routing/router.h"

namespace canary::routing {

variant other_side(variant v) noexcept;

// A request may leave `from` for the other side: always from the canary (stable is always
// there), from stable only while a canary is active (present and not aborted).
bool may_fail_over(variant from, bool canary_active) noexcept;

// The side to try when `failed` has nothing to offer (all endpoints down, or every connect
// refused): the other one if allowed and `is_up(other)`; nullopt when there is none (503).
template <class IsUp>
std::optional<variant> failover_side(variant failed, bool canary_active, IsUp&& is_up) {
  if (!may_fail_over(failed, canary_active)) return std::nullopt;
  const variant other = other_side(failed);
  if (!is_up(other)) return std::nullopt;
  return other;
}

struct side_choice {
  variant side = variant::stable;
  reason why = reason::no_canary;
  bool available = true;  // false: neither allowed side has an endpoint up (503)
};

// The router's decision if its side has an endpoint up, else the failover side (reason
// failover), else the decided side marked unavailable. `is_up(v)` is asked lazily: the other
// side only when the decided one is down.
template <class IsUp>
side_choice choose_side(variant decided, reason why, bool canary_active, IsUp&& is_up) {
  if (is_up(decided)) return {decided, why, true};
  if (auto other = failover_side(decided, canary_active, is_up))
    return {*other, reason::failover, true};
  return {decided, why, false};
}

}  // namespace canary::routing
