// canaryctl's HTTP client; see client.h. The only Beast translation unit of the CLI.
#include "ctl/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>
#include <utility>
#include <vector>

#include "util/duration.h"

#ifndef CANARY_VERSION
#define CANARY_VERSION "dev"
#endif

namespace canary::ctl {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using executor_t = net::io_context::executor_type;
using stream_t = beast::basic_stream<tcp, executor_t>;
using resolver_t = net::ip::basic_resolver<tcp, executor_t>;
template <class T>
using task = net::awaitable<T, executor_t>;
using steady = std::chrono::steady_clock;

auto use_tuple() { return net::as_tuple(net::use_awaitable_t<executor_t>{}); }

// Ordinary calls answer at once; this only catches a hung server.
constexpr auto call_timeout = std::chrono::seconds(10);
// The server sends ": ping" every 15 s on a watch; three missed pings mean the stream is dead.
constexpr auto watch_idle_limit = std::chrono::seconds(45);
// Error bodies and statuses are small; anything bigger is not our server.
constexpr std::uint64_t max_reply_body = 64 * 1024 * 1024;

std::string describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  return ec.message();
}

}  // namespace

struct api_client::impl {
  impl(server_url url, std::string display_url, std::string token)
      : url_(std::move(url)), display_url_(std::move(display_url)), token_(std::move(token)) {}

  template <class T>
  T run_task(task<T> t) {
    std::optional<T> result;
    std::exception_ptr error;
    net::co_spawn(ioc_.get_executor(), std::move(t), [&](std::exception_ptr e, T value) {
      error = e;
      if (!e) result = std::move(value);
    });
    ioc_.restart();
    ioc_.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }

  http::request<http::string_body> make_request(http::verb method, const std::string& path,
                                                std::optional<std::string> body,
                                                std::string_view accept) const {
    http::request<http::string_body> req{method, url_.base_path + path, 11};
    req.set(http::field::host, url_.host_header);
    req.set(http::field::user_agent, "canaryctl/" CANARY_VERSION);
    req.set(http::field::accept, accept);
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    if (body) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(*body);
    }
    req.prepare_payload();
    return req;
  }

  // Resolves and connects within call_timeout; returns the failure text or "".
  task<std::string> connect(stream_t& stream) {
    resolver_t resolver(ioc_.get_executor());
    auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, url_.port, use_tuple());
    if (rec) co_return "cannot reach " + display_url_ + ": " + describe(rec);
    stream.expires_after(call_timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple());
    if (cec) co_return "cannot reach " + display_url_ + ": " + describe(cec);
    co_return std::string();
  }

  task<call_result> do_call(http::verb method, std::string path, std::optional<std::string> body) {
    call_result r;
    stream_t stream(ioc_.get_executor());
    if (std::string err = co_await connect(stream); !err.empty()) {
      r.fail = failure::unreachable;
      r.message = err;
      co_return r;
    }
    auto req = make_request(method, path, std::move(body), "application/json");
    stream.expires_after(call_timeout);
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple());
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_reply_body);
    beast::error_code rec;
    if (!wec) {
      std::tie(rec, std::ignore) = co_await http::async_read(stream, buffer, parser, use_tuple());
    }
    if (beast::error_code ec = wec ? wec : rec) {
      r.fail = ec == beast::error::timeout ? failure::timeout : failure::unreachable;
      r.message = "request to " + display_url_ + " failed: " + describe(ec);
      co_return r;
    }
    auto& res = parser.get();
    r.reply.status = res.result_int();
    r.reply.reason = std::string(res.reason());
    r.reply.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return r;
  }

  task<watch_result> do_watch(std::string path, std::optional<steady::time_point> deadline,
                              const std::function<bool(const sse_event&)>& on_event) {
    watch_result r;
    stream_t stream(ioc_.get_executor());
    if (std::string err = co_await connect(stream); !err.empty()) {
      r.end = watch_end::unreachable;
      r.message = err;
      co_return r;
    }
    // Arms the stream for the next read: the wait deadline or the idle limit, whichever is first;
    // returns true when the deadline (not the idle limit) is the one armed.
    auto arm = [&](steady::duration idle) {
      auto at = steady::now() + idle;
      if (deadline && *deadline <= at) {
        stream.expires_at(*deadline);
        return true;
      }
      stream.expires_at(at);
      return false;
    };
    auto timed_out = [&](bool deadline_armed) {
      r.end = deadline_armed ? watch_end::deadline : watch_end::dropped;
      r.message = deadline_armed
                      ? "deadline passed"
                      : "no data from the server for " +
                            util::format_duration(watch_idle_limit);
      return r;
    };

    auto req = make_request(http::verb::get, path, std::nullopt, "text/event-stream");
    bool by_deadline = arm(call_timeout);
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple());
    if (wec) {
      if (wec == beast::error::timeout) co_return timed_out(by_deadline);
      r.message = describe(wec);
      co_return r;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // a watch is endless by design
    by_deadline = arm(call_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple());
    if (hec) {
      if (hec == beast::error::timeout) co_return timed_out(by_deadline);
      r.message = describe(hec);
      co_return r;
    }
    bool ok = parser.get().result() == http::status::ok;
    if (!ok) {
      r.end = watch_end::http_error;
      r.reply.status = parser.get().result_int();
      r.reply.reason = std::string(parser.get().reason());
    }
    sse_parser sse;
    std::vector<sse_event> events;
    char chunk[16 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      by_deadline = arm(ok ? std::chrono::duration_cast<steady::duration>(watch_idle_limit)
                           : std::chrono::duration_cast<steady::duration>(call_timeout));
      auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, use_tuple());
      if (ec == http::error::need_buffer) ec = {};
      std::size_t got = sizeof chunk - parser.get().body().size;
      if (!ok) {
        if (r.reply.body.size() < max_reply_body) r.reply.body.append(chunk, got);
        if (ec) break;  // best effort: the status line already says what went wrong
        continue;
      }
      if (got > 0) {
        events.clear();
        if (!sse.feed(std::string_view(chunk, got), events)) {
          r.end = watch_end::bad_data;
          r.message = "event stream line too long";
          co_return r;
        }
        for (const auto& e : events) {
          if (!on_event(e)) {
            r.end = watch_end::stopped;
            co_return r;
          }
        }
      }
      if (ec) {
        if (ec == beast::error::timeout) co_return timed_out(by_deadline);
        r.end = watch_end::dropped;
        r.message = ec == http::error::end_of_stream || ec == net::error::eof
                        ? "the server closed the stream"
                        : describe(ec);
        co_return r;
      }
    }
    if (ok) {
      r.end = watch_end::dropped;
      r.message = "the server ended the stream";
    }
    co_return r;
  }

  server_url url_;
  std::string display_url_;
  std::string token_;
  net::io_context ioc_;
};

api_client::api_client(server_url url, std::string display_url, std::string token)
    : impl_(std::make_unique<impl>(std::move(url), std::move(display_url), std::move(token))) {}

api_client::~api_client() = default;

call_result api_client::call(http_method method, const std::string& path,
                             std::optional<std::string> body) {
  using boost::beast::http::verb;
  const verb v = method == http_method::get    ? verb::get
                 : method == http_method::post ? verb::post
                                               : verb::put;
  return impl_->run_task(impl_->do_call(v, path, std::move(body)));
}

watch_result api_client::watch(const std::string& path,
                               std::optional<std::chrono::steady_clock::time_point> deadline,
                               const std::function<bool(const sse_event&)>& on_event) {
  return impl_->run_task(impl_->do_watch(path, deadline, on_event));
}

const std::string& api_client::display_url() const { return impl_->display_url_; }

}  // namespace canary::ctl
