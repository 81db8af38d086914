// Header rules of a proxy that are pure string logic: hop-by-hop fields (RFC 9110 §7.6.1), the
// Connection header's token list, case-insensitive compares. Used per request: no allocation.
#pragma once

#include <array>
#include <boost/beast/http/field.hpp>
#include <cstddef>
#include <string_view>

#include "util/text.h"

namespace canary::http {

using util::iequals;  // ASCII case-insensitive compare (util/text.h)

// Fields a proxy never forwards (RFC 9110 §7.6.1, RFC 9112 §6.1): Connection, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade, plus the framing fields we rebuild ourselves
// (Transfer-Encoding, Content-Length).
bool is_hop_by_hop(std::string_view name) noexcept;
// The same by Beast's field enum: every name above has one (an unknown field is never one).
bool is_hop_by_hop(boost::beast::http::field f) noexcept;

// Tokens of Connection header values ("close, X-Foo"). Keeps at most `max` tokens; `overflow`
// says more were present (the caller then treats unknown fields conservatively).
struct connection_tokens {
  static constexpr std::size_t max = 16;
  std::array<std::string_view, max> tokens{};
  std::size_t count = 0;
  bool overflow = false;
  void add_list(std::string_view value) noexcept;
  bool contains(std::string_view name) const noexcept;
};

}  // namespace canary::http
