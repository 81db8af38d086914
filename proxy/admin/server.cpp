// Admin listener and watch streams; see server.h.
#include "admin/server.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <system_error>

#include <algorithm>
#include <list>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <spdlog/spdlog.h>

namespace canary::admin {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

namespace {
constexpr auto ping_interval = std::chrono::seconds(15);
constexpr auto request_timeout = std::chrono::seconds(30);
constexpr std::size_t max_admin_body = 1024 * 1024;
// After a failed accept (EMFILE, ENFILE, ENOBUFS: the next try would fail the same way at once),
// as the workers' accept loop does.
constexpr auto accept_backoff = std::chrono::milliseconds(50);
// How long a refused connection is read (and dropped) after its 503 before it is closed.
constexpr auto reject_linger = std::chrono::seconds(1);

// Keeps a count of live coroutines right however the coroutine ends.
struct decrement_on_exit {
  std::size_t& n;
  ~decrement_on_exit() { --n; }
};

// A JSON error body as admin::api writes them.
std::string error_body(const std::string& message) {
  return "{\"error\":\"" + message + "\",\"errors\":[]}\n";
}

std::string plain_response(std::string_view status_line, const std::string& body) {
  return std::string(status_line) +
         "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}
}  // namespace

connection_limits limits_for_nofile(std::uint64_t nofile) {
  connection_limits out;
  out.max_connections =
      static_cast<std::size_t>(std::clamp<std::uint64_t>(nofile / 8, 4, 1024));
  out.max_watchers = std::max<std::size_t>(1, out.max_connections * 3 / 4);
  return out;
}

connection_limits limits_for_this_process() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return limits_for_nofile(UINT64_MAX);
  return limits_for_nofile(rl.rlim_cur);
}

struct server::impl {
  impl(net::io_context& c, rollout::engine& e, api& h, reloader& r, connection_limits l)
      : ioc(c), engine(e), handler(h), reloads(r), limits(l) {}
  net::io_context& ioc;
  rollout::engine& engine;
  api& handler;
  reloader& reloads;
  const connection_limits limits;
  tcp::acceptor acceptor{ioc};
  std::list<std::shared_ptr<beast::tcp_stream>> streams;  // open watch streams
  std::size_t connections = 0;  // open admin connections (serve() running)
  std::size_t rejecting = 0;    // refused connections still lingering in reject()

  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(beast::tcp_stream stream);
  net::awaitable<void> reject(tcp::socket sock);
  net::awaitable<void> watch(beast::tcp_stream& stream, std::string route);
};

server::server(net::io_context& ioc, rollout::engine& engine, api& handler, reloader& reloads,
               connection_limits limits)
    : impl_(std::make_unique<impl>(ioc, engine, handler, reloads, limits)) {}

server::~server() = default;

std::uint16_t server::listen(const tcp::endpoint& where) {
  auto& a = impl_->acceptor;
  a.open(where.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(where);
  a.listen();
  return a.local_endpoint().port();
}

std::uint16_t server::adopt(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw std::system_error(errno, std::generic_category(), "getsockname(handed-over socket)");
  impl_->acceptor.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd);
  return impl_->acceptor.local_endpoint().port();
}

int server::listen_handle() { return impl_->acceptor.native_handle(); }

void server::stop_accepting() {
  error_code ec;
  impl_->acceptor.close(ec);
}

void server::start() { net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached); }

void server::close_streams() {
  for (auto& s : impl_->streams) s->socket().close();
}

net::awaitable<void> server::impl::accept_loop() {
  std::uint64_t failures = 0;  // accept errors in a row, logged once per streak
  net::steady_timer backoff(ioc);
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(tuple_awaitable);
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
      // Out of descriptors the listener stays readable: retrying at once would spin the control
      // thread (and starve timers, the state write and /healthz). Wait, then try again.
      if (failures++ == 0)
        spdlog::warn("admin: accept: {} (retrying every {} ms)", ec.message(),
                     accept_backoff.count());
      backoff.expires_after(accept_backoff);
      co_await backoff.async_wait(tuple_awaitable);
      continue;
    }
    if (failures) {
      spdlog::info("admin: accept works again after {} failures", failures);
      failures = 0;
    }
    if (connections >= limits.max_connections) {
      net::co_spawn(ioc, reject(std::move(sock)), net::detached);
      continue;
    }
    ++connections;
    net::co_spawn(ioc, serve(beast::tcp_stream(std::move(sock))), net::detached);
  }
}

// Over max_connections: answer 503 at once and close, so the client is not left waiting in the
// backlog. The 503 is written before anything is read (a fresh socket's send buffer takes it).
net::awaitable<void> server::impl::reject(tcp::socket sock) {
  const std::string reply = plain_response(
      "HTTP/1.1 503 Service Unavailable",
      error_body("too many admin connections: the limit is " +
                 std::to_string(limits.max_connections) +
                 " (admin connections are limited by the descriptor limit, RLIMIT_NOFILE)"));
  error_code ec;
  sock.non_blocking(true, ec);
  if (!ec) net::write(sock, net::buffer(reply), ec);
  sock.shutdown(tcp::socket::shutdown_send, ec);
  // Closing with the request unread would send a reset, which can destroy the 503 before the
  // client reads it; read and drop until the client closes, briefly (RFC 9112 §9.6). Lingering
  // connections are bounded too: past the limit they are closed at once.
  if (rejecting >= limits.max_connections) co_return;
  ++rejecting;
  const decrement_on_exit guard{rejecting};
  beast::tcp_stream stream(std::move(sock));
  stream.expires_after(reject_linger);
  char sink[1024];
  for (;;) {
    auto [rec, n] = co_await stream.async_read_some(net::buffer(sink), tuple_awaitable);
    if (rec) break;
  }
}

net::awaitable<void> server::impl::serve(beast::tcp_stream stream) {
  const decrement_on_exit guard{connections};
  beast::flat_buffer buffer(64 * 1024);
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(max_admin_body);
    stream.expires_after(request_timeout);
    auto [ec, n] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
    if (ec) {
      if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit ||
          ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category()) {
        if (ec != bhttp::error::end_of_stream) {
          bhttp::response<bhttp::string_body> bad{bhttp::status::bad_request, 11};
          bad.set(bhttp::field::content_type, "application/json");
          bad.set(bhttp::field::connection, "close");
          bad.body() = "{\"error\":\"malformed or too large request: " + ec.message() +
                       "\",\"errors\":[]}\n";
          bad.prepare_payload();
          co_await bhttp::async_write(stream, bad, tuple_awaitable);
        }
      }
      co_return;
    }
    auto& req = parser.get();
    request r;
    r.method = req.method_string();
    r.target = req.target();
    if (auto it = req.find(bhttp::field::authorization); it != req.end())
      r.authorization = it->value();
    if (auto it = req.find(bhttp::field::origin); it != req.end()) r.origin = it->value();
    if (auto it = req.find(bhttp::field::host); it != req.end()) r.host = it->value();
    if (auto it = req.find(bhttp::field::content_type); it != req.end())
      r.content_type = it->value();
    r.has_body = parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
    r.body = req.body();
    response out;
    try {
      out = handler.handle(r);
    } catch (const std::exception& e) {
      spdlog::error("admin: {} {}: {}", std::string(r.method), std::string(r.target), e.what());
      out = {500, "application/json",
             "{\"error\":\"internal error\",\"errors\":[]}\n", {}, {}};
    }
    if (out.reload) {
      // The load runs on the reloader's thread; this connection waits, the control thread
      // does not. Shared with the callback, which may outlive this frame.
      struct reload_wait {
        explicit reload_wait(net::io_context& c) : wake(c, net::steady_timer::time_point::max()) {}
        net::steady_timer wake;
        std::optional<rollout::api_result> result;
      };
      auto wait = std::make_shared<reload_wait>(ioc);
      reloads.request([wait](const rollout::api_result& r) {
        wait->result = r;
        wait->wake.cancel();
      });
      while (!wait->result) co_await wait->wake.async_wait(tuple_awaitable);
      out = handler.reload_response(*wait->result);
    }
    if (out.watch && req.method() == bhttp::verb::head) {
      // RFC 9110 §9.3.2: HEAD gets the header section a GET would, without the content. A
      // watch stream's content never ends, so send the head of the stream and finish.
      static constexpr std::string_view head =
          "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
          "Connection: close\r\n\r\n";
      stream.expires_after(request_timeout);
      co_await net::async_write(stream, net::buffer(head), tuple_awaitable);
      error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
    bool close_after = false;
    if (out.watch && streams.size() >= limits.max_watchers) {
      out = {503, "application/json",
             error_body("too many watch streams: the limit is " +
                        std::to_string(limits.max_watchers) +
                        " (watch streams are limited by the descriptor limit, RLIMIT_NOFILE)"),
             {}, {}};
      close_after = true;
    }
    if (out.watch) {
      co_await watch(stream, *out.watch);
      co_return;
    }
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(out.status),
                                            req.version()};
    res.set(bhttp::field::content_type, out.content_type);
    res.set(bhttp::field::cache_control, "no-store");
    if (!out.allow.empty()) res.set(bhttp::field::allow, out.allow);
    if (req.method() != bhttp::verb::head) res.body() = std::move(out.body);
    res.prepare_payload();
    res.keep_alive(req.keep_alive() && !close_after);
    stream.expires_after(request_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, tuple_awaitable);
    if (wec || !res.keep_alive()) {
      error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

net::awaitable<void> server::impl::watch(beast::tcp_stream& stream, std::string route) {
  auto self = std::make_shared<beast::tcp_stream>(std::move(stream));
  streams.push_front(self);
  auto entry = streams.begin();
  net::steady_timer wake(ioc);
  std::deque<std::string> pending;  // route names that changed
  auto id = engine.subscribe([&](const std::string& name) {
    if (route.empty() || name == route) {
      pending.push_back(name);
      wake.cancel();
    }
  });
  struct cleanup {
    impl* owner;
    std::uint64_t id;
    std::list<std::shared_ptr<beast::tcp_stream>>::iterator entry;
    ~cleanup() {
      owner->engine.unsubscribe(id);
      owner->streams.erase(entry);
    }
  } guard{this, id, entry};

  self->expires_never();
  std::string out =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
      "Connection: close\r\n\r\n";
  for (const auto& s : engine.statuses())
    if (route.empty() || s.route->name == route)
      out += "event: status\ndata: " + handler.status_json(s) + "\n\n";
  for (;;) {
    auto [ec, n] = co_await net::async_write(self->socket(), net::buffer(out), tuple_awaitable);
    if (ec) co_return;
    out.clear();
    if (pending.empty()) {
      wake.expires_after(ping_interval);
      auto [tec] = co_await wake.async_wait(tuple_awaitable);
      if (!self->socket().is_open()) co_return;
      if (!tec && pending.empty()) out = ": ping\n\n";
    }
    while (!pending.empty()) {
      auto name = std::move(pending.front());
      pending.pop_front();
      if (auto s = engine.status(name))
        out += "event: status\ndata: " + handler.status_json(*s) + "\n\n";
    }
  }
}

}  // namespace canary::admin
