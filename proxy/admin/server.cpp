// Admin listener and watch streams; see server.h.
#include "admin/server.h"

#include <list>

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
}  // namespace

struct server::impl {
  impl(net::io_context& c, rollout::engine& e, api& h) : ioc(c), engine(e), handler(h) {}
  net::io_context& ioc;
  rollout::engine& engine;
  api& handler;
  tcp::acceptor acceptor{ioc};
  std::list<std::shared_ptr<beast::tcp_stream>> streams;  // open watch streams

  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(beast::tcp_stream stream);
  net::awaitable<void> watch(beast::tcp_stream& stream, std::string route);
};

server::server(net::io_context& ioc, rollout::engine& engine, api& handler)
    : impl_(std::make_unique<impl>(ioc, engine, handler)) {}

server::~server() = default;

std::uint16_t server::listen(const tcp::endpoint& where) {
  auto& a = impl_->acceptor;
  a.open(where.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(where);
  a.listen();
  return a.local_endpoint().port();
}

void server::start() { net::co_spawn(impl_->ioc, impl_->accept_loop(), net::detached); }

void server::close_streams() {
  for (auto& s : impl_->streams) s->socket().close();
}

net::awaitable<void> server::impl::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor.async_accept(tuple_awaitable);
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    net::co_spawn(ioc, serve(beast::tcp_stream(std::move(sock))), net::detached);
  }
}

net::awaitable<void> server::impl::serve(beast::tcp_stream stream) {
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
    res.keep_alive(req.keep_alive());
    stream.expires_after(request_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, tuple_awaitable);
    if (wec || !req.keep_alive()) {
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
