// The request path: read a request head, route it, exchange it with an upstream, relay the
// response; repeat while keep-alive holds. Reads as the protocol does, top to bottom, in one
// coroutine per connection. Per message there is no nested coroutine on the common path (their
// frames would defeat Asio's frame recycling): writes are awaited inline, a pooled upstream
// connection is taken synchronously, and only new connections, request bodies and local replies
// use helper coroutines. Errors are error_codes; every failure ends in a local reply or a close.
#include "http/session.h"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <optional>

#include "core/worker.h"
#include "http/header_rules.h"
#include "http/request_rules.h"
#include "log/access_log.h"
#include "upstream/outlier.h"
#include "upstream/pool.h"

namespace canary::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using error_code = boost::system::error_code;
using request_parser = request_parser_type;
using response_parser = response_parser_type;
using namespace std::string_view_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t head_read_size = 1024;  // per read while a head arrives (malloc-cache sized)
constexpr std::size_t max_response_header_bytes = 64 * 1024;
constexpr std::size_t combine_limit = 16 * 1024;  // body bytes sent in the same write as the head
// A refused endpoint is not tried again for this long (passive health; DESIGN §3.6).
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

bool is_parse_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::need_buffer &&
         ec != bhttp::error::need_more;
}

bool idempotent(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::options:
    case bhttp::verb::trace:
    case bhttp::verb::put:
    case bhttp::verb::delete_:
      return true;
    default:
      return false;
  }
}

enum class acquire_status { ok, none_up, connect_failed, timeout };
enum class body_result { ok, too_large, timeout, malformed, client_gone, upstream_failed };
// How the response body reaches the client (RFC 9112 §6).
enum class framing { none, length, chunked, close };

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

// n bytes of data, framed as one chunk when `chunked` (the size line, the data, CRLF), else as
// they are. `line` must be chunk_line(n) and outlive the write.
std::array<net::const_buffer, 3> body_buffers(const chunk_line& line, const char* data,
                                              std::size_t n, bool chunked) {
  return {net::buffer(line.text, chunked ? line.size : 0), net::buffer(data, n),
          net::buffer(crlf.data(), chunked ? crlf.size() : 0)};
}

}  // namespace

// What one request needs beyond the connection: parsers, the head being built, the access-log
// line. Taken from a per-thread (= per-worker) free list when a request starts and given back
// when the connection goes idle, so an idle keep-alive connection holds none of it.
struct exchange {
  std::optional<request_parser> req;
  std::optional<response_parser> res;
  std::string head;
  std::string cookie_join;
  std::string req_storage;  // the parsers' field storage between messages
  std::string res_storage;
  log::access_record entry;  // the current request's access-log line, filled as it goes
  steady::time_point entry_start;

  void start_request() {
    req.emplace(std::move(req_storage));
    entry = {};
  }
  void start_response() {
    if (res) res_storage = res->take_storage();
    res.emplace(std::move(res_storage));
  }
  void end() {
    if (req) req_storage = req->take_storage();
    if (res) res_storage = res->take_storage();
    req.reset();
    res.reset();
    head.clear();
  }
};

namespace {
constexpr std::size_t max_free_exchanges = 256;
thread_local std::vector<std::unique_ptr<exchange>> free_exchanges;

std::unique_ptr<exchange> take_exchange() {
  if (free_exchanges.empty()) return std::make_unique<exchange>();
  auto x = std::move(free_exchanges.back());
  free_exchanges.pop_back();
  return x;
}

void give_exchange(std::unique_ptr<exchange> x) {
  if (!x) return;
  x->end();
  if (free_exchanges.size() < max_free_exchanges && x->head.capacity() <= 4096 &&
      x->cookie_join.capacity() <= 4096 && x->req_storage.capacity() <= 4096 &&
      x->res_storage.capacity() <= 4096)
    free_exchanges.push_back(std::move(x));
}
}  // namespace

struct session::state {
  state(core::worker& worker, socket_type s, const tcp::endpoint& peer)
      : w(worker),
        sock(std::move(s)),
        buf(std::max<std::size_t>(w.current()->config->limits.max_request_header_bytes + 4096,
                                  64 * 1024)),
        client_ip(address_text(peer.address())) {}

  core::worker& w;
  socket_type sock;
  beast::flat_buffer buf;       // bounded: a head over the limit is a 431, never a throw
  std::unique_ptr<exchange> x;  // while a request is in progress
  std::unique_ptr<upstream::connection> up;
  std::unique_ptr<char[]> relay;  // the worker's, while a body moves
  std::string client_ip;
  std::int64_t deadline_ns = 0;
  session_phase phase = session_phase::idle;
  bool expired = false;
  bool nodelay = false;
  std::uint8_t client_writes = 0;

  void arm(session_phase p, std::chrono::milliseconds d) {
    phase = p;
    deadline_ns = w.now_ns() + to_ns(d);
    expired = false;
  }
  // A write to the client under client_idle, counted for the access log. Returns the write
  // itself, awaited inline by the caller (no coroutine frame of its own).
  template <class Buffers>
  auto write_client(const Buffers& b) {
    arm(session_phase::writing, w.current()->config->timeouts.client_idle);
    x->entry.bytes_sent += net::buffer_size(b);
    before_client_write();
    return net::async_write(sock, b, use_tuple);
  }
  // Nagle would hold a small write while an earlier one is unacknowledged (up to the peer's
  // delayed ACK, ~40 ms): TCP_NODELAY goes on before the second write to the client, not at
  // accept (a connection with a single response saves the syscall, as nginx's tcp_nodelay does).
  void before_client_write() {
    if (nodelay) return;
    if (client_writes++ == 0) return;
    error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    nodelay = true;
  }
  char* relay_buffer() {
    if (!relay) relay = w.take_buffer();
    return relay.get();
  }
  void end_exchange() {
    w.give_buffer(std::move(relay));
    up.reset();
  }

  // `owner` keeps the session alive exactly as long as this coroutine (one frame, not two).
  awaitable<void> serve(std::unique_ptr<session> owner);
  awaitable<bool> exchange_once();
  acquire_status take_pooled(const core::snapshot& snap, int upstream_index, steady::time_point now,
                             std::uint32_t& start);
  awaitable<acquire_status> connect(const core::snapshot& snap, int upstream_index, bool allow_pool,
                                    std::uint32_t start);
  awaitable<bool> relay_response_body(const config::timeouts_config& t,
                                      const core::upstream_view& ups, framing out,
                                      std::uint64_t remaining);
  awaitable<body_result> relay_request_body(const config::timeouts_config& t, bool chunked,
                                            std::uint64_t& sent);
  awaitable<void> local_reply(unsigned code, std::string_view text, bool close);
  awaitable<void> lingering_close();
  void note_failure(const core::upstream_view& u, upstream::endpoint& ep, steady::time_point now);
  void log_request(unsigned status, bool local);
  void release_when_idle();
  void build_request_head(bool chunked);
  void build_response_head(const routing::decision& d, bool keep, framing f);
  void build_interim_head();
  void append_response_status_and_fields();
};

session::session(core::worker& w, socket_type sock, const tcp::endpoint& peer)
    : st_(std::make_unique<state>(w, std::move(sock), peer)) {
  w.attach(this);
}

session::~session() {
  give_exchange(std::move(st_->x));
  st_->w.give_buffer(std::move(st_->relay));
  st_->w.detach(this);
  st_->w.shared().connections.fetch_sub(1, std::memory_order_relaxed);
  st_->w.cells().connection_closed();
}

awaitable<void> session::run(std::unique_ptr<session> self) {
  auto& st = *self->st_;
  return st.serve(std::move(self));
}

void session::on_tick(std::int64_t now_ns) {
  auto& s = *st_;
  if (s.deadline_ns == 0 || now_ns < s.deadline_ns) return;
  s.deadline_ns = 0;
  s.expired = true;
  error_code ec;
  switch (s.phase) {
    case session_phase::header:
    case session_phase::client_body:
      s.sock.cancel(ec);  // the session answers 408
      break;
    case session_phase::connecting:
    case session_phase::upstream_response:
      if (s.up) s.up->sock.close(ec);  // the session answers 504
      break;
    case session_phase::idle:
    case session_phase::upstream_body:
    case session_phase::writing:
      s.sock.close(ec);
      if (s.up) s.up->sock.close(ec);
      break;
  }
}

void session::on_drain() {
  if (st_->phase == session_phase::idle) {
    error_code ec;
    st_->sock.close(ec);
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

awaitable<void> session::state::serve([[maybe_unused]] std::unique_ptr<session> owner) {
  for (;;) {
    if (buf.size() == 0) {
      if (w.draining()) co_return;
      // Keep-alive idle: a read, not a readiness wait. Asio re-arms epoll (epoll_ctl) for every
      // wait but not for a read, which it also never tries on a socket known to be drained:
      // one syscall less per request, for a small buffer held while idle.
      arm(session_phase::idle, w.current()->config->timeouts.client_idle);
      auto [ec, n] = co_await sock.async_read_some(buf.prepare(head_read_size), use_tuple);
      if (ec) co_return;
      buf.commit(n);
      w.refresh_now();
    }
    if (!co_await exchange_once()) co_return;
  }
}

// One request and its response. True when the connection stays open for the next. A coroutine
// of its own so that an idle connection holds only serve()'s small frame, not this one.
awaitable<bool> session::state::exchange_once() {
  {
    std::shared_ptr<const core::snapshot> snap_ref = w.current();
    const core::snapshot& snap = *snap_ref;
    const auto& cfg = *snap.config;

    // ---- request head (the whole head within client_header)
    arm(session_phase::header, cfg.timeouts.client_header);
    if (!x) x = take_exchange();
    x->start_request();
    if (w.access_log().enabled()) {
      x->entry.time = std::chrono::system_clock::now();
      x->entry_start = steady::now();
    }
    x->req->header_limit(static_cast<std::uint32_t>(cfg.limits.max_request_header_bytes));
    x->req->body_limit(cfg.limits.max_request_body_bytes);
    bool first_read = buf.size() == 0;
    for (;;) {
      if (buf.size() != 0) {
        const auto step = parse_request_head(*x->req, buf);
        if (step.what == head_step::state::done) break;
        if (step.what == head_step::state::error) {
          if (step.bad.code)
            co_await local_reply(step.bad.code, step.bad.message, true);
          else if (step.ec == bhttp::error::header_limit)
            co_await local_reply(431, "request header too large", true);
          else if (step.ec == bhttp::error::body_limit)
            co_await local_reply(413, "request body too large", true);
          else
            co_await local_reply(400, "malformed request", true);
          co_return false;
        }
      }
      if (buf.size() >= buf.max_size()) {
        co_await local_reply(431, "request header too large", true);
        co_return false;
      }
      auto [ec, n] = co_await sock.async_read_some(
          buf.prepare(std::min(head_read_size, buf.max_size() - buf.size())), use_tuple);
      if (ec) {
        // A head cut short by the deadline gets its 408; a closed or reset connection nothing.
        if (expired && !(first_read && buf.size() == 0))
          co_await local_reply(408, "request header timeout", true);
        co_return false;
      }
      buf.commit(n);
      first_read = false;
    }
    if (auto bad = validate_request(*x->req, cfg.limits); bad.code != 0) {
      co_await local_reply(bad.code, bad.message, true);
      co_return false;
    }

    // ---- route and decide (DESIGN §3)
    auto& r = x->req->get();
    const bool has_body =
        x->req->chunked() || (x->req->content_length() && *x->req->content_length() > 0);
    const bool client_keep = x->req->keep_alive() && !w.draining();
    const int ri = snap.table.match(r[bhttp::field::host], r.target());
    if (ri < 0) {
      co_await local_reply(404, "no route for this host and path", !client_keep || has_body);
      if (client_keep && !has_body) {
        release_when_idle();
        co_return true;
      }
      co_return false;
    }
    const auto& route = snap.routes[static_cast<std::size_t>(ri)];
    x->entry.route = route.rule.route_name;
    routing::request_inputs in;
    const auto& rule = route.rule;
    if (!rule.by_header.empty()) {
      if (auto it = r.find(rule.by_header); it != r.end()) in.canary_header = it->value();
    }
    if (!rule.by_cookie.empty() || rule.sticky.how == config::sticky_config::kind::cookie) {
      if (const auto n = r.count(bhttp::field::cookie); n == 1) {
        in.cookies = r[bhttp::field::cookie];
      } else if (n > 1) {
        x->cookie_join.clear();
        for (const auto& f : r) {
          if (f.name() != bhttp::field::cookie) continue;
          if (!x->cookie_join.empty()) x->cookie_join += "; "sv;
          x->cookie_join.append(f.value());
        }
        in.cookies = x->cookie_join;
      }
    }
    if (rule.sticky.how == config::sticky_config::kind::header) {
      if (auto it = r.find(rule.sticky.name); it != r.end()) in.sticky_header = it->value();
    }
    in.client_ip = client_ip;
    const auto d = routing::decide(rule, route.canary_active, route.weight, in,
                                   w.wrr(static_cast<std::size_t>(ri)), w.random());

    // Side: the decided one, or the other when all its endpoints are down — never into an
    // aborted canary (DESIGN §3.6).
    auto side = d.side;
    auto why = d.why;
    auto index_of = [&](routing::variant v) {
      return v == routing::variant::canary ? route.canary : route.stable;
    };
    auto other_allowed = [&](routing::variant v) {
      return v == routing::variant::canary || route.canary_active;
    };
    auto flip = [](routing::variant v) {
      return v == routing::variant::canary ? routing::variant::stable : routing::variant::canary;
    };
    auto upstream_of = [&](routing::variant v) -> const core::upstream_view& {
      return snap.upstreams[static_cast<std::size_t>(index_of(v))];
    };
    const auto now = steady::now();
    if (!upstream_of(side).any_up(now)) {
      if (other_allowed(side) && upstream_of(flip(side)).any_up(now)) {
        side = flip(side);
        why = routing::reason::failover;
      } else {
        w.cells().series(route.metric_series[static_cast<int>(side)]).by_code[503].add();
        co_await local_reply(503, "no upstream endpoint is up", !client_keep || has_body);
        if (client_keep && !has_body) {
          release_when_idle();
          co_return true;
        }
        co_return false;
      }
    }

    // ---- upstream connection: pooled (synchronously) or new
    // The round-robin choice is made once: a pooled connection to it, else a new one from the
    // same position (so that new connections rotate across endpoints too).
    std::uint32_t rr = 0;
    auto st = take_pooled(snap, index_of(side), now, rr);
    if (st != acquire_status::ok) st = co_await connect(snap, index_of(side), true, rr);
    if (st == acquire_status::connect_failed && other_allowed(side) &&
        upstream_of(flip(side)).any_up(now)) {
      side = flip(side);
      why = routing::reason::failover;
      st = take_pooled(snap, index_of(side), now, rr);
      if (st != acquire_status::ok) st = co_await connect(snap, index_of(side), true, rr);
    }
    const auto& ups = upstream_of(side);
    auto& series = w.cells().series(route.metric_series[static_cast<int>(side)]);
    x->entry.variant = routing::to_string(side);
    x->entry.reason = routing::to_string(why);
    x->entry.upstream = ups.name;
    if (st != acquire_status::ok) {
      // Every endpoint refusing is "no endpoint up" (DESIGN §3.6), whether we learnt it now or
      // from an earlier failure: the client gets the same answer either way.
      const unsigned code = st == acquire_status::timeout ? 504u : 503u;
      series.by_code[code].add();
      co_await local_reply(code,
                           code == 504 ? "upstream connect timeout" : "no upstream endpoint is up",
                           !client_keep || has_body);
      if (client_keep && !has_body) {
        release_when_idle();
        co_return true;
      }
      co_return false;
    }
    w.cells()
        .route(route.metric_route_id)
        .decisions[static_cast<int>(side)][static_cast<int>(why)]
        .add();

    // ---- send the request; a pooled connection that died before answering is retried once
    // on a fresh one when nothing of the body was consumed (RFC 9110 §9.2.2, DESIGN §7)
    const auto started = steady::now();
    const bool chunked_up = x->req->chunked();
    const bool head_method = r.method() == bhttp::verb::head;
    bool retried = false;
    std::uint64_t body_sent = 0;
    build_request_head(chunked_up);
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
      arm(session_phase::writing, cfg.timeouts.upstream_response);
      auto [wec, wn] = co_await net::async_write(up->sock, net::buffer(x->head), use_tuple);
      body_result br = wec ? body_result::upstream_failed : body_result::ok;
      if (!wec && has_body) br = co_await relay_request_body(cfg.timeouts, chunked_up, body_sent);
      if (br == body_result::too_large || br == body_result::timeout ||
          br == body_result::malformed || br == body_result::client_gone) {
        end_exchange();
        if (br == body_result::too_large)
          co_await local_reply(413, "request body too large", true);
        else if (br == body_result::timeout)
          co_await local_reply(408, "request body timeout", true);
        else if (br == body_result::malformed)
          co_await local_reply(400, "malformed request body", true);
        co_return false;
      }
      if (br == body_result::upstream_failed) {
        if (up->reused && !retried && body_sent == 0) {
          retried = true;
          up.reset();
          if (co_await connect(snap, index_of(side), false, rr) == acquire_status::ok) continue;
        }
        end_exchange();
        w.cells().upstream(ups.metric_id).errors[err(metrics::upstream_error::reset)].add();
        series.by_code[502].add();
        co_await local_reply(502, "upstream connection failed while sending the request", true);
        co_return false;
      }

      // Response head; interim 1xx responses are dropped (we answered Expect ourselves).
      error_code hec;
      for (;;) {
        x->start_response();
        x->res->header_limit(max_response_header_bytes);
        x->res->body_limit(boost::none);
        if (head_method) x->res->skip(true);
        arm(session_phase::upstream_response, cfg.timeouts.upstream_response);
        // The head, read by hand (not async_read_header): the parser must see the bytes through
        // its own put(), which keeps the head's views valid.
        for (;;) {
          if (up->buffer.size() != 0) {
            const auto used = x->res->put(up->buffer.data(), hec);
            up->buffer.consume(used);
            if (hec == bhttp::error::need_more)
              hec = {};
            else if (hec || x->res->is_header_done())
              break;
          }
          const std::size_t room = up->buffer.max_size() - up->buffer.size();
          if (room == 0) {
            hec = bhttp::error::header_limit;
            break;
          }
          auto [rec, rn] = co_await up->sock.async_read_some(
              up->buffer.prepare(std::min(
                  room, std::max<std::size_t>(512, up->buffer.capacity() - up->buffer.size()))),
              use_tuple);
          if (rec == net::error::eof)
            rec = x->res->got_some() || up->buffer.size() != 0 ? bhttp::error::partial_message
                                                               : bhttp::error::end_of_stream;
          if (rec) {
            hec = rec;
            break;
          }
          up->buffer.commit(rn);
        }
        if (hec) break;
        const unsigned code = x->res->get().result_int();
        if (code >= 100 && code < 200 && code != 101) {
          // Interim responses (103 Early Hints, ...) go to 1.1 clients as they come (RFC 9110
          // §15.2); 100 Continue is ours to send (we answered Expect), 1.0 clients get none.
          if (code != 100 && r.version() >= 11) {
            build_interim_head();
            if (auto [iec, iw] = co_await write_client(net::buffer(x->head)); iec) {
              end_exchange();
              co_return false;
            }
            build_request_head(chunked_up);  // `head` is reused; a retry needs the request again
          }
          continue;
        }
        break;
      }
      if (!hec && x->res->get().result_int() == 101) hec = bhttp::error::bad_status;
      if (hec) {
        const bool silent_close = hec == bhttp::error::end_of_stream ||
                                  (hec == net::error::connection_reset && up->buffer.size() == 0);
        if (!expired && silent_close && up->reused && !retried && body_sent == 0 &&
            (idempotent(r.method()) || !has_body)) {
          retried = true;
          up.reset();
          if (co_await connect(snap, index_of(side), false, rr) == acquire_status::ok) continue;
        }
        end_exchange();
        const bool timeout = expired;
        w.cells()
            .upstream(ups.metric_id)
            .errors[err(timeout               ? metrics::upstream_error::timeout
                        : is_parse_error(hec) ? metrics::upstream_error::protocol
                                              : metrics::upstream_error::reset)]
            .add();
        const unsigned code = timeout ? 504 : 502;
        series.by_code[code].add();
        co_await local_reply(code, timeout ? "upstream response timeout" : "bad upstream response",
                             true);
        co_return false;
      }
      break;
    }
    if (auto bad = validate_response(*x->res); bad.code != 0) {
      end_exchange();
      w.cells().upstream(ups.metric_id).errors[err(metrics::upstream_error::protocol)].add();
      series.by_code[502].add();
      co_await local_reply(502, "bad upstream response", true);
      co_return false;
    }

    auto& rs = x->res->get();
    const unsigned status = rs.result_int();
    const auto head_at = steady::now();
    if (ups.outlier) {
      if (status >= 500)
        note_failure(ups, *up->target, head_at);
      else
        upstream::record_success(*up->target, *ups.outlier, head_at);
    }
    series.observe_latency(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(head_at - started).count()));
    series.by_code[status % 1000].add();
    x->entry.bytes_received = body_sent;
    x->entry.endpoint = up->target->text;
    if (w.access_log().enabled())
      x->entry.upstream_us = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(head_at - x->entry_start).count());

    // ---- response to the client; framing rebuilt from what was parsed (RFC 9112 §6)
    const bool bodiless = head_method || status == 204 || status == 304 || status < 200;
    const framing out = bodiless                   ? framing::none
                        : x->res->content_length() ? framing::length
                        : r.version() >= 11        ? framing::chunked
                                                   : framing::close;
    // A drain that began while this request was in flight ends the connection after it.
    const bool keep = client_keep && !w.draining() && out != framing::close;
    build_response_head(d, keep, out);

    // Body bytes already buffered behind the head go out in the same write (one send for a
    // small response).
    std::uint64_t remaining = out == framing::length ? *x->res->content_length() : 0;
    bool upstream_done = bodiless || x->res->is_done();
    const bool chunked_out = out == framing::chunked;
    if (!upstream_done && up->buffer.size() != 0) {
      rs.body().data = relay_buffer();
      rs.body().size = core::worker::relay_buffer_size;
      error_code pec;
      const auto used = x->res->put(up->buffer.data(), pec);
      up->buffer.consume(used);
      if (pec == bhttp::error::need_buffer || pec == bhttp::error::need_more) pec = {};
      if (pec) {
        end_exchange();
        co_return false;  // garbage after a valid head: nothing honest left to send
      }
      const std::size_t got = core::worker::relay_buffer_size - rs.body().size;
      upstream_done = x->res->is_done();
      if (out == framing::length) remaining -= got;
      if (got != 0 && got <= combine_limit) {
        if (chunked_out) {
          const chunk_line line(got);
          x->head.append(line.text, line.size);
        }
        x->head.append(relay.get(), got);
        if (chunked_out) x->head.append(crlf);
      } else if (got != 0) {
        if (auto [wec, wn] = co_await write_client(net::buffer(x->head)); wec) {
          end_exchange();
          co_return false;
        }
        x->head.clear();
        const chunk_line line(got);
        auto [bec, bn] = co_await write_client(body_buffers(line, relay.get(), got, chunked_out));
        if (bec) {
          end_exchange();
          co_return false;
        }
      }
    }
    if (upstream_done && chunked_out) x->head.append(last_chunk);
    if (!x->head.empty()) {
      if (auto [wec, wn] = co_await write_client(net::buffer(x->head)); wec) {
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
    // Reuse only a connection whose response was read to its end and that did not say close
    // (a close-delimited body has no end but the close).
    w.give_buffer(std::move(relay));
    if (upstream_done && x->res->keep_alive() && out != framing::close && !x->res->need_eof())
      w.pool().put(std::move(up), steady::now());
    else
      up.reset();
    if (!keep) {
      // Closing with unread (pipelined) bytes would reset the connection under the response:
      // drain them first. Otherwise close at once (the FIN follows the response).
      if (buf.size() != 0) co_await lingering_close();
      co_return false;
    }
    release_when_idle();
    co_return true;
  }
}

// Between requests a keep-alive connection holds no parser state (field storage), and a read
// buffer grown by a large head goes back: idle connections stay small.
void session::state::release_when_idle() {
  give_exchange(std::move(x));
  if (buf.size() == 0 && buf.capacity() > head_read_size) buf.shrink_to_fit();
}

// The rest of a response body after the head (and what came with it) went out: a
// length-delimited body straight from the socket into the relay buffer, a chunked or
// close-delimited one through the parser, flushed as it arrives (server-sent events).
// False when either side failed (the connection must close).
awaitable<bool> session::state::relay_response_body(const config::timeouts_config& t,
                                                    const core::upstream_view& ups, framing out,
                                                    std::uint64_t remaining) {
  auto& rs = x->res->get();
  const bool chunked_out = out == framing::chunked;
  if (out == framing::length) {
    // Length-delimited: straight from the socket into the relay buffer, no parser in between.
    char* data = relay_buffer();
    while (remaining != 0) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining, core::worker::relay_buffer_size));
      if (up->buffer.size() != 0) {  // bytes the parser left buffered come first
        const auto n = net::buffer_copy(net::buffer(data, want), up->buffer.data());
        up->buffer.consume(n);
        remaining -= n;
        if (auto [wec, wn] = co_await write_client(net::buffer(data, n)); wec) co_return false;
        continue;
      }
      arm(session_phase::upstream_body, t.upstream_response);
      auto [rec, n] = co_await up->sock.async_read_some(net::buffer(data, want), use_tuple);
      if (rec) {
        // The head is out: the only honest signal left is closing the connection.
        w.cells()
            .upstream(ups.metric_id)
            .errors[err(expired ? metrics::upstream_error::timeout
                                : metrics::upstream_error::reset)]
            .add();
        co_return false;
      }
      remaining -= n;
      if (auto [wec, wn] = co_await write_client(net::buffer(data, n)); wec) co_return false;
    }
  } else {
    // Chunked or close-delimited upstream body: through the parser, flushed as it arrives
    // (server-sent events).
    char* data = relay_buffer();
    while (!x->res->is_done()) {
      rs.body().data = data;
      rs.body().size = core::worker::relay_buffer_size;
      arm(session_phase::upstream_body, t.upstream_response);
      auto [rec, n] = co_await bhttp::async_read_some(up->sock, up->buffer, *x->res, use_tuple);
      if (rec == bhttp::error::need_buffer) rec = {};
      if (rec) {
        w.cells()
            .upstream(ups.metric_id)
            .errors[err(expired               ? metrics::upstream_error::timeout
                        : is_parse_error(rec) ? metrics::upstream_error::protocol
                                              : metrics::upstream_error::reset)]
            .add();
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

// The first up endpoint in round-robin order, if a pooled connection to it is idle.
acquire_status session::state::take_pooled(const core::snapshot& snap, int upstream_index,
                                           steady::time_point now, std::uint32_t& start) {
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const std::size_t n = u.endpoints.size();
  start = w.next_rr(static_cast<std::size_t>(upstream_index));
  for (std::size_t i = 0; i < n; ++i) {
    const auto& ep = u.endpoints[(start + i) % n];
    if (!ep->up(now)) continue;
    if ((up = w.pool().take(*ep))) return acquire_status::ok;
    return acquire_status::none_up;  // the round-robin choice has no idle connection
  }
  return acquire_status::none_up;
}

awaitable<acquire_status> session::state::connect(const core::snapshot& snap, int upstream_index,
                                                  bool allow_pool, std::uint32_t start) {
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const auto& cfg = *snap.config;
  const std::size_t n = u.endpoints.size();
  const auto now = steady::now();
  const std::int64_t budget = w.now_ns() + to_ns(cfg.timeouts.upstream_connect);
  bool tried = false;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& ep = u.endpoints[(start + i) % n];
    if (!ep->up(now)) continue;
    if (allow_pool) {
      if (auto c = w.pool().take(*ep)) {
        up = std::move(c);
        co_return acquire_status::ok;
      }
    }
    tried = true;
    up = std::make_unique<upstream::connection>(w.context().get_executor(), ep);
    phase = session_phase::connecting;
    deadline_ns = budget;
    expired = false;
    auto [ec] = co_await up->sock.async_connect(ep->address, use_tuple);
    if (!ec) {
      error_code ignored;
      up->sock.set_option(tcp::no_delay(true), ignored);
      co_return acquire_status::ok;
    }
    up.reset();
    if (expired) {
      w.cells().upstream(u.metric_id).errors[err(metrics::upstream_error::timeout)].add();
      co_return acquire_status::timeout;
    }
    w.cells().upstream(u.metric_id).errors[err(metrics::upstream_error::connect)].add();
    spdlog::warn("upstream {} endpoint {}: connect failed: {}", u.name, ep->text, ec.message());
    if (u.outlier) note_failure(u, *ep, now);  // before the hold-off: it counts as "already out"
    ep->mark_down(now, connect_failure_holdoff);
  }
  co_return tried ? acquire_status::connect_failed : acquire_status::none_up;
}

// Streams the request body to the upstream: a length-delimited body straight from the socket
// (after what the head read already buffered), a chunked one through the parser, re-chunked.
awaitable<body_result> session::state::relay_request_body(const config::timeouts_config& t,
                                                          bool chunked, std::uint64_t& sent) {
  auto& r = x->req->get();
  char* data = relay_buffer();
  const std::size_t cap = core::worker::relay_buffer_size;
  std::uint64_t remaining = chunked ? 0 : *x->req->content_length();
  while (!x->req->is_done()) {
    std::size_t got = 0;
    if (!chunked && buf.size() == 0) {
      arm(session_phase::client_body, t.client_body_idle);
      auto [rec, n] = co_await sock.async_read_some(
          net::buffer(data, std::min<std::uint64_t>(remaining, cap)), use_tuple);
      if (rec) co_return expired ? body_result::timeout : body_result::client_gone;
      got = n;
      remaining -= n;  // the parser never sees these bytes: we count them ourselves
    } else {
      r.body().data = data;
      r.body().size = cap;
      error_code rec;
      bool need_read = buf.size() == 0;
      if (!need_read) {
        const auto used = x->req->put(buf.data(), rec);
        buf.consume(used);
        if (rec == bhttp::error::need_more) {
          rec = {};
          need_read = used == 0;  // a partial chunk line: only more bytes can complete it
        }
      }
      if (need_read) {
        arm(session_phase::client_body, t.client_body_idle);
        std::tie(rec, std::ignore) = co_await bhttp::async_read_some(sock, buf, *x->req, use_tuple);
      }
      if (rec == bhttp::error::need_buffer) rec = {};
      if (rec == bhttp::error::body_limit) co_return body_result::too_large;
      if (rec && expired) co_return body_result::timeout;
      if (rec && is_parse_error(rec)) co_return body_result::malformed;
      if (rec) co_return body_result::client_gone;
      got = cap - r.body().size;
      if (!chunked) remaining -= got;
    }
    if (got == 0) continue;
    sent += got;  // consumed from the client: from here on a retry could not replay it
    arm(session_phase::writing, t.upstream_response);
    const chunk_line line(got);
    auto [wec, wn] =
        co_await net::async_write(up->sock, body_buffers(line, data, got, chunked), use_tuple);
    if (wec) co_return body_result::upstream_failed;
    if (!chunked && remaining == 0) break;
  }
  if (chunked) {
    arm(session_phase::writing, t.upstream_response);
    auto [wec, wn] = co_await net::async_write(up->sock, net::buffer(last_chunk), use_tuple);
    if (wec) co_return body_result::upstream_failed;
  }
  co_return body_result::ok;
}

void session::state::note_failure(const core::upstream_view& u, upstream::endpoint& ep,
                                  steady::time_point now) {
  const auto e = upstream::record_failure(ep, u.endpoints, *u.outlier, now);
  if (e.ejected) {
    w.cells().upstream(u.metric_id).ejections.add();
    spdlog::warn("outlier: upstream {} endpoint {} ejected for {} ms after {} failures in a row",
                 u.name, ep.text, e.duration.count(), u.outlier->consecutive_failures);
  }
}

// One access-log line for the request that just ended (a no-op when the log is off).
void session::state::log_request(unsigned status, bool local) {
  auto& log = w.access_log();
  if (!log.enabled()) return;
  if (x->req && x->req->is_header_done()) {
    const auto& r = x->req->get();
    x->entry.method = r.method_string();
    x->entry.target = r.target();
    x->entry.version = r.version();
  }
  x->entry.client_ip = client_ip;
  x->entry.status = status;
  x->entry.local = local;
  x->entry.total_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - x->entry_start)
          .count());
  log.write(x->entry);
}

void session::state::build_request_head(bool chunked) {
  const auto& r = x->req->get();
  x->head.clear();
  x->head.append(r.method_string());
  x->head += ' ';
  x->head.append(r.target());
  x->head += " HTTP/1.1\r\n"sv;

  connection_tokens conn;
  std::string_view forwarded_for;
  for (const auto& f : r) {
    if (f.name() == bhttp::field::connection)
      conn.add_list(f.value());
    else if (f.name() == bhttp::field::unknown && iequals(f.name_string(), "x-forwarded-for"))
      forwarded_for = f.value();  // the last one; extended below
  }
  r.append_fields(x->head, [&](const request_parser::field_ref& f) {
    if (is_hop_by_hop(f.name()) || f.name() == bhttp::field::expect) return false;
    const auto name = f.name_string();
    if (conn.count && conn.contains(name)) return false;
    if (f.name() != bhttp::field::unknown) return true;
    // X-Forwarded-* are ours to set (none is in Beast's field table).
    return !iequals(name, "x-forwarded-for") && !iequals(name, "x-forwarded-proto") &&
           !iequals(name, "x-forwarded-host");
  });
  x->head += "X-Forwarded-For: "sv;
  if (!forwarded_for.empty()) {
    x->head.append(forwarded_for);
    x->head += ", "sv;
  }
  x->head += client_ip;
  x->head += "\r\nX-Forwarded-Proto: http\r\n"sv;
  if (auto host = r[bhttp::field::host]; !host.empty()) {
    x->head += "X-Forwarded-Host: "sv;
    x->head.append(host);
    x->head += "\r\n"sv;
  }
  if (chunked) {
    x->head += "Transfer-Encoding: chunked\r\n"sv;
  } else if (auto len = x->req->content_length()) {
    x->head += "Content-Length: "sv;
    append_number(x->head, *len);
    x->head += "\r\n"sv;
  }
  x->head += "\r\n"sv;
}

// The status line and the end-to-end fields of the upstream's response head: hop-by-hop fields
// and those its Connection header lists are dropped (RFC 9110 §7.6.1).
void session::state::append_response_status_and_fields() {
  const auto& rs = x->res->get();
  x->head.clear();
  x->head += "HTTP/1.1 "sv;
  append_number(x->head, rs.result_int());
  x->head += ' ';
  x->head.append(rs.reason());
  x->head += "\r\n"sv;
  connection_tokens conn;
  for (const auto& f : rs)
    if (f.name() == bhttp::field::connection) conn.add_list(f.value());
  rs.append_fields(x->head, [&](const response_parser::field_ref& f) {
    return !is_hop_by_hop(f.name()) && !(conn.count && conn.contains(f.name_string()));
  });
}

// A 1xx response as received (it has no body).
void session::state::build_interim_head() {
  append_response_status_and_fields();
  x->head += "\r\n"sv;
}

void session::state::build_response_head(const routing::decision& d, bool keep, framing f) {
  const auto& rs = x->res->get();
  append_response_status_and_fields();
  if (f == framing::length) {
    x->head += "Content-Length: "sv;
    append_number(x->head, *x->res->content_length());
    x->head += "\r\n"sv;
  } else if (f == framing::chunked) {
    x->head += "Transfer-Encoding: chunked\r\n"sv;
  } else if (f == framing::none) {
    // HEAD and 304 carry the length the GET would have had (RFC 9110 §8.6).
    if (auto it = rs.find(bhttp::field::content_length); it != rs.end()) {
      x->head += "Content-Length: "sv;
      x->head.append(it->value());
      x->head += "\r\n"sv;
    }
  }
  if (!d.set_cookie.empty()) {
    x->head += "Set-Cookie: "sv;
    x->head += d.set_cookie;
    x->head += "\r\n"sv;
  }
  if (!keep)
    x->head += "Connection: close\r\n"sv;
  else if (x->req->get().version() < 11)
    x->head += "Connection: keep-alive\r\n"sv;
  x->head += "\r\n"sv;
}

awaitable<void> session::state::local_reply(unsigned code, std::string_view text, bool close) {
  w.cells().local_reply(code);
  const auto status = bhttp::int_to_status(code);
  x->head.clear();
  x->head += "HTTP/1.1 "sv;
  append_number(x->head, code);
  x->head += ' ';
  x->head.append(bhttp::obsolete_reason(status));
  x->head += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "sv;
  append_number(x->head, text.size() + 1);
  x->head += "\r\n"sv;
  if (close)
    x->head += "Connection: close\r\n"sv;
  else if (x->req && x->req->is_header_done() && x->req->get().version() < 11)
    x->head += "Connection: keep-alive\r\n"sv;
  x->head += "\r\n"sv;
  x->head.append(text);
  x->head += '\n';
  const auto& cfg = *w.current()->config;
  arm(session_phase::writing, cfg.timeouts.client_header);
  before_client_write();
  auto [ec, n] = co_await net::async_write(sock, net::buffer(x->head), use_tuple);
  x->entry.bytes_sent += n;
  log_request(code, true);
  if (close && !ec) co_await lingering_close();
}

// Closing with unread request bytes makes the kernel send RST, which can destroy the reply we
// just wrote before the client reads it: shut our side, then drain briefly (nginx's
// lingering_close).
awaitable<void> session::state::lingering_close() {
  error_code ec;
  sock.shutdown(tcp::socket::shutdown_send, ec);
  arm(session_phase::idle, std::chrono::duration_cast<std::chrono::milliseconds>(linger_timeout));
  char* data = relay_buffer();
  std::size_t drained = 0;
  while (drained < 256 * 1024) {
    auto [rec, n] = co_await sock.async_read_some(
        net::buffer(data, core::worker::relay_buffer_size), use_tuple);
    if (rec) break;
    drained += n;
  }
  sock.close(ec);
}

}  // namespace canary::http
