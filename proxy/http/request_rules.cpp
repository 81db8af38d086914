// Framing checks on top of Beast; see request_rules.h.
#include "http/request_rules.h"

#include <cstring>

#include "http/header_rules.h"
#include "http/request_target.h"

namespace canary::http {

namespace bhttp = boost::beast::http;

namespace {

bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool is_hex(char c) noexcept {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9110 §8.6: Content-Length = 1*DIGIT. Beast accepts "5, 5" and keeps it verbatim.
bool digits_only(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// A Transfer-Encoding field value, RFC 9112 §6.1 / RFC 9110 §10.1.4:
// #transfer-coding, transfer-coding = token *( OWS ";" OWS transfer-parameter ).
// Strict: an empty list element is malformed here (nginx and HAProxy refuse ",chunked" too).
struct te_summary {
  bool malformed = false;
  unsigned chunked = 0;         // plain "chunked" elements
  bool chunked_params = false;  // "chunked;x=y": chunked defines no parameters
  bool other = false;           // any other coding: gzip, identity, x-foo ...
};

void summarize_te(std::string_view value, te_summary& out) noexcept {
  for (;;) {
    const auto comma = value.find(',');
    auto element = util::trim(value.substr(0, comma), util::http_ows);
    const auto semi = element.find(';');
    const auto coding = util::trim(element.substr(0, semi), util::http_ows);
    if (coding.empty()) {
      out.malformed = true;
    } else {
      for (char c : coding)
        if (!is_tchar(c)) out.malformed = true;
      if (iequals(coding, "chunked")) {
        ++out.chunked;
        if (semi != std::string_view::npos) out.chunked_params = true;
      } else {
        out.other = true;
      }
    }
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

// RFC 3986 §3.2.2-3.2.3 as RFC 9110 §7.2 uses it: uri-host [ ":" port ], host non-empty
// (RFC 9110 §4.2.1: an empty host is invalid for http). No userinfo, no spaces, no '/'.
bool valid_host(std::string_view h) noexcept {
  if (h.empty()) return false;
  std::size_t i = 0;
  if (h[0] == '[') {
    const auto close = h.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (i = 1; i < close; ++i) {
      const char c = h[i];
      if (!is_hex(c) && c != ':' && c != '.') return false;
    }
    i = close + 1;
  } else {
    for (; i < h.size() && h[i] != ':'; ++i) {
      const char c = h[i];
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) continue;
      if (std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos) continue;
      if (c == '%' && i + 2 < h.size() && is_hex(h[i + 1]) && is_hex(h[i + 2])) {
        i += 2;
        continue;
      }
      return false;
    }
    if (i == 0) return false;
  }
  if (i == h.size()) return true;
  if (h[i] != ':') return false;
  const auto port = h.substr(i + 1);
  if (port.size() > 5) return false;
  for (char c : port)
    if (!is_digit(c)) return false;
  return true;
}

// The authority of an absolute-form target ("http://a.example:8080/x" -> "a.example:8080"),
// "" when the target is not absolute-form, nullopt-like `bad` when it is but malformed.
struct absolute_target {
  bool absolute = false;
  bool bad = false;
  std::string_view authority;
};

absolute_target parse_absolute(std::string_view target) noexcept {
  const auto parts = split_target(target);
  absolute_target out;
  if (!parts.absolute) return out;
  out.absolute = true;
  out.authority = parts.authority;
  if (out.authority.find('@') != std::string_view::npos || !valid_host(out.authority))
    out.bad = true;
  return out;
}

}  // namespace

verdict validate_request(const request_parser_type& parser, const config::limits_config& limits) {
  const auto& r = parser.get();
  const std::size_t fields = parser.field_count();
  std::size_t hosts = 0;
  std::size_t te_fields = 0;
  std::size_t cl_fields = 0;
  bool cl_bad = false;
  bool host_bad = false;
  bool connection_names_host = false;
  std::string_view host;
  te_summary te;
  for (const auto& f : r) {
    switch (f.name()) {
      case bhttp::field::host:
        ++hosts;
        host = f.value();
        if (!valid_host(host)) host_bad = true;
        break;
      case bhttp::field::content_length:
        ++cl_fields;
        if (!digits_only(f.value())) cl_bad = true;
        break;
      case bhttp::field::transfer_encoding:
        ++te_fields;
        summarize_te(f.value(), te);
        break;
      case bhttp::field::connection: {
        connection_tokens list;
        list.add_list(f.value());
        if (list.contains("host")) connection_names_host = true;
        break;
      }
      default:
        break;
    }
  }
  if (fields > limits.max_header_fields) return {431, "too many header fields"};
  if (te_fields > 0) {
    if (r.version() < 11) return {400, "Transfer-Encoding is not allowed in HTTP/1.0"};
    if (cl_fields > 0) return {400, "both Transfer-Encoding and Content-Length"};
    if (te.malformed || te.chunked_params || te.chunked > 1)
      return {400, "malformed Transfer-Encoding"};
    if (te.other || te.chunked != 1) return {501, "only chunked transfer coding is supported"};
  }
  if (cl_fields > 1) return {400, "repeated Content-Length"};
  if (cl_bad) return {400, "malformed Content-Length"};
  if (hosts > 1) return {400, "duplicate Host header"};
  if (hosts == 0 && r.version() >= 11) return {400, "missing Host header"};
  if (host_bad) return {400, "invalid Host header"};
  if (connection_names_host) return {400, "Connection may not name Host"};

  const auto target = r.target();
  if (target.empty()) return {400, "empty request target"};
  if (target[0] != '/') {
    if (target == "*") {
      if (r.method() != bhttp::verb::options) return {400, "asterisk-form is for OPTIONS only"};
    } else {
      const auto abs = parse_absolute(target);
      if (!abs.absolute) return {400, "unsupported request target form"};
      if (abs.bad) return {400, "malformed absolute-form target"};
      if (hosts == 1 && !iequals(abs.authority, host))
        return {400, "request target and Host disagree"};
    }
  }
  return {};
}

verdict scan_request_head(std::string_view raw) noexcept {
  const char* const first = raw.data();
  const char* const last = first + raw.size();
  const char* p = first;
  while (p < last) {
    const auto* nl =
        static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(last - p)));
    if (!nl) break;
    if (nl == first || nl[-1] != '\r') return {400, "bare LF in request head"};
    if (nl + 1 < last && (nl[1] == ' ' || nl[1] == '\t'))
      return {400, "obsolete line folding in request head"};
    p = nl + 1;
  }
  return {};
}

head_step parse_request_head(request_parser_type& parser, boost::beast::flat_buffer& buf) {
  head_step out;
  const auto data = buf.data();
  const std::size_t n = parser.put(data, out.ec);
  if (out.ec == bhttp::error::need_more) {
    out.ec = {};
    buf.consume(n);
    return out;
  }
  if (out.ec) {
    out.what = head_step::state::error;
    return out;
  }
  if (!parser.is_header_done()) {  // cannot happen with a non-eager parser; be safe
    buf.consume(n);
    return out;
  }
  out.bad = scan_request_head(std::string_view(static_cast<const char*>(data.data()), n));
  out.what = out.bad.code ? head_step::state::error : head_step::state::done;
  buf.consume(n);
  return out;
}

verdict validate_response(const response_parser_type& parser) {
  const auto& r = parser.get();
  std::size_t te_fields = 0;
  std::size_t cl_fields = 0;
  bool cl_bad = false;
  bool cl_nonzero = false;
  te_summary te;
  for (const auto& f : r) {
    switch (f.name()) {
      case bhttp::field::content_length:
        ++cl_fields;
        if (!digits_only(f.value())) cl_bad = true;
        if (f.value().find_first_not_of('0') != std::string_view::npos) cl_nonzero = true;
        break;
      case bhttp::field::transfer_encoding:
        ++te_fields;
        summarize_te(f.value(), te);
        break;
      default:
        break;
    }
  }
  if (cl_fields > 1) return {502, "upstream sent a repeated Content-Length"};
  if (cl_bad) return {502, "upstream sent a malformed Content-Length"};
  if (te_fields > 0 && cl_fields > 0)
    return {502, "upstream sent both Transfer-Encoding and Content-Length"};
  const unsigned status = r.result_int();
  // RFC 9110 §15: 100..599. Beast takes any three digits ("024" is 24), which would go out
  // as a status line no client can parse.
  if (status < 100 || status > 599) return {502, "upstream sent an invalid status code"};
  if (status < 200 || status == 204) {
    if (te_fields > 0 || cl_nonzero) return {502, "upstream announced a body on 1xx or 204"};
    return {};
  }
  if (parser.skip() || status == 304) return {};  // no body follows whatever TE says
  if (te_fields > 0) {
    if (r.version() < 11) return {502, "upstream sent Transfer-Encoding in HTTP/1.0"};
    if (te.malformed || te.chunked_params || te.chunked != 1 || te.other)
      return {502, "upstream sent a transfer coding other than chunked"};
  }
  return {};
}

}  // namespace canary::http
