// The request path: read a request head, route it, exchange it with an upstream, relay the
// response; repeat while keep-alive holds. Reads as the protocol does, top to bottom, in one
// coroutine per connection (no nested coroutine per message: its frame would defeat Asio's
// frame recycling). Errors are error_codes; every failure ends in a local reply or a close.
#include "http/session.h"

#include <array>
#include <charconv>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/spdlog.h>

#include "core/worker.h"
#include "http/header_rules.h"
#include "http/request_rules.h"
#include "upstream/pool.h"

namespace canary::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using error_code = boost::system::error_code;
using request_parser = bhttp::request_parser<bhttp::buffer_body>;
using response_parser = bhttp::response_parser<bhttp::buffer_body>;

namespace {

constexpr std::size_t body_chunk = 16 * 1024;
constexpr std::size_t max_response_header_bytes = 64 * 1024;
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

bool is_parse_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::need_buffer;
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

constexpr std::size_t err(metrics::upstream_error e) { return static_cast<std::size_t>(e); }

}  // namespace

struct session::state {
  state(core::worker& worker, socket_type s)
      : w(worker),
        sock(std::move(s)),
        buf(std::max<std::size_t>(
            w.current()->config->limits.max_request_header_bytes + 4096, 64 * 1024)) {
    error_code ec;
    auto peer = sock.remote_endpoint(ec);
    if (!ec) client_ip = peer.address().to_string();
  }

  core::worker& w;
  socket_type sock;
  beast::flat_buffer buf;
  std::optional<request_parser> req;
  std::optional<response_parser> res;
  std::unique_ptr<upstream::connection> up;
  std::string head;
  std::string cookie_join;
  std::string client_ip;
  std::int64_t deadline_ns = 0;
  session_phase phase = session_phase::idle;
  bool expired = false;
  std::array<char, body_chunk> body;

  void arm(session_phase p, std::chrono::milliseconds d) {
    phase = p;
    deadline_ns = w.now_ns() + to_ns(d);
    expired = false;
  }

  awaitable<void> serve();
  awaitable<bool> handle(const core::snapshot& snap);
  awaitable<acquire_status> acquire(const core::snapshot& snap, int upstream_index,
                                    bool allow_pool);
  awaitable<void> local_reply(unsigned code, std::string_view text, bool close);
  awaitable<void> lingering_close();
  void build_request_head(bool chunked);
  bool build_response_head(const routing::decision& d, bool keep, int framing);
  awaitable<bool> write_upstream(const char* data, std::size_t n, bool chunked);
  awaitable<bool> write_client(const char* data, std::size_t n, bool chunked);
};

session::session(core::worker& w, socket_type sock)
    : st_(std::make_unique<state>(w, std::move(sock))) {
  w.attach(this);
}

session::~session() {
  st_->w.detach(this);
  st_->w.shared().connections.fetch_sub(1, std::memory_order_relaxed);
  st_->w.cells().connection_closed();
}

awaitable<void> session::run(std::unique_ptr<session> self) { co_await self->st_->serve(); }

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

awaitable<void> session::state::serve() {
  for (;;) {
    auto snap = w.current();
    const auto* cfg = snap->config.get();
    if (buf.size() == 0) {
      if (w.draining()) co_return;
      // Keep-alive idle: wait for the next request's first byte under client_idle; the head
      // deadline (client_header) starts when it arrives.
      arm(session_phase::idle, cfg->timeouts.client_idle);
      auto [ec, n] = co_await sock.async_read_some(buf.prepare(body_chunk), use_tuple);
      if (ec) co_return;
      buf.commit(n);
      w.refresh_now();
      snap = w.current();
      cfg = snap->config.get();
    }
    arm(session_phase::header, cfg->timeouts.client_header);
    req.emplace();
    req->header_limit(static_cast<std::uint32_t>(cfg->limits.max_request_header_bytes));
    req->body_limit(cfg->limits.max_request_body_bytes);
    auto [hec, hn] = co_await bhttp::async_read_header(sock, buf, *req, use_tuple);
    if (hec) {
      if (expired) {
        co_await local_reply(408, "request header timeout", true);
      } else if (hec == bhttp::error::header_limit || hec == bhttp::error::buffer_overflow) {
        co_await local_reply(431, "request header too large", true);
      } else if (is_parse_error(hec)) {
        co_await local_reply(400, "malformed request", true);
      }
      co_return;  // end of stream, reset, or answered
    }
    if (auto bad = validate_request(*req, cfg->limits); bad.code != 0) {
      co_await local_reply(bad.code, bad.message, true);
      co_return;
    }
    if (!co_await handle(*snap)) co_return;
  }
}

awaitable<bool> session::state::handle(const core::snapshot& snap) {
  auto& r = req->get();
  const auto& cfg = *snap.config;
  const bool has_body = req->chunked() || (req->content_length() && *req->content_length() > 0);
  const bool client_keep = req->keep_alive() && !w.draining();

  const int ri = snap.table.match(r[bhttp::field::host], r.target());
  if (ri < 0) {
    co_await local_reply(404, "no route for this host and path", !client_keep || has_body);
    co_return client_keep && !has_body;
  }
  const auto& route = snap.routes[static_cast<std::size_t>(ri)];

  // Inputs for the decision: views into the parsed head, no copies unless several Cookie
  // fields must be joined.
  routing::request_inputs in;
  const auto& rule = route.rule;
  if (!rule.by_header.empty()) {
    if (auto it = r.find(rule.by_header); it != r.end()) in.canary_header = it->value();
  }
  if (!rule.by_cookie.empty() || rule.sticky.how == config::sticky_config::kind::cookie) {
    auto range = r.equal_range(bhttp::field::cookie);
    if (range.first != range.second) {
      if (std::next(range.first) == range.second) {
        in.cookies = range.first->value();
      } else {
        cookie_join.clear();
        for (auto it = range.first; it != range.second; ++it) {
          if (!cookie_join.empty()) cookie_join += "; ";
          cookie_join.append(it->value());
        }
        in.cookies = cookie_join;
      }
    }
  }
  if (rule.sticky.how == config::sticky_config::kind::header) {
    if (auto it = r.find(rule.sticky.name); it != r.end()) in.sticky_header = it->value();
  }
  in.client_ip = client_ip;
  const auto d = routing::decide(rule, route.canary_active, route.weight, in,
                                 w.wrr(static_cast<std::size_t>(ri)), w.random());

  // Side selection: the decided side, or the other one when all of its endpoints are down —
  // never into an aborted canary (DESIGN §3.6).
  auto side = d.side;
  auto why = d.why;
  auto index_of = [&](routing::variant v) {
    return v == routing::variant::canary ? route.canary : route.stable;
  };
  auto other_allowed = [&](routing::variant v) {
    return v == routing::variant::canary ? true : route.canary_active;
  };
  auto flip = [](routing::variant v) {
    return v == routing::variant::canary ? routing::variant::stable : routing::variant::canary;
  };
  const auto now = std::chrono::steady_clock::now();
  if (!snap.upstreams[static_cast<std::size_t>(index_of(side))].any_up(now)) {
    if (other_allowed(side) &&
        snap.upstreams[static_cast<std::size_t>(index_of(flip(side)))].any_up(now)) {
      side = flip(side);
      why = routing::reason::failover;
    } else {
      co_await local_reply(503, "no upstream endpoint is up", !client_keep || has_body);
      co_return client_keep && !has_body;
    }
  }

  auto st = co_await acquire(snap, index_of(side), true);
  if (st == acquire_status::connect_failed && other_allowed(side) &&
      snap.upstreams[static_cast<std::size_t>(index_of(flip(side)))].any_up(now)) {
    side = flip(side);
    why = routing::reason::failover;
    st = co_await acquire(snap, index_of(side), true);
  }
  const auto& ups = snap.upstreams[static_cast<std::size_t>(index_of(side))];
  auto& series = w.cells().series(route.metric_series[static_cast<int>(side)]);
  if (st != acquire_status::ok) {
    // Every endpoint refusing is "no endpoint up" (DESIGN §3.6), whether we learnt it now or
    // from an earlier failure: the client gets the same answer either way.
    const unsigned code = st == acquire_status::timeout ? 504u : 503u;
    series.by_code[code].add();
    co_await local_reply(code, code == 504 ? "upstream connect timeout" : "no upstream endpoint is up",
                         !client_keep || has_body);
    co_return client_keep && !has_body;
  }
  w.cells().route(route.metric_route_id).decisions[static_cast<int>(side)][static_cast<int>(why)]
      .add();

  const auto started = std::chrono::steady_clock::now();
  const bool chunked_up = req->chunked();
  bool retried = false;
  std::uint64_t body_sent = 0;
  const bool head_method = r.method() == bhttp::verb::head;

  for (;;) {  // at most two rounds: the second on a fresh connection (DESIGN §7 retries)
    build_request_head(chunked_up);
    bool ok = co_await write_upstream(head.data(), head.size(), false);
    if (ok && has_body && body_sent == 0) {
      if (auto it = r.find(bhttp::field::expect);
          it != r.end() && iequals(it->value(), "100-continue")) {
        // We answer the client's Expect ourselves (as nginx does) and strip it upstream.
        static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
        arm(session_phase::writing, cfg.timeouts.client_idle);
        auto [wec, wn] = co_await net::async_write(sock, net::buffer(cont), use_tuple);
        if (wec) co_return false;
      }
      while (ok && !req->is_done()) {
        r.body().data = body.data();
        r.body().size = body.size();
        arm(session_phase::client_body, cfg.timeouts.client_body_idle);
        auto [rec, rn] = co_await bhttp::async_read_some(sock, buf, *req, use_tuple);
        if (rec == bhttp::error::need_buffer) rec = {};
        if (rec) {
          up.reset();
          if (rec == bhttp::error::body_limit)
            co_await local_reply(413, "request body too large", true);
          else if (expired)
            co_await local_reply(408, "request body timeout", true);
          else if (is_parse_error(rec))
            co_await local_reply(400, "malformed request body", true);
          co_return false;
        }
        const std::size_t got = body.size() - r.body().size;
        if (got) {
          ok = co_await write_upstream(body.data(), got, chunked_up);
          body_sent += got;
        }
      }
      if (ok && chunked_up) ok = co_await write_upstream("0\r\n\r\n", 5, false);
    }
    if (!ok) {
      if (up && up->reused && !retried && body_sent == 0) {
        retried = true;
        up.reset();
        if (co_await acquire(snap, index_of(side), false) == acquire_status::ok) continue;
      }
      up.reset();
      w.cells().upstream(ups.metric_id).errors[err(metrics::upstream_error::reset)].add();
      series.by_code[502].add();
      co_await local_reply(502, "upstream connection failed while sending the request", true);
      co_return false;
    }

    // Response head; interim 1xx responses are dropped (we answered Expect ourselves).
    error_code hec;
    for (;;) {
      res.emplace();
      res->header_limit(max_response_header_bytes);
      res->body_limit(boost::none);
      if (head_method) res->skip(true);
      arm(session_phase::upstream_response, cfg.timeouts.upstream_response);
      auto [ec, n] = co_await bhttp::async_read_header(up->sock, up->buffer, *res, use_tuple);
      hec = ec;
      if (hec) break;
      const unsigned code = res->get().result_int();
      if (code >= 100 && code < 200 && code != 101) continue;
      break;
    }
    if (!hec && res->get().result_int() == 101) hec = bhttp::error::bad_status;
    if (hec) {
      const bool silent_close =
          hec == bhttp::error::end_of_stream ||
          (hec == net::error::connection_reset && up->buffer.size() == 0);
      if (!expired && silent_close && up->reused && !retried && body_sent == 0 &&
          (idempotent(r.method()) || !has_body)) {
        retried = true;
        up.reset();
        if (co_await acquire(snap, index_of(side), false) == acquire_status::ok) continue;
      }
      up.reset();
      const bool timeout = expired;
      w.cells().upstream(ups.metric_id).errors[err(timeout                 ? metrics::upstream_error::timeout
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

  auto& rs = res->get();
  const unsigned status = rs.result_int();
  series.observe_latency(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                            started)
          .count()));
  series.by_code[status % 1000].add();

  // Framing to the client, rebuilt from what was parsed (RFC 9112 §6).
  enum { no_body = 0, by_length = 1, by_chunks = 2, by_close = 3 };
  const bool bodiless = head_method || status == 204 || status == 304 || status < 200;
  int framing = bodiless                  ? no_body
                : res->content_length()   ? by_length
                : r.version() >= 11       ? by_chunks
                                          : by_close;
  // A drain that began while this request was in flight ends the connection after it.
  bool keep = client_keep && !w.draining() && framing != by_close;
  build_response_head(d, keep, framing);

  // Small responses: send the head and the first body bytes already received in one write.
  if (framing == by_length && up->buffer.size() > 0 && !res->is_done()) {
    rs.body().data = body.data();
    rs.body().size = body.size();
    auto [ec, n] = co_await bhttp::async_read_some(up->sock, up->buffer, *res, use_tuple);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      up.reset();
      w.cells().upstream(ups.metric_id).errors[err(metrics::upstream_error::reset)].add();
      co_return false;
    }
    head.append(body.data(), body.size() - rs.body().size);
  }
  if (!co_await write_client(head.data(), head.size(), false)) {
    up.reset();
    co_return false;
  }
  if (framing != no_body) {
    const bool chunked_out = framing == by_chunks;
    while (!res->is_done()) {
      rs.body().data = body.data();
      rs.body().size = body.size();
      arm(session_phase::upstream_body, cfg.timeouts.upstream_response);
      auto [ec, n] = co_await bhttp::async_read_some(up->sock, up->buffer, *res, use_tuple);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) {
        // The head is out: the only honest signal left is closing the connection.
        up.reset();
        w.cells().upstream(ups.metric_id).errors[err(expired ? metrics::upstream_error::timeout
                                                           : metrics::upstream_error::reset)]
            .add();
        co_return false;
      }
      const std::size_t got = body.size() - rs.body().size;
      if (got && !co_await write_client(body.data(), got, chunked_out)) {
        up.reset();
        co_return false;
      }
    }
    if (chunked_out && !co_await write_client("0\r\n\r\n", 5, false)) {
      up.reset();
      co_return false;
    }
  }
  if (res->keep_alive() && res->is_done()) {
    w.pool().put(std::move(up), std::chrono::steady_clock::now());
  } else {
    up.reset();
  }
  co_return keep;
}

awaitable<acquire_status> session::state::acquire(const core::snapshot& snap, int upstream_index,
                                                  bool allow_pool) {
  const auto& u = snap.upstreams[static_cast<std::size_t>(upstream_index)];
  const auto& cfg = *snap.config;
  const std::size_t n = u.endpoints.size();
  const std::uint32_t start = w.next_rr(static_cast<std::size_t>(upstream_index));
  const auto now = std::chrono::steady_clock::now();
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
      ep->mark_up();
      co_return acquire_status::ok;
    }
    up.reset();
    if (expired) {
      w.cells().upstream(u.metric_id).errors[err(metrics::upstream_error::timeout)].add();
      co_return acquire_status::timeout;
    }
    w.cells().upstream(u.metric_id).errors[err(metrics::upstream_error::connect)].add();
    ep->mark_down(now, connect_failure_holdoff);
    spdlog::warn("upstream {} endpoint {}: connect failed: {}", u.name, ep->text, ec.message());
  }
  co_return tried ? acquire_status::connect_failed : acquire_status::none_up;
}

void session::state::build_request_head(bool chunked) {
  const auto& r = req->get();
  head.clear();
  head.append(r.method_string());
  head += ' ';
  head.append(r.target());
  head += " HTTP/1.1\r\n";

  connection_tokens conn;
  for (auto it = r.find(bhttp::field::connection); it != r.end() && it->name() ==
                                                   bhttp::field::connection;
       ++it)
    conn.add_list(it->value());
  std::string_view forwarded_for;
  for (const auto& f : r) {
    const auto name = f.name_string();
    if (is_hop_by_hop(name) || (conn.count && conn.contains(name))) continue;
    if (f.name() == bhttp::field::expect || iequals(name, "x-forwarded-proto") ||
        iequals(name, "x-forwarded-host"))
      continue;
    if (iequals(name, "x-forwarded-for")) {
      forwarded_for = f.value();  // the last one; extended below
      continue;
    }
    head.append(name);
    head += ": ";
    head.append(f.value());
    head += "\r\n";
  }
  head += "X-Forwarded-For: ";
  if (!forwarded_for.empty()) {
    head.append(forwarded_for);
    head += ", ";
  }
  head += client_ip;
  head += "\r\nX-Forwarded-Proto: http\r\n";
  if (auto host = r[bhttp::field::host]; !host.empty()) {
    head += "X-Forwarded-Host: ";
    head.append(host);
    head += "\r\n";
  }
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (auto len = req->content_length()) {
    head += "Content-Length: ";
    append_number(head, *len);
    head += "\r\n";
  }
  head += "\r\n";
}

bool session::state::build_response_head(const routing::decision& d, bool keep, int framing) {
  const auto& rs = res->get();
  head.clear();
  head += "HTTP/1.1 ";
  append_number(head, rs.result_int());
  head += ' ';
  head.append(rs.reason());
  head += "\r\n";
  connection_tokens conn;
  for (auto it = rs.find(bhttp::field::connection);
       it != rs.end() && it->name() == bhttp::field::connection; ++it)
    conn.add_list(it->value());
  for (const auto& f : rs) {
    const auto name = f.name_string();
    if (is_hop_by_hop(name) || (conn.count && conn.contains(name))) continue;
    head.append(name);
    head += ": ";
    head.append(f.value());
    head += "\r\n";
  }
  if (framing == 1) {
    head += "Content-Length: ";
    append_number(head, *res->content_length());
    head += "\r\n";
  } else if (framing == 2) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (framing == 0) {
    // HEAD and 304 carry the length the GET would have had (RFC 9110 §8.6).
    if (auto it = rs.find(bhttp::field::content_length); it != rs.end()) {
      head += "Content-Length: ";
      head.append(it->value());
      head += "\r\n";
    }
  }
  if (!d.set_cookie.empty()) {
    head += "Set-Cookie: ";
    head += d.set_cookie;
    head += "\r\n";
  }
  if (!keep)
    head += "Connection: close\r\n";
  else if (req->get().version() < 11)
    head += "Connection: keep-alive\r\n";
  head += "\r\n";
  return true;
}

awaitable<bool> session::state::write_upstream(const char* data, std::size_t n, bool chunked) {
  const auto& cfg = *w.current()->config;
  arm(session_phase::writing, cfg.timeouts.upstream_response);
  error_code ec;
  if (chunked) {
    char size_line[24];
    auto [end, tec] = std::to_chars(size_line, size_line + 20, n, 16);
    *end++ = '\r';
    *end++ = '\n';
    std::array<net::const_buffer, 3> parts{net::buffer(size_line, end - size_line),
                                           net::buffer(data, n), net::buffer("\r\n", 2)};
    std::tie(ec, std::ignore) = co_await net::async_write(up->sock, parts, use_tuple);
  } else {
    std::tie(ec, std::ignore) =
        co_await net::async_write(up->sock, net::buffer(data, n), use_tuple);
  }
  co_return !ec;
}

awaitable<bool> session::state::write_client(const char* data, std::size_t n, bool chunked) {
  const auto& cfg = *w.current()->config;
  arm(session_phase::writing, cfg.timeouts.client_idle);
  error_code ec;
  if (chunked) {
    char size_line[24];
    auto [end, tec] = std::to_chars(size_line, size_line + 20, n, 16);
    *end++ = '\r';
    *end++ = '\n';
    std::array<net::const_buffer, 3> parts{net::buffer(size_line, end - size_line),
                                           net::buffer(data, n), net::buffer("\r\n", 2)};
    std::tie(ec, std::ignore) = co_await net::async_write(sock, parts, use_tuple);
  } else {
    std::tie(ec, std::ignore) = co_await net::async_write(sock, net::buffer(data, n), use_tuple);
  }
  co_return !ec;
}

awaitable<void> session::state::local_reply(unsigned code, std::string_view text, bool close) {
  w.cells().local_reply(code);
  const auto status = bhttp::int_to_status(code);
  head.clear();
  head += "HTTP/1.1 ";
  append_number(head, code);
  head += ' ';
  head.append(bhttp::obsolete_reason(status));
  head += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
  append_number(head, text.size() + 1);
  head += "\r\n";
  if (close)
    head += "Connection: close\r\n";
  else if (req && req->is_header_done() && req->get().version() < 11)
    head += "Connection: keep-alive\r\n";
  head += "\r\n";
  head.append(text);
  head += '\n';
  const auto& cfg = *w.current()->config;
  arm(session_phase::writing, cfg.timeouts.client_header);
  auto [ec, n] = co_await net::async_write(sock, net::buffer(head), use_tuple);
  if (close && !ec) co_await lingering_close();
}

// Closing with unread request bytes makes the kernel send RST, which can destroy the reply we
// just wrote before the client reads it: shut our side, then drain briefly (nginx's
// lingering_close).
awaitable<void> session::state::lingering_close() {
  error_code ec;
  sock.shutdown(tcp::socket::shutdown_send, ec);
  arm(session_phase::idle, std::chrono::duration_cast<std::chrono::milliseconds>(linger_timeout));
  std::size_t drained = 0;
  while (drained < 256 * 1024) {
    auto [rec, n] = co_await sock.async_read_some(net::buffer(body), use_tuple);
    if (rec) break;
    drained += n;
  }
  sock.close(ec);
}

}  // namespace canary::http
