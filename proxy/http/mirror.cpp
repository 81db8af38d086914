// Shadow traffic: see mirror.h. Copies are served first come, first served by at most
// max_senders coroutines, each started when a copy arrives and ending when the queue is empty,
// so an idle worker runs none. A copy's connect and response each have the config's
// upstream_connect / upstream_response deadline, enforced by closing its socket.
#include "http/mirror.h"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <optional>

#include "core/worker.h"
#include "upstream/pool.h"
#include "upstream/select.h"

namespace canary::http {

namespace bhttp = boost::beast::http;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

std::string_view to_string(mirror_drop d) {
  switch (d) {
    case mirror_drop::body_too_large:
      return "body_too_large";
    case mirror_drop::queue_full:
      return "queue_full";
  }
  return "queue_full";
}

std::string mirror_head(std::string_view forwarded_head) {
  static constexpr std::string_view field = "X-Canary-Mirror: 1\r\n";
  std::string out;
  out.reserve(forwarded_head.size() + field.size());
  // The head ends with the empty line (RFC 9112 section 2.1): the field goes just before it.
  const std::size_t end = forwarded_head.size() >= 2 ? forwarded_head.size() - 2 : 0;
  out.append(forwarded_head.substr(0, end));
  out.append(field);
  out.append(forwarded_head.substr(end));
  return out;
}

bool mirror_method_allowed(const core::route_view& route, std::string_view method) {
  return std::find(route.mirror_methods.begin(), route.mirror_methods.end(), method) !=
         route.mirror_methods.end();
}

void mirror_copy::capture(const char* data, std::size_t n) {
  if (too_large || n == 0) return;
  body_bytes += n;
  if (body_bytes > snap->routes[route].mirror_max_body) {
    too_large = true;
    body.clear();
    body.shrink_to_fit();
    return;
  }
  if (chunked) {
    // Re-chunked as the upstream got it: one chunk per relayed piece (RFC 9112 section 7.1).
    char size[20];
    auto [p, ec] = std::to_chars(size, size + sizeof size, n, 16);
    body.append(size, p);
    body.append("\r\n");
  }
  body.append(data, n);
  if (chunked) body.append("\r\n");
}

std::unique_ptr<mirror_copy> mirror::begin(const std::shared_ptr<const core::snapshot>& snap,
                                           std::size_t route_index, bool stable_side,
                                           std::string_view method,
                                           std::string_view forwarded_head, bool chunked,
                                           std::uint64_t content_length) {
  const auto& route = snap->routes[route_index];
  if (route.mirror_percent <= 0 || route.canary < 0 || !route.canary_active || !stable_side)
    return nullptr;
  if (!mirror_method_allowed(route, method)) return nullptr;
  if (shares_.size() <= route_index) shares_.resize(route_index + 1);
  if (!shares_[route_index].pick(route.mirror_percent)) return nullptr;
  if (content_length > route.mirror_max_body) {
    count_drop(route, mirror_drop::body_too_large);
    return nullptr;
  }
  auto copy = std::make_unique<mirror_copy>();
  copy->snap = snap;
  copy->route = route_index;
  copy->head = mirror_head(forwarded_head);
  copy->chunked = chunked;
  return copy;
}

void mirror::count_drop(const core::route_view& route, mirror_drop why) {
  worker_.cells().mirror_route(route.metric_route_id).dropped[static_cast<std::size_t>(why)].add();
}

void mirror::submit(std::unique_ptr<mirror_copy> copy) {
  if (!copy) return;
  const auto& route = copy->snap->routes[copy->route];
  if (copy->too_large) {
    count_drop(route, mirror_drop::body_too_large);
    return;
  }
  if (queue_.size() >= queue_limit) {
    count_drop(route, mirror_drop::queue_full);
    return;
  }
  if (copy->chunked) copy->body.append("0\r\n\r\n");
  queue_.push_back(std::move(copy));
  if (senders_ < max_senders) {
    ++senders_;
    net::co_spawn(worker_.context(), sender(), net::detached);
  }
}

awaitable<void> mirror::sender() {
  while (!queue_.empty()) {
    auto copy = std::move(queue_.front());
    queue_.pop_front();
    co_await send_one(*copy);
  }
  --senders_;
}

namespace {

// Closes the copy's socket when its deadline passes. Shared with the timer's handler, which may
// already be queued when the copy ends: `sock` is cleared first so it is never touched after.
struct deadline_guard {
  socket_type* sock = nullptr;
  bool expired = false;
};

}  // namespace

awaitable<void> mirror::send_one(mirror_copy& copy) {
  const core::snapshot& snap = *copy.snap;
  const auto& route = snap.routes[copy.route];
  const auto& ups = snap.upstreams[static_cast<std::size_t>(route.canary)];
  const auto& cfg = *snap.config;
  const auto started = steady::now();
  unsigned code = 0;  // 000: timeout or connection failure

  auto guard = std::make_shared<deadline_guard>();
  timer_type timer(worker_.context().get_executor());
  auto arm = [&](std::chrono::milliseconds d) {
    timer.expires_after(d);
    timer.async_wait([guard](error_code ec) {
      if (ec || guard->sock == nullptr) return;
      guard->expired = true;
      error_code ignored;
      guard->sock->close(ignored);
    });
  };

  std::unique_ptr<upstream::connection> conn;
  bool reusable = false;
  upstream::round_robin_walk walk(ups.endpoints,
                                  worker_.next_rr(static_cast<std::size_t>(route.canary)));
  const auto* ep = walk.next(started);
  // At most two attempts: a pooled connection the canary closed while idle fails before any
  // answer, which says nothing about the canary (and would count as bad): the copy then goes
  // once more on a new connection, as the client path retries (http/upstream_failure.h).
  for (int attempt = 0; ep != nullptr && attempt < 2; ++attempt) {
    conn = attempt == 0 ? worker_.pool().take(**ep) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) {
      conn = std::make_unique<upstream::connection>(worker_.context().get_executor(), *ep);
      guard->sock = &conn->sock;
      arm(cfg.timeouts.upstream_connect);
      auto [ec] = co_await conn->sock.async_connect((*ep)->address, use_tuple);
      if (ec) {
        conn.reset();
        break;
      }
      error_code ignored;
      conn->sock.set_option(tcp::no_delay(true), ignored);
    }
    guard->sock = &conn->sock;
    arm(cfg.timeouts.upstream_response);
    const std::array<net::const_buffer, 2> out = {net::buffer(copy.head), net::buffer(copy.body)};
    auto [wec, wn] = co_await net::async_write(conn->sock, out, use_tuple);
    const bool head_method = copy.head.starts_with("HEAD ");
    std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
    error_code rec = wec;
    // Interim (1xx) responses are skipped: the final one counts (RFC 9110 section 15.2).
    while (!rec) {
      parser.emplace();
      parser->body_limit(boost::none);
      parser->header_limit(64 * 1024);
      if (head_method) parser->skip(true);
      std::tie(rec, std::ignore) =
          co_await bhttp::async_read_header(conn->sock, conn->buffer, *parser, use_tuple);
      if (rec) break;
      const unsigned status = parser->get().result_int();
      if (status >= 200 || status == 101) break;
    }
    if (rec) {
      const bool nothing_back = !parser || !parser->got_some();
      if (reused && nothing_back && !guard->expired) continue;
      break;
    }
    code = parser->get().result_int() % 1000;
    // The answer is discarded; it is read to its end only so the connection can be reused.
    std::array<char, 8192> scratch;
    while (!rec && !parser->is_done()) {
      parser->get().body().data = scratch.data();
      parser->get().body().size = scratch.size();
      std::tie(rec, std::ignore) =
          co_await bhttp::async_read(conn->sock, conn->buffer, *parser, use_tuple);
      if (rec == bhttp::error::need_buffer) rec = {};
    }
    reusable = !rec && parser->is_done() && parser->keep_alive() && !parser->need_eof();
    break;
  }
  guard->sock = nullptr;
  timer.cancel();
  if (guard->expired) reusable = false;
  if (conn && reusable)
    worker_.pool().put(std::move(conn), steady::now());
  const auto micros = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - started).count());

  // Metrics, and the analysis input: a copy is one of the canary's decided requests, bad on a
  // 5xx, a timeout or a connection failure.
  worker_.cells().mirror_series(route.metric_series[1]).by_code[code].add();
  auto& decided = worker_.cells().route(route.metric_route_id).decided[1];
  decided.requests.add();
  if (code == 0 || (code >= 500 && code <= 599)) decided.bad.add();
  for (std::uint8_t k = 0; k < route.slow_count; ++k)
    if (micros > route.slow_us[k]) decided.slow[k].add();
}

}  // namespace canary::http
