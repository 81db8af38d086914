// HTTP/2 over cleartext TCP (h2c, prior knowledge: RFC 9113 §3.3) to upstreams, with nghttp2.
// Worker thread only: a client_pool belongs to one worker; its connections' reader and writer
// coroutines and every stream call run on that worker's executor (no lock, no extra thread).
// Lifetime: a connection lives while the pool, one of its streams or its own loops hold it; a
// stream lives while its caller holds it (an open one also while its connection knows it).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "core/types.h"
#include "upstream/endpoint.h"

struct nghttp2_session;

namespace canary::http2 {

// Why a stream or connection failed; the session maps these to metrics::upstream_error.
enum class client_errc {
  connect_failed = 1,  // TCP connect refused or unreachable
  connect_timeout,     // no connection within upstream_connect
  timeout,             // the caller's deadline passed (client_stream::expire)
  reset,               // the stream was reset or the connection died before the stream ended
  refused,             // REFUSED_STREAM or beyond a GOAWAY: never processed, safe to retry
  protocol,            // the upstream broke HTTP/2 (a frame nghttp2 rejected, no :status, ...)
};
const std::error_category& client_category() noexcept;
inline std::error_code make_error_code(client_errc e) noexcept {
  return {static_cast<int>(e), client_category()};
}

struct field {
  std::string name;  // lower case (RFC 9113 §8.2.1)
  std::string value;
};

// A request as the upstream gets it; :scheme is always "http".
struct request_head {
  std::string method;
  std::string authority;
  std::string path;
  std::vector<field> fields;  // no pseudo-header, no connection-specific field (§8.2.2)
};

struct response_head {
  unsigned status = 0;
  std::vector<field> fields;  // regular fields, in order
};

struct client_limits {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds idle_timeout{30000};  // a connection without streams closes after it
};

class client_connection;

// One request/response exchange on a multiplexed connection. send_body is awaited by one
// coroutine and read_head/read_body by one (the same or another: a full-duplex stream); each
// side's calls one at a time. expire() and reset() may come from anywhere on the worker.
class client_stream {
 public:
  client_stream(executor ex, std::shared_ptr<client_connection> conn);
  client_stream(const client_stream&) = delete;
  client_stream& operator=(const client_stream&) = delete;

  // Request body bytes as DATA frames (after open with has_body); `end` sets END_STREAM. Returns
  // once nghttp2 took all of `data` (flow control: the upstream's window limits what waits).
  awaitable<std::error_code> send_body(std::string_view data, bool end);
  // Waits for the final response head (interim 1xx heads are skipped); then head() holds it.
  awaitable<std::error_code> read_head();
  const response_head& head() const { return head_; }
  // The next body bytes into `out` (replacing its content; may be empty when `end`). `end`: the
  // upstream ended the stream, trailers() is then final.
  awaitable<std::error_code> read_body(std::string& out, bool& end);
  const std::vector<field>& trailers() const { return trailers_; }
  // The upstream ended the stream and every body byte was read (after read_head: a response
  // without a body, e.g. gRPC's trailers-only one).
  bool ended() const { return remote_end_ && in_.empty() && !error_; }
  // Abandons the stream: RST_STREAM(CANCEL) unless it already ended.
  void reset();
  // A deadline passed: the stream is reset and the pending and later calls fail with timeout.
  void expire();
  const std::shared_ptr<upstream::endpoint>& target() const;
  bool reused() const { return reused_; }  // opened on a connection that served before

 private:
  friend class client_connection;
  void wake() { wake_.cancel(); }
  awaitable<void> wait();
  void fail(std::error_code ec);

  std::shared_ptr<client_connection> conn_;
  timer_type wake_;
  std::int32_t id_ = -1;
  response_head head_;
  std::size_t header_bytes_ = 0;
  bool head_done_ = false;
  bool remote_end_ = false;
  bool closed_ = false;
  bool reused_ = false;
  std::string in_;  // DATA received, not yet read (its window is given back when read)
  std::vector<field> trailers_;
  std::string out_;  // body bytes nghttp2 has not taken yet
  std::size_t out_taken_ = 0;
  bool out_end_ = false;
  bool deferred_ = false;  // the data source said DEFERRED: resume when bytes come
  std::error_code error_;
};

// Idle and busy h2c connections of one worker, by endpoint.
class client_pool {
 public:
  explicit client_pool(executor ex) : ex_(ex) {}
  ~client_pool();
  client_pool(const client_pool&) = delete;
  client_pool& operator=(const client_pool&) = delete;

  // A new stream to `ep`: on a connection with a free stream slot (SETTINGS_MAX_CONCURRENT_
  // STREAMS), else on a new connection. `has_body` false ends the stream with the head.
  awaitable<std::error_code> open(const std::shared_ptr<upstream::endpoint>& ep,
                                  const request_head& head, bool has_body,
                                  const client_limits& limits,
                                  std::shared_ptr<client_stream>& out);
  // Live connections (connecting, ready or closing), for tests and introspection.
  std::size_t connection_count();
  // Closes every connection (worker shutdown).
  void clear();

 private:
  executor ex_;
  std::unordered_map<std::uint32_t, std::vector<std::shared_ptr<client_connection>>> by_endpoint_;
};

}  // namespace canary::http2

template <>
struct std::is_error_code_enum<canary::http2::client_errc> : std::true_type {};
