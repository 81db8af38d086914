// What both client protocols (http/session.cpp for HTTP/1.1, http2/server.cpp for HTTP/2 streams)
// count when a request is decided or an upstream endpoint fails: one definition, so the analysis
// cells and outlier ejection cannot drift apart between them. Worker thread only.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/snapshot.h"
#include "core/worker.h"
#include "routing/router.h"
#include "upstream/endpoint.h"

namespace canary::http {

// The analysis' decided cells of the route and variant (docs/analysis.md): weight and sticky
// decisions only — header/cookie-forced requests are QA or preview traffic and would bias the
// comparison. Bad: a 5xx, or a failing gRPC status. On the request path: counter stores only.
inline void count_decided(core::worker& worker, const core::route_view& route,
                          routing::variant side, routing::reason why, unsigned status,
                          std::uint64_t micros, bool grpc_bad) {
  if (why != routing::reason::weight && why != routing::reason::sticky) return;
  auto& c = worker.cells().route(route.metric_route_id).decided[static_cast<int>(side)];
  c.requests.add();
  if ((status >= 500 && status <= 599) || grpc_bad) c.bad.add();
  for (std::uint8_t k = 0; k < route.slow_count; ++k)
    if (micros > route.slow_us[k]) c.slow[k].add();
}

// A failure of `ep` for outlier detection (`u.outlier` must be set): counted, and an ejection
// logged.
void note_upstream_failure(core::worker& worker, const core::upstream_view& u,
                           upstream::endpoint& ep, std::chrono::steady_clock::time_point now);

}  // namespace canary::http
