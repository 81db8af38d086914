// Per-worker metric cells: each worker is the only writer of its cells (relaxed load + store, no
// read-modify-write), the scrape thread sums all workers' cells with relaxed loads. No lock and
// no label lookup on the request path: a request carries small integer ids resolved when the
// snapshot was built (series_registry, control thread).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace canary::metrics {

// A counter written by one thread and read by others.
class cell {
 public:
  void add(std::uint64_t n = 1) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

// Latency buckets (seconds) of canary_proxy_request_duration_seconds.
inline constexpr std::array<double, 14> duration_buckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// One (route, variant, upstream) series: requests by exact status code, and the latency
// histogram to the upstream response head.
struct series_cells {
  std::array<cell, 1000> by_code;  // index = status code (000-999)
  std::array<cell, duration_buckets.size() + 1> latency;  // non-cumulative; last = +Inf
  cell latency_sum_us;
  void observe_latency(std::uint64_t micros) noexcept {
    const double s = static_cast<double>(micros) / 1e6;
    std::size_t i = 0;
    while (i < duration_buckets.size() && s > duration_buckets[i]) ++i;
    latency[i].add();
    latency_sum_us.add(micros);
  }
};

inline constexpr std::size_t max_series = 4096;
inline constexpr std::size_t max_routes = 1024;

// Routing decision reasons (routing::reason order) per route and variant.
struct route_cells {
  std::array<std::array<cell, 6>, 2> decisions;  // [variant][reason]
};

enum class upstream_error : std::uint8_t { connect, timeout, reset, protocol };
inline constexpr std::size_t max_upstreams = 1024;

struct upstream_cells {
  std::array<cell, 4> errors;  // by upstream_error
  cell ejections;              // outlier ejections
};

// Everything one worker writes. Blocks are allocated on first use by the worker and published
// with a release store; readers acquire. They live as long as the worker_cells.
class worker_cells {
 public:
  worker_cells() = default;
  worker_cells(const worker_cells&) = delete;
  worker_cells& operator=(const worker_cells&) = delete;
  ~worker_cells();

  // Writer side (the owning worker thread).
  series_cells& series(std::uint32_t id) { return get_or_make(series_, id); }
  route_cells& route(std::uint32_t id) { return get_or_make(routes_, id); }
  upstream_cells& upstream(std::uint32_t id) { return get_or_make(upstreams_, id); }
  void local_reply(unsigned code) { local_replies_[code % 1000].add(); }
  void connection_opened() {
    connections_total_.add();
    connections_active_.add();
  }
  void connection_closed() { connections_closed_.add(); }

  // Reader side (any thread): null when never written.
  const series_cells* find_series(std::uint32_t id) const { return find(series_, id); }
  const route_cells* find_route(std::uint32_t id) const { return find(routes_, id); }
  const upstream_cells* find_upstream(std::uint32_t id) const { return find(upstreams_, id); }
  std::uint64_t local_replies(unsigned code) const { return local_replies_[code % 1000].get(); }
  std::uint64_t connections_total() const { return connections_total_.get(); }
  std::uint64_t connections_active() const {
    return connections_active_.get() - connections_closed_.get();
  }

 private:
  template <class T, std::size_t N>
  static T& get_or_make(std::array<std::atomic<T*>, N>& slots, std::uint32_t id) {
    auto& slot = slots[id % N];
    T* p = slot.load(std::memory_order_relaxed);
    if (!p) [[unlikely]] {
      p = new T();
      slot.store(p, std::memory_order_release);
    }
    return *p;
  }
  template <class T, std::size_t N>
  static const T* find(const std::array<std::atomic<T*>, N>& slots, std::uint32_t id) {
    return slots[id % N].load(std::memory_order_acquire);
  }

  std::array<std::atomic<series_cells*>, max_series> series_{};
  std::array<std::atomic<route_cells*>, max_routes> routes_{};
  std::array<std::atomic<upstream_cells*>, max_upstreams> upstreams_{};
  std::array<cell, 1000> local_replies_;
  cell connections_total_;
  cell connections_active_;  // opened
  cell connections_closed_;
};

}  // namespace canary::metrics
