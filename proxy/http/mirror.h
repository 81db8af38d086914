// Shadow traffic (docs/mirroring.md): per worker, picks the share of stable-bound requests a
// `setMirror` step asks for, copies them (head + small body) and sends the copies to the canary
// from a few sender coroutines, discarding the answers. The client's exchange never waits on it.
// Worker thread only; one per worker, living as long as the worker (its coroutines end when the
// worker's io_context does).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/snapshot.h"
#include "core/types.h"

namespace canary::core {
class worker;
}

namespace canary::http {

// Smooth round-robin share: of every 100 eligible requests exactly `percent` are picked, evenly
// spread (credit += percent; >= 100 picks and takes 100 off). Pure; the routing WRR is separate.
class mirror_share {
 public:
  bool pick(int percent) noexcept {
    credit_ += percent;
    if (credit_ < 100) return false;
    credit_ -= 100;
    return true;
  }

 private:
  int credit_ = 0;
};

enum class mirror_drop : std::uint8_t { body_too_large, queue_full };
inline constexpr std::size_t mirror_drop_count = 2;
std::string_view to_string(mirror_drop d);

// The forwarded request head (ending in an empty line) with `X-Canary-Mirror: 1` added, so the
// canary can tell a copy from a client request.
std::string mirror_head(std::string_view forwarded_head);

// True when `method` is in the route's mirrored set.
bool mirror_method_allowed(const core::route_view& route, std::string_view method);

// One copy in the making (the session fills the body as it relays it) and in the queue.
struct mirror_copy {
  std::shared_ptr<const core::snapshot> snap;  // keeps the route view and endpoints alive
  std::size_t route = 0;                       // index into snap->routes
  std::string head;                            // mirror_head() of the forwarded head
  std::string body;                            // as the upstream got it (re-chunked if chunked)
  bool chunked = false;
  bool too_large = false;  // the body passed max_body_bytes: not sent
  std::uint64_t body_bytes = 0;  // payload bytes seen (chunk framing not counted)

  // Body bytes as the session relays them; past max_body_bytes the copy is abandoned.
  void capture(const char* data, std::size_t n);
};

class mirror {
 public:
  static constexpr std::size_t queue_limit = 256;  // copies waiting per worker
  static constexpr std::size_t max_senders = 32;   // copies in flight per worker

  explicit mirror(core::worker& w) : worker_(w) {}
  mirror(const mirror&) = delete;
  mirror& operator=(const mirror&) = delete;

  // Called once per request whose upstream head is built: a copy to fill when this request is
  // picked (route mirrored, stable side, method in the set, the share says so), else null. A
  // body whose Content-Length (`content_length`, 0 when none) is over the limit is counted as
  // dropped here.
  std::unique_ptr<mirror_copy> begin(const std::shared_ptr<const core::snapshot>& snap,
                                     std::size_t route_index, bool stable_side,
                                     std::string_view method, std::string_view forwarded_head,
                                     bool chunked, std::uint64_t content_length);
  // The client's request went out whole: queue the copy (or count why it is dropped).
  void submit(std::unique_ptr<mirror_copy> copy);

  std::size_t queued() const { return queue_.size(); }
  std::size_t in_flight() const { return senders_; }

 private:
  awaitable<void> sender();
  awaitable<void> send_one(mirror_copy& copy);
  void count_drop(const core::route_view& route, mirror_drop why);

  core::worker& worker_;
  std::vector<mirror_share> shares_;  // by route index
  std::deque<std::unique_ptr<mirror_copy>> queue_;
  std::size_t senders_ = 0;
};

}  // namespace canary::http
