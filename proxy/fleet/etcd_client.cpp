#include "fleet/etcd_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <set>

namespace canary::fleet {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto no_throw = asio::as_tuple(asio::use_awaitable);

// Answers larger than this are refused: a range over the prefix holds every route's state and
// its events; 64 MiB is well above that and below anything that could hurt the process.
constexpr std::size_t max_answer_bytes = 64u << 20;

constexpr std::string_view b64_chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += b64_chars[(v >> 18) & 63];
    out += b64_chars[(v >> 12) & 63];
    out += b64_chars[(v >> 6) & 63];
    out += b64_chars[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += b64_chars[(v >> 18) & 63];
    out += b64_chars[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8);
    out += b64_chars[(v >> 18) & 63];
    out += b64_chars[(v >> 12) & 63];
    out += b64_chars[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> b64_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size() / 4 * 3);
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const auto pos = b64_chars.find(c);
    if (pos == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// The gateway writes int64 fields as strings ("42"); tolerate numbers too.
std::int64_t int_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_string()) {
    const auto& s = v->as_string();
    std::int64_t n = 0;
    std::from_chars(s.data(), s.data() + s.size(), n);
    return n;
  }
  return 0;
}

std::string bytes_field(const json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (!v || !v->is_string()) return {};
  return b64_decode(v->as_string()).value_or(std::string{});
}

key_value read_kv(const json::object& o) {
  key_value kv;
  kv.key = bytes_field(o, "key");
  kv.value = bytes_field(o, "value");
  kv.create_revision = int_field(o, "create_revision");
  kv.mod_revision = int_field(o, "mod_revision");
  kv.version = int_field(o, "version");
  kv.lease = int_field(o, "lease");
  return kv;
}

std::int64_t header_revision(const json::object& o) {
  if (const auto* h = o.if_contains("header"); h && h->is_object())
    return int_field(h->as_object(), "revision");
  return 0;
}

range_result read_range(const json::object& o) {
  range_result r;
  r.revision = header_revision(o);
  if (const auto* kvs = o.if_contains("kvs"); kvs && kvs->is_array())
    for (const auto& kv : kvs->as_array())
      if (kv.is_object()) r.kvs.push_back(read_kv(kv.as_object()));
  return r;
}

json::object op_json(const txn_op& op) {
  json::object inner;
  inner["key"] = b64_encode(op.key);
  switch (op.what) {
    case txn_op::kind::put:
      inner["value"] = b64_encode(op.value);
      if (op.lease != 0) inner["lease"] = std::to_string(op.lease);
      return json::object{{"request_put", std::move(inner)}};
    case txn_op::kind::del:
      if (!op.range_end.empty()) inner["range_end"] = b64_encode(op.range_end);
      return json::object{{"request_delete_range", std::move(inner)}};
    case txn_op::kind::range:
      if (!op.range_end.empty()) inner["range_end"] = b64_encode(op.range_end);
      return json::object{{"request_range", std::move(inner)}};
  }
  return {};
}

json::object compare_json(const compare& c) {
  static constexpr std::string_view targets[] = {"CREATE", "MOD", "VERSION", "VALUE", "LEASE"};
  static constexpr std::string_view results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json::object o;
  o["key"] = b64_encode(c.key);
  o["target"] = targets[static_cast<int>(c.what)];
  o["result"] = results[static_cast<int>(c.how)];
  switch (c.what) {
    case compare::target::create: o["create_revision"] = std::to_string(c.number); break;
    case compare::target::mod: o["mod_revision"] = std::to_string(c.number); break;
    case compare::target::version: o["version"] = std::to_string(c.number); break;
    case compare::target::value: o["value"] = b64_encode(c.value); break;
    case compare::target::lease: o["lease"] = std::to_string(c.number); break;
  }
  return o;
}

// A gateway error body: {"error": "...", "code": 9, "message": "..."}.
std::optional<std::string> error_of(const json::value& v) {
  if (!v.is_object()) return "answer is not a JSON object";
  const auto& o = v.as_object();
  if (const auto* m = o.if_contains("message"); m && m->is_string() && !o.contains("header"))
    return std::string(m->as_string());
  if (const auto* e = o.if_contains("error"); e && e->is_string())
    return std::string(e->as_string());
  return std::nullopt;
}

struct answer {
  etcd_error error;
  json::value body;
};

}  // namespace

std::optional<etcd_endpoint> parse_etcd_endpoint(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  auto rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty() || rest.find('/') != std::string_view::npos) return std::nullopt;
  etcd_endpoint ep;
  ep.text = std::string(url);
  std::string_view host;
  std::string_view port;
  if (rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return std::nullopt;
      port = rest.substr(close + 2);
    }
  } else {
    const auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (port.empty()) port = "2379";
  int n = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (ec != std::errc{} || p != port.data() + port.size() || n <= 0 || n > 65535)
    return std::nullopt;
  ep.host = std::string(host);
  ep.port = std::string(port);
  return ep;
}

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = end.back();
    if (static_cast<unsigned char>(c) < 0xff) {
      c = static_cast<char>(static_cast<unsigned char>(c) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd: range_end "\0" means "to the end")
}

struct etcd_client::impl : std::enable_shared_from_this<impl> {
  asio::any_io_executor ex;
  std::vector<etcd_endpoint> endpoints;  // front = the one to try first
  duration dial_timeout;
  duration call_timeout;
  std::vector<std::unique_ptr<beast::tcp_stream>> idle;  // keep-alive unary connections
  std::set<beast::tcp_stream*> busy;                     // in a call or a watch (for close)
  std::string current;
  bool closed = false;

  // A connection to the first endpoint that accepts one within dial_timeout; a refused or slow
  // endpoint moves to the back so the next call starts with one that worked.
  asio::awaitable<std::unique_ptr<beast::tcp_stream>> connect(std::string& why) {
    for (std::size_t tried = 0; tried < endpoints.size() && !closed; ++tried) {
      const auto ep = endpoints.front();
      auto stream = std::make_unique<beast::tcp_stream>(ex);
      tcp::resolver resolver(ex);
      auto [rec, results] = co_await resolver.async_resolve(ep.host, ep.port, no_throw);
      if (!rec) {
        stream->expires_after(dial_timeout);
        auto [cec, at] = co_await stream->async_connect(results, no_throw);
        if (!cec) {
          stream->socket().set_option(tcp::no_delay(true));
          current = ep.text;
          co_return stream;
        }
        why = ep.text + ": " + (cec == beast::error::timeout ? "connect timed out" : cec.message());
      } else {
        why = ep.text + ": " + rec.message();
      }
      std::rotate(endpoints.begin(), endpoints.begin() + 1, endpoints.end());
    }
    if (closed) why = "client closed";
    co_return nullptr;
  }

  // POST `body` to `path` and parse the JSON answer. A connection that fails before the request
  // went out is replaced once per endpoint; a failure after that is reported (the request may
  // have been applied: callers guard writes with compares).
  asio::awaitable<answer> call(std::string path, std::string body) {
    auto self = shared_from_this();
    answer out;
    for (std::size_t attempt = 0; attempt <= endpoints.size(); ++attempt) {
      if (closed) break;
      std::unique_ptr<beast::tcp_stream> stream;
      bool reused = false;
      if (!idle.empty()) {
        stream = std::move(idle.back());
        idle.pop_back();
        reused = true;
      } else {
        std::string why;
        stream = co_await connect(why);
        if (!stream) {
          out.error = {etcd_error::kind::unavailable, "etcd unavailable: " + why, 0};
          co_return out;
        }
      }
      busy.insert(stream.get());
      http::request<http::string_body> req{http::verb::post, path, 11};
      req.set(http::field::host, "etcd");
      req.set(http::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();
      stream->expires_after(call_timeout);
      auto [wec, wn] = co_await http::async_write(*stream, req, no_throw);
      if (wec) {
        busy.erase(stream.get());
        // A reused connection the server closed while idle: nothing was sent, try again.
        if (reused) continue;
        out.error = {etcd_error::kind::unavailable, "etcd unavailable: write: " + wec.message(), 0};
        co_return out;
      }
      beast::flat_buffer buf;
      http::response_parser<http::string_body> parser;
      parser.body_limit(max_answer_bytes);
      auto [rec, rn] = co_await http::async_read(*stream, buf, parser, no_throw);
      busy.erase(stream.get());
      if (rec) {
        if (reused && rn == 0 && rec == http::error::end_of_stream) continue;
        out.error = {etcd_error::kind::unavailable,
                     "etcd unavailable: " + current + ": " +
                         (rec == beast::error::timeout ? std::string("no answer within ") +
                                                             std::to_string(call_timeout.count()) +
                                                             " ms"
                                                       : rec.message()),
                     0};
        co_return out;
      }
      auto& res = parser.get();
      boost::system::error_code jec;
      out.body = json::parse(res.body(), jec);
      if (res.keep_alive() && !closed) {
        stream->expires_never();
        idle.push_back(std::move(stream));
      }
      if (jec) {
        out.error = {etcd_error::kind::rejected,
                     "etcd answered HTTP " + std::to_string(res.result_int()) +
                         " with a body that is not JSON",
                     0};
      } else if (res.result_int() != 200 || error_of(out.body)) {
        out.error = {etcd_error::kind::rejected,
                     "etcd answered HTTP " + std::to_string(res.result_int()) + ": " +
                         error_of(out.body).value_or("error"),
                     0};
      }
      co_return out;
    }
    out.error = {etcd_error::kind::unavailable, "etcd unavailable: " + current + " closed", 0};
    co_return out;
  }
};

etcd_client::etcd_client(asio::any_io_executor ex, std::vector<etcd_endpoint> endpoints,
                         duration dial_timeout, duration call_timeout)
    : impl_(std::make_shared<impl>()) {
  impl_->ex = std::move(ex);
  impl_->endpoints = std::move(endpoints);
  impl_->dial_timeout = dial_timeout;
  impl_->call_timeout = call_timeout;
}

etcd_client::~etcd_client() { close(); }

void etcd_client::close() {
  impl_->closed = true;
  for (auto* s : impl_->busy) s->cancel();
  for (auto& s : impl_->idle) s->close();
  impl_->idle.clear();
}

const std::string& etcd_client::current_endpoint() const { return impl_->current; }

asio::awaitable<range_result> etcd_client::range(std::string key, std::string range_end) {
  json::object req{{"key", b64_encode(key)}};
  if (!range_end.empty()) req["range_end"] = b64_encode(range_end);
  auto a = co_await impl_->call("/v3/kv/range", json::serialize(req));
  range_result r;
  if (a.error) {
    r.error = std::move(a.error);
    co_return r;
  }
  r = read_range(a.body.as_object());
  co_return r;
}

asio::awaitable<txn_result> etcd_client::txn(std::vector<compare> compares,
                                             std::vector<txn_op> success,
                                             std::vector<txn_op> failure) {
  json::array cmp;
  for (const auto& c : compares) cmp.push_back(compare_json(c));
  json::array ok;
  for (const auto& op : success) ok.push_back(op_json(op));
  json::array ko;
  for (const auto& op : failure) ko.push_back(op_json(op));
  json::object req{{"compare", std::move(cmp)}, {"success", std::move(ok)},
                   {"failure", std::move(ko)}};
  auto a = co_await impl_->call("/v3/kv/txn", json::serialize(req));
  txn_result r;
  if (a.error) {
    r.error = std::move(a.error);
    co_return r;
  }
  const auto& o = a.body.as_object();
  r.revision = header_revision(o);
  if (const auto* s = o.if_contains("succeeded"); s && s->is_bool()) r.succeeded = s->as_bool();
  if (const auto* rs = o.if_contains("responses"); rs && rs->is_array())
    for (const auto& one : rs->as_array()) {
      if (!one.is_object()) continue;
      if (const auto* rr = one.as_object().if_contains("response_range"); rr && rr->is_object())
        r.ranges.push_back(read_range(rr->as_object()));
    }
  co_return r;
}

asio::awaitable<txn_result> etcd_client::put(std::string key, std::string value,
                                             std::int64_t lease) {
  // Vectors built before the co_await: GCC 12 miscompiles braced lists inside one.
  std::vector<txn_op> ops(1);
  ops[0] = txn_op{txn_op::kind::put, std::move(key), std::move(value), lease, {}};
  co_return co_await txn(std::vector<compare>{}, std::move(ops));
}

asio::awaitable<txn_result> etcd_client::del(std::string key, std::string range_end) {
  std::vector<txn_op> ops(1);
  ops[0] = txn_op{txn_op::kind::del, std::move(key), {}, 0, std::move(range_end)};
  co_return co_await txn(std::vector<compare>{}, std::move(ops));
}

namespace {
lease_result read_lease(answer&& a, std::string_view id_field) {
  lease_result r;
  if (a.error) {
    r.error = std::move(a.error);
    return r;
  }
  const json::object* o = &a.body.as_object();
  // keepalive answers {"result": {...}} (a stream of one message through the gateway).
  if (const auto* res = o->if_contains("result"); res && res->is_object()) o = &res->as_object();
  r.revision = header_revision(*o);
  r.id = int_field(*o, id_field);
  r.ttl = int_field(*o, "TTL");
  return r;
}
}  // namespace

asio::awaitable<lease_result> etcd_client::grant(std::int64_t ttl_seconds) {
  json::object req{{"TTL", std::to_string(ttl_seconds)}};
  co_return read_lease(co_await impl_->call("/v3/lease/grant", json::serialize(req)), "ID");
}

asio::awaitable<lease_result> etcd_client::keepalive(std::int64_t id) {
  json::object req{{"ID", std::to_string(id)}};
  co_return read_lease(co_await impl_->call("/v3/lease/keepalive", json::serialize(req)), "ID");
}

asio::awaitable<lease_result> etcd_client::revoke(std::int64_t id) {
  json::object req{{"ID", std::to_string(id)}};
  auto r = read_lease(co_await impl_->call("/v3/lease/revoke", json::serialize(req)), "ID");
  r.id = id;
  co_return r;
}

asio::awaitable<etcd_error> etcd_client::watch(
    std::string key, std::string range_end, std::int64_t start_revision,
    std::function<bool(std::int64_t revision, std::vector<watch_event>& events)> on_events) {
  auto self = impl_;
  std::string why;
  auto stream = co_await self->connect(why);
  if (!stream) co_return etcd_error{etcd_error::kind::unavailable, "etcd unavailable: " + why, 0};
  self->busy.insert(stream.get());
  struct unregister {
    impl* i;
    beast::tcp_stream* s;
    ~unregister() { i->busy.erase(s); }
  } guard{self.get(), stream.get()};

  json::object create{{"key", b64_encode(key)}};
  if (!range_end.empty()) create["range_end"] = b64_encode(range_end);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  http::request<http::string_body> req{http::verb::post, "/v3/watch", 11};
  req.set(http::field::host, "etcd");
  req.set(http::field::content_type, "application/json");
  req.body() = json::serialize(json::object{{"create_request", std::move(create)}});
  req.prepare_payload();
  stream->expires_after(self->call_timeout);
  if (auto [ec, n] = co_await http::async_write(*stream, req, no_throw); ec)
    co_return etcd_error{etcd_error::kind::unavailable, "etcd unavailable: watch: " + ec.message(),
                         0};

  // The gateway streams one JSON object per line in one chunked response, for as long as the
  // watch lives: take the body as it comes, a line at a time, without keeping it.
  std::string pending;
  etcd_error result;
  bool stop = false;
  http::response_parser<http::empty_body> parser;
  parser.body_limit(boost::none);
  beast::flat_buffer buf;
  if (auto [ec, n] = co_await http::async_read_header(*stream, buf, parser, no_throw); ec)
    co_return etcd_error{etcd_error::kind::unavailable, "etcd unavailable: watch: " + ec.message(),
                         0};
  if (parser.get().result_int() != 200)
    co_return etcd_error{etcd_error::kind::rejected,
                         "etcd answered the watch with HTTP " +
                             std::to_string(parser.get().result_int()),
                         0};
  stream->expires_never();

  auto handle_line = [&](std::string_view line) {
    boost::system::error_code jec;
    auto v = json::parse(line, jec);
    if (jec || !v.is_object()) {
      result = {etcd_error::kind::rejected, "etcd sent a watch message that is not JSON", 0};
      return false;
    }
    const auto* res = v.as_object().if_contains("result");
    if (!res || !res->is_object()) {
      result = {etcd_error::kind::rejected,
                "etcd ended the watch: " + error_of(v).value_or("no result"), 0};
      return false;
    }
    const auto& r = res->as_object();
    if (const auto compact = int_field(r, "compact_revision"); compact > 0) {
      result = {etcd_error::kind::compacted,
                "watch start revision " + std::to_string(start_revision) +
                    " was compacted (oldest " + std::to_string(compact) + ")",
                compact};
      return false;
    }
    if (const auto* c = r.if_contains("canceled"); c && c->is_bool() && c->as_bool()) {
      result = {etcd_error::kind::rejected, "etcd canceled the watch", 0};
      return false;
    }
    std::vector<watch_event> events;
    if (const auto* evs = r.if_contains("events"); evs && evs->is_array())
      for (const auto& e : evs->as_array()) {
        if (!e.is_object()) continue;
        watch_event we;
        if (const auto* t = e.as_object().if_contains("type"); t && t->is_string())
          we.what = t->as_string() == "DELETE" ? watch_event::type::del : watch_event::type::put;
        if (const auto* kv = e.as_object().if_contains("kv"); kv && kv->is_object())
          we.kv = read_kv(kv->as_object());
        events.push_back(std::move(we));
      }
    return on_events(header_revision(r), events);
  };

  auto on_chunk = [&](std::uint64_t, std::string_view data, boost::system::error_code&) {
    if (stop) return data.size();
    pending.append(data);
    std::size_t start = 0;
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      const std::string_view line(pending.data() + start, nl - start);
      start = nl + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      if (!handle_line(line)) {
        stop = true;
        break;
      }
    }
    pending.erase(0, start);
    if (pending.size() > max_answer_bytes) {
      result = {etcd_error::kind::rejected, "etcd sent a watch message over 64 MiB", 0};
      stop = true;
    }
    return data.size();
  };
  parser.on_chunk_body(on_chunk);  // Beast keeps a reference: on_chunk outlives the parser's use

  while (!stop && !parser.is_done()) {
    auto [ec, n] = co_await http::async_read_some(*stream, buf, parser, no_throw);
    if (ec) {
      if (!stop)
        result = {etcd_error::kind::unavailable,
                  "etcd unavailable: watch stream broke: " + ec.message(), 0};
      break;
    }
  }
  // A message without its newline at the end of the stream.
  if (!stop && !pending.empty() && !result) handle_line(pending);
  if (!stop && !result && !self->closed)
    result = {etcd_error::kind::unavailable, "etcd unavailable: watch stream ended", 0};
  stream->close();
  co_return result;
}

}  // namespace canary::fleet
