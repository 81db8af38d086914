// The heads between an HTTP/1.1 client and an h2c upstream (http2/upstream_head.h): the HTTP/2
// request field by field, the HTTP/1.1 response head and trailer section, grpc-status.
#include "http2/upstream_head.h"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <string>
#include <string_view>

namespace canary::http2 {
namespace {

std::string value_of(const std::vector<field>& fields, std::string_view name) {
  std::string out;
  for (const auto& f : fields)
    if (f.name == name) out += (out.empty() ? "" : "|") + f.value;
  return out;
}

bool has(const std::vector<field>& fields, std::string_view name) {
  for (const auto& f : fields)
    if (f.name == name) return true;
  return false;
}

struct parsed {
  http::request_parser_type p;
  explicit parsed(std::string_view raw) {
    p.header_limit(64 * 1024);
    p.body_limit(boost::none);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
    EXPECT_TRUE(!ec || ec == boost::beast::http::error::need_more) << ec.message();
    EXPECT_TRUE(p.is_header_done());
  }
};

TEST(h2_request, pseudo_headers_and_lower_case_end_to_end_fields) {
  parsed r("POST /svc.Echo/Unary?x=1 HTTP/1.1\r\nHost: api.test\r\nContent-Type: "
           "application/grpc\r\nX-Canary: always\r\nTE: trailers\r\nTransfer-Encoding: "
           "chunked\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n"
           "Expect: 100-continue\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n");
  request_head h;
  build_request(h, r.p, "10.0.0.7", false);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.authority, "api.test");
  EXPECT_EQ(h.path, "/svc.Echo/Unary?x=1");
  EXPECT_EQ(value_of(h.fields, "content-type"), "application/grpc");
  EXPECT_EQ(value_of(h.fields, "x-canary"), "always");
  EXPECT_EQ(value_of(h.fields, "te"), "trailers");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-for"), "1.2.3.4, 10.0.0.7");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-proto"), "http");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-host"), "api.test");
  // RFC 9113 §8.2.2: connection-specific fields make an HTTP/2 message malformed.
  for (auto name : {"connection", "keep-alive", "transfer-encoding", "x-hop", "host", "expect",
                    "content-length"})
    EXPECT_FALSE(has(h.fields, name)) << name;
}

TEST(h2_request, te_other_than_trailers_is_dropped_and_length_kept) {
  parsed r("PUT http://abs.test/p HTTP/1.1\r\nTE: gzip\r\nContent-Length: 3\r\n\r\n");
  request_head h;
  build_request(h, r.p, "10.0.0.7", true);
  EXPECT_EQ(h.authority, "abs.test");  // from the absolute-form target
  EXPECT_EQ(h.path, "/p");
  EXPECT_FALSE(has(h.fields, "te"));
  EXPECT_EQ(value_of(h.fields, "content-length"), "3");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-proto"), "https");
  EXPECT_FALSE(accepts_trailers(r.p));
  parsed t("GET / HTTP/1.1\r\nHost: a\r\nTE: deflate, trailers;q=1\r\n\r\n");
  EXPECT_FALSE(accepts_trailers(t.p));  // "trailers;q=1" is not the token trailers
  parsed u("GET / HTTP/1.1\r\nHost: a\r\nTE: deflate, trailers\r\n\r\n");
  EXPECT_TRUE(accepts_trailers(u.p));
}

TEST(h2_request, from_an_http2_request_keeps_fields_and_sets_forwarded_ones) {
  const std::vector<std::pair<std::string, std::string>> in = {
      {"content-type", "application/grpc"}, {"te", "trailers"},  {"cookie", "a=1"},
      {"cookie", "b=2"},                    {"host", "h.test"},  {"x-forwarded-for", "1.2.3.4"},
      {"x-forwarded-proto", "https"},       {"content-length", "5"}, {"grpc-timeout", "1S"}};
  request_head h;
  build_request(h, "POST", "api.test", "/svc/M", in, "10.0.0.7", false);
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.authority, "api.test");
  EXPECT_EQ(h.path, "/svc/M");
  EXPECT_EQ(value_of(h.fields, "te"), "trailers");
  EXPECT_EQ(value_of(h.fields, "cookie"), "a=1|b=2");  // split cookies stay split (§8.2.3)
  EXPECT_EQ(value_of(h.fields, "content-length"), "5");
  EXPECT_EQ(value_of(h.fields, "grpc-timeout"), "1S");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-for"), "1.2.3.4, 10.0.0.7");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-proto"), "http");
  EXPECT_EQ(value_of(h.fields, "x-forwarded-host"), "api.test");
  EXPECT_FALSE(has(h.fields, "host"));
}

TEST(h2_response, client_head_framing_and_fields) {
  response_head h{200, {{"content-type", "application/grpc"}, {"content-length", "12"},
                        {"connection", "x"}, {"grpc-encoding", "identity"}}};
  EXPECT_EQ(content_length(h), 12u);
  std::string out = "stale";
  build_client_head(out, h, http::framing::chunked, true, 11, "");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-encoding: identity\r\n"
            "Transfer-Encoding: chunked\r\n\r\n");
  build_client_head(out, h, http::framing::length, false, 11, "sticky=1");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-encoding: identity\r\n"
            "Content-Length: 12\r\nSet-Cookie: sticky=1\r\nConnection: close\r\n\r\n");
  response_head two{200, {{"content-length", "1"}, {"content-length", "2"}}};
  EXPECT_FALSE(content_length(two).has_value());
  response_head bad{200, {{"content-length", "1x"}}};
  EXPECT_FALSE(content_length(bad).has_value());
}

TEST(h2_response, trailer_section_keeps_only_what_a_trailer_may_carry) {
  std::string out;
  append_last_chunk(out, {{"grpc-status", "0"}, {"grpc-message", "ok"},
                          {"content-length", "5"}, {"transfer-encoding", "x"},
                          {"x-served-by", "blue"}});
  EXPECT_EQ(out, "0\r\ngrpc-status: 0\r\ngrpc-message: ok\r\nx-served-by: blue\r\n\r\n");
  out.clear();
  append_last_chunk(out, {});
  EXPECT_EQ(out, "0\r\n\r\n");
}

TEST(grpc, status_from_trailers_or_trailers_only_head) {
  response_head head{200, {{"content-type", "application/grpc"}}};
  EXPECT_FALSE(grpc_status(head, {}).has_value());
  EXPECT_EQ(grpc_status(head, {{"grpc-status", "14"}}), 14u);
  response_head only{200, {{"grpc-status", "2"}}};
  EXPECT_EQ(grpc_status(only, {}), 2u);
  EXPECT_FALSE(grpc_status(head, {{"grpc-status", "x"}}).has_value());
  for (unsigned s : {2u, 4u, 12u, 13u, 14u, 15u}) EXPECT_TRUE(grpc_status_is_bad(s)) << s;
  for (unsigned s : {0u, 1u, 3u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 16u})
    EXPECT_FALSE(grpc_status_is_bad(s)) << s;
}

}  // namespace
}  // namespace canary::http2
