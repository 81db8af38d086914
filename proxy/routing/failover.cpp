// Failover rules; see failover.h (choose_side and failover_side are templates over the "is up"
// predicate: the session passes endpoint state, tests pass fixed answers).
#include "routing/failover.h"

namespace canary::routing {

variant other_side(variant v) noexcept {
  return v == variant::canary ? variant::stable : variant::canary;
}

bool may_fail_over(variant from, bool canary_active) noexcept {
  return from == variant::canary || canary_active;
}

}  // namespace canary::routing
