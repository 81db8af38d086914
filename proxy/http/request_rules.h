// Message-framing checks a proxy makes on top of Beast 1.81, which accepts several request-
// smuggling shapes (measured in tests/unit/http/request_rules_test.cpp, "beast_*" cases).
// Pure functions, no allocation: any thread; called once per message, after its head is parsed.
//
// What Beast 1.81 rejects by itself (its error reaches the session, which answers 400): space or
// tab before the colon, a line without a colon, NUL / CTL / bare CR in a value, bare-LF line
// ends, CL+TE(chunked) in either order, two differing Content-Length values, `+N`, `-N`, `0x`,
// empty or overflowing lengths, `chunked` twice, bad chunk sizes (non-hex, `0x`, > 16 digits),
// bare LF after chunk data, Content-Length in a trailer. What it lets through is checked here.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <cstddef>
#include <string_view>

#include "config/config.h"
#include "http/lean_parser.h"

namespace canary::http {

struct verdict {
  unsigned code = 0;  // 0 = acceptable; else the status to answer (and close)
  std::string_view message;
};

using request_parser_type = lean_parser<true>;
using response_parser_type = lean_parser<false>;

// A request head Beast parsed (is_header_done). RFC 9112 §6.1-6.3: Transfer-Encoding is one
// field, exactly "chunked" (a well-formed list naming another coding: 501; a malformed list:
// 400), never with Content-Length, never on HTTP/1.0; Content-Length one field of digits only
// (no "5, 5", no repeated field). RFC 9112 §3.2: HTTP/1.1 needs exactly one valid Host
// (uri-host [":" port]); an absolute-form target must name the same authority (§3.2.2: the
// upstream obeys the target, we route by Host). The target is origin-, absolute- or (OPTIONS)
// asterisk-form. Connection may not list Host (it would strip it upstream). At most
// `limits.max_header_fields` fields (431).
verdict validate_request(const request_parser_type& parser, const config::limits_config& limits);

// The exact bytes of a request head (request line through the blank line) as received. Finds
// what Beast normalises away before validate_request can see it: obs-fold (RFC 9112 §5.2; Beast
// unfolds "a\r\n b" to "a b", also inside Transfer-Encoding or Host) and bare LF. 400 for both.
verdict scan_request_head(std::string_view raw_head) noexcept;

// One step of reading a request head from `buf` without losing its raw bytes: puts what is
// buffered into `parser` (not eager) and, once the head is complete, runs scan_request_head over
// exactly the bytes the head took, then consumes them from `buf`. The caller reads more into
// `buf` while the result is `need_more` and `buf` is not full (full: 431). `ec` is Beast's
// parse error (header_limit: 431; others: 400). On done, the session goes on with
// validate_request and then reads the body from `buf` as before.
struct head_step {
  enum class state { need_more, done, error } what = state::need_more;
  boost::system::error_code ec;  // set when what == error and Beast refused the bytes
  verdict bad;                   // set when what == error and scan_request_head refused them
};
head_step parse_request_head(request_parser_type& parser, boost::beast::flat_buffer& buf);

// A response head from an upstream (is_header_done; `parser.skip()` set for HEAD). A status
// outside 100..599 (RFC 9110 §15) and any framing an honest reader could disagree on is a bad
// response (502; the connection is not reused, RFC 9112 §6.3): Transfer-Encoding other than exactly "chunked" on a response with a
// body, TE with Content-Length, TE on HTTP/1.0, repeated or list-valued Content-Length, a body
// announced on 1xx or 204. HEAD and 304 responses may carry the TE or CL the GET would have
// had (RFC 9110 §8.6, RFC 9112 §6.1), but not both and not a malformed CL (it is forwarded).
verdict validate_response(const response_parser_type& parser);

}  // namespace canary::http
