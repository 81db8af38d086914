// The forwarded heads (forward_head.h) from parsed bytes: what reaches the upstream and the
// client field by field. fuzz/request_fuzz.cpp checks the same functions against arbitrary input.
#include "http/forward_head.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <string>
#include <string_view>

namespace canary::http {
namespace {

template <class Parser>
void parse(Parser& p, std::string_view raw) {
  p.header_limit(64 * 1024);
  p.body_limit(boost::none);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(p.is_header_done());
}

std::string request_head(std::string_view raw, std::string_view client_ip = "10.0.0.7") {
  request_parser_type p;
  parse(p, raw);
  std::string out = "stale bytes";  // cleared first: a caller reuses its string
  build_request_head(out, p, client_ip);
  return out;
}

TEST(forward_request_head, keeps_end_to_end_fields_and_adds_forwarded_ones) {
  EXPECT_EQ(request_head("GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n\r\n"),
            "GET /a?b=1 HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.test\r\n\r\n");
}

TEST(forward_request_head, drops_hop_by_hop_connection_named_and_expect) {
  const auto head = request_head(
      "POST /u HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Private\r\n"
      "X-Private: s\r\nKeep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
      "Proxy-Connection: x\r\nExpect: 100-continue\r\nX-Kept: y\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(head,
            "POST /u HTTP/1.1\r\nHost: a.test\r\nX-Kept: y\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.test\r\nContent-Length: 3\r\n\r\n");
}

TEST(forward_request_head, extends_the_last_x_forwarded_for_and_replaces_proto_and_host) {
  const auto head = request_head(
      "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.1.1.1\r\n"
      "X-Forwarded-For: 2.2.2.2\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n");
  EXPECT_EQ(head,
            "GET / HTTP/1.1\r\nHost: a.test\r\n"
            "X-Forwarded-For: 2.2.2.2, 10.0.0.7\r\nX-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: a.test\r\n\r\n");
}

TEST(forward_request_head, rebuilds_framing_from_the_parser) {
  EXPECT_NE(request_head("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n")
                .find("\r\nContent-Length: 7\r\n"),
            std::string::npos);
  const auto chunked =
      request_head("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
  EXPECT_NE(chunked.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(chunked.find("Content-Length"), std::string::npos);
}

TEST(forward_request_head, an_http10_request_goes_out_as_http11) {
  EXPECT_EQ(request_head("GET /ten HTTP/1.0\r\n\r\n"),
            "GET /ten HTTP/1.1\r\nX-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: http\r\n\r\n");
}

TEST(forward_request_head, absolute_form_goes_out_in_origin_form) {
  EXPECT_EQ(
      request_head("GET http://a.test/color?x=1 HTTP/1.1\r\nHost: a.test\r\n\r\n").substr(0, 27),
      "GET /color?x=1 HTTP/1.1\r\nHo");
  EXPECT_EQ(request_head("GET http://a.test HTTP/1.1\r\nHost: a.test\r\n\r\n").substr(0, 16),
            "GET / HTTP/1.1\r\n");
  EXPECT_EQ(request_head("GET HTTP://a.test?q HTTP/1.1\r\nHost: a.test\r\n\r\n").substr(0, 18),
            "GET /?q HTTP/1.1\r\n");
  // HTTP/1.0 without Host: the target's authority is the Host (RFC 9112 §3.2.2).
  EXPECT_EQ(request_head("GET http://a.test:8080/x HTTP/1.0\r\n\r\n"),
            "GET /x HTTP/1.1\r\nHost: a.test:8080\r\nX-Forwarded-For: 10.0.0.7\r\n"
            "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a.test:8080\r\n\r\n");
}

TEST(forward_request_head, asterisk_form_is_kept) {
  EXPECT_EQ(request_head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").substr(0, 20),
            "OPTIONS * HTTP/1.1\r\n");
}

std::string response_head(std::string_view raw, framing f, bool keep, unsigned version = 11,
                          std::string_view cookie = {}, bool head_request = false) {
  response_parser_type p;
  if (head_request) p.skip(true);
  parse(p, raw);
  std::string out = "stale";
  build_response_head(out, p, f, keep, version, cookie);
  return out;
}

TEST(forward_response_head, length_framed_with_hop_by_hop_dropped) {
  EXPECT_EQ(response_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Up\r\n"
                          "X-Up: 1\r\nKeep-Alive: timeout=5\r\nServer: s\r\n\r\nhi",
                          framing::length, true),
            "HTTP/1.1 200 OK\r\nServer: s\r\nContent-Length: 2\r\n\r\n");
}

TEST(forward_response_head, chunked_close_and_cookie) {
  EXPECT_EQ(response_head("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n",
                          framing::chunked, false, 11, "c=1; Path=/"),
            "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nSet-Cookie: c=1; Path=/\r\n"
            "Connection: close\r\n\r\n");
  EXPECT_EQ(response_head("HTTP/1.0 200 OK\r\n\r\n", framing::close, false, 10),
            "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
}

TEST(forward_response_head, keep_alive_is_said_to_an_http10_client) {
  EXPECT_EQ(
      response_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", framing::length, true, 10),
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

TEST(forward_response_head, head_and_304_keep_the_described_length) {
  EXPECT_EQ(response_head("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", framing::none, true,
                          11, {}, true),
            "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n");
  EXPECT_EQ(response_head("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", framing::none, true),
            "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
}

TEST(forward_response_head, interim_as_received_minus_hop_by_hop) {
  response_parser_type p;
  parse(p, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: x\r\n\r\n");
  std::string out;
  build_interim_head(out, p);
  EXPECT_EQ(out, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n");
}

// ---- Upgrade (WebSocket) and TLS

std::string upgrade_of(std::string_view raw, bool has_body = false) {
  request_parser_type p;
  parse(p, raw);
  return std::string(upgrade_request(p, has_body));
}

TEST(upgrade_request, needs_http11_connection_upgrade_and_no_body_and_never_h2c) {
  EXPECT_EQ(upgrade_of("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n"),
            "websocket");
  EXPECT_EQ(upgrade_of("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n"), "");
  EXPECT_EQ(upgrade_of("GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
            "");
  EXPECT_EQ(upgrade_of("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n"
                       "Upgrade: websocket\r\n\r\n",
                       true),
            "");
  EXPECT_EQ(upgrade_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                       "Upgrade: h2c\r\n\r\n"),
            "");
  EXPECT_EQ(upgrade_of("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n"
                       "Upgrade: foo/2, H2C \r\n\r\n"),
            "");
}

TEST(forward_request_head, an_upgrade_is_forwarded_with_connection_upgrade) {
  request_parser_type p;
  parse(p, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Key: k\r\n\r\n");
  std::string out;
  build_request_head(out, p, "10.0.0.7", true, upgrade_request(p, false));
  EXPECT_EQ(out,
            "GET /ws HTTP/1.1\r\nHost: a\r\nSec-WebSocket-Key: k\r\n"
            "X-Forwarded-For: 10.0.0.7\r\nX-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
}

TEST(forward_response_head, switching_protocols_keeps_upgrade_and_connection) {
  response_parser_type p;
  parse(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade, X\r\n"
           "X: 1\r\nSec-WebSocket-Accept: abc\r\n\r\n");
  std::string out;
  build_switching_head(out, p);
  EXPECT_EQ(out,
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\n"
            "Connection: upgrade\r\nUpgrade: websocket\r\n\r\n");
}

}  // namespace
}  // namespace canary::http
