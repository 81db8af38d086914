// The parts of a request target a proxy forwards (RFC 9112 §3.2): an absolute-form target
// ("http://a.example/x?q") names the authority and the origin-form the upstream gets. Pure
// string logic, no allocation: any thread.
#pragma once

#include <string_view>

namespace canary::http {

struct target_parts {
  bool absolute = false;       // absolute-form ("http://" or "https://", any case)
  std::string_view authority;  // absolute-form only: between "//" and the first '/', '?' or '#'
  // What follows the authority (absolute-form) or the whole target. The origin-form to forward
  // is `path_and_query`, preceded by "/" when `needs_slash` (RFC 9112 §3.2.1: an empty path is
  // sent as "/", also in front of a query: "http://a?q" -> "/?q").
  std::string_view path_and_query;
  bool needs_slash = false;
};

// Origin-form, asterisk-form and anything else come back as they are (not absolute).
target_parts split_target(std::string_view target) noexcept;

}  // namespace canary::http
