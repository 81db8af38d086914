// Per-worker metric cells: each worker is the only writer of its cells (relaxed load + store, no
// read-modify-write), the scrape thread sums all workers' cells with relaxed loads. No lock and
// no label lookup on the request path: a request carries small integer ids resolved when the
// snapshot was built (series_registry, control thread). Cells live as long as their worker_cells
// (the worker's lifetime); ids have no cap below 2^32, so any config's routes fit.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

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
  // gRPC responses by grpc-status: 0-16 as defined, the last cell for any other value.
  std::array<cell, 18> grpc_status;
  // gRPC responses with a failing grpc-status (http2::grpc_status_is_bad) and a non-5xx HTTP
  // status: errors for the threshold analysis metrics, beside the 5xx of by_code.
  cell grpc_errors;
  void observe_latency(std::uint64_t micros) noexcept {
    const double s = static_cast<double>(micros) / 1e6;
    std::size_t i = 0;
    while (i < duration_buckets.size() && s > duration_buckets[i]) ++i;
    latency[i].add();
    latency_sum_us.add(micros);
  }
};

// Slow-request counters per variant: one per distinct `slow` of the route's latency_vs_stable
// metrics (the loader allows at most this many).
inline constexpr std::size_t max_slow_thresholds = 4;

// The automated analysis' input for one variant: requests decided by weight or sticky hash
// (never header/cookie forced), counted at the end of the request.
struct decided_cells {
  cell requests;
  // 5xx, the proxy's own 502/503/504 for this variant included, and gRPC responses whose
  // grpc-status says the server failed (http2::grpc_status_is_bad)
  cell bad;
  std::array<cell, max_slow_thresholds> slow;  // slower than route_view::slow_us[k]
};

// Routing decision reasons (routing::reason order) per route and variant.
struct route_cells {
  std::array<std::array<cell, 6>, 2> decisions;  // [variant][reason]
  std::array<decided_cells, 2> decided;          // [variant]
  cell http2_streams;                            // HTTP/2 request streams routed to the route
};

// Shadow traffic (http/mirror.h) per route: copies dropped, by http::mirror_drop.
struct mirror_route_cells {
  std::array<cell, 2> dropped;
};

enum class upstream_error : std::uint8_t { connect, timeout, reset, protocol };

struct upstream_cells {
  std::array<cell, 4> errors;  // by upstream_error
  cell ejections;              // outlier ejections
};

// T by a 32-bit id, with no cap below 2^32: a three-level radix table (top 12 bits index a
// directory inside the object, the next 10 a node of 1,024 pointers, the last 10 a leaf of 1,024
// pointers to T). Nodes, leaves and T are made on the first write of an id and published with a
// release store, so a reader that acquires sees them whole; nothing is freed before the table is
// destroyed, so a pointer once read stays valid. One writer thread (the owning worker), any
// number of readers. After an id's first write, a write is three loads: no lock, no allocation.
template <class T>
class cell_table {
 public:
  static constexpr unsigned leaf_bits = 10;
  static constexpr unsigned node_bits = 10;
  static constexpr unsigned top_bits = 32 - node_bits - leaf_bits;

  cell_table() = default;
  cell_table(const cell_table&) = delete;
  cell_table& operator=(const cell_table&) = delete;
  ~cell_table() {
    for (auto& n : top_) {
      node* nd = n.load(std::memory_order_acquire);
      if (!nd) continue;
      for (auto& l : nd->leaves) {
        leaf* lf = l.load(std::memory_order_acquire);
        if (!lf) continue;
        for (auto& c : lf->slots) delete c.load(std::memory_order_acquire);
        delete lf;
      }
      delete nd;
    }
  }

  // Writer side (the owning thread only): the id's T, made on first use.
  T& get(std::uint32_t id) {
    node& nd = make(top_[id >> (node_bits + leaf_bits)]);
    leaf& lf = make(nd.leaves[(id >> leaf_bits) & node_mask]);
    return make(lf.slots[id & leaf_mask]);
  }

  // Reader side (any thread): null when the id was never written.
  const T* find(std::uint32_t id) const {
    const node* nd = top_[id >> (node_bits + leaf_bits)].load(std::memory_order_acquire);
    if (!nd) return nullptr;
    const leaf* lf = nd->leaves[(id >> leaf_bits) & node_mask].load(std::memory_order_acquire);
    if (!lf) return nullptr;
    return lf->slots[id & leaf_mask].load(std::memory_order_acquire);
  }

 private:
  static constexpr std::uint32_t node_mask = (1u << node_bits) - 1;
  static constexpr std::uint32_t leaf_mask = (1u << leaf_bits) - 1;
  struct leaf {
    std::array<std::atomic<T*>, std::size_t{1} << leaf_bits> slots{};
  };
  struct node {
    std::array<std::atomic<leaf*>, std::size_t{1} << node_bits> leaves{};
  };

  // Relaxed load: only this thread stores to the slot, so it sees its own stores.
  template <class U>
  static U& make(std::atomic<U*>& slot) {
    U* p = slot.load(std::memory_order_relaxed);
    if (!p) [[unlikely]] {
      p = new U();
      slot.store(p, std::memory_order_release);
    }
    return *p;
  }

  std::array<std::atomic<node*>, std::size_t{1} << top_bits> top_{};
};

// Everything one worker writes; see cell_table for who may call what.
class worker_cells {
 public:
  worker_cells() = default;
  worker_cells(const worker_cells&) = delete;
  worker_cells& operator=(const worker_cells&) = delete;

  // Writer side (the owning worker thread).
  series_cells& series(std::uint32_t id) { return series_.get(id); }
  route_cells& route(std::uint32_t id) { return routes_.get(id); }
  upstream_cells& upstream(std::uint32_t id) { return upstreams_.get(id); }
  // Mirrored copies by the (route, canary, upstream) series id: by_code only (000 = no answer).
  series_cells& mirror_series(std::uint32_t id) { return mirror_series_.get(id); }
  mirror_route_cells& mirror_route(std::uint32_t id) { return mirror_routes_.get(id); }
  void local_reply(unsigned code) { local_replies_[code % 1000].add(); }
  void connection_opened() { connections_opened_.add(); }
  void connection_closed() { connections_closed_.add(); }
  // canary_proxy_tls_handshakes_total{result}, by tls_handshake_result.
  void tls_handshake(std::size_t result) { tls_handshakes_[result].add(); }

  // Reader side (any thread): null when never written.
  const series_cells* find_series(std::uint32_t id) const { return series_.find(id); }
  const route_cells* find_route(std::uint32_t id) const { return routes_.find(id); }
  const upstream_cells* find_upstream(std::uint32_t id) const { return upstreams_.find(id); }
  const series_cells* find_mirror_series(std::uint32_t id) const {
    return mirror_series_.find(id);
  }
  const mirror_route_cells* find_mirror_route(std::uint32_t id) const {
    return mirror_routes_.find(id);
  }
  std::uint64_t local_replies(unsigned code) const { return local_replies_[code % 1000].get(); }
  std::uint64_t connections_total() const { return connections_opened_.get(); }
  std::uint64_t tls_handshakes(std::size_t result) const { return tls_handshakes_[result].get(); }
  // Opened minus closed, from two single-writer counters (no read-modify-write on either).
  std::uint64_t connections_active() const {
    return connections_opened_.get() - connections_closed_.get();
  }

 private:
  cell_table<series_cells> series_;
  cell_table<route_cells> routes_;
  cell_table<upstream_cells> upstreams_;
  cell_table<series_cells> mirror_series_;
  cell_table<mirror_route_cells> mirror_routes_;
  std::array<cell, 1000> local_replies_;
  cell connections_opened_;  // also canary_proxy_connections_total
  cell connections_closed_;
  std::array<cell, 3> tls_handshakes_;  // ok, failed, timeout
};

}  // namespace canary::metrics
