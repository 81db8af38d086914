// Per-worker pool of idle keep-alive connections to upstream endpoints. Worker thread only.
// A connection goes back only when its request was fully written, its response fully read and
// neither side said close (Envoy's HTTP/1 rule); the worker's sweep closes ones idle too long.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/types.h"
#include "upstream/endpoint.h"

namespace canary::upstream {

struct connection {
  connection(executor ex, std::shared_ptr<endpoint> ep)
      : sock(ex), buffer(64 * 1024), target(std::move(ep)) {
    // Beast reads max(512, free capacity) at a time: without room, a streamed body would move
    // in 512-byte reads.
    buffer.reserve(16 * 1024);
  }
  socket_type sock;
  boost::beast::flat_buffer buffer;  // bounded: a huge response head is an error, not a throw
  std::shared_ptr<endpoint> target;
  steady::time_point idle_since{};
  bool reused = false;  // came from the pool (its death before any byte may be retried)
};

class pool {
 public:
  // An idle connection to `ep`, or null.
  std::unique_ptr<connection> take(const endpoint& ep);
  void put(std::unique_ptr<connection> c, steady::time_point now);
  // Closes connections idle longer than `max_idle`.
  void sweep(steady::time_point now, std::chrono::milliseconds max_idle);
  void clear();
  std::size_t idle_count() const;

 private:
  static constexpr std::size_t max_idle_per_endpoint = 512;
  std::unordered_map<std::uint32_t, std::vector<std::unique_ptr<connection>>> idle_;
};

}  // namespace canary::upstream
