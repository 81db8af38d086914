// Which endpoint of an upstream a request tries, in order: round-robin from a per-worker
// position, skipping endpoints that are down (health check, connect hold-off, outlier
// ejection). Pure over the endpoints' state at a given `now`; worker thread (it reads the
// endpoints' atomics). A walk lives for one request's connect attempt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "upstream/endpoint.h"

namespace canary::upstream {

// Visits each endpoint at most once, starting at `start` modulo their count. Up-ness is read
// when next() reaches an endpoint: one marked down by an earlier failed connect in the same
// walk is skipped.
class round_robin_walk {
 public:
  round_robin_walk(const std::vector<std::shared_ptr<endpoint>>& endpoints,
                   std::uint32_t start) noexcept
      : endpoints_(endpoints), start_(start) {}

  // The next endpoint that is up at `now`, or null when every endpoint was visited.
  const std::shared_ptr<endpoint>* next(steady::time_point now) noexcept;

 private:
  const std::vector<std::shared_ptr<endpoint>>& endpoints_;
  std::uint32_t start_;
  std::size_t visited_ = 0;
};

}  // namespace canary::upstream
