// Lexical rules of config values (names, tokens, IP literals) and the small helpers error
// messages share. Internal to the loader (config/*.cpp); pure functions, any thread.
#pragma once

#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>

namespace canary::config {

// Route and upstream names are one URL path segment (/api/v1/rollouts/NAME), a metric label and
// a dashboard id: 1..max_name_bytes of letters, digits, '.', '_' and '-', and neither "." nor
// ".." (browsers and URL libraries collapse those dot segments, so "abort" on a route ".." would
// call /api/v1/abort).
inline constexpr std::size_t max_name_bytes = 128;
bool is_name(std::string_view s);
// What is_name() wants, for error messages.
inline constexpr std::string_view name_rule =
    "use 1-128 letters, digits, \".\", \"_\" and \"-\", not \".\" or \"..\": it is a URL path "
    "segment";

// Host names as written in endpoints, listen addresses and route hosts: letters, digits, '.',
// '_' and '-' (IPv4 literals included; IPv6 literals are checked with is_ipv6_literal).
bool is_host_name(std::string_view s);

// RFC 9110 §5.6.2 token: header field names (§5.1) and cookie names (RFC 6265 §4.1.1).
bool is_token(std::string_view s);

bool is_ipv6_literal(const std::string& s);

// "\"text\"".
std::string quote(std::string_view s);

// The items joined by `sep`; at most `max_items` of them, then ", ... (N more)" so that an error
// about a config with 20 000 names stays one readable line.
template <class Range>
std::string join(const Range& items, std::string_view sep, std::size_t max_items = 20) {
  std::string out;
  std::size_t n = 0;
  for (const auto& s : items) {
    if (n == max_items) {
      out += sep;
      out += "... (" + std::to_string(std::size(items) - max_items) + " more)";
      break;
    }
    if (n++ != 0) out += sep;
    out += s;
  }
  return out;
}

}  // namespace canary::config
