// The HTTP/2 server side of one client connection without I/O: nghttp2's session state machine
// (frames, HPACK, flow control, stream states) plus this proxy's limits and abuse bounds. Bytes
// from the client go in through receive(), bytes for the client come out of take_output();
// requests, body bytes and stream ends are reported to a stream_handler. One thread (the
// connection's worker) uses an engine for its whole life; fuzz/http2_fuzz.cpp drives one with
// no socket at all.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

struct nghttp2_session;

namespace canary::http2 {

// RFC 9113 §3.4: what a prior-knowledge client sends first.
inline constexpr std::string_view client_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct engine_settings {
  std::uint32_t max_concurrent_streams = 128;
  std::uint32_t initial_window = 65535;
  std::size_t max_header_bytes = 16384;  // decoded field section, RFC 9113 §6.5.2 accounting
  std::size_t max_header_fields = 100;
};

// Rapid reset (CVE-2023-44487): streams the client opens and cancels at once cost the proxy
// an upstream request each while never counting against the concurrency limit. Pure; the
// caller gives the time.
class reset_guard {
 public:
  static constexpr std::uint32_t per_second = 100;      // resets within one second
  static constexpr std::uint32_t per_thousand = 100;    // resets per 1000 streams opened
  void stream_opened() noexcept { ++streams_; }
  // A RST_STREAM from the client at `now_ns`. True when the connection must end with
  // ENHANCE_YOUR_CALM (RFC 9113 §5.4.1, §7).
  bool reset(std::int64_t now_ns) noexcept;

 private:
  std::int64_t window_start_ns_ = 0;
  std::uint32_t in_window_ = 0;
  std::uint64_t resets_ = 0;
  std::uint64_t streams_ = 0;
};

// PING and SETTINGS floods (RFC 9113 §10.5): each provokes an ACK. A peer that reads them is
// not caught by nghttp2's bound on unsent ACKs, yet costs a frame both ways each: more than
// `per_second` in one second ends the connection with ENHANCE_YOUR_CALM. Pure.
class control_guard {
 public:
  static constexpr std::uint32_t per_second = 1000;
  bool frame(std::int64_t now_ns) noexcept;

 private:
  std::int64_t window_start_ns_ = 0;
  std::uint32_t in_window_ = 0;
};

// One request stream as the engine knows it. Shared: the engine drops its reference when
// nghttp2 closes the stream; whoever forwards it may hold on until its upstream work ends.
struct stream {
  std::int32_t id = 0;
  // The request: pseudo-headers and regular fields as decoded (names lower-case, RFC 9113
  // §8.2.1); several cookie fields stay separate here (joined for routing and forwarding).
  std::string method, scheme, authority, path;
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t header_bytes = 0;
  bool header_too_large = false;  // over max_header_bytes or max_header_fields: 431
  bool headers_done = false;
  bool request_ended = false;  // END_STREAM seen: the body is complete
  // Request body bytes received and not yet taken by the forwarder (bounded by the stream's
  // flow-control window: RFC 9113 §5.2).
  std::string body;
  std::uint64_t body_received = 0;
  std::uint64_t unconsumed = 0;  // received but not yet returned to the client's window
  // The response body, fed by the forwarder and drained by nghttp2's data provider.
  std::string out;
  std::size_t out_pos = 0;
  bool out_done = false;
  // Sent as a HEADERS frame after the body (send_trailers); empty: the last DATA ends it.
  std::vector<std::pair<std::string, std::string>> trailers;
  bool out_deferred = false;
  bool responded = false;
  bool closed = false;  // nghttp2 closed the stream (either side ended or reset it)
  std::uint32_t close_code = 0;
  std::uint64_t bytes_sent = 0;  // response body bytes handed to nghttp2
  std::function<void()> wake;    // the forwarder's wake-up (set by the handler)

  std::size_t out_pending() const noexcept { return out.size() - out_pos; }
};

class stream_handler {
 public:
  virtual ~stream_handler() = default;
  // The request head is complete (HEADERS, and any CONTINUATION). The handler forwards it or
  // answers it (respond()); returning false refuses it (RST_STREAM REFUSED_STREAM, RFC 9113
  // §8.7: never processed, safe to retry).
  virtual bool on_request(const std::shared_ptr<stream>& s) = 0;
  // New body bytes, the body's end, the stream's close, or room in the response buffer.
  virtual void on_stream_event(const std::shared_ptr<stream>& s) = 0;
};

struct response_field {
  std::string_view name;  // lower-case
  std::string_view value;
};

class server_engine {
 public:
  // `now_ns` gives the time for the reset guard (injected: tests and the fuzzer).
  server_engine(const engine_settings& settings, stream_handler& handler,
                std::function<std::int64_t()> now_ns);
  ~server_engine();
  server_engine(const server_engine&) = delete;
  server_engine& operator=(const server_engine&) = delete;

  // Client bytes. False on a connection error: the GOAWAY nghttp2 (or the guard) queued is
  // in take_output(); after it the connection closes.
  bool receive(const char* data, std::size_t n);
  // Appends every frame ready to send to `out`.
  bool take_output(std::string& out);
  // Neither side has anything left to say (after GOAWAY both ways, or an error).
  bool finished() const;
  bool failed() const noexcept { return failed_; }

  // The response head; `has_body` false ends the stream with it. Fields must be lower-case
  // and free of connection-specific ones (RFC 9113 §8.2.2).
  void respond(stream& s, unsigned status, const std::vector<response_field>& fields,
               bool has_body);
  // Response body bytes (copied), and/or its end.
  void send_body(stream& s, const char* data, std::size_t n, bool last);
  // The body's end with trailer fields (lower-case, no pseudo-header), e.g. gRPC's
  // grpc-status: HEADERS with END_STREAM after the last DATA frame.
  void send_trailers(stream& s, std::vector<std::pair<std::string, std::string>> fields);
  // A body too large, a broken upstream, ...: RST_STREAM with `code` (RFC 9113 §7).
  void reset(stream& s, std::uint32_t code);
  // Request body bytes the forwarder passed on: the client may send as many again (WINDOW_UPDATE,
  // RFC 9113 §6.9).
  void consumed(stream& s, std::size_t n);
  // Drain (RFC 9113 §6.8): GOAWAY with the last stream id processed; open streams finish.
  void shut_down();
  // Ends the connection now with GOAWAY `code` (ENHANCE_YOUR_CALM, ...).
  void terminate(std::uint32_t code);
  // Live streams (opened, not yet closed by nghttp2).
  std::size_t open_streams() const noexcept { return streams_.size(); }
  bool shutting_down() const noexcept { return shutting_down_; }

 private:
  struct callbacks;
  std::shared_ptr<stream> find(std::int32_t id) const;

  engine_settings settings_;
  stream_handler& handler_;
  std::function<std::int64_t()> now_ns_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::shared_ptr<stream>> streams_;
  reset_guard resets_;
  control_guard control_;
  bool failed_ = false;
  bool shutting_down_ = false;
  bool calm_ = false;  // the reset guard tripped during receive()
};

}  // namespace canary::http2
