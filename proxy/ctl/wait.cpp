// The `wait` decision; see wait.h.
#include "ctl/wait.h"

namespace canary::ctl {

wait_decision decide_wait(wait_target target, std::string_view phase) {
  if (phase == to_string(target)) return wait_decision::reached;
  if (phase == "Degraded") return wait_decision::degraded;
  return wait_decision::keep_waiting;
}

}  // namespace canary::ctl
