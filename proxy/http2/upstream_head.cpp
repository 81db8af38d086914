// Heads between HTTP/1.1 clients and h2c upstreams; see upstream_head.h.
#include "http2/upstream_head.h"

#include <boost/beast/http/status.hpp>
#include <charconv>

#include "http/header_rules.h"
#include "http/request_target.h"

namespace canary::http2 {

namespace bhttp = boost::beast::http;
using namespace std::string_view_literals;
using util::iequals;

namespace {

void append_number(std::string& out, std::uint64_t n) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, n);
  out.append(tmp, end);
}

bool lists_token(std::string_view list, std::string_view token) noexcept {
  http::connection_tokens t;
  t.add_list(list);
  return t.contains(token);
}

// Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing, connection
// control; they would be ignored or misread by the client.
bool forbidden_in_trailers(std::string_view name) noexcept {
  return http::is_hop_by_hop(name) || iequals(name, "host") || iequals(name, "content-type") ||
         iequals(name, "content-encoding") || iequals(name, "content-range") ||
         iequals(name, "authorization") || iequals(name, "set-cookie") ||
         iequals(name, "cache-control") || iequals(name, "expect");
}

}  // namespace

bool accepts_trailers(const http::request_parser_type& req) noexcept {
  for (const auto& f : req)
    if (f.name() == bhttp::field::te && lists_token(f.value(), "trailers")) return true;
  return false;
}

void build_request(request_head& out, const http::request_parser_type& req,
                   std::string_view client_ip, bool https) {
  out.method.assign(req.method_string());
  const auto target = http::split_target(req.target());
  out.path.clear();
  if (target.needs_slash) out.path += '/';
  out.path.append(target.path_and_query);
  std::string_view host = req[bhttp::field::host];
  if (host.empty() && target.absolute) host = target.authority;
  out.authority.assign(host);

  http::connection_tokens conn;
  std::string_view forwarded_for;
  for (const auto& f : req) {
    if (f.name() == bhttp::field::connection)
      conn.add_list(f.value());
    else if (f.name() == bhttp::field::unknown && iequals(f.name_string(), "x-forwarded-for"))
      forwarded_for = f.value();
  }
  out.fields.clear();
  bool te_trailers = false;
  for (const auto& f : req) {
    const auto name = f.name_string();
    if (f.name() == bhttp::field::te) {
      te_trailers = te_trailers || lists_token(f.value(), "trailers");
      continue;
    }
    // Connection-specific fields are malformed in HTTP/2 (RFC 9113 §8.2.2); Host becomes
    // :authority (§8.3.1); Expect is answered by the proxy.
    if (http::is_hop_by_hop(f.name()) || f.name() == bhttp::field::host ||
        f.name() == bhttp::field::expect)
      continue;
    if (conn.count && conn.contains(name)) continue;
    if (f.name() == bhttp::field::unknown &&
        (iequals(name, "x-forwarded-for") || iequals(name, "x-forwarded-proto") ||
         iequals(name, "x-forwarded-host")))
      continue;
    out.fields.push_back({util::to_lower(name), std::string(f.value())});
  }
  if (te_trailers) out.fields.push_back({"te", "trailers"});
  if (!req.chunked())
    if (auto len = req.content_length()) {
      std::string v;
      append_number(v, *len);
      out.fields.push_back({"content-length", std::move(v)});
    }
  std::string xff;
  if (!forwarded_for.empty()) {
    xff.append(forwarded_for);
    xff += ", "sv;
  }
  xff.append(client_ip);
  out.fields.push_back({"x-forwarded-for", std::move(xff)});
  out.fields.push_back({"x-forwarded-proto", https ? "https" : "http"});
  if (!host.empty()) out.fields.push_back({"x-forwarded-host", std::string(host)});
}

void build_request(request_head& out, std::string_view method, std::string_view authority,
                   std::string_view path,
                   const std::vector<std::pair<std::string, std::string>>& fields,
                   std::string_view client_ip, bool https) {
  out.method.assign(method);
  out.authority.assign(authority);
  out.path.assign(path);
  out.fields.clear();
  std::string_view forwarded_for;
  for (const auto& [n, v] : fields) {
    if (n == "x-forwarded-for") {
      forwarded_for = v;
      continue;
    }
    if (n == "x-forwarded-proto" || n == "x-forwarded-host" || n == "host" || n == "expect")
      continue;
    if (n == "te" ? v != "trailers" : http::is_hop_by_hop(n) && n != "content-length") continue;
    out.fields.push_back({n, v});
  }
  std::string xff;
  if (!forwarded_for.empty()) {
    xff.append(forwarded_for);
    xff += ", "sv;
  }
  xff.append(client_ip);
  out.fields.push_back({"x-forwarded-for", std::move(xff)});
  out.fields.push_back({"x-forwarded-proto", https ? "https" : "http"});
  if (!authority.empty()) out.fields.push_back({"x-forwarded-host", std::string(authority)});
}

std::optional<std::uint64_t> content_length(const response_head& head) noexcept {
  std::optional<std::uint64_t> out;
  for (const auto& f : head.fields) {
    if (f.name != "content-length") continue;
    std::uint64_t v = 0;
    const auto* end = f.value.data() + f.value.size();
    auto [p, ec] = std::from_chars(f.value.data(), end, v);
    if (f.value.empty() || ec != std::errc{} || p != end || (out && *out != v)) return std::nullopt;
    out = v;
  }
  return out;
}

void build_client_head(std::string& out, const response_head& head, http::framing f,
                       bool keep_alive, unsigned client_version, std::string_view set_cookie) {
  out.clear();
  out += "HTTP/1.1 "sv;
  append_number(out, head.status);
  out += ' ';
  out.append(bhttp::obsolete_reason(bhttp::int_to_status(head.status)));
  out += "\r\n"sv;
  std::string_view length;
  for (const auto& fl : head.fields) {
    if (fl.name == "content-length") {
      length = fl.value;
      continue;
    }
    // An HTTP/2 response has no connection-specific field (RFC 9113 §8.2.2); a broken upstream's
    // would still not reach the client.
    if (http::is_hop_by_hop(fl.name)) continue;
    out.append(fl.name);
    out += ": "sv;
    out.append(fl.value);
    out += "\r\n"sv;
  }
  if (f == http::framing::chunked) {
    out += "Transfer-Encoding: chunked\r\n"sv;
  } else if ((f == http::framing::length || f == http::framing::none) && !length.empty()) {
    // none: HEAD and 304 carry the length the GET would have had (RFC 9110 §8.6).
    out += "Content-Length: "sv;
    out.append(length);
    out += "\r\n"sv;
  }
  if (!set_cookie.empty()) {
    out += "Set-Cookie: "sv;
    out.append(set_cookie);
    out += "\r\n"sv;
  }
  if (!keep_alive)
    out += "Connection: close\r\n"sv;
  else if (client_version < 11)
    out += "Connection: keep-alive\r\n"sv;
  out += "\r\n"sv;
}

void append_last_chunk(std::string& out, const std::vector<field>& trailers) {
  out += "0\r\n"sv;
  for (const auto& f : trailers) {
    if (forbidden_in_trailers(f.name)) continue;
    out.append(f.name);
    out += ": "sv;
    out.append(f.value);
    out += "\r\n"sv;
  }
  out += "\r\n"sv;
}

std::optional<unsigned> grpc_status(const response_head& head,
                                    const std::vector<field>& trailers) {
  auto find = [](const std::vector<field>& fields) -> const field* {
    for (const auto& f : fields)
      if (f.name == "grpc-status") return &f;
    return nullptr;
  };
  const field* f = find(trailers);
  if (!f) f = find(head.fields);
  if (!f) return std::nullopt;
  unsigned v = 0;
  const auto* end = f->value.data() + f->value.size();
  auto [p, ec] = std::from_chars(f->value.data(), end, v);
  if (f->value.empty() || ec != std::errc{} || p != end) return std::nullopt;
  return v;
}

}  // namespace canary::http2
