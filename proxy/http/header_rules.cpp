// Pure header helpers; see header_rules.h.
#include "http/header_rules.h"

namespace canary::http {

bool is_hop_by_hop(std::string_view name) noexcept {
  switch (name.size()) {
    case 2:
      return iequals(name, "te");
    case 7:
      return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection") || iequals(name, "keep-alive");
    case 14:
      return iequals(name, "content-length");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

bool is_hop_by_hop(boost::beast::http::field f) noexcept {
  using boost::beast::http::field;
  switch (f) {
    case field::te:
    case field::trailer:
    case field::upgrade:
    case field::connection:
    case field::keep_alive:
    case field::content_length:
    case field::proxy_connection:
    case field::transfer_encoding:
      return true;
    default:
      return false;
  }
}

void connection_tokens::add_list(std::string_view value) noexcept {
  while (!value.empty()) {
    auto comma = value.find(',');
    auto token = util::trim(value.substr(0, comma), util::http_ows);
    if (!token.empty()) {
      if (count < max)
        tokens[count++] = token;
      else
        overflow = true;
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

bool connection_tokens::contains(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < count; ++i)
    if (iequals(tokens[i], name)) return true;
  return false;
}

}  // namespace canary::http
