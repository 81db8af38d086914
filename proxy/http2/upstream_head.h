// Heads between an HTTP/1.1 client and an h2c upstream: the HTTP/2 request built from a parsed
// HTTP/1.1 request (RFC 9113 §8.2.2, §8.3.1), the HTTP/1.1 response head and chunked trailer
// section (RFC 9112 §7.1.2) built from an HTTP/2 response, and the gRPC status a response
// carries. Pure: any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_rules.h"
#include "http/response_plan.h"
#include "http2/upstream.h"

namespace canary::http2 {

// The request as an h2c upstream gets it: method, :authority from Host (or the absolute-form
// target's authority), :path in origin-form, field names lower-cased, connection-specific fields
// dropped (Connection and those it names, Keep-Alive, Proxy-Connection, Transfer-Encoding,
// Upgrade, Host, Expect; TE unless it lists "trailers", then sent as "te: trailers"), and
// X-Forwarded-For / -Proto / -Host as on HTTP/1.1. Content-Length is kept for a length body.
void build_request(request_head& out, const http::request_parser_type& req,
                   std::string_view client_ip, bool https);

// The same for a request that came over HTTP/2 (its pseudo-headers and lower-case fields as
// decoded): the client's connection-specific fields cannot be there (nghttp2 refused them), so
// only host, expect and the X-Forwarded-* fields the proxy sets itself are dropped; te is kept
// when it is "trailers" (the only value RFC 9113 §8.2.2 allows), cookie fields stay split
// (§8.2.3 allows it).
void build_request(request_head& out, std::string_view method, std::string_view authority,
                   std::string_view path,
                   const std::vector<std::pair<std::string, std::string>>& fields,
                   std::string_view client_ip, bool https);

// Whether an HTTP/1.1 request's TE field lists "trailers" (RFC 9110 §10.1.4): then the client
// takes a trailer section in a chunked response.
bool accepts_trailers(const http::request_parser_type& req) noexcept;

// The response's Content-Length when it has exactly one valid one.
std::optional<std::uint64_t> content_length(const response_head& head) noexcept;

// The HTTP/1.1 head for the client: status line, the upstream's fields (framing fields rebuilt
// per `f` as http::build_response_head does), the sticky Set-Cookie, Connection: close when
// `keep_alive` is false (keep-alive for a 1.0 client). Clears `out` first.
void build_client_head(std::string& out, const response_head& head, http::framing f,
                       bool keep_alive, unsigned client_version, std::string_view set_cookie);

// The end of a chunked body: the last chunk, then the trailer fields a sender may send in a
// trailer section (framing, routing and connection fields never: RFC 9110 §6.5.1), then CRLF.
void append_last_chunk(std::string& out, const std::vector<field>& trailers);

// grpc-status (0-16 defined) of a gRPC response: in the trailers, or in the head of a
// trailers-only response. nullopt when there is none or it is not a number.
std::optional<unsigned> grpc_status(const response_head& head, const std::vector<field>& trailers);

// The statuses that say the server failed rather than the call being refused for the caller's
// own reason (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS): the
// analysis counts these as bad, as it counts 5xx.
constexpr bool grpc_status_is_bad(unsigned s) noexcept {
  return s == 2 || s == 4 || s == 12 || s == 13 || s == 14 || s == 15;
}

}  // namespace canary::http2
