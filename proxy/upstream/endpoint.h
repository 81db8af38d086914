// One backend address and whether it is up. Shared by all workers (they read `down_until` on the
// request path with a relaxed load; a worker that fails to connect writes it). Owned by the
// endpoint_registry; survives reloads so a known-down endpoint stays down.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace canary::upstream {

using steady = std::chrono::steady_clock;

struct endpoint {
  std::uint32_t id = 0;  // never reused; keys the per-worker pools
  std::string text;      // "127.0.0.1:9001", for logs
  boost::asio::ip::tcp::endpoint address;

  // steady-clock nanoseconds until which connects are not tried (a refused connect holds an
  // endpoint off briefly; an outlier ejection for longer); 0 = not held off.
  std::atomic<std::int64_t> down_until_ns{0};
  // Set by the active health checker (control thread).
  std::atomic<bool> health_down{false};
  // Outlier detection (see `outlier` in docs/config-reference.md): consecutive connect failures or
  // 5xx, and how many times the endpoint was ejected (the ejection time grows with it).
  std::atomic<std::uint32_t> consecutive_failures{0};
  std::atomic<std::uint32_t> ejections{0};

  bool up(steady::time_point now) const {
    return !health_down.load(std::memory_order_relaxed) &&
           down_until_ns.load(std::memory_order_relaxed) <= now.time_since_epoch().count();
  }
  bool held_off(steady::time_point now) const {
    return down_until_ns.load(std::memory_order_relaxed) > now.time_since_epoch().count();
  }
  // Holds the endpoint off until now + for_how_long, but never shortens a longer hold (an
  // ejection outlasts a connect hold-off): a compare-and-swap loop, so that of workers racing
  // here the latest deadline always wins. A plain load-then-store could let a short hold-off
  // overwrite an ejection stored between its load and its store.
  void mark_down(steady::time_point now, std::chrono::milliseconds for_how_long) {
    const std::int64_t until = (now + for_how_long).time_since_epoch().count();
    std::int64_t seen = down_until_ns.load(std::memory_order_relaxed);
    while (seen < until &&
           !down_until_ns.compare_exchange_weak(seen, until, std::memory_order_relaxed)) {
    }
  }
  void mark_up() {
    if (down_until_ns.load(std::memory_order_relaxed) != 0)
      down_until_ns.store(0, std::memory_order_relaxed);
  }
};

// Control thread: endpoint objects by address, reused across reloads.
class endpoint_registry {
 public:
  std::shared_ptr<endpoint> get(const std::string& address, std::uint16_t port);
  // Addresses remembered (those some snapshot still uses, plus at most the ones dropped since
  // the last new endpoint).
  std::size_t size() const { return by_key_.size(); }

 private:
  std::map<std::string, std::weak_ptr<endpoint>> by_key_;
  std::uint32_t next_id_ = 1;
};

}  // namespace canary::upstream
