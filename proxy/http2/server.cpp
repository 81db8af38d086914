// HTTP/2 client connections (server.h): a reader feeding the engine, a writer draining it, and
// one forwarder coroutine per request stream. All on the worker's executor; no thread of its
// own. Timeouts are deadlines checked by the worker's sweep (on_tick), as in the HTTP/1.1
// session: the sweep closes what a coroutine is blocked on.
#include "http2/server.h"

#include <nghttp2/nghttp2.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <list>
#include <optional>

#include "core/worker.h"
#include "http/accounting.h"
#include "http/header_rules.h"
#include "http/request_inputs.h"
#include "http/request_rules.h"
#include "http/upstream_failure.h"
#include "http2/server_engine.h"
#include "http2/upstream_head.h"
#include "log/access_log.h"
#include "routing/failover.h"
#include "upstream/outlier.h"
#include "upstream/pool.h"
#include "upstream/select.h"

namespace canary::http2 {

namespace bhttp = boost::beast::http;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
using http::iequals;
using namespace std::string_view_literals;

namespace {

constexpr std::size_t read_size = 16 * 1024;
constexpr std::size_t max_response_header_bytes = 64 * 1024;
// Response bytes buffered per stream (beyond what nghttp2 sends as the client's window allows)
// before the forwarder stops reading its upstream.
constexpr std::size_t out_high_water = 256 * 1024;
constexpr auto connect_failure_holdoff = std::chrono::seconds(1);

std::int64_t to_ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

std::uint64_t micros_since(steady::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t).count());
}

void append_number(std::string& out, std::uint64_t n) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, n);
  out.append(tmp, end);
}

// Fields an HTTP/2 message must not carry (RFC 9113 §8.2.2) or that the proxy sets itself.
bool dropped_request_field(std::string_view name) {
  return http::is_hop_by_hop(name) || name == "host" || name == "expect" || name == "cookie" ||
         name == "content-length" || name == "x-forwarded-for" || name == "x-forwarded-proto" ||
         name == "x-forwarded-host";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

enum class phase : std::uint8_t { none, connecting, upstream, client_body, writing };

// One request stream's forwarding: what the sweep and the wake-ups need to reach.
struct forward_state {
  explicit forward_state(executor ex) : wait(ex), pump_wait(ex) {}
  std::shared_ptr<stream> s;
  std::shared_ptr<const core::snapshot> snap;  // the config the stream started with
  std::unique_ptr<upstream::connection> up;
  std::shared_ptr<client_stream> h2;  // the stream to an h2c upstream (http2/upstream.h)
  timer_type wait;  // cancelled to wake the forwarder (body bytes, room, close)
  // An h2c stream's request-body pump runs beside the response relay (full duplex): its own
  // wake-up and deadline, so the two waits never share one slot.
  timer_type pump_wait;
  std::shared_ptr<client_stream> pumped;  // the stream the pump sends on
  std::int64_t pump_deadline_ns = 0;  // the upstream takes a body chunk (upstream_response)
  bool pump_running = false;
  bool pump_stop = false;       // the response side ended: the pump ends too
  bool pump_too_large = false;  // the body passed max_request_body_bytes
  bool relay_unbounded = false;  // the relay waits for response DATA without a deadline
  std::string head;
  std::string cookie_join;
  std::string chunk_line;
  std::optional<http::response_parser_type> res;
  std::unique_ptr<char[]> relay;
  log::access_record entry;
  steady::time_point entry_start{};
  std::int64_t deadline_ns = 0;
  phase at = phase::none;
  bool expired = false;
  std::list<forward_state*>::iterator self;
};

enum class acquire_status { ok, none_up, connect_failed, timeout };

template <class Stream>
class connection_impl final : public connection, public stream_handler {
 public:
  connection_impl(core::worker& worker, Stream& sock, socket_type& lowest,
                  std::string_view client_ip, bool https)
      : worker_(worker),
        sock_(sock),
        lowest_(lowest),
        client_ip_(client_ip),
        https_(https),
        write_signal_(worker.context().get_executor()),
        done_signal_(worker.context().get_executor()) {
    const auto& cfg = *worker_.current()->config;
    engine_settings es;
    es.max_concurrent_streams = cfg.http2.max_concurrent_streams;
    es.initial_window = cfg.http2.initial_window;
    es.max_header_bytes = cfg.limits.max_request_header_bytes;
    es.max_header_fields = cfg.limits.max_header_fields;
    max_streams_ = es.max_concurrent_streams;
    engine_ = std::make_unique<server_engine>(es, *this, [&w = worker_] { return w.now_ns(); });
  }

  awaitable<void> run(std::string_view initial) override;
  void on_tick(std::int64_t now_ns) override;
  void on_drain() override {
    engine_->shut_down();
    kick();
  }
  void close() override {
    closing_ = true;
    error_code ec;
    lowest_.close(ec);
    for (auto* f : active_) {
      if (f->up) f->up->sock.close(ec);
      if (f->h2) f->h2->expire();
    }
    kick();
    wake_all();
  }

  bool on_request(const std::shared_ptr<stream>& s) override;
  void on_stream_event(const std::shared_ptr<stream>& s) override {
    if (s->wake) s->wake();
  }

 private:
  awaitable<void> reader(std::string_view initial);
  awaitable<void> writer();
  awaitable<void> forward(forward_state& f);
  // Sends the stream to an HTTP/1.1 upstream (forward_h2c serves h2c ones) and relays the
  // response.
  awaitable<void> send_upstream(forward_state& f, const core::route_view& route,
                                const routing::decision& decision, routing::variant side,
                                routing::reason why, std::uint32_t rr);
  awaitable<acquire_status> acquire(forward_state& f, int upstream_index, bool allow_pool,
                                    std::uint32_t start);
  // The stream to an h2c upstream instead: routing done, the rest (connect, failover, body,
  // response, trailers, gRPC status) here.
  awaitable<void> forward_h2c(forward_state& f, const core::route_view& route,
                              const routing::decision& decision, routing::variant side,
                              routing::reason why);
  awaitable<acquire_status> open_h2c(forward_state& f, int upstream_index,
                                     const request_head& head, bool has_body);
  awaitable<bool> send_request_body(forward_state& f, bool chunked);
  // The client's DATA to the h2c stream `h2`, while forward_h2c relays the response; clears
  // f.pump_running and wakes f.wait when it ends.
  awaitable<void> pump_h2c(forward_state& f, std::shared_ptr<client_stream> h2);
  // After forward_h2c: stops a pump still running (the response ended first) and waits for
  // it, so that f outlives it.
  awaitable<void> join_pump(forward_state& f);
  // Waits until `ready()` or the forwarder is woken by a close or deadline.
  template <class Ready>
  awaitable<void> wait_for(forward_state& f, Ready&& ready);
  void local_reply(forward_state& f, unsigned code, std::string_view text);
  void log(forward_state& f, unsigned status, bool local);
  void count_decided(const core::route_view& route, routing::variant side, routing::reason why,
                     unsigned status, std::uint64_t micros, bool grpc_bad = false);
  void note_failure(const core::upstream_view& u, upstream::endpoint& ep, steady::time_point now);
  void arm(forward_state& f, phase p, std::chrono::milliseconds d) {
    f.at = p;
    f.deadline_ns = worker_.now_ns() + to_ns(d);
    f.expired = false;
  }
  void kick() { write_signal_.cancel(); }
  void wake_all() {
    for (auto* f : active_) {
      f->wait.cancel();
      f->pump_wait.cancel();
    }
  }
  bool gone(const forward_state& f) const { return closing_ || f.s->closed || f.expired; }

  core::worker& worker_;
  Stream& sock_;
  socket_type& lowest_;
  std::string_view client_ip_;
  bool https_;
  std::unique_ptr<server_engine> engine_;
  timer_type write_signal_;
  timer_type done_signal_;
  std::string out_;
  std::list<forward_state*> active_;
  std::size_t max_streams_ = 0;
  std::int64_t idle_deadline_ns_ = 0;
  std::int64_t writing_since_ns_ = 0;  // a write to the client in progress since
  bool closing_ = false;
  bool writer_done_ = false;
};

template <class Stream>
awaitable<void> connection_impl<Stream>::run(std::string_view initial) {
  idle_deadline_ns_ = worker_.now_ns() + to_ns(worker_.current()->config->timeouts.client_idle);
  if (worker_.draining()) engine_->shut_down();
  auto ex = worker_.context().get_executor();
  net::co_spawn(ex, writer(), net::detached);
  co_await reader(initial);
  closing_ = true;
  kick();
  // Every forwarder and the writer hold `this`: they end (woken, their sockets closed) before
  // the connection does.
  error_code ec;
  for (auto* f : active_) {
    if (f->up) f->up->sock.close(ec);
    if (f->h2) f->h2->expire();
  }
  wake_all();
  while (!active_.empty() || !writer_done_) {
    done_signal_.expires_at(steady::time_point::max());
    co_await done_signal_.async_wait(use_tuple);
  }
  lowest_.close(ec);
}

template <class Stream>
awaitable<void> connection_impl<Stream>::reader(std::string_view initial) {
  if (!initial.empty() && !engine_->receive(initial.data(), initial.size())) {
    kick();
    co_return;
  }
  kick();
  auto buf = std::make_unique_for_overwrite<char[]>(read_size);
  while (!closing_) {
    auto [ec, n] = co_await sock_.async_read_some(net::buffer(buf.get(), read_size), use_tuple);
    if (ec) co_return;
    worker_.refresh_now();
    idle_deadline_ns_ =
        worker_.now_ns() + to_ns(worker_.current()->config->timeouts.client_idle);
    const bool ok = engine_->receive(buf.get(), n);
    kick();
    if (!ok) co_return;
  }
}

template <class Stream>
awaitable<void> connection_impl<Stream>::writer() {
  std::string sending;
  for (;;) {
    sending.clear();
    const bool ok = engine_->take_output(sending);
    if (!sending.empty()) {
      writing_since_ns_ = worker_.now_ns();
      auto [ec, n] = co_await net::async_write(sock_, net::buffer(sending), use_tuple);
      writing_since_ns_ = 0;
      if (ec) break;
      continue;
    }
    if (!ok || closing_ || engine_->finished()) break;
    write_signal_.expires_at(steady::time_point::max());
    co_await write_signal_.async_wait(use_tuple);
  }
  // Nothing more will be written: the reader (blocked on the client) ends too.
  closing_ = true;
  error_code ec;
  lowest_.shutdown(tcp::socket::shutdown_both, ec);
  lowest_.close(ec);
  writer_done_ = true;
  done_signal_.cancel();
}

template <class Stream>
void connection_impl<Stream>::on_tick(std::int64_t now_ns) {
  error_code ec;
  for (auto* f : active_) {
    if (f->deadline_ns == 0 || now_ns < f->deadline_ns) continue;
    f->deadline_ns = 0;
    f->expired = true;
    // A blocked upstream operation fails at once; a wait for the client's body wakes.
    if (f->up) f->up->sock.close(ec);
    if (f->h2) f->h2->expire();
    f->wait.cancel();
  }
  for (auto* f : active_) {
    // The upstream took no body chunk in time: the stream fails on both sides (the response
    // relay gets timeout from its read and answers 504 or resets).
    if (f->pump_deadline_ns == 0 || now_ns < f->pump_deadline_ns) continue;
    f->pump_deadline_ns = 0;
    if (f->pumped) f->pumped->expire();
    f->pump_wait.cancel();
  }
  // A client that stops reading holds the writer: after client_idle without the write
  // completing, the connection is cut (as an HTTP/1.1 write under client_idle would be).
  const auto idle_ns = to_ns(worker_.current()->config->timeouts.client_idle);
  if (writing_since_ns_ != 0 && now_ns - writing_since_ns_ >= idle_ns) {
    writing_since_ns_ = 0;
    close();
    return;
  }
  // Keep-alive idle: no stream open and no byte from the client for client_idle.
  if (active_.empty() && engine_->open_streams() == 0 && now_ns >= idle_deadline_ns_ &&
      !engine_->shutting_down()) {
    engine_->shut_down();
    kick();
  }
}

template <class Stream>
bool connection_impl<Stream>::on_request(const std::shared_ptr<stream>& s) {
  // Streams the client reset still hold their forwarders until these notice: they count
  // against the limit too, so rapid resets cannot pile up upstream requests (RFC 9113 §5.1.2).
  if (closing_ || active_.size() >= max_streams_) return false;
  auto* f = new forward_state(worker_.context().get_executor());
  f->s = s;
  f->snap = worker_.current();
  s->wake = [f] {
    f->wait.cancel();
    f->pump_wait.cancel();
  };
  active_.push_front(f);
  f->self = active_.begin();
  net::co_spawn(worker_.context().get_executor(),
                [this, f]() -> awaitable<void> {
                  co_await forward(*f);
                  f->s->wake = nullptr;
                  worker_.give_buffer(std::move(f->relay));
                  active_.erase(f->self);
                  delete f;
                  done_signal_.cancel();
                  kick();
                },
                net::detached);
  return true;
}

template <class Stream>
template <class Ready>
awaitable<void> connection_impl<Stream>::wait_for(forward_state& f, Ready&& ready) {
  while (!ready() && !gone(f)) {
    f.wait.expires_at(steady::time_point::max());
    co_await f.wait.async_wait(use_tuple);
  }
}

template <class Stream>
void connection_impl<Stream>::local_reply(forward_state& f, unsigned code,
                                          std::string_view text) {
  worker_.cells().local_reply(code);
  std::string length;
  append_number(length, text.size() + 1);
  engine_->respond(*f.s, code,
                   {{"content-type", "text/plain; charset=utf-8"}, {"content-length", length}},
                   true);
  std::string body(text);
  body += '\n';
  engine_->send_body(*f.s, body.data(), body.size(), true);
  kick();
  log(f, code, true);
}

template <class Stream>
void connection_impl<Stream>::log(forward_state& f, unsigned status, bool local) {
  auto& log = worker_.access_log();
  if (!log.enabled()) return;
  auto& e = f.entry;
  e.method = f.s->method;
  e.target = f.s->path;
  e.version = 20;
  e.client_ip = client_ip_;
  e.status = status;
  e.local = local;
  e.bytes_sent = f.s->bytes_sent;
  e.total_us = micros_since(f.entry_start);
  log.write(e);
}

template <class Stream>
void connection_impl<Stream>::count_decided(const core::route_view& route, routing::variant side,
                                            routing::reason why, unsigned status,
                                            std::uint64_t micros, bool grpc_bad) {
  http::count_decided(worker_, route, side, why, status, micros, grpc_bad);
}

template <class Stream>
void connection_impl<Stream>::note_failure(const core::upstream_view& u, upstream::endpoint& ep,
                                           steady::time_point now) {
  http::note_upstream_failure(worker_, u, ep, now);
}

// Routing as for HTTP/1.1 (docs/routing.md): :authority is the host, the cookie fields are
// joined, then the route's header, cookie, sticky and weight rules.
template <class Stream>
awaitable<void> connection_impl<Stream>::forward(forward_state& f) {
  const auto& snap = *f.snap;
  const auto& cfg = *snap.config;
  auto& s = *f.s;
  if (worker_.access_log().enabled()) {
    f.entry.time = std::chrono::system_clock::now();
    f.entry_start = steady::now();
  }
  if (s.header_too_large) co_return local_reply(f, 431, "request header too large");
  if (s.method == "CONNECT") co_return local_reply(f, 501, "CONNECT is not supported");
  std::optional<std::uint64_t> content_length;
  for (const auto& [n, v] : s.fields) {
    if (n != "content-length") continue;
    std::uint64_t len = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), len);
    if (ec != std::errc() || end != v.data() + v.size() || content_length)
      co_return local_reply(f, 400, "bad content-length");
    content_length = len;
  }
  if ((content_length && *content_length > cfg.limits.max_request_body_bytes) ||
      s.body_received > cfg.limits.max_request_body_bytes)
    co_return local_reply(f, 413, "request body too large");

  const int ri = snap.table.match(s.authority, s.path);
  if (ri < 0) co_return local_reply(f, 404, "no route for this host and path");
  const auto& route = snap.routes[static_cast<std::size_t>(ri)];
  f.entry.route = route.rule.route_name;
  const auto in = http::gather_inputs(
      route.rule,
      [&](std::string_view name) -> std::optional<std::string_view> {
        for (const auto& [n, v] : s.fields)
          if (iequals(n, name)) return std::string_view(v);
        return std::nullopt;
      },
      [&](auto&& fn) {
        for (const auto& [n, v] : s.fields)
          if (n == "cookie") fn(std::string_view(v));
      },
      f.cookie_join, client_ip_);
  const auto decision = routing::decide(route.rule, route.canary_active, route.weight, in,
                                        worker_.wrr(static_cast<std::size_t>(ri)),
                                        worker_.random());
  auto upstream_index = [&](routing::variant v) {
    return v == routing::variant::canary ? route.canary : route.stable;
  };
  const auto now = steady::now();
  auto any_up = [&](routing::variant v) {
    return snap.upstreams[static_cast<std::size_t>(upstream_index(v))].any_up(now);
  };
  const auto choice =
      routing::choose_side(decision.side, decision.why, route.canary_active, any_up);
  auto side = choice.side;
  auto why = choice.why;
  worker_.cells().route(route.metric_route_id).http2_streams.add();
  if (!choice.available) {
    worker_.cells().series(route.metric_series[static_cast<int>(side)]).by_code[503].add();
    count_decided(route, side, why, 503, 0);
    co_return local_reply(f, 503, "no upstream endpoint is up");
  }
  if (snap.upstreams[static_cast<std::size_t>(upstream_index(side))].h2c) {
    co_await forward_h2c(f, route, decision, side, why);
    co_return co_await join_pump(f);
  }
  std::uint32_t rr = worker_.next_rr(static_cast<std::size_t>(upstream_index(side)));
  auto acquired = co_await acquire(f, upstream_index(side), true, rr);
  if (acquired == acquire_status::connect_failed && !gone(f)) {
    if (const auto other = routing::failover_side(side, route.canary_active, any_up)) {
      side = *other;
      why = routing::reason::failover;
      rr = worker_.next_rr(static_cast<std::size_t>(upstream_index(side)));
      acquired = co_await acquire(f, upstream_index(side), true, rr);
    }
  }
  const auto& ups = snap.upstreams[static_cast<std::size_t>(upstream_index(side))];
  auto& series = worker_.cells().series(route.metric_series[static_cast<int>(side)]);
  f.entry.variant = routing::to_string(side);
  f.entry.reason = routing::to_string(why);
  f.entry.upstream = ups.name;
  if (closing_ || s.closed) co_return;  // the client is gone: nobody to answer
  if (acquired != acquire_status::ok) {
    const unsigned code = acquired == acquire_status::timeout ? 504u : 503u;
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(now));
    co_return local_reply(
        f, code, code == 504 ? "upstream connect timeout" : "no upstream endpoint is up");
  }
  worker_.cells()
      .route(route.metric_route_id)
      .decisions[static_cast<int>(side)][static_cast<int>(why)]
      .add();
  co_await send_upstream(f, route, decision, side, why, rr);
}

template <class Stream>
awaitable<acquire_status> connection_impl<Stream>::acquire(forward_state& f, int upstream_index,
                                                           bool allow_pool, std::uint32_t start) {
  const auto& snap = *f.snap;
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const auto now = steady::now();
  bool tried = false;
  upstream::round_robin_walk walk(u.endpoints, start);
  arm(f, phase::connecting, snap.config->timeouts.upstream_connect);
  while (const auto* next = walk.next(now)) {
    const auto& ep = *next;
    if (allow_pool) {
      if (auto c = worker_.pool().take(*ep)) {
        f.up = std::move(c);
        co_return acquire_status::ok;
      }
    }
    tried = true;
    f.up = std::make_unique<upstream::connection>(worker_.context().get_executor(), ep);
    auto [ec] = co_await f.up->sock.async_connect(ep->address, use_tuple);
    if (!ec && !gone(f)) {
      error_code ignored;
      f.up->sock.set_option(tcp::no_delay(true), ignored);
      co_return acquire_status::ok;
    }
    f.up.reset();
    if (f.expired) {
      worker_.cells().upstream(u.metric_id).errors[static_cast<std::size_t>(
          metrics::upstream_error::timeout)].add();
      co_return acquire_status::timeout;
    }
    if (closing_ || f.s->closed) co_return acquire_status::connect_failed;
    worker_.cells().upstream(u.metric_id).errors[static_cast<std::size_t>(
        metrics::upstream_error::connect)].add();
    spdlog::warn("upstream {} endpoint {}: connect failed: {}", u.name, ep->text, ec.message());
    if (u.outlier) note_failure(u, *ep, now);
    ep->mark_down(now, connect_failure_holdoff);
  }
  co_return tried ? acquire_status::connect_failed : acquire_status::none_up;
}

// DATA frames to the upstream as they come, each returned to the client's window once written
// (so at most one window per stream is ever buffered). False when the stream cannot go on (the
// forwarder has answered or the client is gone).
template <class Stream>
awaitable<bool> connection_impl<Stream>::send_request_body(forward_state& f, bool chunked) {
  auto& s = *f.s;
  const auto& cfg = *f.snap->config;
  for (;;) {
    arm(f, phase::client_body, cfg.timeouts.client_body_idle);
    co_await wait_for(f, [&] { return !s.body.empty() || s.request_ended; });
    if (closing_ || s.closed) co_return false;
    if (f.expired) {
      local_reply(f, 408, "request body timeout");
      co_return false;
    }
    if (s.body_received > cfg.limits.max_request_body_bytes) {
      local_reply(f, 413, "request body too large");
      engine_->reset(s, NGHTTP2_CANCEL);  // RFC 9113 §8.1: the rest of the body is not wanted
      kick();
      co_return false;
    }
    if (s.body.empty() && s.request_ended) break;
    std::string data;
    data.swap(s.body);
    const std::size_t n = data.size();
    f.head.clear();
    if (chunked) {
      char tmp[20];
      auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, n, 16);
      f.head.append(tmp, end);
      f.head += "\r\n"sv;
    }
    const std::array<net::const_buffer, 3> bufs{
        net::buffer(f.head), net::buffer(data),
        net::buffer("\r\n", chunked ? 2 : 0)};
    arm(f, phase::writing, cfg.timeouts.upstream_response);
    auto [wec, wn] = co_await net::async_write(f.up->sock, bufs, use_tuple);
    if (wec) co_return true;  // the upstream may have answered before it stopped reading
    f.entry.bytes_received += n;
    engine_->consumed(s, n);
    kick();
  }
  if (chunked) {
    arm(f, phase::writing, cfg.timeouts.upstream_response);
    co_await net::async_write(f.up->sock, net::buffer("0\r\n\r\n"sv), use_tuple);
  }
  co_return true;
}

template <class Stream>
awaitable<void> connection_impl<Stream>::send_upstream(forward_state& f,
                                                       const core::route_view& route,
                                                       const routing::decision& decision,
                                                       routing::variant side,
                                                       routing::reason why, std::uint32_t rr) {
  auto& s = *f.s;
  const auto& snap = *f.snap;
  const auto& cfg = *snap.config;
  const auto& ups = snap.upstreams[static_cast<std::size_t>(
      side == routing::variant::canary ? route.canary : route.stable)];
  auto& series = worker_.cells().series(route.metric_series[static_cast<int>(side)]);
  const auto started = steady::now();
  auto fail = [&](unsigned code, metrics::upstream_error e, std::string_view text) {
    f.up.reset();
    if (closing_ || s.closed) return;
    worker_.cells().upstream(ups.metric_id).errors[static_cast<std::size_t>(e)].add();
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(started));
    local_reply(f, code, text);
  };

  // ---- the request head, HTTP/1.1 (RFC 9113 §8.3.1: :authority becomes Host; §8.2.3: the
  // cookie fields are joined into one)
  const bool head_method = s.method == "HEAD";
  bool has_content_length = false;
  for (const auto& [n, v] : s.fields) has_content_length |= n == "content-length";
  const bool chunked = !s.request_ended && !has_content_length;
  auto& h = f.head;
  h.clear();
  h.append(s.method);
  h += ' ';
  h.append(s.path);
  h += " HTTP/1.1\r\nHost: "sv;
  h.append(s.authority);
  h += "\r\n"sv;
  std::string_view forwarded_for;
  bool any_cookie = false;
  for (const auto& [n, v] : s.fields) {
    if (n == "x-forwarded-for") forwarded_for = v;
    if (n == "cookie") any_cookie = true;
    if (dropped_request_field(n)) continue;
    h.append(n);
    h += ": "sv;
    h.append(v);
    h += "\r\n"sv;
  }
  if (any_cookie) {
    h += "Cookie: "sv;
    bool first = true;
    for (const auto& [n, v] : s.fields) {
      if (n != "cookie") continue;
      if (!first) h += "; "sv;
      first = false;
      h.append(v);
    }
    h += "\r\n"sv;
  }
  h += "X-Forwarded-For: "sv;
  if (!forwarded_for.empty()) {
    h.append(forwarded_for);
    h += ", "sv;
  }
  h.append(client_ip_);
  h += https_ ? "\r\nX-Forwarded-Proto: https\r\n"sv : "\r\nX-Forwarded-Proto: http\r\n"sv;
  h += "X-Forwarded-Host: "sv;
  h.append(s.authority);
  h += "\r\n"sv;
  if (chunked) {
    h += "Transfer-Encoding: chunked\r\n"sv;
  } else if (has_content_length || s.body_received != 0) {
    std::uint64_t len = s.body_received;
    for (const auto& [n, v] : s.fields)
      if (n == "content-length") std::from_chars(v.data(), v.data() + v.size(), len);
    h += "Content-Length: "sv;
    append_number(h, len);
    h += "\r\n"sv;
  }
  h += "\r\n"sv;

  // A pooled connection the upstream closed while it was idle fails at the first write or read
  // with nothing answered: a request without a body is sent again once on a new connection
  // (as HTTP/1.1 requests are: http/upstream_failure.h).
  const int upstream_index = side == routing::variant::canary ? route.canary : route.stable;
  auto may_retry = [&](const error_code& ec, bool retried) {
    return !retried && f.up && f.up->reused && s.request_ended && s.body_received == 0 &&
           !f.expired && !closing_ && !s.closed &&
           (ec == bhttp::error::end_of_stream || ec == net::error::connection_reset ||
            ec == net::error::broken_pipe);
  };
  bool sent_whole = true;
  error_code hec;
  for (bool retried = false;; retried = true) {
    arm(f, phase::writing, cfg.timeouts.upstream_response);
    auto [wec, wn] = co_await net::async_write(f.up->sock, net::buffer(h), use_tuple);
    if (wec && may_retry(wec, retried)) {
      f.up.reset();
      if (co_await acquire(f, upstream_index, false, rr) == acquire_status::ok) continue;
    }
    if (wec || !f.up) co_return fail(f.expired ? 504 : 502, metrics::upstream_error::reset,
                                     "upstream connection failed while sending the request");
    if (chunked || s.body_received != 0 || !s.request_ended || has_content_length) {
      if (!co_await send_request_body(f, chunked)) {
        f.up.reset();
        co_return;
      }
      sent_whole = s.request_ended && s.body.empty();
    }

    // ---- the response head; interim (1xx) responses are not relayed
    if (!f.relay) f.relay = worker_.take_buffer();
    hec = {};
    arm(f, phase::upstream, cfg.timeouts.upstream_response);
    for (;;) {
      f.res.emplace();
      f.res->header_limit(max_response_header_bytes);
      f.res->body_limit(boost::none);
      if (head_method) f.res->skip(true);
      for (;;) {
        auto& buf = f.up->buffer;
        if (buf.size() != 0) {
          f.res->body().data = f.relay.get();
          f.res->body().size = core::worker::relay_buffer_size;
          const auto used = f.res->put(buf.data(), hec);
          buf.consume(used);
          if (hec == bhttp::error::need_more)
            hec = {};
          else if (hec || f.res->is_header_done())
            break;
        }
        const std::size_t room = buf.max_size() - buf.size();
        if (room == 0) {
          hec = bhttp::error::header_limit;
          break;
        }
        auto [rec, rn] = co_await f.up->sock.async_read_some(
            buf.prepare(std::min(room, std::max<std::size_t>(512, buf.capacity() - buf.size()))),
            use_tuple);
        if (rec == net::error::eof)
          rec = f.res->got_some() || buf.size() != 0 ? bhttp::error::partial_message
                                                     : bhttp::error::end_of_stream;
        if (rec) {
          hec = rec;
          break;
        }
        buf.commit(rn);
      }
      if (hec) break;
      const unsigned code = f.res->get().result_int();
      if (code >= 200 || code == 101) break;
    }
    if (!hec && f.res->get().result_int() == 101) hec = bhttp::error::bad_status;
    if (hec && may_retry(hec, retried)) {
      f.up.reset();
      if (co_await acquire(f, upstream_index, false, rr) == acquire_status::ok) continue;
      hec = bhttp::error::end_of_stream;
    }
    break;
  }
  if (hec) {
    const auto failure = http::classify_head_failure(f.expired, hec);
    co_return fail(failure.status, failure.error, failure.message);
  }
  if (auto bad = http::validate_response(*f.res); bad.code != 0)
    co_return fail(502, metrics::upstream_error::protocol, "bad upstream response");
  if (closing_ || s.closed) {
    f.up.reset();
    co_return;
  }

  // ---- metrics as for HTTP/1.1, then the head as HEADERS (RFC 9113 §8.2.2: the upstream's
  // connection-specific fields are dropped, names lower-cased)
  auto& res = *f.res;
  const unsigned status = res.get().result_int();
  const auto head_at = steady::now();
  if (ups.outlier) {
    if (status >= 500)
      note_failure(ups, *f.up->target, head_at);
    else
      upstream::record_success(*f.up->target, *ups.outlier, head_at);
  }
  series.observe_latency(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(head_at - started).count()));
  series.by_code[status % 1000].add();
  count_decided(route, side, why, status, micros_since(started));
  f.entry.endpoint = f.up->target->text;
  if (worker_.access_log().enabled())
    f.entry.upstream_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(head_at - f.entry_start).count());

  std::vector<std::string> names;
  std::vector<std::string_view> connection_listed;
  for (const auto& fld : res)
    if (iequals(fld.name_string(), "connection")) {
      std::string_view rest = fld.value();
      while (!rest.empty()) {
        const auto comma = rest.find(',');
        auto token = rest.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
          token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
          token.remove_suffix(1);
        if (!token.empty()) connection_listed.push_back(token);
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    }
  std::vector<response_field> out;
  names.reserve(static_cast<std::size_t>(res.end() - res.begin()) + 1);
  for (const auto& fld : res) {
    const auto name = fld.name_string();
    if (http::is_hop_by_hop(name)) continue;
    bool listed = false;
    for (const auto& t : connection_listed) listed |= iequals(t, name);
    if (listed) continue;
    names.push_back(lower(name));
    out.push_back({names.back(), fld.value()});
  }
  if (!decision.set_cookie.empty()) out.push_back({"set-cookie", decision.set_cookie});
  const bool bodyless = head_method || status == 204 || status == 304;
  // A length-delimited body moves straight from the socket (as in the HTTP/1.1 session); a
  // chunked or close-delimited one through the parser.
  const bool by_length = !bodyless && res.content_length().has_value();
  std::uint64_t remaining = by_length ? *res.content_length() : 0;
  bool upstream_done = bodyless || (by_length ? remaining == 0 : res.is_done());
  std::size_t first_bytes = 0;
  if (!upstream_done && f.up->buffer.size() != 0) {
    res.body().data = f.relay.get();
    res.body().size = core::worker::relay_buffer_size;
    error_code bec;
    const auto used = res.put(f.up->buffer.data(), bec);
    f.up->buffer.consume(used);
    if (bec && bec != bhttp::error::need_buffer && bec != bhttp::error::need_more)
      co_return fail(502, metrics::upstream_error::protocol, "bad upstream response");
    first_bytes = core::worker::relay_buffer_size - res.body().size;
    if (by_length) {
      remaining -= std::min<std::uint64_t>(remaining, first_bytes);
      upstream_done = remaining == 0;
    } else {
      upstream_done = res.is_done();
    }
  }
  engine_->respond(s, status, out, !bodyless && !(upstream_done && first_bytes == 0));
  if (first_bytes != 0) engine_->send_body(s, f.relay.get(), first_bytes, upstream_done);
  kick();

  // ---- the body, as DATA frames while the client's window allows (the data provider defers
  // when the buffer is empty and resumes when bytes arrive)
  while (!upstream_done) {
    co_await wait_for(f, [&] { return s.out_pending() < out_high_water; });
    if (closing_ || s.closed) {
      f.up.reset();
      co_return;
    }
    arm(f, phase::upstream, cfg.timeouts.upstream_response);
    error_code rec;
    std::size_t got = 0;
    if (by_length) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining, core::worker::relay_buffer_size));
      if (f.up->buffer.size() != 0) {
        got = net::buffer_copy(net::buffer(f.relay.get(), want), f.up->buffer.data());
        f.up->buffer.consume(got);
      } else {
        std::tie(rec, got) = co_await f.up->sock.async_read_some(
            net::buffer(f.relay.get(), want), use_tuple);
      }
      remaining -= got;
    } else {
      res.body().data = f.relay.get();
      res.body().size = core::worker::relay_buffer_size;
      std::tie(rec, std::ignore) =
          co_await bhttp::async_read_some(f.up->sock, f.up->buffer, res, use_tuple);
      if (rec == bhttp::error::need_buffer) rec = {};
      got = core::worker::relay_buffer_size - res.body().size;
    }
    if (rec) {
      worker_.cells().upstream(ups.metric_id).errors[static_cast<std::size_t>(
          f.expired                 ? metrics::upstream_error::timeout
          : http::is_parse_error(rec) ? metrics::upstream_error::protocol
                                      : metrics::upstream_error::reset)].add();
      // The head is out: a reset is the only honest signal left (RFC 9113 §8.1).
      engine_->reset(s, NGHTTP2_INTERNAL_ERROR);
      kick();
      f.up.reset();
      log(f, status, false);
      co_return;
    }
    upstream_done = by_length ? remaining == 0 : res.is_done();
    if (got != 0 || upstream_done) engine_->send_body(s, f.relay.get(), got, upstream_done);
    kick();
  }
  f.at = phase::none;
  f.deadline_ns = 0;
  if (sent_whole && res.keep_alive() && !res.need_eof() && f.up->buffer.size() == 0)
    worker_.pool().put(std::move(f.up), steady::now());
  else
    f.up.reset();
  // The stream ends when nghttp2 has sent the last DATA frame; the log line is written now.
  log(f, status, false);
}

// A stream to the first endpoint in round-robin order that takes one (into f.h2). A refused
// connect holds the endpoint off and counts toward its ejection, as for HTTP/1.1 upstreams;
// the pool bounds the connect itself (upstream_connect).
template <class Stream>
awaitable<acquire_status> connection_impl<Stream>::open_h2c(forward_state& f, int upstream_index,
                                                            const request_head& head,
                                                            bool has_body) {
  const auto& snap = *f.snap;
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const auto& cfg = *snap.config;
  const auto now = steady::now();
  const client_limits limits{cfg.timeouts.upstream_connect, cfg.timeouts.upstream_idle};
  bool tried = false;
  upstream::round_robin_walk walk(u.endpoints,
                                  worker_.next_rr(static_cast<std::size_t>(upstream_index)));
  f.at = phase::connecting;
  f.deadline_ns = 0;
  while (const auto* next = walk.next(now)) {
    const auto& ep = *next;
    tried = true;
    const auto ec = co_await worker_.h2_pool().open(ep, head, has_body, limits, f.h2);
    if (!ec) co_return acquire_status::ok;
    if (closing_ || f.s->closed) co_return acquire_status::connect_failed;
    auto& errors = worker_.cells().upstream(u.metric_id).errors;
    if (ec == client_errc::connect_timeout) {
      errors[static_cast<std::size_t>(metrics::upstream_error::timeout)].add();
      co_return acquire_status::timeout;
    }
    errors[static_cast<std::size_t>(ec == client_errc::connect_failed
                                        ? metrics::upstream_error::connect
                                        : metrics::upstream_error::protocol)]
        .add();
    spdlog::warn("upstream {} endpoint {}: h2c connect failed: {}", u.name, ep->text,
                 ec.message());
    if (u.outlier) note_failure(u, *ep, now);
    ep->mark_down(now, connect_failure_holdoff);
  }
  co_return tried ? acquire_status::connect_failed : acquire_status::none_up;
}

// No client_body_idle here: the upstream has the request head from the start, so a client that
// stays silent may be waiting on its answer (a gRPC stream); upstream_response bounds the wait
// for the response head and for each chunk the upstream must take, and (from the request's end)
// each wait for response DATA.
template <class Stream>
awaitable<void> connection_impl<Stream>::pump_h2c(forward_state& f,
                                                  std::shared_ptr<client_stream> h2) {
  auto& s = *f.s;
  const auto& cfg = *f.snap->config;
  for (;;) {
    while (s.body.empty() && !s.request_ended && !f.pump_stop && !gone(f)) {
      f.pump_wait.expires_at(steady::time_point::max());
      co_await f.pump_wait.async_wait(use_tuple);
    }
    if (f.pump_stop || gone(f)) break;
    if (s.body_received > cfg.limits.max_request_body_bytes) {
      f.pump_too_large = true;
      h2->expire();  // the relay wakes and answers 413 (or resets once the head is out)
      break;
    }
    std::string data;
    data.swap(s.body);
    const bool last = s.request_ended;
    f.pump_deadline_ns = worker_.now_ns() + to_ns(cfg.timeouts.upstream_response);
    const auto ec = co_await h2->send_body(data, last);
    f.pump_deadline_ns = 0;
    // An upstream that stops taking the body may still answer: the relay sees what it sends.
    if (ec || f.pump_stop) break;
    f.entry.bytes_received += data.size();
    engine_->consumed(s, data.size());
    kick();
    if (last) break;
  }
  f.pump_deadline_ns = 0;
  f.pump_running = false;
  // The request is whole (or abandoned): the upstream owes the rest of the response now.
  if (f.relay_unbounded) arm(f, phase::upstream, cfg.timeouts.upstream_response);
  f.wait.cancel();
}

template <class Stream>
awaitable<void> connection_impl<Stream>::join_pump(forward_state& f) {
  if (f.pump_running) {
    // The rest of the request is not wanted: the pump leaves its wait or send_body now.
    f.pump_stop = true;
    f.pump_wait.cancel();
    while (f.pump_running) {
      f.pumped->expire();  // a no-op on the wire once the stream ended
      f.wait.expires_at(steady::time_point::max());
      co_await f.wait.async_wait(use_tuple);
    }
  }
  f.pumped.reset();
}

// HTTP/2 stream to h2c stream: the request's fields as they came (http2/upstream_head.h), the
// body as DATA within both windows (a chunk goes back to the client's window once the upstream
// took it), the response's HEADERS, DATA and trailers as they come (a trailers-only response
// stays one HEADERS frame), grpc-status counted. The analysis' decided cells are counted when
// the response ends (the gRPC status is only known then), before its last frame is queued.
template <class Stream>
awaitable<void> connection_impl<Stream>::forward_h2c(forward_state& f,
                                                     const core::route_view& route,
                                                     const routing::decision& decision,
                                                     routing::variant side, routing::reason why) {
  auto& s = *f.s;
  const auto& snap = *f.snap;
  const auto& cfg = *snap.config;
  auto upstream_index = [&](routing::variant v) {
    return v == routing::variant::canary ? route.canary : route.stable;
  };
  const auto now = steady::now();
  auto any_up = [&](routing::variant v) {
    return snap.upstreams[static_cast<std::size_t>(upstream_index(v))].any_up(now);
  };
  request_head head;
  build_request(head, s.method, s.authority, s.path, s.fields, client_ip_, https_);
  const bool has_body = !s.request_ended || s.body_received != 0;
  auto acquired = co_await open_h2c(f, upstream_index(side), head, has_body);
  if (acquired == acquire_status::connect_failed && !gone(f)) {
    if (const auto other = routing::failover_side(side, route.canary_active, any_up);
        other && snap.upstreams[static_cast<std::size_t>(upstream_index(*other))].h2c) {
      side = *other;
      why = routing::reason::failover;
      acquired = co_await open_h2c(f, upstream_index(side), head, has_body);
    }
  }
  const auto& ups = snap.upstreams[static_cast<std::size_t>(upstream_index(side))];
  auto& series = worker_.cells().series(route.metric_series[static_cast<int>(side)]);
  f.entry.variant = routing::to_string(side);
  f.entry.reason = routing::to_string(why);
  f.entry.upstream = ups.name;
  auto drop = [&] {
    if (!f.h2) return;
    f.h2->reset();  // a no-op once the stream ended
    f.h2.reset();
  };
  if (closing_ || s.closed) co_return drop();  // the client is gone: nobody to answer
  if (acquired != acquire_status::ok) {
    const unsigned code = acquired == acquire_status::timeout ? 504u : 503u;
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(now));
    co_return local_reply(
        f, code, code == 504 ? "upstream connect timeout" : "no upstream endpoint is up");
  }
  worker_.cells()
      .route(route.metric_route_id)
      .decisions[static_cast<int>(side)][static_cast<int>(why)]
      .add();
  const auto started = steady::now();
  auto error_of = [](std::error_code ec) {
    return ec == client_errc::timeout    ? metrics::upstream_error::timeout
           : ec == client_errc::protocol ? metrics::upstream_error::protocol
                                         : metrics::upstream_error::reset;
  };
  auto fail = [&](unsigned code, metrics::upstream_error e, std::string_view text) {
    drop();
    if (closing_ || s.closed) return;
    worker_.cells().upstream(ups.metric_id).errors[static_cast<std::size_t>(e)].add();
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(started));
    local_reply(f, code, text);
  };

  // ---- the body, beside the response: a bidirectional stream (gRPC) sends its next message
  // only after the upstream's answer to the previous one, so neither side may wait for the
  // other to end (RFC 9113 §5.1: on an open stream both endpoints may send frames).
  if (has_body) {
    f.pumped = f.h2;
    f.pump_running = true;
    // Whatever way the pump ends (an exception too), join_pump must not wait forever.
    net::co_spawn(worker_.context().get_executor(), pump_h2c(f, f.pumped),
                  [fp = &f](std::exception_ptr) {
                    fp->pump_running = false;
                    fp->wait.cancel();
                  });
  }
  // ---- the response head
  arm(f, phase::upstream, cfg.timeouts.upstream_response);
  auto hec = co_await f.h2->read_head();
  if (hec == client_errc::refused && !has_body && !gone(f)) {
    // Refused (REFUSED_STREAM, or above a GOAWAY's last stream id): never processed, so once
    // more on another connection is safe (RFC 9113 §8.7).
    f.h2.reset();
    if (co_await open_h2c(f, upstream_index(side), head, false) == acquire_status::ok) {
      arm(f, phase::upstream, cfg.timeouts.upstream_response);
      hec = co_await f.h2->read_head();
    }
  }
  if (closing_ || s.closed) co_return drop();
  if (f.pump_too_large) {
    drop();
    local_reply(f, 413, "request body too large");
    engine_->reset(s, NGHTTP2_CANCEL);  // RFC 9113 §8.1: the rest of the body is not wanted
    kick();
    co_return;
  }
  if (hec || !f.h2) {
    const bool timeout = hec == client_errc::timeout;
    co_return fail(timeout ? 504 : 502, error_of(hec),
                   timeout ? "upstream response timeout" : "upstream stream failed");
  }
  const auto& rh = f.h2->head();
  const unsigned status = rh.status;
  const auto head_at = steady::now();
  auto& target = *f.h2->target();
  if (ups.outlier) {
    if (status >= 500)
      note_failure(ups, target, head_at);
    else
      upstream::record_success(target, *ups.outlier, head_at);
  }
  series.observe_latency(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(head_at - started).count()));
  series.by_code[status % 1000].add();
  f.entry.endpoint = target.text;
  if (worker_.access_log().enabled())
    f.entry.upstream_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(head_at - f.entry_start).count());
  bool counted = false;
  auto count_end = [&] {
    if (counted) return;
    counted = true;
    bool grpc_bad = false;
    if (const auto g = grpc_status(rh, f.h2->trailers())) {
      series.grpc_status[std::min<unsigned>(*g, 17)].add();
      grpc_bad = grpc_status_is_bad(*g);
      if (grpc_bad && (status < 500 || status > 599)) series.grpc_errors.add();
    }
    count_decided(route, side, why, status, micros_since(started), grpc_bad);
  };

  std::vector<response_field> out;
  out.reserve(rh.fields.size() + 1);
  for (const auto& fld : rh.fields) {
    // An upstream's connection-specific field would make the response malformed (§8.2.2).
    if (http::is_hop_by_hop(fld.name) && fld.name != "content-length") continue;
    out.push_back({fld.name, fld.value});
  }
  if (!decision.set_cookie.empty()) out.push_back({"set-cookie", decision.set_cookie});
  bool end = f.h2->ended();
  if (end) count_end();
  engine_->respond(s, status, out, !end);
  kick();

  // ---- DATA and trailers, while the client's window lets the buffered ones out
  std::string chunk;
  while (!end) {
    co_await wait_for(f, [&] { return s.out_pending() < out_high_water; });
    if (closing_ || s.closed) co_return drop();
    // While the request is still open the upstream may be waiting on the client's next
    // message (a bidirectional stream): its silence is not cut then; the pump arms
    // upstream_response when the request ends.
    if (f.pump_running) {
      f.at = phase::upstream;
      f.deadline_ns = 0;
      f.relay_unbounded = true;
    } else {
      arm(f, phase::upstream, cfg.timeouts.upstream_response);
    }
    auto bec = co_await f.h2->read_body(chunk, end);
    f.relay_unbounded = false;
    if (bec) {
      if (f.pump_too_large) {
        // The pump cut the stream (the head is out, so no 413): not the upstream's fault.
        engine_->reset(s, NGHTTP2_CANCEL);
        kick();
        drop();
        log(f, status, false);
        co_return;
      }
      worker_.cells().upstream(ups.metric_id).errors[static_cast<std::size_t>(error_of(bec))].add();
      count_decided(route, side, why, status, micros_since(started), true);
      // The head is out: a reset is the only honest signal left (RFC 9113 §8.1).
      engine_->reset(s, NGHTTP2_INTERNAL_ERROR);
      kick();
      drop();
      log(f, status, false);
      co_return;
    }
    if (end) count_end();
    const auto& trailers = f.h2->trailers();
    const bool with_trailers = end && !trailers.empty();
    if (!chunk.empty() || (end && !with_trailers))
      engine_->send_body(s, chunk.data(), chunk.size(), end && !with_trailers);
    if (with_trailers) {
      std::vector<std::pair<std::string, std::string>> t;
      t.reserve(trailers.size());
      for (const auto& fld : trailers)
        if (!http::is_hop_by_hop(fld.name)) t.emplace_back(fld.name, fld.value);
      engine_->send_trailers(s, std::move(t));
    }
    kick();
  }
  f.at = phase::none;
  f.deadline_ns = 0;
  f.h2.reset();
  log(f, status, false);
}

}  // namespace

std::unique_ptr<connection> make_connection(core::worker& worker, socket_type& sock,
                                            std::string_view client_ip) {
  return std::make_unique<connection_impl<socket_type>>(worker, sock, sock, client_ip, false);
}

std::unique_ptr<connection> make_connection(core::worker& worker, tls_stream& sock,
                                            socket_type& lowest, std::string_view client_ip) {
  return std::make_unique<connection_impl<tls_stream>>(worker, sock, lowest, client_ip, true);
}

}  // namespace canary::http2
