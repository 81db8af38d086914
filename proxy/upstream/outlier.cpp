// Outlier ejection; see outlier.h.
#include "upstream/outlier.h"

#include <algorithm>

namespace canary::upstream {

ejection record_failure(endpoint& ep, std::span<const std::shared_ptr<endpoint>> side,
                        const config::outlier_config& cfg, steady::time_point now) {
  const auto failures = ep.consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
  if (failures < static_cast<std::uint32_t>(cfg.consecutive_failures)) return {};
  if (ep.held_off(now)) return {};  // already out
  std::size_t out = 0;
  for (const auto& e : side)
    if (e.get() != &ep && e->held_off(now)) ++out;
  // Ejecting this one must keep the ejected share within max_ejected_percent.
  if ((out + 1) * 100 > side.size() * static_cast<std::size_t>(cfg.max_ejected_percent))
    return {};
  const auto times = ep.ejections.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto duration =
      std::min(cfg.base_ejection * static_cast<long>(times), std::max(max_ejection, cfg.base_ejection));
  ep.consecutive_failures.store(0, std::memory_order_relaxed);
  ep.mark_down(now, duration);
  return {true, duration};
}

}  // namespace canary::upstream
