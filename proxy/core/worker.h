// One data-plane worker: its own io_context run by one thread, its own SO_REUSEPORT acceptor,
// upstream pool, WRR state, metric cells and session list. Nothing here is shared with other
// workers except the global connection count and the endpoints' up/down flags (atomics).
// install(), drain() and stop() may be called from any thread: they post to the worker.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <random>
#include <vector>

#include "core/snapshot.h"
#include "core/types.h"
#include "log/access_log.h"
#include "metrics/cells.h"
#include "routing/router.h"
#include "http/mirror.h"
#include "http2/upstream.h"
#include "upstream/pool.h"

namespace canary::http {
class session;
struct exchange;
}

namespace canary::core {

// Shared by all workers.
struct worker_shared {
  std::atomic<std::size_t> connections{0};  // open client connections, for max_connections
};

class worker {
 public:
  worker(int index, worker_shared& shared, std::shared_ptr<const snapshot> first);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Before run(): bind and listen (SO_REUSEPORT). Returns the bound port (for port 0).
  std::uint16_t listen(const tcp::endpoint& where);
  // Before run(), instead of listen(): accept on a listening socket handed over by the process
  // this one replaces (binary upgrade). Returns its port.
  std::uint16_t adopt(int fd);
  std::uint16_t adopt_tls(int fd);
  // The listening sockets, to hand over (control thread, while run() runs: only read); -1 when
  // that listener is off.
  int listen_handle() { return acceptor_.is_open() ? acceptor_.native_handle() : -1; }
  int tls_listen_handle() { return tls_acceptor_.is_open() ? tls_acceptor_.native_handle() : -1; }
  // Before run(): the same for the TLS listener (its handshakes use the current snapshot's
  // config.tls contexts, so a reload changes certificates for new connections only).
  std::uint16_t listen_tls(const tcp::endpoint& where);
  // Thread body: runs until stop().
  void run();

  void install(std::shared_ptr<const snapshot> s);
  // Stop accepting, close idle keep-alive connections; in-flight requests finish with
  // Connection: close. With an `idle_grace` (a binary upgrade), connections idle now may still
  // send one request in that time (answered with Connection: close) before the idle ones close:
  // a keep-alive client whose request is already on its way then gets an answer, not a reset.
  void drain(std::chrono::milliseconds idle_grace = std::chrono::milliseconds(0));
  void stop();
  // Sessions still open (any thread).
  std::size_t open_sessions() const { return open_sessions_.load(std::memory_order_relaxed); }

  const metrics::worker_cells& cells() const { return cells_; }

  // --- for sessions (worker thread) ---
  const std::shared_ptr<const snapshot>& current() const { return snapshot_; }
  routing::wrr_state& wrr(std::size_t route) { return wrr_[route]; }
  std::uint32_t next_rr(std::size_t upstream) { return rr_[upstream]++; }
  upstream::pool& pool() { return pool_; }
  http2::client_pool& h2_pool() { return h2_pool_; }
  http::mirror& mirror() { return mirror_; }
  metrics::worker_cells& cells() { return cells_; }
  std::uint64_t random() { return rng_(); }
  bool draining() const { return draining_; }
  // Draining and past the idle grace: a connection back at keep-alive idle closes.
  bool closing_idle() const { return closing_idle_; }
  // Coarse clock (refreshed by the sweep and per request) for deadlines.
  std::int64_t now_ns() const { return now_ns_; }
  void refresh_now();
  worker_shared& shared() { return shared_; }
  net::io_context& context() { return ioc_; }

  // Per-connection memory a session needs only part of the time is the worker's and reused:
  // an idle keep-alive connection holds neither an exchange nor a relay buffer. Both free lists
  // are bounded; what is over the bound, or grew too large, is freed.
  //
  // An exchange (http/exchange.h: parsers, head buffer, access-log line) while a request is in
  // progress.
  std::unique_ptr<http::exchange> take_exchange();
  void give_exchange(std::unique_ptr<http::exchange> done);
  // A body relay buffer (relay_buffer_size bytes) while a body moves.
  static constexpr std::size_t relay_buffer_size = 64 * 1024;
  std::unique_ptr<char[]> take_buffer() {
    if (free_buffers_.empty()) return std::make_unique_for_overwrite<char[]>(relay_buffer_size);
    auto b = std::move(free_buffers_.back());
    free_buffers_.pop_back();
    free_low_ = std::min(free_low_, free_buffers_.size());
    return b;
  }
  void give_buffer(std::unique_ptr<char[]> b) {
    if (b && free_buffers_.size() < max_free_buffers) free_buffers_.push_back(std::move(b));
  }

  // Free relay buffers kept (worker thread). Those no request took for a whole
  // buffer_trim_interval are freed: a burst of concurrent bodies does not keep its buffers (up
  // to max_free_buffers x 64 KiB) for the life of the process.
  std::size_t free_buffer_count() const { return free_buffers_.size(); }
  static constexpr std::chrono::seconds buffer_trim_interval{10};

  log::access_log& access_log() { return access_log_; }
  // Any thread: reopen the access log file (SIGUSR1, after rotation).
  void reopen_access_log();

  void attach(http::session* s);
  void detach(http::session* s);

 private:
  awaitable<void> accept_loop(acceptor_type& acceptor, bool tls);
  awaitable<void> sweep_loop();
  void install_now(std::shared_ptr<const snapshot> s);

  int index_;
  worker_shared& shared_;
  // One thread runs it; other threads only post (install, drain, stop), so the reactor needs no
  // locking of its per-socket state (the scheduler keeps its lock for those posts).
  net::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  acceptor_type acceptor_{ioc_.get_executor()};
  acceptor_type tls_acceptor_{ioc_.get_executor()};
  timer_type sweep_timer_{ioc_.get_executor()};
  timer_type drain_timer_{ioc_.get_executor()};
  std::shared_ptr<const snapshot> snapshot_;
  std::vector<routing::wrr_state> wrr_;
  std::vector<std::uint32_t> rr_;
  upstream::pool pool_;
  http2::client_pool h2_pool_{ioc_.get_executor()};
  metrics::worker_cells cells_;
  // After pool_ and cells_, which its senders use; its coroutines live in ioc_ (see ~worker).
  http::mirror mirror_{*this};
  std::mt19937_64 rng_;
  std::list<http::session*> sessions_;
  static constexpr std::size_t max_free_buffers = 64;
  std::vector<std::unique_ptr<char[]>> free_buffers_;
  static constexpr std::size_t max_free_exchanges = 256;
  std::vector<std::unique_ptr<http::exchange>> free_exchanges_;
  std::size_t free_low_ = 0;  // fewest free buffers since the last trim
  std::int64_t last_buffer_trim_ns_ = 0;
  std::atomic<std::size_t> open_sessions_{0};
  std::int64_t now_ns_ = 0;
  log::access_log access_log_;
  std::int64_t last_log_flush_ns_ = 0;
  bool draining_ = false;
  bool closing_idle_ = false;
  bool stopping_ = false;
};

}  // namespace canary::core
