// Round-robin endpoint order; see select.h.
#include "upstream/select.h"

namespace canary::upstream {

const std::shared_ptr<endpoint>* round_robin_walk::next(steady::time_point now) noexcept {
  const std::size_t n = endpoints_.size();
  while (visited_ < n) {
    const auto& ep = endpoints_[(start_ + visited_++) % n];
    if (ep->up(now)) return &ep;
  }
  return nullptr;
}

}  // namespace canary::upstream
