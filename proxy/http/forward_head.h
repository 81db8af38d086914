// The heads a proxy forwards, built from what the parsers saw: the request head for the
// upstream and the response heads (interim and final) for the client. Hop-by-hop fields and the
// ones Connection names are dropped (RFC 9110 §7.6.1), framing fields are rebuilt from the
// parsed framing (RFC 9112 §6), X-Forwarded-* are ours. Pure: each appends to `out` (cleared
// first, so a caller reuses its capacity); any thread. The session and fuzz/request_fuzz.cpp
// both use these.
#pragma once

#include <string>
#include <string_view>

#include "http/request_rules.h"
#include "http/response_plan.h"

namespace canary::http {

// The protocol an HTTP/1.1 request asks to switch to (RFC 9110 §7.8): its Upgrade value when
// Connection lists "upgrade", the request has no body (`has_body`) and it does not ask for h2c
// (HTTP/2 over cleartext is never tunnelled); else empty, and the request is forwarded as any
// other (Upgrade dropped as hop-by-hop).
std::string_view upgrade_request(const request_parser_type& req, bool has_body) noexcept;

// The request as the upstream gets it: HTTP/1.1, origin-form target (RFC 9112 §3.2.2; an
// absolute-form target's authority becomes Host when the request had none, as HTTP/1.0 may),
// end-to-end fields as received minus Expect (the proxy answers 100-continue itself),
// X-Forwarded-For extended with `client_ip`, X-Forwarded-Proto (https when the client came over
// TLS) and -Host, and Content-Length or Transfer-Encoding: chunked as parsed. A non-empty
// `upgrade` (upgrade_request) is forwarded with Connection: upgrade. `req` passed
// validate_request.
void build_request_head(std::string& out, const request_parser_type& req,
                        std::string_view client_ip, bool https = false,
                        std::string_view upgrade = {});

// A 101 Switching Protocols as the client gets it: end-to-end fields, then Connection: upgrade
// and the upstream's Upgrade value (RFC 9110 §15.2.2; the caller checked there is one).
void build_switching_head(std::string& out, const response_parser_type& res);

// An interim (1xx) response as received, minus hop-by-hop fields (it has no body).
void build_interim_head(std::string& out, const response_parser_type& res);

// The final response head: status line, end-to-end fields, framing per `f` (for `none`, the
// Content-Length a HEAD or 304 describes, RFC 9110 §8.6), the sticky Set-Cookie when non-empty,
// and Connection: close when `keep_alive` is false (keep-alive when true for a 1.0 client).
void build_response_head(std::string& out, const response_parser_type& res, framing f,
                         bool keep_alive, unsigned client_version, std::string_view set_cookie);

}  // namespace canary::http
