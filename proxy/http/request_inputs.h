// The router's inputs (routing::request_inputs) from one request's fields, for both protocols:
// HTTP/1.1 (the session's parsed head) and HTTP/2 (a stream's decoded header list). Pure and
// header-only (inlined into each caller's hot path); any thread. The views point into the
// request's fields or, when several Cookie fields must be joined, into `join`.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "routing/router.h"

namespace canary::http {

// `find(name)` -> optional<string_view>: a field's value (case-insensitive name), first one.
// `each_cookie(f)`: calls f(value) for every Cookie field in order. Several Cookie fields are
// joined with "; " (RFC 9113 §8.2.3 for HTTP/2's split cookies; RFC 6265 §5.4 for HTTP/1.1), so
// cookie routing and stickiness see one list whatever the protocol. A single field is a view:
// no allocation on the common path.
template <class Find, class EachCookie>
routing::request_inputs gather_inputs(const routing::canary_rule& rule, Find&& find,
                                      EachCookie&& each_cookie, std::string& join,
                                      std::string_view client_ip) {
  routing::request_inputs in;
  if (!rule.by_header.empty()) in.canary_header = find(std::string_view(rule.by_header));
  if (!rule.by_cookie.empty() || rule.sticky.how == config::sticky_config::kind::cookie) {
    std::size_t n = 0;
    std::string_view first;
    each_cookie([&](std::string_view v) {
      if (n++ == 0) first = v;
    });
    if (n == 1) {
      in.cookies = first;
    } else if (n > 1) {
      join.clear();
      each_cookie([&](std::string_view v) {
        if (!join.empty()) join += "; ";
        join.append(v);
      });
      in.cookies = join;
    }
  }
  if (rule.sticky.how == config::sticky_config::kind::header)
    in.sticky_header = find(std::string_view(rule.sticky.name));
  in.client_ip = client_ip;
  return in;
}

}  // namespace canary::http
