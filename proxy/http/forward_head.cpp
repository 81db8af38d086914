// Forwarded heads; see forward_head.h.
#include "http/forward_head.h"

#include <charconv>
#include <cstdint>

#include "http/header_rules.h"
#include "http/request_target.h"

namespace canary::http {

namespace bhttp = boost::beast::http;
using namespace std::string_view_literals;

namespace {

void append_number(std::string& out, std::uint64_t n) {
  char tmp[24];
  auto [end, ec] = std::to_chars(tmp, tmp + sizeof tmp, n);
  out.append(tmp, end);
}

// X-Forwarded-* are ours to set (none is in Beast's field table).
bool is_forwarded_field(std::string_view name) noexcept {
  return iequals(name, "x-forwarded-for") || iequals(name, "x-forwarded-proto") ||
         iequals(name, "x-forwarded-host");
}

// The status line and the end-to-end fields of a response head (no blank line).
void append_status_and_fields(std::string& out, const response_parser_type& res) {
  out.clear();
  out += "HTTP/1.1 "sv;
  append_number(out, res.result_int());
  out += ' ';
  out.append(res.reason());
  out += "\r\n"sv;
  connection_tokens conn;
  for (const auto& f : res)
    if (f.name() == bhttp::field::connection) conn.add_list(f.value());
  res.append_fields(out, [&](const response_parser_type::field_ref& f) {
    return !is_hop_by_hop(f.name()) && !(conn.count && conn.contains(f.name_string()));
  });
}

}  // namespace

std::string_view upgrade_request(const request_parser_type& req, bool has_body) noexcept {
  if (has_body || req.version() != 11) return {};
  const auto it = req.find(bhttp::field::upgrade);
  if (it == req.end() || it->value().empty()) return {};
  connection_tokens conn;
  for (const auto& f : req)
    if (f.name() == bhttp::field::connection) conn.add_list(f.value());
  if (!conn.contains("upgrade")) return {};
  // Any h2c among the offered protocols: HTTP/2 is ours to speak or refuse, never to tunnel.
  std::string_view rest = it->value();
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    auto token = rest.substr(0, comma);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (iequals(token, "h2c")) return {};
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return it->value();
}

void build_request_head(std::string& out, const request_parser_type& req,
                        std::string_view client_ip, bool https, std::string_view upgrade) {
  out.clear();
  out.append(req.method_string());
  out += ' ';
  const auto target = split_target(req.target());
  if (target.needs_slash) out += '/';
  out.append(target.path_and_query);
  out += " HTTP/1.1\r\n"sv;

  connection_tokens conn;
  std::string_view forwarded_for;
  for (const auto& f : req) {
    if (f.name() == bhttp::field::connection)
      conn.add_list(f.value());
    else if (f.name() == bhttp::field::unknown && iequals(f.name_string(), "x-forwarded-for"))
      forwarded_for = f.value();  // the last one; extended below
  }
  req.append_fields(out, [&](const request_parser_type::field_ref& f) {
    if (is_hop_by_hop(f.name()) || f.name() == bhttp::field::expect) return false;
    const auto name = f.name_string();
    if (conn.count && conn.contains(name)) return false;
    return f.name() != bhttp::field::unknown || !is_forwarded_field(name);
  });
  auto host = req[bhttp::field::host];
  if (host.empty() && target.absolute) {
    host = target.authority;
    out += "Host: "sv;
    out.append(host);
    out += "\r\n"sv;
  }
  out += "X-Forwarded-For: "sv;
  if (!forwarded_for.empty()) {
    out.append(forwarded_for);
    out += ", "sv;
  }
  out.append(client_ip);
  out += https ? "\r\nX-Forwarded-Proto: https\r\n"sv : "\r\nX-Forwarded-Proto: http\r\n"sv;
  if (!host.empty()) {
    out += "X-Forwarded-Host: "sv;
    out.append(host);
    out += "\r\n"sv;
  }
  if (!upgrade.empty()) {
    out += "Connection: upgrade\r\nUpgrade: "sv;
    out.append(upgrade);
    out += "\r\n"sv;
  }
  if (req.chunked()) {
    out += "Transfer-Encoding: chunked\r\n"sv;
  } else if (auto len = req.content_length()) {
    out += "Content-Length: "sv;
    append_number(out, *len);
    out += "\r\n"sv;
  }
  out += "\r\n"sv;
}

void build_switching_head(std::string& out, const response_parser_type& res) {
  append_status_and_fields(out, res);
  out += "Connection: upgrade\r\nUpgrade: "sv;
  out.append(res[bhttp::field::upgrade]);
  out += "\r\n\r\n"sv;
}

void build_interim_head(std::string& out, const response_parser_type& res) {
  append_status_and_fields(out, res);
  out += "\r\n"sv;
}

void build_response_head(std::string& out, const response_parser_type& res, framing f,
                         bool keep_alive, unsigned client_version, std::string_view set_cookie) {
  append_status_and_fields(out, res);
  if (f == framing::length) {
    out += "Content-Length: "sv;
    append_number(out, *res.content_length());
    out += "\r\n"sv;
  } else if (f == framing::chunked) {
    out += "Transfer-Encoding: chunked\r\n"sv;
  } else if (f == framing::none) {
    // HEAD and 304 carry the length the GET would have had (RFC 9110 §8.6).
    if (auto it = res.find(bhttp::field::content_length); it != res.end()) {
      out += "Content-Length: "sv;
      out.append(it->value());
      out += "\r\n"sv;
    }
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

}  // namespace canary::http
