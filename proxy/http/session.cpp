// The request path: read a request head, route it, exchange it with an upstream, relay the
// response; repeat while keep-alive holds. Reads as the protocol does, top to bottom, in one
// coroutine per connection. Per message there is no nested coroutine on the common path (their
// frames would defeat Asio's frame recycling): writes are awaited inline, a pooled upstream
// connection is taken synchronously, and only new connections, request bodies and local replies
// use helper coroutines. Every choice on the way (side, failover, endpoint, retry, framing,
// keep-alive, the forwarded heads) is a pure function of its own file; this file is the I/O.
// Errors are error_codes; every failure ends in a local reply or a close.
#include "http/session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/flat_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <optional>
#include <type_traits>

#include "core/worker.h"
#include "http/accounting.h"
#include "http/exchange.h"
#include "http/forward_head.h"
#include "http/header_rules.h"
#include "http/local_reply.h"
#include "http/mirror.h"
#include "http/request_inputs.h"
#include "http/request_rules.h"
#include "http/response_plan.h"
#include "http/tunnel.h"
#include "http/upstream_failure.h"
#include "http2/server.h"
#include "http2/server_engine.h"
#include "http2/upstream_head.h"
#include "log/access_log.h"
#include "routing/failover.h"
#include "tls/context.h"
#include "upstream/outlier.h"
#include "upstream/pool.h"
#include "upstream/select.h"

namespace canary::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using error_code = boost::system::error_code;
using namespace std::string_view_literals;
using steady = std::chrono::steady_clock;

namespace {

std::uint64_t micros_since(steady::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - t).count());
}

constexpr std::size_t head_read_size = 1024;  // per read while a head arrives (malloc-cache sized)
constexpr std::size_t max_response_header_bytes = 64 * 1024;
constexpr std::size_t combine_limit = 16 * 1024;  // body bytes sent in the same write as the head
// A refused endpoint is not tried again for this long (passive health).
constexpr auto connect_failure_holdoff = std::chrono::seconds(1);
constexpr auto linger_timeout = std::chrono::seconds(1);

std::int64_t to_ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

void append_number(std::string& out, std::uint64_t n) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, n);
  out.append(tmp, end);
}

// The textual address, without inet_ntop (glibc formats IPv4 through sprintf: ~1 k
// instructions, per connection).
std::string address_text(const net::ip::address& a) {
  if (!a.is_v4()) return a.to_string();
  const auto b = a.to_v4().to_bytes();
  std::string out;
  out.reserve(15);
  for (std::size_t i = 0; i < 4; ++i) {
    const unsigned v = b[i];
    if (i != 0) out += '.';
    if (v >= 100) out += static_cast<char>('0' + v / 100);
    if (v >= 10) out += static_cast<char>('0' + v / 10 % 10);
    out += static_cast<char>('0' + v % 10);
  }
  return out;
}

enum class acquire_status { ok, none_up, connect_failed, timeout };

constexpr std::size_t err(metrics::upstream_error e) { return static_cast<std::size_t>(e); }

// "1a2b\r\n": the chunk-size line of a chunk of n bytes.
struct chunk_line {
  char text[24];
  std::size_t size = 0;
  explicit chunk_line(std::size_t n) {
    auto [end, ec] = std::to_chars(text, text + 18, n, 16);
    *end++ = '\r';
    *end++ = '\n';
    size = static_cast<std::size_t>(end - text);
  }
};
constexpr std::string_view crlf = "\r\n";
constexpr std::string_view last_chunk = "0\r\n\r\n";

// n bytes of data appended to `out`, as one chunk when `chunked`.
void append_body(std::string& out, const char* data, std::size_t n, bool chunked) {
  if (n == 0) return;
  if (chunked) {
    const chunk_line line(n);
    out.append(line.text, line.size);
  }
  out.append(data, n);
  if (chunked) out.append(crlf);
}

// n bytes of data, framed as one chunk when `chunked` (the size line, the data, CRLF), else as
// they are. `line` must be chunk_line(n) and outlive the write.
std::array<net::const_buffer, 3> body_buffers(const chunk_line& line, const char* data,
                                              std::size_t n, bool chunked) {
  return {net::buffer(line.text, chunked ? line.size : 0), net::buffer(data, n),
          net::buffer(crlf.data(), chunked ? crlf.size() : 0)};
}

}  // namespace

// What the session's owner (the worker) may ask of it, whatever its stream.
struct session::state {
  explicit state(core::worker& worker) : worker_(worker) {}
  virtual ~state() = default;
  state(const state&) = delete;
  state& operator=(const state&) = delete;
  virtual awaitable<void> serve(std::unique_ptr<session> owner) = 0;
  virtual void on_tick(std::int64_t now_ns) = 0;
  virtual void on_drain() = 0;
  virtual void close() = 0;

  core::worker& worker_;
};

namespace {

// Asio's SSL stream encrypts one buffer of a sequence per write_some: a chunk (size line, data,
// CRLF) would leave as three TLS records and three sends. flat_stream copies a small sequence
// into one buffer first (up to 64 KiB), so each write is one record and one send, as on TCP.
using tls_stream = beast::flat_stream<net::ssl::stream<socket_type>>;

// The TCP socket under a client stream: socket options, cancel, close, half-close.
socket_type& lowest(socket_type& s) { return s; }
socket_type& lowest(tls_stream& s) { return s.next_layer().next_layer(); }

// One request path for both listeners: the client stream is a plain socket or a TLS stream.
// Everything below is written once; only the handshake and X-Forwarded-Proto differ.
template <class Stream>
struct basic_state final : session::state {
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

  template <class... StreamArgs>
  basic_state(core::worker& worker, const tcp::endpoint& peer,
              std::shared_ptr<const tls::context_set> tls, StreamArgs&&... stream_args)
      : state(worker),
        tls_(std::move(tls)),
        sock_(std::forward<StreamArgs>(stream_args)...),
        buf_(std::max<std::size_t>(worker_.current()->config->limits.max_request_header_bytes +
                                       4096,
                                   64 * 1024)),
        client_ip_(address_text(peer.address())) {}
  ~basic_state() override {
    worker_.give_exchange(std::move(exchange_));
    worker_.give_buffer(std::move(relay_));
    worker_.give_buffer(std::move(relay_back_));
  }

  // Declared before the stream, so the contexts outlive the SSL object that points into them.
  std::shared_ptr<const tls::context_set> tls_;
  Stream sock_;
  beast::flat_buffer buf_;                // bounded: a head over the limit is a 431, never a throw
  std::unique_ptr<exchange> exchange_;    // the worker's, while a request is in progress
  std::unique_ptr<upstream::connection> up_;
  std::shared_ptr<http2::client_stream> up2_;  // the request's stream to an h2c upstream
  std::unique_ptr<char[]> relay_;  // the worker's, while a body moves
  std::unique_ptr<char[]> relay_back_;  // the worker's, for a tunnel's second direction
  // The current request's Upgrade value (upgrade_request); after a 101 to it, what the tunnel
  // needs once exchange_once() has returned. Members, not locals: exchange_once's frame must
  // stay small enough for Asio's frame recycling (a frame over ~1 KB is malloc'ed per request).
  std::string_view upgrade_;
  metrics::series_cells* tunnel_series_ = nullptr;
  std::shared_ptr<const core::snapshot> tunnel_snap_;  // the access-log fields point into it
  std::unique_ptr<mirror_copy> mirror_copy_;  // this request's shadow copy (http/mirror.h)
  std::string client_ip_;
  // After ALPN h2 or the h2c preface: the connection is HTTP/2's (http2/server.h).
  std::unique_ptr<http2::connection> h2_;
  std::int64_t deadline_ns_ = 0;
  session_phase phase_ = session_phase::idle;
  bool expired_ = false;
  bool nodelay_ = false;
  std::uint8_t client_writes_ = 0;

  void arm(session_phase p, std::chrono::milliseconds d) { resume(p, worker_.now_ns() + to_ns(d)); }
  // Back to a phase whose deadline was set earlier (it is not extended).
  void resume(session_phase p, std::int64_t deadline_ns) {
    phase_ = p;
    deadline_ns_ = deadline_ns;
    expired_ = false;
  }
  // A write to the client under client_idle, counted for the access log. Returns the write
  // itself, awaited inline by the caller (no coroutine frame of its own).
  template <class Buffers>
  auto write_client(const Buffers& b) {
    arm(session_phase::writing, worker_.current()->config->timeouts.client_idle);
    exchange_->entry.bytes_sent += net::buffer_size(b);
    before_client_write();
    return net::async_write(sock_, b, use_tuple);
  }
  // Nagle would hold a small write while an earlier one is unacknowledged (up to the peer's
  // delayed ACK, ~40 ms): TCP_NODELAY goes on before the second write to the client, not at
  // accept (a connection with a single response saves the syscall, as nginx's tcp_nodelay does).
  void before_client_write() {
    if (nodelay_) return;
    if (client_writes_++ == 0) return;
    error_code ignored;
    lowest(sock_).set_option(tcp::no_delay(true), ignored);
    nodelay_ = true;
  }
  char* relay_buffer() {
    if (!relay_) relay_ = worker_.take_buffer();
    return relay_.get();
  }
  void end_exchange() {
    worker_.give_buffer(std::move(relay_));
    up_.reset();
    if (up2_) {
      up2_->reset();  // a no-op once the stream ended
      up2_.reset();
    }
  }

  // `owner` keeps the session alive exactly as long as this coroutine (one frame, not two).
  awaitable<void> serve(std::unique_ptr<session> owner) override;
  void on_tick(std::int64_t now_ns) override;
  void on_drain() override;
  void close() override;
  awaitable<bool> exchange_once();
  awaitable<bool> read_preface();
  routing::decision decide(const core::route_view& route, std::size_t route_index);
  // The analysis' per-variant counts (metrics/cells.h decided_cells) at the end of a request.
  void count_decided(const core::route_view& route, routing::variant side, routing::reason why,
                     unsigned status, std::uint64_t micros, bool grpc_bad = false);
  acquire_status take_pooled(const core::snapshot& snap, int upstream_index, steady::time_point now,
                             std::uint32_t& start);
  awaitable<acquire_status> connect(const core::snapshot& snap, int upstream_index, bool allow_pool,
                                    std::uint32_t start);
  awaitable<bool> relay_response_body(const config::timeouts_config& t,
                                      const core::upstream_view& ups, framing out,
                                      std::uint64_t remaining);
  template <bool to_h2>
  awaitable<body_result> relay_request_body(const config::timeouts_config& t, bool chunked,
                                            std::uint64_t& sent);
  // A request routed to an h2c upstream: exchange_once() leaves it here and returns; serve()
  // runs exchange_h2() from its own frame, so the HTTP/1.1 path's frame does not grow.
  struct h2c_call {
    std::shared_ptr<const core::snapshot> snap;
    std::size_t route_index = 0;
    routing::decision decision;
    routing::variant side = routing::variant::stable;
    routing::reason why = routing::reason::no_canary;
    bool has_body = false;
    bool client_keep = false;
  };
  std::unique_ptr<h2c_call> h2c_call_;
  awaitable<bool> exchange_h2();
  awaitable<acquire_status> open_h2(const core::snapshot& snap, int upstream_index,
                                    const http2::request_head& head, bool has_body);
  awaitable<void> tunnel(const config::timeouts_config& t, metrics::series_cells& series);
  awaitable<bool> refuse(unsigned code, std::string_view text, bool keep_possible);
  awaitable<void> local_reply(unsigned code, std::string_view text, bool close);
  awaitable<void> lingering_close();
  void count_upstream_error(const core::upstream_view& u, metrics::upstream_error e) {
    worker_.cells().upstream(u.metric_id).errors[err(e)].add();
  }
  void record_response_head(const core::upstream_view& ups, metrics::series_cells& series,
                            unsigned status, steady::time_point started, std::uint64_t body_sent,
                            upstream::endpoint& target);
  std::optional<std::size_t> take_buffered_body();
  void note_failure(const core::upstream_view& u, upstream::endpoint& ep, steady::time_point now);
  void log_request(unsigned status, bool local);
  void release_when_idle();
};

}  // namespace

session::session(core::worker& worker, socket_type sock, const tcp::endpoint& peer)
    : st_(std::make_unique<basic_state<socket_type>>(worker, peer, nullptr, std::move(sock))) {
  worker.attach(this);
}

session::session(core::worker& worker, socket_type sock, const tcp::endpoint& peer,
                 std::shared_ptr<const tls::context_set> tls)
    : st_(std::make_unique<basic_state<tls_stream>>(worker, peer, tls, std::move(sock),
                                                    tls->initial())) {
  worker.attach(this);
}

session::~session() {
  auto& worker = st_->worker_;
  st_.reset();
  worker.detach(this);
  worker.shared().connections.fetch_sub(1, std::memory_order_relaxed);
  worker.cells().connection_closed();
}

awaitable<void> session::run(std::unique_ptr<session> self) {
  auto& st = *self->st_;
  return st.serve(std::move(self));
}

void session::on_tick(std::int64_t now_ns) { st_->on_tick(now_ns); }
void session::close() { st_->close(); }
void session::on_drain() { st_->on_drain(); }

template <class Stream>
void basic_state<Stream>::on_tick(std::int64_t now_ns) {
  if (h2_) return h2_->on_tick(now_ns);
  auto& s = *this;
  if (s.deadline_ns_ == 0 || now_ns < s.deadline_ns_) return;
  s.deadline_ns_ = 0;
  s.expired_ = true;
  error_code ec;
  switch (s.phase_) {
    case session_phase::header:
    case session_phase::client_body:
      lowest(s.sock_).cancel(ec);  // the session answers 408 (a handshake ends)
      break;
    case session_phase::connecting:
    case session_phase::upstream_response:
      if (s.up_) s.up_->sock.close(ec);  // the session answers 504
      if (s.up2_) s.up2_->expire();
      break;
    case session_phase::idle:
    case session_phase::upstream_body:
    case session_phase::writing:
    case session_phase::tunnel:
      lowest(s.sock_).close(ec);
      if (s.up_) s.up_->sock.close(ec);
      if (s.up2_) s.up2_->expire();
      break;
  }
}

template <class Stream>
void basic_state<Stream>::close() {
  if (h2_) h2_->close();
  error_code ec;
  lowest(sock_).close(ec);
  if (up_) up_->sock.close(ec);
  if (up2_) up2_->expire();
}

template <class Stream>
void basic_state<Stream>::on_drain() {
  if (h2_) return h2_->on_drain();
  if (phase_ == session_phase::idle) {
    error_code ec;
    lowest(sock_).close(ec);
  }
}

awaitable<void> reject_over_limit(socket_type sock) {
  static constexpr std::string_view reply =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
      "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";
  co_await net::async_write(sock, net::buffer(reply), use_tuple);
  error_code ec;
  sock.shutdown(tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

template <class Stream>
awaitable<void> basic_state<Stream>::serve([[maybe_unused]] std::unique_ptr<session> owner) {
  if constexpr (is_tls) {
    // The handshake is part of the first head: both within client_header (a slow handshake is
    // slowloris too). The sweep cancels it at the deadline.
    arm(session_phase::header, worker_.current()->config->timeouts.client_header);
    auto [ec] =
        co_await sock_.next_layer().async_handshake(net::ssl::stream_base::server, use_tuple);
    if (ec) {
      worker_.cells().tls_handshake(expired_ ? 2 : 1);
      co_return;
    }
    worker_.cells().tls_handshake(0);
    if (tls::negotiated_h2(sock_.next_layer().native_handle())) {
      h2_ = http2::make_connection(worker_, sock_, lowest(sock_), client_ip_);
      co_await h2_->run({});
      co_return;
    }
  }
  [[maybe_unused]] bool first = true;
  for (;;) {
    if (buf_.size() == 0) {
      // A response written before the drain began promised keep-alive: during a binary
      // upgrade's idle grace the next request is still read (and answered with close).
      if (worker_.closing_idle()) co_return;
      // Keep-alive idle: a read, not a readiness wait. Asio re-arms epoll (epoll_ctl) for every
      // wait but not for a read, which it also never tries on a socket known to be drained:
      // one syscall less per request, for a small buffer held while idle.
      arm(session_phase::idle, worker_.current()->config->timeouts.client_idle);
      auto [ec, n] = co_await sock_.async_read_some(buf_.prepare(head_read_size), use_tuple);
      if (ec) co_return;
      buf_.commit(n);
      worker_.refresh_now();
    }
    if constexpr (!is_tls) {
      // Prior-knowledge HTTP/2 (RFC 9113 §3.3) starts with the preface; without h2c it stays a
      // malformed HTTP/1.1 request (400).
      if (std::exchange(first, false) && worker_.current()->config->http2.h2c &&
          co_await read_preface()) {
        const auto data = buf_.data();
        h2_ = http2::make_connection(worker_, sock_, client_ip_);
        co_await h2_->run(
            std::string_view(static_cast<const char*>(data.data()), data.size()));
        co_return;
      }
    }
    if (!co_await exchange_once()) {
      if (h2c_call_) {
        if (co_await exchange_h2()) continue;
        co_return;
      }
      if (tunnel_series_) co_await tunnel(tunnel_snap_->config->timeouts, *tunnel_series_);
      co_return;
    }
  }
}

// Whether the connection opens with the HTTP/2 preface: reads on (under client_header) while
// what arrived is a prefix of it.
template <class Stream>
awaitable<bool> basic_state<Stream>::read_preface() {
  const auto& preface = http2::client_preface;
  arm(session_phase::header, worker_.current()->config->timeouts.client_header);
  for (;;) {
    const auto data = buf_.data();
    const std::string_view got(static_cast<const char*>(data.data()),
                               std::min(data.size(), preface.size()));
    if (got != preface.substr(0, got.size())) co_return false;
    if (got.size() == preface.size()) co_return true;
    auto [ec, n] = co_await sock_.async_read_some(buf_.prepare(head_read_size), use_tuple);
    if (ec) co_return false;
    buf_.commit(n);
  }
}

// One request and its response. True when the connection stays open for the next. A coroutine
// of its own so that an idle connection holds only serve()'s small frame, not this one.
template <class Stream>
awaitable<bool> basic_state<Stream>::exchange_once() {
  std::shared_ptr<const core::snapshot> snap_ref = worker_.current();
  const core::snapshot& snap = *snap_ref;
  const auto& cfg = *snap.config;
  if (!exchange_) exchange_ = worker_.take_exchange();
  auto& ex = *exchange_;

  // ---- read the request head (the whole head within client_header)
  arm(session_phase::header, cfg.timeouts.client_header);
  ex.start_request();
  if (worker_.access_log().enabled()) {
    ex.entry.time = std::chrono::system_clock::now();
    ex.entry_start = steady::now();
  }
  ex.req->header_limit(static_cast<std::uint32_t>(cfg.limits.max_request_header_bytes));
  ex.req->body_limit(cfg.limits.max_request_body_bytes);
  bool first_read = buf_.size() == 0;
  for (;;) {
    if (buf_.size() != 0) {
      const auto step = parse_request_head(*ex.req, buf_);
      if (step.what == head_step::state::done) break;
      if (step.what == head_step::state::error) {
        const auto reply = reply_for_head_error(step);
        co_await local_reply(reply.code, reply.message, true);
        co_return false;
      }
    }
    if (buf_.size() >= buf_.max_size()) {
      co_await local_reply(431, "request header too large", true);
      co_return false;
    }
    auto [ec, n] = co_await sock_.async_read_some(
        buf_.prepare(std::min(head_read_size, buf_.max_size() - buf_.size())), use_tuple);
    if (ec) {
      // A head cut short by the deadline gets its 408; a closed or reset connection nothing.
      if (expired_ && !(first_read && buf_.size() == 0))
        co_await local_reply(408, "request header timeout", true);
      co_return false;
    }
    buf_.commit(n);
    first_read = false;
  }
  if (auto bad = validate_request(*ex.req, cfg.limits); bad.code != 0) {
    co_await local_reply(bad.code, bad.message, true);
    co_return false;
  }
  const auto& r = ex.req->get();
  const bool has_body = ex.req->chunked() || (ex.req->content_length() && *ex.req->content_length() > 0);
  const bool client_keep = ex.req->keep_alive() && !worker_.draining();
  const bool keep_possible = client_keep && !has_body;  // after a local reply
  // An Upgrade (WebSocket) is routed like any request; only a 101 to it turns the connection
  // into a tunnel.
  upgrade_ = upgrade_request(*ex.req, has_body);

  // ---- route: which route, which side (the decided one, or the other when it has no endpoint
  // up: routing/failover.h)
  const int ri = snap.table.match(r[bhttp::field::host], r.target());
  if (ri < 0) co_return co_await refuse(404, "no route for this host and path", keep_possible);
  const auto& route = snap.routes[static_cast<std::size_t>(ri)];
  ex.entry.route = route.rule.route_name;
  const auto decision = decide(route, static_cast<std::size_t>(ri));
  auto upstream_index = [&](routing::variant v) {
    return v == routing::variant::canary ? route.canary : route.stable;
  };
  auto upstream_of = [&](routing::variant v) -> const core::upstream_view& {
    return snap.upstreams[static_cast<std::size_t>(upstream_index(v))];
  };
  const auto now = steady::now();
  auto any_up = [&](routing::variant v) { return upstream_of(v).any_up(now); };
  const auto choice = routing::choose_side(decision.side, decision.why, route.canary_active, any_up);
  auto side = choice.side;
  auto why = choice.why;
  if (!choice.available) {
    worker_.cells().series(route.metric_series[static_cast<int>(side)]).by_code[503].add();
    count_decided(route, side, why, 503, 0);
    co_return co_await refuse(503, "no upstream endpoint is up", keep_possible);
  }
  if (upstream_of(side).h2c) {
    h2c_call_.reset(new h2c_call{std::move(snap_ref), static_cast<std::size_t>(ri), decision,
                                 side, why, has_body, client_keep});
    co_return false;
  }

  // ---- connect: a pooled connection (synchronously) or a new one. The round-robin choice is
  // made once: a pooled connection to it, else a new one from the same position (so that new
  // connections rotate across endpoints too). Every endpoint refusing fails over once.
  std::uint32_t rr = 0;
  auto acquired = take_pooled(snap, upstream_index(side), now, rr);
  if (acquired != acquire_status::ok) acquired = co_await connect(snap, upstream_index(side), true, rr);
  if (acquired == acquire_status::connect_failed) {
    if (const auto other = routing::failover_side(side, route.canary_active, any_up)) {
      side = *other;
      why = routing::reason::failover;
      acquired = take_pooled(snap, upstream_index(side), now, rr);
      if (acquired != acquire_status::ok) acquired = co_await connect(snap, upstream_index(side), true, rr);
    }
  }
  const auto& ups = upstream_of(side);
  auto& series = worker_.cells().series(route.metric_series[static_cast<int>(side)]);
  ex.entry.variant = routing::to_string(side);
  ex.entry.reason = routing::to_string(why);
  ex.entry.upstream = ups.name;
  if (acquired != acquire_status::ok) {
    // Every endpoint refusing is "no endpoint up", whether we learnt it now or from an earlier
    // failure: the client gets the same answer either way.
    const unsigned code = acquired == acquire_status::timeout ? 504u : 503u;
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(now));
    co_return co_await refuse(
        code, code == 504 ? "upstream connect timeout" : "no upstream endpoint is up",
        keep_possible);
  }
  worker_.cells()
      .route(route.metric_route_id)
      .decisions[static_cast<int>(side)][static_cast<int>(why)]
      .add();

  // ---- send the request, read the response head. A pooled connection that died before
  // answering is retried once on a fresh one when that is safe (http/upstream_failure.h).
  const auto started = steady::now();
  const bool head_method = r.method() == bhttp::verb::head;
  attempt_state attempt;
  bool request_sent_whole = true;
  build_request_head(ex.head, *ex.req, client_ip_, is_tls, upgrade_);
  // An Upgrade request is never copied: its copy would open a tunnel to the canary.
  if (upgrade_.empty())
    mirror_copy_ = worker_.mirror().begin(snap_ref, static_cast<std::size_t>(ri),
                                          side == routing::variant::stable, r.method_string(),
                                          ex.head, ex.req->chunked(),
                                          ex.req->content_length().value_or(0));
  else
    mirror_copy_.reset();
  if (has_body) {
    if (auto it = r.find(bhttp::field::expect);
        it != r.end() && iequals(it->value(), "100-continue")) {
      // We answer the client's Expect ourselves (as nginx does) and do not forward it.
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      if (auto [cec, cn] = co_await write_client(net::buffer(cont)); cec) {
        end_exchange();
        co_return false;
      }
    }
  }
  for (;;) {
    attempt.reused = up_->reused;
    arm(session_phase::writing, cfg.timeouts.upstream_response);
    auto [wec, wn] = co_await net::async_write(up_->sock, net::buffer(ex.head), use_tuple);
    body_result br = wec ? body_result::upstream_failed : body_result::ok;
    if (!wec && has_body)
      br = co_await relay_request_body<false>(cfg.timeouts, ex.req->chunked(), attempt.body_sent);
    if (br != body_result::ok && br != body_result::upstream_failed) {
      end_exchange();
      if (const auto reply = reply_for_body_error(br); reply.code != 0)
        co_await local_reply(reply.code, reply.message, true);
      co_return false;
    }
    // An upstream that stopped taking the request may have answered before it closed (RFC 9112
    // §9.5: a 413, a 401, ...); its response is still readable, so it is looked for first.
    request_sent_whole = br == body_result::ok;

    // Response head. The deadline covers the whole head phase: interim responses (1xx) are
    // relayed under it and under interim_budget, and do not extend it.
    error_code hec;
    interim_budget interim;
    arm(session_phase::upstream_response, cfg.timeouts.upstream_response);
    const std::int64_t head_deadline_ns = deadline_ns_;
    for (;;) {
      ex.start_response();
      ex.res->header_limit(max_response_header_bytes);
      ex.res->body_limit(boost::none);
      if (head_method) ex.res->skip(true);
      std::size_t head_bytes = 0;
      // The head, read by hand (not async_read_header): the parser must see the bytes through
      // its own put(), which keeps the head's views valid.
      for (;;) {
        if (up_->buffer.size() != 0) {
          const auto used = ex.res->put(up_->buffer.data(), hec);
          up_->buffer.consume(used);
          head_bytes += used;
          if (hec == bhttp::error::need_more)
            hec = {};
          else if (hec || ex.res->is_header_done())
            break;
        }
        const std::size_t room = up_->buffer.max_size() - up_->buffer.size();
        if (room == 0) {
          hec = bhttp::error::header_limit;
          break;
        }
        auto [rec, rn] = co_await up_->sock.async_read_some(
            up_->buffer.prepare(std::min(
                room, std::max<std::size_t>(512, up_->buffer.capacity() - up_->buffer.size()))),
            use_tuple);
        if (rec == net::error::eof)
          rec = ex.res->got_some() || up_->buffer.size() != 0 ? bhttp::error::partial_message
                                                             : bhttp::error::end_of_stream;
        if (rec) {
          hec = rec;
          break;
        }
        up_->buffer.commit(rn);
      }
      if (hec) break;
      const unsigned code = ex.res->get().result_int();
      if (code < 100 || code >= 200 || code == 101) break;
      // Interim responses (103 Early Hints, ...) go to 1.1 clients as they come (RFC 9110
      // §15.2); 100 Continue is ours to send (we answered Expect), 1.0 clients get none.
      if (!interim.take(head_bytes)) {
        hec = bhttp::error::header_limit;  // an endless head phase: a broken upstream
        break;
      }
      if (code != 100 && r.version() >= 11) {
        build_interim_head(ex.head, *ex.res);
        if (auto [iec, iw] = co_await write_client(net::buffer(ex.head)); iec) {
          end_exchange();
          co_return false;
        }
        resume(session_phase::upstream_response, head_deadline_ns);
        build_request_head(ex.head, *ex.req, client_ip_, is_tls, upgrade_);  // `head` is shared; a retry needs it
      }
    }
    // A 101 nobody asked for, or one that does not say what it switched to (RFC 9110 §15.2.2),
    // is a broken upstream.
    if (!hec && ex.res->get().result_int() == 101 &&
        (upgrade_.empty() || ex.res->get()[bhttp::field::upgrade].empty()))
      hec = bhttp::error::bad_status;
    if (!hec) break;

    if (!request_sent_whole) {
      if (may_retry_after_send_failure(attempt)) {
        attempt.retried = true;
        up_.reset();
        if (co_await connect(snap, upstream_index(side), false, rr) == acquire_status::ok) continue;
      }
      end_exchange();
      count_upstream_error(ups, metrics::upstream_error::reset);
      series.by_code[502].add();
      count_decided(route, side, why, 502, micros_since(started));
      co_await local_reply(502, "upstream connection failed while sending the request", true);
      co_return false;
    }
    if (may_retry_after_no_response(attempt, expired_, silent_close(hec, up_->buffer.size()),
                                    r.method(), has_body)) {
      attempt.retried = true;
      up_.reset();
      if (co_await connect(snap, upstream_index(side), false, rr) == acquire_status::ok) continue;
    }
    end_exchange();
    const auto failure = classify_head_failure(expired_, hec);
    count_upstream_error(ups, failure.error);
    series.by_code[failure.status].add();
    count_decided(route, side, why, failure.status, micros_since(started));
    co_await local_reply(failure.status, failure.message, true);
    co_return false;
  }
  if (auto bad = validate_response(*ex.res); bad.code != 0) {
    end_exchange();
    count_upstream_error(ups, metrics::upstream_error::protocol);
    series.by_code[502].add();
    count_decided(route, side, why, 502, micros_since(started));
    co_await local_reply(502, "bad upstream response", true);
    co_return false;
  }

  // Queued only now: the request reached the stable whole, and the copy never delays it.
  if (mirror_copy_) worker_.mirror().submit(std::move(mirror_copy_));
  auto& rs = ex.res->get();
  const unsigned status = rs.result_int();
  record_response_head(ups, series, status, started, attempt.body_sent, *up_->target);
  count_decided(route, side, why, status, micros_since(started));
  if (status == 101) {  // serve() runs the tunnel, from its own (per-connection) frame
    tunnel_series_ = &series;
    tunnel_snap_ = snap_ref;
    co_return false;
  }

  // ---- relay the response; framing rebuilt from what was parsed (http/response_plan.h). The
  // rest of a request body the upstream did not take is never read: it must not be parsed as
  // the next request, so the connection closes after this response.
  const bool request_body_read =
      !has_body || (ex.req->chunked() ? ex.req->is_done()
                                     : attempt.body_sent == *ex.req->content_length());
  const framing out = choose_framing(head_method, status, ex.res->content_length().has_value(),
                                     r.version());
  const bool keep =
      keep_client_connection(client_keep, worker_.draining(), out, request_body_read);
  build_response_head(ex.head, *ex.res, out, keep, r.version(), decision.set_cookie);

  // Body bytes already buffered behind the head go out in the same write (one send for a
  // small response).
  std::uint64_t remaining = out == framing::length ? *ex.res->content_length() : 0;
  bool upstream_done = out == framing::none || ex.res->is_done();
  const bool chunked_out = out == framing::chunked;
  if (!upstream_done && up_->buffer.size() != 0) {
    const auto got = take_buffered_body();
    if (!got) {
      end_exchange();
      co_return false;  // garbage after a valid head: nothing honest left to send
    }
    upstream_done = ex.res->is_done();
    if (out == framing::length) remaining -= *got;
    if (*got <= combine_limit) {
      append_body(ex.head, relay_.get(), *got, chunked_out);
    } else {
      if (auto [wec, wn] = co_await write_client(net::buffer(ex.head)); wec) {
        end_exchange();
        co_return false;
      }
      ex.head.clear();
      const chunk_line line(*got);
      auto [bec, bn] = co_await write_client(body_buffers(line, relay_.get(), *got, chunked_out));
      if (bec) {
        end_exchange();
        co_return false;
      }
    }
  }
  if (upstream_done && chunked_out) ex.head.append(last_chunk);
  if (!ex.head.empty()) {
    if (auto [wec, wn] = co_await write_client(net::buffer(ex.head)); wec) {
      end_exchange();
      co_return false;
    }
  }
  if (!upstream_done) {
    if (!co_await relay_response_body(cfg.timeouts, ups, out, remaining)) {
      end_exchange();
      co_return false;
    }
    upstream_done = true;
  }

  log_request(status, false);
  worker_.give_buffer(std::move(relay_));
  if (reuse_upstream_connection(request_sent_whole, upstream_done, ex.res->keep_alive(),
                                ex.res->need_eof(), out))
    worker_.pool().put(std::move(up_), steady::now());
  else
    up_.reset();
  if (!keep) {
    // Closing with unread bytes (pipelined requests, the rest of a body the upstream refused)
    // would reset the connection under the response: drain them first. Otherwise close at once
    // (the FIN follows the response).
    if (buf_.size() != 0 || !request_body_read) co_await lingering_close();
    co_return false;
  }
  release_when_idle();
  co_return true;
}

// A request to an h2c upstream (http2/upstream.h): one stream on the worker's multiplexed
// connection to the endpoint. The response goes to the HTTP/1.1 client chunked when its length
// is unknown, and the upstream's trailers as the chunked trailer section (RFC 9112 §7.1.2) when
// the client sent TE: trailers (else they are dropped). Counted as on the HTTP/1.1 path; the
// analysis' decided cells are counted at the end, when grpc-status is known. Not mirrored.
template <class Stream>
awaitable<bool> basic_state<Stream>::exchange_h2() {
  const auto call = std::move(h2c_call_);
  const std::shared_ptr<const core::snapshot> snap_ref = call->snap;
  const std::size_t ri = call->route_index;
  const routing::decision& decision = call->decision;
  auto side = call->side;
  auto why = call->why;
  const bool has_body = call->has_body;
  const bool client_keep = call->client_keep;
  const core::snapshot& snap = *snap_ref;
  const auto& cfg = *snap.config;
  auto& ex = *exchange_;
  const auto& r = ex.req->get();
  const auto& route = snap.routes[ri];
  const bool keep_possible = client_keep && !has_body;
  auto upstream_index = [&](routing::variant v) {
    return v == routing::variant::canary ? route.canary : route.stable;
  };
  const auto now = steady::now();
  auto any_up = [&](routing::variant v) {
    return snap.upstreams[static_cast<std::size_t>(upstream_index(v))].any_up(now);
  };
  mirror_copy_.reset();
  http2::request_head head;
  http2::build_request(head, *ex.req, client_ip_, is_tls);
  auto acquired = co_await open_h2(snap, upstream_index(side), head, has_body);
  if (acquired == acquire_status::connect_failed) {
    if (const auto other = routing::failover_side(side, route.canary_active, any_up);
        other && snap.upstreams[static_cast<std::size_t>(upstream_index(*other))].h2c) {
      side = *other;
      why = routing::reason::failover;
      acquired = co_await open_h2(snap, upstream_index(side), head, has_body);
    }
  }
  const auto& ups = snap.upstreams[static_cast<std::size_t>(upstream_index(side))];
  auto& series = worker_.cells().series(route.metric_series[static_cast<int>(side)]);
  ex.entry.variant = routing::to_string(side);
  ex.entry.reason = routing::to_string(why);
  ex.entry.upstream = ups.name;
  if (acquired != acquire_status::ok) {
    const unsigned code = acquired == acquire_status::timeout ? 504u : 503u;
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(now));
    co_return co_await refuse(
        code, code == 504 ? "upstream connect timeout" : "no upstream endpoint is up",
        keep_possible);
  }
  worker_.cells()
      .route(route.metric_route_id)
      .decisions[static_cast<int>(side)][static_cast<int>(why)]
      .add();
  const auto started = steady::now();
  // Ends the exchange on an upstream failure: counted, answered, the connection closed.
  auto fail = [&](unsigned code, metrics::upstream_error e, std::string_view text) {
    end_exchange();
    count_upstream_error(ups, e);
    series.by_code[code].add();
    count_decided(route, side, why, code, micros_since(started));
    return local_reply(code, text, true);
  };
  auto error_of = [&](std::error_code ec) {
    return ec == http2::client_errc::timeout    ? metrics::upstream_error::timeout
           : ec == http2::client_errc::protocol ? metrics::upstream_error::protocol
                                                : metrics::upstream_error::reset;
  };

  std::uint64_t body_sent = 0;
  body_result br = body_result::ok;
  if (has_body) {
    if (auto it = r.find(bhttp::field::expect);
        it != r.end() && iequals(it->value(), "100-continue")) {
      static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
      if (auto [cec, cn] = co_await write_client(net::buffer(cont)); cec) {
        end_exchange();
        co_return false;
      }
    }
    br = co_await relay_request_body<true>(cfg.timeouts, ex.req->chunked(), body_sent);
    if (br != body_result::ok && br != body_result::upstream_failed) {
      end_exchange();
      if (const auto reply = reply_for_body_error(br); reply.code != 0)
        co_await local_reply(reply.code, reply.message, true);
      co_return false;
    }
  }
  // An upstream that stopped taking the body may still have answered: its head is looked for.
  arm(session_phase::upstream_response, cfg.timeouts.upstream_response);
  auto hec = co_await up2_->read_head();
  if (hec == http2::client_errc::refused && body_sent == 0 && !has_body) {
    // Refused (REFUSED_STREAM, or above a GOAWAY's last stream): never processed, so once more
    // on another connection is safe (RFC 9113 §8.7).
    up2_.reset();
    if (co_await open_h2(snap, upstream_index(side), head, has_body) == acquire_status::ok) {
      arm(session_phase::upstream_response, cfg.timeouts.upstream_response);
      hec = co_await up2_->read_head();
    }
  }
  if (hec || !up2_) {
    const bool timeout = hec == http2::client_errc::timeout;
    co_await fail(timeout ? 504 : 502, error_of(hec),
                  timeout ? "upstream response timeout" : "upstream stream failed");
    co_return false;
  }
  const auto& rh = up2_->head();
  const unsigned status = rh.status;
  record_response_head(ups, series, status, started, body_sent, *up2_->target());

  const bool head_method = r.method() == bhttp::verb::head;
  const bool request_body_read = !has_body || br == body_result::ok;
  const framing out = choose_framing(head_method, status, http2::content_length(rh).has_value(),
                                     r.version());
  const bool keep =
      keep_client_connection(client_keep, worker_.draining(), out, request_body_read);
  http2::build_client_head(ex.head, rh, out, keep, r.version(), decision.set_cookie);
  if (auto [wec, wn] = co_await write_client(net::buffer(ex.head)); wec) {
    end_exchange();
    co_return false;
  }
  std::string chunk;
  bool end = false;
  while (!end) {
    arm(session_phase::upstream_body, cfg.timeouts.upstream_response);
    if (auto bec = co_await up2_->read_body(chunk, end); bec) {
      // The head is out: closing the connection is the only honest signal left.
      count_upstream_error(ups, error_of(bec));
      count_decided(route, side, why, status, micros_since(started), true);
      log_request(status, false);
      end_exchange();
      co_return false;
    }
    if (chunk.empty() || out == framing::none) continue;
    const chunk_line line(chunk.size());
    if (auto [wec, wn] = co_await write_client(
            body_buffers(line, chunk.data(), chunk.size(), out == framing::chunked));
        wec) {
      end_exchange();
      co_return false;
    }
  }
  // Counted before the last write: a client that got the whole response sees it counted.
  bool grpc_bad = false;
  if (const auto g = http2::grpc_status(rh, up2_->trailers())) {
    series.grpc_status[std::min<unsigned>(*g, 17)].add();
    grpc_bad = http2::grpc_status_is_bad(*g);
    if (grpc_bad && (status < 500 || status > 599)) series.grpc_errors.add();
  }
  count_decided(route, side, why, status, micros_since(started), grpc_bad);
  if (out == framing::chunked) {
    ex.head.clear();
    if (http2::accepts_trailers(*ex.req))
      http2::append_last_chunk(ex.head, up2_->trailers());
    else
      ex.head.append(last_chunk);
    if (auto [wec, wn] = co_await write_client(net::buffer(ex.head)); wec) {
      end_exchange();
      co_return false;
    }
  }
  log_request(status, false);
  end_exchange();
  if (!keep) {
    if (buf_.size() != 0 || !request_body_read) co_await lingering_close();
    co_return false;
  }
  release_when_idle();
  co_return true;
}

// A stream to the first endpoint in round-robin order that takes one (into up2_); a refused
// connect holds the endpoint off and counts toward its ejection, as on the HTTP/1.1 path.
template <class Stream>
awaitable<acquire_status> basic_state<Stream>::open_h2(const core::snapshot& snap,
                                                       int upstream_index,
                                                       const http2::request_head& head,
                                                       bool has_body) {
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const auto& cfg = *snap.config;
  const auto now = steady::now();
  const http2::client_limits limits{cfg.timeouts.upstream_connect, cfg.timeouts.upstream_idle};
  bool tried = false;
  upstream::round_robin_walk walk(u.endpoints,
                                  worker_.next_rr(static_cast<std::size_t>(upstream_index)));
  while (const auto* next = walk.next(now)) {
    const auto& ep = *next;
    tried = true;
    // The pool bounds the connect itself; no session deadline runs meanwhile.
    resume(session_phase::connecting, 0);
    const auto ec = co_await worker_.h2_pool().open(ep, head, has_body, limits, up2_);
    if (!ec) co_return acquire_status::ok;
    if (ec == http2::client_errc::connect_timeout) {
      count_upstream_error(u, metrics::upstream_error::timeout);
      co_return acquire_status::timeout;
    }
    count_upstream_error(u, ec == http2::client_errc::connect_failed
                                ? metrics::upstream_error::connect
                                : metrics::upstream_error::protocol);
    spdlog::warn("upstream {} endpoint {}: h2c connect failed: {}", u.name, ep->text,
                 ec.message());
    if (u.outlier) note_failure(u, *ep, now);
    ep->mark_down(now, connect_failure_holdoff);
  }
  co_return tried ? acquire_status::connect_failed : acquire_status::none_up;
}

// A response head arrived: passive health (outlier detection), latency and status metrics,
// the access-log fields known now.
template <class Stream>
void basic_state<Stream>::record_response_head(const core::upstream_view& ups,
                                          metrics::series_cells& series, unsigned status,
                                          steady::time_point started, std::uint64_t body_sent,
                                          upstream::endpoint& target) {
  auto& ex = *exchange_;
  const auto head_at = steady::now();
  if (ups.outlier) {
    if (status >= 500)
      note_failure(ups, target, head_at);
    else
      upstream::record_success(target, *ups.outlier, head_at);
  }
  series.observe_latency(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(head_at - started).count()));
  if (status != 101) series.by_code[status % 1000].add();  // a tunnel counts when it closes
  ex.entry.bytes_received = body_sent;
  ex.entry.endpoint = target.text;
  if (worker_.access_log().enabled())
    ex.entry.upstream_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(head_at - ex.entry_start).count());
}

// Body bytes the upstream sent with the head, through the parser into the relay buffer: how
// many (0 is possible: a partial chunk line), or nullopt for garbage after a valid head.
template <class Stream>
std::optional<std::size_t> basic_state<Stream>::take_buffered_body() {
  auto& res = *exchange_->res;
  res.body().data = relay_buffer();
  res.body().size = core::worker::relay_buffer_size;
  error_code ec;
  const auto used = res.put(up_->buffer.data(), ec);
  up_->buffer.consume(used);
  if (ec && ec != bhttp::error::need_buffer && ec != bhttp::error::need_more) return std::nullopt;
  return core::worker::relay_buffer_size - res.body().size;
}

template <class Stream>
void basic_state<Stream>::count_decided(const core::route_view& route, routing::variant side,
                                        routing::reason why, unsigned status,
                                        std::uint64_t micros, bool grpc_bad) {
  http::count_decided(worker_, route, side, why, status, micros, grpc_bad);
}

// The router's inputs from the request (views into it; several Cookie fields are joined into
// the exchange's buffer), and its decision.
template <class Stream>
routing::decision basic_state<Stream>::decide(const core::route_view& route, std::size_t route_index) {
  const auto& r = exchange_->req->get();
  const auto& rule = route.rule;
  const auto in = gather_inputs(
      rule,
      [&](std::string_view name) -> std::optional<std::string_view> {
        if (auto it = r.find(name); it != r.end()) return it->value();
        return std::nullopt;
      },
      [&](auto&& f) {
        if (r.count(bhttp::field::cookie) == 1) return f(r[bhttp::field::cookie]);
        for (const auto& field : r)
          if (field.name() == bhttp::field::cookie) f(field.value());
      },
      exchange_->cookie_join, client_ip_);
  return routing::decide(rule, route.canary_active, route.weight, in, worker_.wrr(route_index),
                         worker_.random());
}

// A local reply for a request refused before it reached an upstream. True when the connection
// stays open (`keep_possible`: the client keeps it alive and sent no body we would have to
// skip).
template <class Stream>
awaitable<bool> basic_state<Stream>::refuse(unsigned code, std::string_view text, bool keep_possible) {
  co_await local_reply(code, text, !keep_possible);
  if (!keep_possible) co_return false;
  release_when_idle();
  co_return true;
}

// Between requests a keep-alive connection holds no parser state (field storage), and a read
// buffer grown by a large head goes back: idle connections stay small.
template <class Stream>
void basic_state<Stream>::release_when_idle() {
  worker_.give_exchange(std::move(exchange_));
  if (buf_.size() == 0 && buf_.capacity() > head_read_size) buf_.shrink_to_fit();
}

// The rest of a response body after the head (and what came with it) went out: a
// length-delimited body straight from the socket into the relay buffer, a chunked or
// close-delimited one through the parser, flushed as it arrives (server-sent events).
// False when either side failed (the connection must close).
template <class Stream>
awaitable<bool> basic_state<Stream>::relay_response_body(const config::timeouts_config& t,
                                                    const core::upstream_view& ups, framing out,
                                                    std::uint64_t remaining) {
  auto& res = *exchange_->res;
  auto& rs = res.get();
  const bool chunked_out = out == framing::chunked;
  char* data = relay_buffer();
  if (out == framing::length) {
    // Length-delimited: straight from the socket into the relay buffer, no parser in between.
    while (remaining != 0) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining, core::worker::relay_buffer_size));
      if (up_->buffer.size() != 0) {  // bytes the parser left buffered come first
        const auto n = net::buffer_copy(net::buffer(data, want), up_->buffer.data());
        up_->buffer.consume(n);
        remaining -= n;
        if (auto [wec, wn] = co_await write_client(net::buffer(data, n)); wec) co_return false;
        continue;
      }
      arm(session_phase::upstream_body, t.upstream_response);
      auto [rec, n] = co_await up_->sock.async_read_some(net::buffer(data, want), use_tuple);
      if (rec) {
        // The head is out: the only honest signal left is closing the connection.
        count_upstream_error(ups, expired_ ? metrics::upstream_error::timeout
                                           : metrics::upstream_error::reset);
        co_return false;
      }
      remaining -= n;
      if (auto [wec, wn] = co_await write_client(net::buffer(data, n)); wec) co_return false;
    }
  } else {
    // Chunked or close-delimited upstream body: through the parser, flushed as it arrives
    // (server-sent events).
    while (!res.is_done()) {
      rs.body().data = data;
      rs.body().size = core::worker::relay_buffer_size;
      arm(session_phase::upstream_body, t.upstream_response);
      auto [rec, n] = co_await bhttp::async_read_some(up_->sock, up_->buffer, res, use_tuple);
      if (rec == bhttp::error::need_buffer) rec = {};
      if (rec) {
        count_upstream_error(ups, expired_             ? metrics::upstream_error::timeout
                                  : is_parse_error(rec) ? metrics::upstream_error::protocol
                                                        : metrics::upstream_error::reset);
        co_return false;
      }
      const std::size_t got = core::worker::relay_buffer_size - rs.body().size;
      if (got == 0) continue;
      const chunk_line line(got);
      if (auto [wec, wn] = co_await write_client(body_buffers(line, data, got, chunked_out)); wec)
        co_return false;
    }
    if (chunked_out) {
      if (auto [wec, wn] = co_await write_client(net::buffer(last_chunk)); wec) co_return false;
    }
  }
  co_return true;
}

// After a 101 to an upgrade request: the head goes to the client, then bytes flow both ways
// until both sides have closed, either fails, or nothing moves for tunnel_idle. A client's
// half-close is passed on (shutdown of the upstream's sending side); so is the upstream's to a
// plain client, while on TLS it ends the tunnel (a close_notify would need the stream's read
// side, which the other direction holds). Counted with code 101 when it ends; the connection
// then closes (it is no longer HTTP).
template <class Stream>
awaitable<void> basic_state<Stream>::tunnel(const config::timeouts_config& t,
                                            metrics::series_cells& series) {
  auto& ex = *exchange_;
  build_switching_head(ex.head, *ex.res);
  auto finish = [&] {
    series.by_code[101].add();
    log_request(101, false);
    end_exchange();
  };
  if (auto [wec, wn] = co_await write_client(net::buffer(ex.head)); wec) co_return finish();
  // Bytes behind either head already belong to the new protocol.
  if (up_->buffer.size() != 0) {
    auto [wec, wn] = co_await write_client(up_->buffer.data());
    if (wec) co_return finish();
    up_->buffer.consume(wn);
  }
  if (buf_.size() != 0) {
    arm(session_phase::writing, t.client_idle);
    auto [wec, wn] = co_await net::async_write(up_->sock, buf_.data(), use_tuple);
    if (wec) co_return finish();
    ex.entry.bytes_received += wn;
    buf_.consume(wn);
  }
  char* to_client_buf = relay_buffer();
  if (!relay_back_) relay_back_ = worker_.take_buffer();
  char* to_upstream_buf = relay_back_.get();
  const auto idle = t.tunnel_idle;
  auto progress = [this, idle] { arm(session_phase::tunnel, idle); };
  progress();
  std::uint64_t to_client = 0;
  std::uint64_t to_upstream = 0;
  auto cut = [this] {
    error_code ec;
    lowest(sock_).close(ec);
    up_->sock.close(ec);
  };
  auto upward = [&]() -> awaitable<void> {
    const auto end = co_await pump(sock_, up_->sock, to_upstream_buf,
                                   core::worker::relay_buffer_size, progress, to_upstream);
    error_code ec;
    if (end == pump_end::eof)
      up_->sock.shutdown(tcp::socket::shutdown_send, ec);
    else
      cut();
  };
  auto downward = [&]() -> awaitable<void> {
    const auto end = co_await pump(up_->sock, sock_, to_client_buf,
                                   core::worker::relay_buffer_size, progress, to_client);
    error_code ec;
    if (end == pump_end::eof && !is_tls)
      lowest(sock_).shutdown(tcp::socket::shutdown_send, ec);
    else
      cut();
  };
  using namespace net::experimental::awaitable_operators;
  co_await (upward() && downward());
  ex.entry.bytes_sent += to_client;
  ex.entry.bytes_received += to_upstream;
  finish();
}

// The first up endpoint in round-robin order, if a pooled connection to it is idle.
template <class Stream>
acquire_status basic_state<Stream>::take_pooled(const core::snapshot& snap, int upstream_index,
                                           steady::time_point now, std::uint32_t& start) {
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  start = worker_.next_rr(static_cast<std::size_t>(upstream_index));
  upstream::round_robin_walk walk(u.endpoints, start);
  if (const auto* ep = walk.next(now)) {
    if ((up_ = worker_.pool().take(**ep))) return acquire_status::ok;
  }
  return acquire_status::none_up;  // the round-robin choice has no idle connection
}

// Endpoints in round-robin order from `start` until one connects; a refused one is held off
// (and counts toward its outlier ejection). The whole walk shares one upstream_connect budget.
template <class Stream>
awaitable<acquire_status> basic_state<Stream>::connect(const core::snapshot& snap, int upstream_index,
                                                  bool allow_pool, std::uint32_t start) {
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const auto& cfg = *snap.config;
  const auto now = steady::now();
  const std::int64_t budget = worker_.now_ns() + to_ns(cfg.timeouts.upstream_connect);
  bool tried = false;
  upstream::round_robin_walk walk(u.endpoints, start);
  while (const auto* next = walk.next(now)) {
    const auto& ep = *next;
    if (allow_pool) {
      if (auto c = worker_.pool().take(*ep)) {
        up_ = std::move(c);
        co_return acquire_status::ok;
      }
    }
    tried = true;
    up_ = std::make_unique<upstream::connection>(worker_.context().get_executor(), ep);
    resume(session_phase::connecting, budget);
    auto [ec] = co_await up_->sock.async_connect(ep->address, use_tuple);
    if (!ec) {
      error_code ignored;
      up_->sock.set_option(tcp::no_delay(true), ignored);
      co_return acquire_status::ok;
    }
    up_.reset();
    if (expired_) {
      count_upstream_error(u, metrics::upstream_error::timeout);
      co_return acquire_status::timeout;
    }
    count_upstream_error(u, metrics::upstream_error::connect);
    spdlog::warn("upstream {} endpoint {}: connect failed: {}", u.name, ep->text, ec.message());
    if (u.outlier) note_failure(u, *ep, now);  // before the hold-off: it counts as "already out"
    ep->mark_down(now, connect_failure_holdoff);
  }
  co_return tried ? acquire_status::connect_failed : acquire_status::none_up;
}

// Streams the request body to the upstream: a length-delimited body straight from the socket
// (after what the head read already buffered), a chunked one through the parser, re-chunked.
// `sent` counts the bytes consumed from the client.
template <class Stream>
template <bool to_h2>
awaitable<body_result> basic_state<Stream>::relay_request_body(const config::timeouts_config& t,
                                                          bool chunked, std::uint64_t& sent) {
  auto& req = *exchange_->req;
  auto& r = req.get();
  char* data = relay_buffer();
  const std::size_t cap = core::worker::relay_buffer_size;
  std::uint64_t remaining = chunked ? 0 : *req.content_length();
  while (!req.is_done()) {
    std::size_t got = 0;
    if (!chunked && buf_.size() == 0) {
      arm(session_phase::client_body, t.client_body_idle);
      auto [rec, n] = co_await sock_.async_read_some(
          net::buffer(data, std::min<std::uint64_t>(remaining, cap)), use_tuple);
      if (rec) co_return expired_ ? body_result::timeout : body_result::client_gone;
      got = n;
      remaining -= n;  // the parser never sees these bytes: we count them ourselves
    } else {
      r.body().data = data;
      r.body().size = cap;
      error_code rec;
      bool need_read = buf_.size() == 0;
      if (!need_read) {
        const auto used = req.put(buf_.data(), rec);
        buf_.consume(used);
        if (rec == bhttp::error::need_more) {
          rec = {};
          need_read = used == 0;  // a partial chunk line: only more bytes can complete it
        }
      }
      if (need_read) {
        arm(session_phase::client_body, t.client_body_idle);
        std::tie(rec, std::ignore) = co_await bhttp::async_read_some(sock_, buf_, req, use_tuple);
      }
      if (rec == bhttp::error::need_buffer) rec = {};
      if (rec == bhttp::error::body_limit) co_return body_result::too_large;
      if (rec && expired_) co_return body_result::timeout;
      if (rec && is_parse_error(rec)) co_return body_result::malformed;
      if (rec) co_return body_result::client_gone;
      got = cap - r.body().size;
      if (!chunked) remaining -= got;
    }
    if (got == 0) continue;
    sent += got;  // consumed from the client: from here on a retry could not replay it
    if (mirror_copy_) mirror_copy_->capture(data, got);
    arm(session_phase::writing, t.upstream_response);
    if constexpr (to_h2) {
      // DATA frames carry no chunk framing; END_STREAM marks the end (RFC 9113 §8.1).
      const bool last = !chunked && remaining == 0;
      if (co_await up2_->send_body(std::string_view(data, got), last))
        co_return body_result::upstream_failed;
      if (last) co_return body_result::ok;
      continue;
    } else {
      const chunk_line line(got);
      auto [wec, wn] =
          co_await net::async_write(up_->sock, body_buffers(line, data, got, chunked), use_tuple);
      if (wec) co_return body_result::upstream_failed;
      if (!chunked && remaining == 0) break;
    }
  }
  if constexpr (to_h2) {
    arm(session_phase::writing, t.upstream_response);
    if (co_await up2_->send_body({}, true)) co_return body_result::upstream_failed;
  } else if (chunked) {
    arm(session_phase::writing, t.upstream_response);
    auto [wec, wn] = co_await net::async_write(up_->sock, net::buffer(last_chunk), use_tuple);
    if (wec) co_return body_result::upstream_failed;
  }
  co_return body_result::ok;
}

template <class Stream>
void basic_state<Stream>::note_failure(const core::upstream_view& u, upstream::endpoint& ep,
                                  steady::time_point now) {
  http::note_upstream_failure(worker_, u, ep, now);
}

// One access-log line for the request that just ended (a no-op when the log is off).
template <class Stream>
void basic_state<Stream>::log_request(unsigned status, bool local) {
  auto& log = worker_.access_log();
  if (!log.enabled()) return;
  auto& ex = *exchange_;
  if (ex.req && ex.req->is_header_done()) {
    const auto& r = ex.req->get();
    ex.entry.method = r.method_string();
    ex.entry.target = r.target();
    ex.entry.version = r.version();
  }
  ex.entry.client_ip = client_ip_;
  ex.entry.status = status;
  ex.entry.local = local;
  ex.entry.total_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - ex.entry_start)
          .count());
  log.write(ex.entry);
}

template <class Stream>
awaitable<void> basic_state<Stream>::local_reply(unsigned code, std::string_view text, bool close) {
  worker_.cells().local_reply(code);
  auto& ex = *exchange_;
  const auto status = bhttp::int_to_status(code);
  ex.head.clear();
  ex.head += "HTTP/1.1 "sv;
  append_number(ex.head, code);
  ex.head += ' ';
  ex.head.append(bhttp::obsolete_reason(status));
  ex.head += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "sv;
  append_number(ex.head, text.size() + 1);
  ex.head += "\r\n"sv;
  if (close)
    ex.head += "Connection: close\r\n"sv;
  else if (ex.req && ex.req->is_header_done() && ex.req->get().version() < 11)
    ex.head += "Connection: keep-alive\r\n"sv;
  ex.head += "\r\n"sv;
  ex.head.append(text);
  ex.head += '\n';
  const auto& cfg = *worker_.current()->config;
  arm(session_phase::writing, cfg.timeouts.client_header);
  before_client_write();
  auto [ec, n] = co_await net::async_write(sock_, net::buffer(ex.head), use_tuple);
  ex.entry.bytes_sent += n;
  log_request(code, true);
  if (close && !ec) co_await lingering_close();
}

// Closing with unread request bytes makes the kernel send RST, which can destroy the reply we
// just wrote before the client reads it: shut our side, then drain briefly (nginx's
// lingering_close).
template <class Stream>
awaitable<void> basic_state<Stream>::lingering_close() {
  error_code ec;
  lowest(sock_).shutdown(tcp::socket::shutdown_send, ec);
  arm(session_phase::idle, std::chrono::duration_cast<std::chrono::milliseconds>(linger_timeout));
  char* data = relay_buffer();
  std::size_t drained = 0;
  while (drained < 256 * 1024) {
    auto [rec, n] = co_await sock_.async_read_some(
        net::buffer(data, core::worker::relay_buffer_size), use_tuple);
    if (rec) break;
    drained += n;
  }
  lowest(sock_).close(ec);
}

}  // namespace canary::http
