// Worker: accept loop, periodic sweep (deadlines, idle pool connections) and snapshot install.
#include "core/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "http/exchange.h"
#include "http/session.h"
#include "tls/context.h"

namespace canary::core {

namespace {
constexpr auto sweep_interval = std::chrono::milliseconds(100);
}

worker::worker(int index, worker_shared& shared, std::shared_ptr<const snapshot> first)
    : index_(index),
      shared_(shared),
      rng_(std::random_device{}()),
      access_log_(first->config->access_log) {
  install_now(std::move(first));
  refresh_now();
}

worker::~worker() {
  // Sessions still open hold pointers into this worker (the session list, the exchange and buffer
  // pools, the metric cells), and the io_context's own shutdown would destroy their coroutines
  // only after those members are gone. So end them here, while everything is alive: close their
  // sockets and let each coroutine run to its end (bounded: a closed socket completes at once).
  if (sessions_.empty()) return;
  for (auto* s : sessions_) s->close();
  ioc_.restart();
  for (int i = 0; i < 1000 && !sessions_.empty(); ++i) ioc_.run_one_for(std::chrono::milliseconds(10));
}

namespace {
std::uint16_t listen_on(acceptor_type& acceptor, const tcp::endpoint& where) {
  acceptor.open(where.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  int one = 1;
  if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    throw std::system_error(errno, std::generic_category(), "setsockopt(SO_REUSEPORT)");
  acceptor.bind(where);
  acceptor.listen(net::socket_base::max_listen_connections);
  return acceptor.local_endpoint().port();
}
}  // namespace

std::uint16_t worker::listen(const tcp::endpoint& where) { return listen_on(acceptor_, where); }

std::uint16_t worker::listen_tls(const tcp::endpoint& where) {
  return listen_on(tls_acceptor_, where);
}

namespace {
std::uint16_t adopt_on(acceptor_type& acceptor, int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw std::system_error(errno, std::generic_category(), "getsockname(handed-over socket)");
  acceptor.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
  return acceptor.local_endpoint().port();
}
}  // namespace

std::uint16_t worker::adopt(int fd) { return adopt_on(acceptor_, fd); }

std::uint16_t worker::adopt_tls(int fd) { return adopt_on(tls_acceptor_, fd); }

void worker::run() {
  if (acceptor_.is_open()) net::co_spawn(ioc_, accept_loop(acceptor_, false), net::detached);
  if (tls_acceptor_.is_open())
    net::co_spawn(ioc_, accept_loop(tls_acceptor_, true), net::detached);
  net::co_spawn(ioc_, sweep_loop(), net::detached);
  // A handler that throws must not take the worker down (see
  // docs/architecture.md#data-plane-rules): log and keep running.
  for (;;) {
    try {
      ioc_.run();
      access_log_.flush();
      return;
    } catch (const std::exception& e) {
      spdlog::error("worker {}: unexpected exception: {}", index_, e.what());
    }
  }
}

std::unique_ptr<http::exchange> worker::take_exchange() {
  if (free_exchanges_.empty()) return std::make_unique<http::exchange>();
  auto x = std::move(free_exchanges_.back());
  free_exchanges_.pop_back();
  return x;
}

void worker::give_exchange(std::unique_ptr<http::exchange> done) {
  if (!done) return;
  done->end();
  if (free_exchanges_.size() < max_free_exchanges && done->reusable())
    free_exchanges_.push_back(std::move(done));
}

void worker::refresh_now() {
  now_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
}

void worker::install(std::shared_ptr<const snapshot> s) {
  net::post(ioc_, [this, s = std::move(s)]() mutable { install_now(std::move(s)); });
}

void worker::install_now(std::shared_ptr<const snapshot> s) {
  // WRR resets on a weight change (decided per route in wrr_state::next); a reload can reorder
  // routes, so per-index state only carries over when the route at that index is the same.
  std::vector<routing::wrr_state> wrr(s->routes.size());
  if (snapshot_) {
    for (std::size_t i = 0; i < s->routes.size() && i < snapshot_->routes.size(); ++i)
      if (s->routes[i].rule.route_name == snapshot_->routes[i].rule.route_name) wrr[i] = wrr_[i];
  }
  wrr_ = std::move(wrr);
  rr_.assign(s->upstreams.size(), static_cast<std::uint32_t>(index_));
  snapshot_ = std::move(s);
}

void worker::drain(std::chrono::milliseconds idle_grace) {
  net::post(ioc_, [this, idle_grace] {
    draining_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    tls_acceptor_.close(ec);
    pool_.clear();
    // on_drain may close the session's socket; its coroutine detaches later, not now.
    auto close_idle = [this] {
      closing_idle_ = true;
      for (auto* s : sessions_) s->on_drain();
    };
    if (idle_grace.count() <= 0) {
      close_idle();
      return;
    }
    drain_timer_.expires_after(idle_grace);
    drain_timer_.async_wait([close_idle](boost::system::error_code e) {
      if (!e) close_idle();
    });
  });
}

void worker::stop() {
  net::post(ioc_, [this] {
    stopping_ = true;
    ioc_.stop();
  });
}

void worker::reopen_access_log() {
  net::post(ioc_, [this] { access_log_.reopen(); });
}

void worker::attach(http::session* s) {
  sessions_.push_front(s);
  s->self_in_worker = sessions_.begin();
  open_sessions_.fetch_add(1, std::memory_order_relaxed);
}

void worker::detach(http::session* s) {
  sessions_.erase(s->self_in_worker);
  open_sessions_.fetch_sub(1, std::memory_order_relaxed);
}

awaitable<void> worker::accept_loop(acceptor_type& acceptor, bool tls) {
  for (;;) {
    // The peer address comes with accept (no getpeername per connection).
    socket_type sock(ioc_.get_executor());
    tcp::endpoint peer;
    auto [ec] = co_await acceptor.async_accept(sock, peer, use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      // EMFILE and friends: back off briefly instead of spinning.
      spdlog::warn("worker {}: accept: {}", index_, ec.message());
      timer_type t(ioc_.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(use_tuple);
      continue;
    }
    // A reload may have removed the tls section: the listener lives on (listeners change on
    // restart only) but has no certificate to offer, and never speaks plain HTTP.
    std::shared_ptr<const tls::context_set> contexts;
    if (tls) {
      if (snapshot_->config->tls) contexts = snapshot_->config->tls->contexts;
      if (!contexts) {
        boost::system::error_code ignored;
        sock.close(ignored);
        continue;
      }
    }
    // TCP_NODELAY is set by the session before its second write (a connection that sees one
    // response never needs it: Linux's Nagle holds no first write).
    const auto limit = snapshot_->config->limits.max_connections;
    if (shared_.connections.fetch_add(1, std::memory_order_relaxed) >= limit) {
      shared_.connections.fetch_sub(1, std::memory_order_relaxed);
      cells_.local_reply(503);
      net::co_spawn(ioc_, http::reject_over_limit(std::move(sock)), net::detached);
      continue;
    }
    cells_.connection_opened();
    auto s = tls ? std::make_unique<http::session>(*this, std::move(sock), peer, contexts)
                 : std::make_unique<http::session>(*this, std::move(sock), peer);
    net::co_spawn(ioc_, http::session::run(std::move(s)), net::detached);
  }
}

awaitable<void> worker::sweep_loop() {
  for (;;) {
    sweep_timer_.expires_after(sweep_interval);
    auto [ec] = co_await sweep_timer_.async_wait(use_tuple);
    if (ec || stopping_) co_return;
    refresh_now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto* s = *it++;  // on_tick never detaches synchronously, but keep the iterator safe
      s->on_tick(now_ns_);
    }
    pool_.sweep(std::chrono::steady_clock::now(), snapshot_->config->timeouts.upstream_idle);
    if (now_ns_ - last_buffer_trim_ns_ >=
        std::chrono::nanoseconds(buffer_trim_interval).count()) {
      // The list is LIFO: its first free_low_ buffers were not taken during the interval.
      free_buffers_.erase(free_buffers_.begin(),
                          free_buffers_.begin() + static_cast<std::ptrdiff_t>(free_low_));
      free_low_ = free_buffers_.size();
      last_buffer_trim_ns_ = now_ns_;
    }
    if (now_ns_ - last_log_flush_ns_ >= 1'000'000'000) {  // nginx's `flush=1s`
      access_log_.flush();
      last_log_flush_ns_ = now_ns_;
    }
  }
}

}  // namespace canary::core
