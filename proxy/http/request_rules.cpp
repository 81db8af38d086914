// Request-head checks on top of Beast; see request_rules.h.
#include "http/request_rules.h"

#include "http/header_rules.h"

namespace canary::http {

namespace bhttp = boost::beast::http;

namespace {
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
}  // namespace

verdict validate_request(const request_parser_type& parser, const config::limits_config& limits) {
  const auto& r = parser.get();
  std::size_t fields = 0;
  std::size_t hosts = 0;
  std::size_t te_fields = 0;
  bool te_is_chunked = false;
  bool te_well_formed = true;
  bool has_length = false;
  for (const auto& f : r) {
    ++fields;
    switch (f.name()) {
      case bhttp::field::host:
        ++hosts;
        break;
      case bhttp::field::content_length:
        has_length = true;
        break;
      case bhttp::field::transfer_encoding: {
        ++te_fields;
        connection_tokens list;  // same comma-list grammar
        list.add_list(f.value());
        te_is_chunked = list.count == 1 && !list.overflow && iequals(list.tokens[0], "chunked");
        for (std::size_t i = 0; i < list.count; ++i)
          for (char c : list.tokens[i])
            if (!is_tchar(c)) te_well_formed = false;
        if (list.count == 0) te_well_formed = false;
        break;
      }
      default:
        break;
    }
  }
  if (fields > limits.max_header_fields) return {431, "too many header fields"};
  if (te_fields > 0) {
    if (r.version() < 11) return {400, "Transfer-Encoding is not allowed in HTTP/1.0"};
    if (has_length) return {400, "both Transfer-Encoding and Content-Length"};
    if (!te_well_formed) return {400, "malformed Transfer-Encoding"};
    if (te_fields > 1 || !te_is_chunked) return {501, "only chunked transfer coding is supported"};
  }
  if (hosts > 1) return {400, "duplicate Host header"};
  if (hosts == 0 && r.version() >= 11) return {400, "missing Host header"};
  return {};
}

}  // namespace canary::http
