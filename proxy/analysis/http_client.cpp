// The analysis side's HTTP(S) client; see http_client.h. Each call is one HTTP/1.1 exchange on a
// fresh connection (providers are asked once per interval: a pool would save little and keep
// sockets open to servers the proxy does not own). One steady_timer bounds the whole call: when it
// fires it closes the socket and cancels the resolver, so whichever step is running fails at once.
#include "analysis/http_client.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <filesystem>
#include <optional>
#include <set>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/types.h"
#include "util/duration.h"
#include "util/text.h"

namespace canary::analysis {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using error_code = boost::system::error_code;
using resolver_type = net::ip::basic_resolver<tcp, executor>;

namespace {

// Beast's default 8 KB would refuse a Prometheus server's answer with a long Set-Cookie or CSP.
constexpr std::uint32_t max_header = 64 * 1024;

struct url_parts {
  bool tls = false;
  std::string host;  // without IPv6 brackets
  std::string port;
  std::string host_header;  // RFC 9110 §7.2: host[:port], IPv6 in brackets
  std::string target;       // origin-form, RFC 9112 §3.2.1
};

// http(s)://host[:port][/path][?query]; the fragment is dropped (RFC 3986 §3.5: never sent).
std::optional<url_parts> parse_url(std::string_view url, std::string& why) {
  url_parts out;
  const auto scheme_end = url.find("://");
  const auto scheme = util::to_lower(url.substr(0, scheme_end == url.npos ? 0 : scheme_end));
  if (scheme == "https") {
    out.tls = true;
  } else if (scheme != "http") {
    why = "URL must start with http:// or https://";
    return std::nullopt;
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (const auto hash = rest.find('#'); hash != rest.npos) rest = rest.substr(0, hash);
  const auto auth_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, auth_end);
  if (authority.find('@') != authority.npos) {
    why = "user information in the URL is not supported (use an Authorization header)";
    return std::nullopt;
  }
  std::string_view host, port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == authority.npos) {
      why = "unclosed '[' in the URL's host";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    const auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        why = "bad character after the URL's IPv6 address";
        return std::nullopt;
      }
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != authority.npos) port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    why = "no host in the URL";
    return std::nullopt;
  }
  if (port.empty()) port = out.tls ? "443" : "80";
  int port_number = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port_number > 65535) {
      why = "bad port in the URL";
      return std::nullopt;
    }
    port_number = port_number * 10 + (c - '0');
  }
  if (port_number < 1 || port_number > 65535) {
    why = "bad port in the URL";
    return std::nullopt;
  }
  out.host = std::string(host);
  out.port = std::string(port);
  const bool ipv6 = host.find(':') != host.npos;
  out.host_header = ipv6 ? "[" + out.host + "]" : out.host;
  if (port != (out.tls ? "443" : "80")) out.host_header += ":" + out.port;
  if (auth_end == rest.npos) {
    out.target = "/";
  } else {
    out.target = std::string(rest.substr(auth_end));
    if (out.target[0] == '?') out.target.insert(0, "/");
  }
  return out;
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

struct http_client::impl {
  struct call_state {
    call_state(executor ex, http_request r, std::function<void(http_response)> d)
        : request(std::move(r)), done(std::move(d)), timer(ex), resolver(ex) {}

    http_request request;
    std::function<void(http_response)> done;
    timer_type timer;  // the delay, then the deadline
    resolver_type resolver;
    std::optional<socket_type> plain;
    std::optional<ssl::stream<socket_type>> tls;
    std::shared_ptr<ssl::context> tls_context;  // kept alive while the stream uses it
    bool timed_out = false;
    bool stopped = false;

    bool aborted() const { return timed_out || stopped; }
    // Makes the running step fail now (the coroutine then reads timed_out / stopped).
    void interrupt() {
      error_code ignored;
      timer.cancel();
      resolver.cancel();
      if (plain) plain->close(ignored);
      if (tls) tls->next_layer().close(ignored);
    }
  };

  struct cached_context {
    std::filesystem::file_time_type modified;
    std::shared_ptr<ssl::context> context;
  };

  explicit impl(deliver_fn d) : deliver(std::move(d)), work(ioc.get_executor()) {}

  // Client thread. A context per ca_file (loading the system store costs milliseconds), renewed
  // when the file changes so that a rotated CA is picked up without a restart.
  std::shared_ptr<ssl::context> context_for(const std::string& ca_file, std::string& why);
  void start(std::shared_ptr<call_state> s, std::chrono::milliseconds delay);
  awaitable<void> run(std::shared_ptr<call_state> s, std::chrono::milliseconds delay);
  template <class Stream>
  awaitable<void> exchange(Stream& stream, call_state& s, const url_parts& url,
                           http_response& out);
  void finish(call_state& s, http_response response);
  // Answers at once (a resolver blocked in getaddrinfo cannot be interrupted: the caller must not
  // wait for it) and makes the running step fail.
  void abort_call(call_state& s, bool timeout);

  deliver_fn deliver;
  net::io_context ioc{1};
  net::executor_work_guard<executor> work;
  std::atomic<std::size_t> in_flight{0};
  std::thread thread;
  // Client thread only.
  bool stopping = false;
  std::set<std::shared_ptr<call_state>> active;
  std::map<std::string, cached_context> contexts;
};

http_client::http_client(deliver_fn deliver) : impl_(std::make_unique<impl>(std::move(deliver))) {
  impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

http_client::~http_client() {
  net::post(impl_->ioc, [i = impl_.get()] {
    i->stopping = true;
    for (const auto& s : i->active) i->abort_call(*s, false);
  });
  impl_->work.reset();
  impl_->thread.join();
}

void http_client::send(http_request request, std::function<void(http_response)> done,
                       std::chrono::milliseconds delay) {
  if (impl_->in_flight.fetch_add(1) >= max_in_flight) {
    impl_->in_flight.fetch_sub(1);
    http_response r;
    r.error = "too many provider calls in flight";
    impl_->deliver([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return;
  }
  auto s = std::make_shared<impl::call_state>(impl_->ioc.get_executor(), std::move(request),
                                              std::move(done));
  net::post(impl_->ioc, [i = impl_.get(), s = std::move(s), delay]() mutable {
    i->start(std::move(s), delay);
  });
}

void http_client::impl::start(std::shared_ptr<call_state> s, std::chrono::milliseconds delay) {
  if (stopping) {
    http_response r;
    r.error = "http client stopped";
    finish(*s, std::move(r));
    return;
  }
  active.insert(s);
  net::co_spawn(ioc.get_executor(), run(s, delay), [this, s](std::exception_ptr e) {
    // Only allocation failures can throw here; the caller still gets its one answer.
    if (e) {
      http_response r;
      r.error = "internal error";
      finish(*s, std::move(r));
    }
    active.erase(s);
  });
}

void http_client::impl::finish(call_state& s, http_response response) {
  if (!s.done) return;
  auto done = std::move(s.done);
  s.done = nullptr;
  in_flight.fetch_sub(1);
  deliver([done = std::move(done), r = std::move(response)]() mutable { done(std::move(r)); });
}

void http_client::impl::abort_call(call_state& s, bool timeout) {
  if (s.aborted()) return;
  (timeout ? s.timed_out : s.stopped) = true;
  s.interrupt();
  http_response r;
  r.result = timeout ? http_response::outcome::timeout : http_response::outcome::error;
  r.error = timeout ? "timeout after " + util::format_duration(s.request.timeout)
                    : "http client stopped";
  finish(s, std::move(r));
}

std::shared_ptr<ssl::context> http_client::impl::context_for(const std::string& ca_file,
                                                             std::string& why) {
  std::filesystem::file_time_type modified{};
  if (!ca_file.empty()) {
    std::error_code fec;
    modified = std::filesystem::last_write_time(ca_file, fec);
    if (fec) {
      why = "ca_file " + ca_file + ": " + fec.message();
      return nullptr;
    }
  }
  if (auto it = contexts.find(ca_file); it != contexts.end() && it->second.modified == modified)
    return it->second.context;

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  // TLS 1.0 and 1.1 are deprecated (RFC 8996 §2-3).
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec) {
    why = "system trust store: " + ec.message();
    return nullptr;
  }
  if (!ca_file.empty()) {
    ctx->load_verify_file(ca_file, ec);
    if (ec) {
      why = "ca_file " + ca_file + ": " + ec.message();
      return nullptr;
    }
  }
  ctx->set_verify_mode(ssl::verify_peer);
  contexts[ca_file] = cached_context{modified, ctx};
  return ctx;
}

awaitable<void> http_client::impl::run(std::shared_ptr<call_state> s,
                                       std::chrono::milliseconds delay) {
  http_response out;
  // An aborted call has had its answer (abort_call): finish() ignores this one.
  const auto fail = [&](std::string what) {
    out.result = http_response::outcome::error;
    out.error = std::move(what);
    finish(*s, std::move(out));
  };

  if (delay.count() > 0 && !s->aborted()) {
    s->timer.expires_after(delay);
    co_await s->timer.async_wait(use_tuple);
  }
  if (s->aborted()) co_return fail("");

  std::string why;
  const auto url = parse_url(s->request.url, why);
  if (!url) co_return fail(why);
  const auto verb = http::string_to_verb(s->request.method);
  if (verb == http::verb::unknown) co_return fail("unknown HTTP method " + s->request.method);

  // The deadline: from here on, every step is bounded by one timer.
  s->timer.expires_after(s->request.timeout);
  s->timer.async_wait([this, weak = std::weak_ptr<call_state>(s)](error_code ec) {
    auto st = weak.lock();
    if (!ec && st) abort_call(*st, true);
  });

  auto [rec, endpoints] = co_await s->resolver.async_resolve(url->host, url->port, use_tuple);
  if (s->aborted() || rec) co_return fail("resolve " + url->host + ": " + rec.message());

  const auto ex = co_await net::this_coro::executor;
  if (url->tls) {
    s->tls_context = context_for(s->request.ca_file, why);
    if (!s->tls_context) co_return fail(why);
    s->tls.emplace(ex, *s->tls_context);
    SSL* ssl_handle = s->tls->native_handle();
    if (is_ip_literal(url->host)) {
      // RFC 6066 §3: SNI carries host names only; an IP literal is checked against the
      // certificate's IP addresses (RFC 6125 §1.7.2).
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), url->host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_handle, url->host.c_str());
      // RFC 6125 §6.4: the name is matched against the certificate's DNS names.
      SSL_set1_host(ssl_handle, url->host.c_str());
    }
  } else {
    s->plain.emplace(ex);
  }
  socket_type& socket = url->tls ? s->tls->next_layer() : *s->plain;
  auto [cec, connected] = co_await net::async_connect(socket, endpoints, use_tuple);
  if (s->aborted() || cec) co_return fail("connect: " + cec.message());

  if (url->tls) {
    auto [hec] = co_await s->tls->async_handshake(ssl::stream_base::client, use_tuple);
    if (s->aborted()) co_return fail("");
    if (hec) {
      std::string detail = hec.message();
      const long verify = SSL_get_verify_result(s->tls->native_handle());
      if (verify != X509_V_OK) detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      co_return fail("tls: " + detail);
    }
    co_await exchange(*s->tls, *s, *url, out);
  } else {
    co_await exchange(*s->plain, *s, *url, out);
  }
  if (!s->done) co_return;  // exchange failed and answered already
  s->timer.cancel();
  error_code ignored;
  socket.close(ignored);
  finish(*s, std::move(out));
}

template <class Stream>
awaitable<void> http_client::impl::exchange(Stream& stream, call_state& s, const url_parts& url,
                                            http_response& out) {
  // An aborted call has had its answer (abort_call): finish() ignores this one.
  const auto fail = [&](std::string what) {
    out.result = http_response::outcome::error;
    out.error = std::move(what);
    finish(s, std::move(out));
  };

  http::request<http::string_body> req{http::string_to_verb(s.request.method), url.target, 11};
  req.set(http::field::host, url.host_header);
  req.set(http::field::user_agent, "canary-proxy");
  // One exchange per connection: the server need not keep it for us (RFC 9112 §9.6).
  req.set(http::field::connection, "close");
  for (const auto& [name, value] : s.request.headers) req.set(name, value);
  if (!s.request.body.empty() || req.method() == http::verb::post ||
      req.method() == http::verb::put) {
    req.body() = s.request.body;
    req.prepare_payload();
  }
  auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
  if (s.aborted() || wec) co_return fail("write: " + wec.message());

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(max_header);
  parser.body_limit(max_body);
  auto [rec, rn] = co_await http::async_read(stream, buffer, parser, use_tuple);
  if (s.aborted()) co_return fail("");
  if (rec == http::error::body_limit) co_return fail("response larger than 1 MiB");
  if (rec == http::error::header_limit) co_return fail("response header larger than 64 KiB");
  if (rec) co_return fail("read: " + rec.message());
  auto response = parser.release();
  out.result = http_response::outcome::ok;
  out.status = static_cast<int>(response.result_int());
  out.body = std::move(response.body());
}

}  // namespace canary::analysis
