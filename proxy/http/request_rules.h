// Checks on a parsed request head that Beast 1.81 does not make (research: it accepts several
// request-smuggling shapes nginx rejects). Pure; called once per request after the head is read.
#pragma once

#include <string_view>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "config/config.h"

namespace canary::http {

struct verdict {
  unsigned code = 0;  // 0 = acceptable; else the status to answer (and close)
  std::string_view message;
};

using request_parser_type =
    boost::beast::http::request_parser<boost::beast::http::buffer_body>;

// RFC 9112 §6.1-6.3 and §3.2: Transfer-Encoding only "chunked" (other codings 501), never with
// Content-Length, never on HTTP/1.0; exactly one Host on HTTP/1.1; at most max_header_fields.
verdict validate_request(const request_parser_type& parser, const config::limits_config& limits);

}  // namespace canary::http
