#include "http/accounting.h"

#include <spdlog/spdlog.h>

#include "upstream/outlier.h"

namespace canary::http {

void note_upstream_failure(core::worker& worker, const core::upstream_view& u,
                           upstream::endpoint& ep, std::chrono::steady_clock::time_point now) {
  const auto e = upstream::record_failure(ep, u.endpoints, *u.outlier, now);
  if (e.ejected) {
    worker.cells().upstream(u.metric_id).ejections.add();
    spdlog::warn("outlier: upstream {} endpoint {} ejected for {} ms after {} failures in a row",
                 u.name, ep.text, e.duration.count(), u.outlier->consecutive_failures);
  }
}

}  // namespace canary::http
