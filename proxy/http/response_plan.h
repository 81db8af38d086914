// Decisions about the response a client gets, from what was parsed (RFC 9112 §6, §9): how its
// body is framed, whether the client connection stays open, whether the upstream connection
// goes back to the pool, and how many interim (1xx) responses may precede it. Pure: any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace canary::http {

// How the response body reaches the client (RFC 9112 §6).
enum class framing : std::uint8_t {
  none,     // no body: HEAD, 1xx, 204, 304 (RFC 9110 §6.4.1)
  length,   // Content-Length, as the upstream sent it
  chunked,  // re-chunked for an HTTP/1.1 client (upstream chunked or close-delimited)
  close,    // an HTTP/1.0 client cannot read chunked: the body ends with the connection
};

framing choose_framing(bool head_request, unsigned status, bool has_content_length,
                       unsigned client_version) noexcept;

// Whether the client connection stays open after this response. `request_body_read`: the
// request body (if any) was read to its end; when the upstream answered early (RFC 9112 §9.5)
// the rest of it is unread and must never be parsed as the next request. A drain that began
// while the request was in flight ends the connection after it.
bool keep_client_connection(bool client_keep_alive, bool draining, framing f,
                            bool request_body_read) noexcept;

// Envoy's HTTP/1 rule: reuse an upstream connection only if the request was written whole, the
// response was read to its end, and neither side said close (a close-delimited body has no end
// but the close; a response relayed to the client close-delimited is not reused either).
bool reuse_upstream_connection(bool request_sent_whole, bool response_read_whole,
                               bool upstream_keep_alive, bool upstream_needs_eof,
                               framing f) noexcept;

// RFC 9110 §15.2 sets no limit on the interim responses before a final one, and a proxy must
// forward them. Real servers send a handful (a 100, a 102 per long step, one or two 103 Early
// Hints); an upstream that loops on them would keep the proxy relaying (measured: 26 MB of 103s
// in 5 s at a full CPU) until the response deadline. Past either bound the upstream is broken:
// 502, and its connection is dropped. 64 KiB is one maximal response head.
inline constexpr std::size_t max_interim_responses = 32;
inline constexpr std::size_t max_interim_bytes = 64 * 1024;

struct interim_budget {
  std::size_t count = 0;
  std::size_t bytes = 0;
  // Counts one interim response whose head took `head_bytes`; false once over a bound.
  bool take(std::size_t head_bytes) noexcept {
    ++count;
    bytes += head_bytes;
    return count <= max_interim_responses && bytes <= max_interim_bytes;
  }
};

}  // namespace canary::http
