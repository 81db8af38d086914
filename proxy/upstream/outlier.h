// Passive health (Envoy-style outlier detection): consecutive connect failures or 5xx eject an
// endpoint for base_ejection x (times ejected), never more than max_ejected_percent of a side.
// Called by workers on the request path: relaxed atomics on the endpoint, no lock.
#pragma once

#include <chrono>
#include <memory>
#include <span>

#include "config/config.h"
#include "upstream/endpoint.h"

namespace canary::upstream {

// Longest ejection, however often an endpoint was ejected (Envoy's max_ejection_time default).
inline constexpr std::chrono::milliseconds max_ejection = std::chrono::minutes(5);

struct ejection {
  bool ejected = false;
  std::chrono::milliseconds duration{0};
};

// A failure on `ep`, one of `side`. Ejects it when its consecutive failures reach the threshold
// and the side keeps enough endpoints.
ejection record_failure(endpoint& ep, std::span<const std::shared_ptr<endpoint>> side,
                        const config::outlier_config& cfg, steady::time_point now);

// A success: the failure run ends. An endpoint that stayed back for a whole base_ejection
// after its last ejection starts over at one base_ejection next time.
inline void record_success(endpoint& ep, const config::outlier_config& cfg,
                           steady::time_point now) {
  if (ep.consecutive_failures.load(std::memory_order_relaxed) != 0)
    ep.consecutive_failures.store(0, std::memory_order_relaxed);
  if (ep.ejections.load(std::memory_order_relaxed) != 0 &&
      now.time_since_epoch().count() - ep.down_until_ns.load(std::memory_order_relaxed) >=
          std::chrono::nanoseconds(cfg.base_ejection).count())
    ep.ejections.store(0, std::memory_order_relaxed);
}

}  // namespace canary::upstream
