// Request and response framing: raw bytes through Beast 1.81's parser (as the session reads
// them: parse_request_head over a bounded flat_buffer, then the body with buffer_body), then
// through our validators. One case per known smuggling shape; the
// "beast_*" tests pin what Beast itself rejects or lets through, so an upgrade that changes it
// is noticed (the validator relies on both).
#include "http/request_rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstring>
#include <string>
#include <string_view>

namespace canary::http {
namespace {

namespace bhttp = boost::beast::http;
using namespace std::string_literals;

// How one request ended: "ok", "beast-head:<error>", "scan:<code>", "rule:<code>",
// "beast-body:<error>".
struct outcome {
  std::string how;
  std::string body;
  std::string left;  // bytes not consumed (a leftover is a smuggled next request)
};

outcome run_request(const std::string& raw, config::limits_config limits = {},
                    std::size_t piece = std::string::npos, std::size_t buffer_max = 64 * 1024) {
  boost::beast::flat_buffer buf(buffer_max);
  request_parser_type p;
  p.header_limit(static_cast<std::uint32_t>(limits.max_request_header_bytes));
  p.body_limit(limits.max_request_body_bytes);
  std::string_view in = raw;
  // The head arrives in pieces of at most `piece` bytes (a slow client sends it byte by byte).
  for (;;) {
    const auto step = parse_request_head(p, buf);
    if (step.what == head_step::state::error) {
      if (step.ec) return {"beast-head:" + step.ec.message(), "", ""};
      return {"scan:" + std::to_string(step.bad.code), "", ""};
    }
    if (step.what == head_step::state::done) break;
    if (in.empty()) return {"incomplete", "", ""};
    const auto n = std::min<std::size_t>({piece, in.size(), buf.max_size() - buf.size()});
    if (n == 0) return {"buffer-full", "", ""};
    auto b = buf.prepare(n);
    std::memcpy(b.data(), in.data(), n);
    buf.commit(n);
    in.remove_prefix(n);
  }
  if (auto v = validate_request(p, limits); v.code)
    return {"rule:" + std::to_string(v.code), "", ""};
  // The rest arrives at once; the body is read the way the session does.
  {
    auto b = buf.prepare(in.size());
    std::memcpy(b.data(), in.data(), in.size());
    buf.commit(in.size());
  }
  outcome out{"ok", "", ""};
  char chunk[1024];
  while (!p.is_done()) {
    p.get().body().data = chunk;
    p.get().body().size = sizeof chunk;
    boost::system::error_code ec;
    const auto n = p.put(buf.data(), ec);
    buf.consume(n);
    if (ec == bhttp::error::need_buffer) ec = {};
    out.body.append(chunk, sizeof chunk - p.get().body().size);
    if (ec) {
      out.how = "beast-body:" + ec.message();
      break;
    }
    if (n == 0 && !p.is_done()) {
      out.how = "body-incomplete";
      break;
    }
  }
  out.left.assign(static_cast<const char*>(buf.data().data()), buf.size());
  return out;
}

const std::string get = "GET / HTTP/1.1\r\nHost: a.example\r\n";
const std::string post = "POST /up HTTP/1.1\r\nHost: a.example\r\n";
const std::string chunked_abc = "3\r\nabc\r\n0\r\n\r\n";

// ------------------------------------------------------------------ accepted shapes

TEST(request_rules, plain_requests_pass) {
  EXPECT_EQ(run_request(get + "\r\n").how, "ok");
  EXPECT_EQ(run_request("GET / HTTP/1.0\r\n\r\n").how, "ok");  // no Host needed on 1.0
  auto r = run_request(post + "Content-Length: 3\r\n\r\nabc");
  EXPECT_EQ(r.how, "ok");
  EXPECT_EQ(r.body, "abc");
  r = run_request(post + "Transfer-Encoding: chunked\r\n\r\n" + chunked_abc);
  EXPECT_EQ(r.how, "ok");
  EXPECT_EQ(r.body, "abc");
  EXPECT_EQ(r.left, "");
}

TEST(request_rules, lenient_but_unambiguous_shapes_pass) {
  // Case-insensitive coding, OWS around values, leading zeros, a chunk extension, a trailer,
  // Host with a port, IPv6 literal, absolute-form naming the same authority, OPTIONS *.
  EXPECT_EQ(run_request(post + "Transfer-Encoding:  CHUNKED \r\n\r\n" + chunked_abc).how, "ok");
  EXPECT_EQ(run_request(post + "Content-Length:\t003 \r\n\r\nabc").body, "abc");
  EXPECT_EQ(run_request(post + "Transfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n"
                               "X-Trailer: 1\r\n\r\n")
                .how,
            "ok");
  EXPECT_EQ(run_request("GET / HTTP/1.1\r\nHost: a.example:8080\r\n\r\n").how, "ok");
  EXPECT_EQ(run_request("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").how, "ok");
  EXPECT_EQ(run_request("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").how, "ok");
  EXPECT_EQ(run_request("GET http://A.example/x?y HTTP/1.1\r\nHost: a.example\r\n\r\n").how, "ok");
  EXPECT_EQ(run_request("OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n").how, "ok");
  EXPECT_EQ(run_request(get + "Connection: close, X-Private\r\nX-Private: 1\r\n\r\n").how, "ok");
  EXPECT_EQ(run_request(get + "X-Bin: caf\xc3\xa9\r\n\r\n").how, "ok");  // obs-text is allowed
}

TEST(request_rules, verdict_does_not_depend_on_how_the_head_arrives) {
  const std::string cases[] = {
      get + "\r\n",
      post + "Transfer-Encoding: chunked\r\n\r\n" + chunked_abc,
      get + "X-Foo: a\r\n b\r\n\r\n",
      post + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
      get + "Host: b\r\n\r\n",
      get + "X-Foo: a\0b\r\n\r\n"s,
  };
  for (const auto& raw : cases) {
    SCOPED_TRACE(raw);
    const auto whole = run_request(raw).how;
    EXPECT_EQ(run_request(raw, {}, 1).how, whole);
    EXPECT_EQ(run_request(raw, {}, 7).how, whole);
  }
  // Except bare-LF line ends: Beast only looks for CRLFCRLF once it has seen a partial head, so
  // a slow bare-LF head waits for the header deadline or limit instead of a 400.
  EXPECT_EQ(run_request("GET / HTTP/1.1\nHost: a\n\n", {}, 4).how, "incomplete");
}

// ------------------------------------------------------------------ Transfer-Encoding

TEST(request_rules, transfer_encoding_other_than_chunked_is_501) {
  for (const char* te :
       {"gzip", "identity", "gzip, chunked", "chunked, gzip", "x-custom", "deflate,chunked"}) {
    SCOPED_TRACE(te);
    EXPECT_EQ(run_request(post + "Transfer-Encoding: " + te + "\r\n\r\n" + chunked_abc).how,
              "rule:501");
  }
  // Two fields gzip + chunked: Beast frames it as chunked; we refuse the gzip.
  EXPECT_EQ(run_request(post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        chunked_abc)
                .how,
            "rule:501");
}

TEST(request_rules, malformed_transfer_encoding_lists_are_400) {
  for (const char* te : {",chunked", "chunked,", "", "\"chunked\"", "chunked;q=1",
                         "chunked, chunked", "chun ked", "chunked,,gzip"}) {
    SCOPED_TRACE(te);
    EXPECT_EQ(run_request(post + "Transfer-Encoding: " + te + "\r\n\r\n" + chunked_abc).how,
              "rule:400");
  }
}

TEST(request_rules, transfer_encoding_with_content_length_is_400) {
  // Beast refuses chunked+CL itself (either order) and CL then gzip; gzip then CL reaches us.
  EXPECT_EQ(run_request(post + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc").how,
            "rule:400");
  EXPECT_EQ(
      run_request(post + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_abc)
          .how.substr(0, 11),
      "beast-head:");
  EXPECT_EQ(
      run_request(post + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + chunked_abc)
          .how.substr(0, 11),
      "beast-head:");
  EXPECT_EQ(run_request(post + "Content-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\nabc")
                .how.substr(0, 11),
            "beast-head:");
}

TEST(request_rules, transfer_encoding_on_http_1_0_is_400) {
  EXPECT_EQ(
      run_request("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_abc)
          .how,
      "rule:400");
}

// ------------------------------------------------------------------ Content-Length

TEST(request_rules, repeated_or_list_valued_content_length_is_400) {
  EXPECT_EQ(run_request(post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc").how,
            "rule:400");
  EXPECT_EQ(run_request(post + "Content-Length: 3, 3\r\n\r\nabc").how, "rule:400");
  EXPECT_EQ(run_request(post + "Content-Length: 3,3\r\n\r\nabc").how, "rule:400");
  // Differing values: Beast says "multiple Content-Length".
  EXPECT_EQ(run_request(post + "Content-Length: 1\r\nContent-Length: 3\r\n\r\nabc").how,
            "beast-head:multiple Content-Length");
  EXPECT_EQ(run_request(post + "Content-Length: 1, 3\r\n\r\nabc").how,
            "beast-head:multiple Content-Length");
}

TEST(request_rules, malformed_content_length_is_refused_by_beast) {
  for (const char* cl : {"+3", "", "-3", "0x3", "3a", "3 3", "99999999999999999999999"}) {
    SCOPED_TRACE(cl);
    EXPECT_EQ(run_request(post + "Content-Length: " + cl + "\r\n\r\nabc").how,
              "beast-head:bad Content-Length");
  }
}

// ------------------------------------------------------------------ field syntax

TEST(request_rules, obs_fold_is_400_from_the_raw_scan) {
  EXPECT_EQ(run_request(get + "X-Foo: a\r\n b\r\n\r\n").how, "scan:400");
  EXPECT_EQ(run_request(get + "X-Foo: a\r\n\tb\r\n\r\n").how, "scan:400");
  // Folded into Host: Beast makes it "a.example X: y", one Host.
  EXPECT_EQ(run_request("GET / HTTP/1.1\r\nHost: a.example\r\n X: y\r\n\r\n").how, "scan:400");
  // Folded Transfer-Encoding: Beast reads "x chunked", not chunked, and would leave the body
  // as the next request.
  EXPECT_EQ(run_request(post + "Transfer-Encoding: x\r\n chunked\r\n\r\n" + chunked_abc).how,
            "scan:400");
}

TEST(request_rules, field_syntax_errors_are_refused_by_beast) {
  const std::pair<std::string, std::string> cases[] = {
      {get + "Transfer-Encoding : chunked\r\n\r\n", "bad field"},  // space before colon
      {get + "X-Foo\t: a\r\n\r\n", "bad field"},
      {get + "X-Foo\r\n\r\n", "bad field"},  // no colon
      {get + ": a\r\n\r\n", "bad field"},    // empty name
      {get + "X(Foo: a\r\n\r\n", "bad field"},
      {get + "X-Foo: a\0b\r\n\r\n"s, "bad value"},  // NUL
      {get + "X-Foo: a\x01"
             "b\r\n\r\n",
       "bad value"},
      {get + "X-Foo: a\x7f"
             "b\r\n\r\n",
       "bad value"},
      {get + "X-Foo: a\rb\r\n\r\n", "bad line ending"},     // bare CR
      {get + "X-Foo: a\nX-Bar: b\r\n\r\n", "bad value"},    // bare LF inside the head
      {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", "bad field"},  // fold right after the start line
      {"GET / HTTP/1.1\nHost: a\n\n", "bad version"},       // bare-LF line ends
      {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", "bad version"},
      {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "bad version"},
      {"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "bad version"},
      {"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", "bad target"},
      {"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bad method"},
  };
  for (const auto& [raw, why] : cases) {
    SCOPED_TRACE(raw);
    EXPECT_EQ(run_request(raw).how, "beast-head:" + why);
  }
}

TEST(request_rules, raw_scan_finds_what_beast_would_unfold_or_refuse) {
  EXPECT_EQ(scan_request_head("GET / HTTP/1.1\r\nHost: a\r\n\r\n").code, 0u);
  EXPECT_EQ(scan_request_head("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n").code, 400u);
  EXPECT_EQ(scan_request_head("GET / HTTP/1.1\r\nHost: a\r\n\tb\r\n\r\n").code, 400u);
  EXPECT_EQ(scan_request_head("GET / HTTP/1.1\nHost: a\r\n\r\n").code, 400u);
  EXPECT_EQ(scan_request_head("\nGET / HTTP/1.1\r\n\r\n").code, 400u);
  EXPECT_EQ(scan_request_head("").code, 0u);
}

// ------------------------------------------------------------------ Host and target

TEST(request_rules, missing_duplicate_or_invalid_host_is_400) {
  EXPECT_EQ(run_request("GET / HTTP/1.1\r\n\r\n").how, "rule:400");
  EXPECT_EQ(run_request(get + "Host: b.example\r\n\r\n").how, "rule:400");
  EXPECT_EQ(run_request(get + "Host: a.example\r\n\r\n").how, "rule:400");  // even identical
  EXPECT_EQ(run_request("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n").how, "rule:400");
  for (const char* h : {"", "a b", "u@a.example", "a/b", "a:80x", "a:123456", "[::1", "[zz]", ":80",
                        "a\\b", "a%zz"}) {
    SCOPED_TRACE(h);
    EXPECT_EQ(run_request("GET / HTTP/1.1\r\nHost: "s + h + "\r\n\r\n").how, "rule:400");
  }
}

TEST(request_rules, connection_naming_host_is_400) {
  EXPECT_EQ(run_request(get + "Connection: keep-alive, Host\r\n\r\n").how, "rule:400");
}

TEST(request_rules, target_forms) {
  // Authority-form (CONNECT) and anything not starting with '/' is not for a reverse proxy.
  EXPECT_EQ(run_request("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n").how,
            "rule:400");
  EXPECT_EQ(run_request("GET a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n").how, "rule:400");
  EXPECT_EQ(run_request("GET * HTTP/1.1\r\nHost: a.example\r\n\r\n").how, "rule:400");
  // Absolute-form naming another authority than Host: the upstream would obey the target.
  EXPECT_EQ(run_request("GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n").how,
            "rule:400");
  EXPECT_EQ(run_request("GET http://u@a.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n").how,
            "rule:400");
}

// ------------------------------------------------------------------ limits

TEST(request_rules, too_many_fields_is_431) {
  config::limits_config limits;
  limits.max_header_fields = 5;
  std::string raw = get;  // Host is field 1
  for (int i = 0; i < 4; ++i) raw += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(run_request(raw + "\r\n", limits).how, "ok");
  EXPECT_EQ(run_request(raw + "X-5: v\r\n\r\n", limits).how, "rule:431");
}

TEST(request_rules, too_large_head_is_beast_header_limit) {
  config::limits_config limits;
  limits.max_request_header_bytes = 1024;
  EXPECT_EQ(run_request(get + "X-Big: " + std::string(1100, 'x') + "\r\n\r\n", limits).how,
            "beast-head:header limit exceeded");
  // Many small fields add up the same way.
  std::string raw = get;
  for (int i = 0; i < 40; ++i)
    raw += "X-" + std::to_string(i) + ": " + std::string(30, 'v') + "\r\n";
  EXPECT_EQ(run_request(raw + "\r\n", limits).how, "beast-head:header limit exceeded");
}

TEST(request_rules, body_over_limit) {
  config::limits_config limits;
  limits.max_request_body_bytes = 4;
  EXPECT_EQ(run_request(post + "Content-Length: 5\r\n\r\nabcde", limits).how,
            "beast-head:body limit exceeded");
  // Chunked: refused as it streams, once the running total passes the limit.
  auto r = run_request(post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
                       limits);
  EXPECT_EQ(r.how, "beast-body:body limit exceeded");
}

// ------------------------------------------------------------------ chunked body

TEST(request_rules, bad_chunk_sizes_are_refused_by_beast) {
  const std::pair<std::string, std::string> cases[] = {
      {"Z\r\nabc\r\n0\r\n\r\n", "bad chunk"},
      {"-3\r\nabc\r\n0\r\n\r\n", "bad chunk"},
      {"0x3\r\nabc\r\n0\r\n\r\n", "bad chunk extension"},
      {"3zz\r\nabc\r\n0\r\n\r\n", "bad chunk extension"},
      {"3 \r\nabc\r\n0\r\n\r\n", "bad chunk extension"},
      {"10000000000000003\r\nabc\r\n0\r\n\r\n", "bad chunk"},  // 17 hex digits: overflow
      {"3\nabc\r\n0\r\n\r\n", "bad chunk extension"},          // bare LF after the size
      {"3\r\nabc\n0\r\n\r\n", "bad chunk"},                    // bare LF after the data
      {"3\r\nabcd\r\n0\r\n\r\n", "bad chunk"},                 // data longer than the size
      {"3;a\rb\r\nabc\r\n0\r\n\r\n", "bad line ending"},       // CR inside an extension
      {"3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n", "bad Content-Length"},  // in a trailer
  };
  for (const auto& [body, why] : cases) {
    SCOPED_TRACE(body);
    EXPECT_EQ(run_request(post + "Transfer-Encoding: chunked\r\n\r\n" + body).how,
              "beast-body:" + why);
  }
  // 16 hex digits of f: the size itself parses and then trips the body limit.
  EXPECT_EQ(run_request(post + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc").how,
            "beast-body:body limit exceeded");
}

TEST(request_rules, oversized_trailer_or_extension_is_an_error_not_a_throw) {
  // Beast 1.81 applies no header_limit to trailers or chunk extensions, and a trailer value
  // above 64 KiB throws std::length_error from basic_fields. A bounded buffer (the session's
  // is 64 KiB) turns both into a clean buffer_overflow before the parser sees them whole.
  const auto big_trailer =
      post + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: " + std::string(70000, 'x') +
      "\r\n\r\n";
  const auto big_ext =
      post + "Transfer-Encoding: chunked\r\n\r\n3;e=" + std::string(200000, 'x') + "\r\nabc";
  for (const auto* raw : {&big_trailer, &big_ext}) {
    boost::beast::flat_buffer buf(64 * 1024);
    request_parser_type p;
    std::string_view in = *raw;
    boost::system::error_code ec;
    char chunk[1024];
    EXPECT_NO_THROW({
      while (!ec) {
        if (!p.is_header_done()) {
          const auto step = parse_request_head(p, buf);
          ASSERT_NE(step.what, head_step::state::error);
          if (step.what == head_step::state::done) continue;
        } else {
          p.get().body().data = chunk;
          p.get().body().size = sizeof chunk;
          const auto n = p.put(buf.data(), ec);
          buf.consume(n);
          if (ec == bhttp::error::need_buffer || ec == bhttp::error::need_more) ec = {};
          if (ec || p.is_done()) break;
          if (n > 0) continue;
        }
        const auto room = std::min(in.size(), buf.max_size() - buf.size());
        if (room == 0) {
          ec = in.empty() ? bhttp::error::partial_message : bhttp::error::buffer_overflow;
          break;
        }
        auto b = buf.prepare(room);
        std::memcpy(b.data(), in.data(), room);
        buf.commit(room);
        in.remove_prefix(room);
      }
    });
    EXPECT_FALSE(p.is_done());
    EXPECT_EQ(ec, bhttp::error::buffer_overflow) << ec.message();
  }
}

// ------------------------------------------------------------------ parse_request_head

TEST(request_rules, parse_request_head_consumes_exactly_the_head) {
  boost::beast::flat_buffer buf(64 * 1024);
  request_parser_type p;
  const std::string raw = post + "Content-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n";
  auto b = buf.prepare(raw.size());
  std::memcpy(b.data(), raw.data(), raw.size());
  buf.commit(raw.size());
  const auto step = parse_request_head(p, buf);
  ASSERT_EQ(step.what, head_step::state::done);
  EXPECT_EQ(std::string_view(static_cast<const char*>(buf.data().data()), buf.size()),
            "abcGET / HTTP/1.1\r\n");
  EXPECT_EQ(p.content_length().value_or(0), 3u);
}

TEST(request_rules, parse_request_head_needs_more_until_the_blank_line) {
  boost::beast::flat_buffer buf(64 * 1024);
  request_parser_type p;
  for (std::string_view part : {"GET / HT", "TP/1.1\r\nHost: a\r\n", "\r"}) {
    auto b = buf.prepare(part.size());
    std::memcpy(b.data(), part.data(), part.size());
    buf.commit(part.size());
    EXPECT_EQ(parse_request_head(p, buf).what, head_step::state::need_more);
  }
  auto b = buf.prepare(1);
  std::memcpy(b.data(), "\n", 1);
  buf.commit(1);
  EXPECT_EQ(parse_request_head(p, buf).what, head_step::state::done);
  EXPECT_EQ(buf.size(), 0u);
}

// ------------------------------------------------------------------ the lean parser itself

// The head's views outlive the caller's buffer: the start line (which Beast consumes on its own
// while the fields are incomplete) and every field, however the head arrived.
TEST(lean_parser, views_survive_the_callers_buffer_in_any_split) {
  const std::string raw =
      "PATCH /a/b?c=d HTTP/1.1\r\nHost: a.example\r\nX-Canary: always\r\n"
      "Cookie: a=1\r\nCookie: b=2\r\nContent-Length: 0\r\n\r\n";
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{30}, raw.size()}) {
    boost::beast::flat_buffer buf(4096);
    request_parser_type p;
    std::string_view in = raw;
    head_step step;
    while ((step = parse_request_head(p, buf)).what == head_step::state::need_more) {
      ASSERT_FALSE(in.empty());
      const auto n = std::min(piece, in.size());
      auto b = buf.prepare(n);
      std::memcpy(b.data(), in.data(), n);
      buf.commit(n);
      in.remove_prefix(n);
    }
    ASSERT_EQ(step.what, head_step::state::done) << piece;
    // Scribble over everything the caller's buffer ever held.
    auto b = buf.prepare(4096);
    std::memset(b.data(), '#', 4096);
    EXPECT_EQ(p.method(), bhttp::verb::patch);
    EXPECT_EQ(p.method_string(), "PATCH");
    EXPECT_EQ(p.target(), "/a/b?c=d");
    EXPECT_EQ(p.version(), 11u);
    EXPECT_EQ(p.field_count(), 5u);
    EXPECT_EQ(p[bhttp::field::host], "a.example");
    EXPECT_EQ(p.count(bhttp::field::cookie), 2u);
    ASSERT_NE(p.find("x-canary"), p.end());
    EXPECT_EQ(p.find("x-canary")->value(), "always");
    EXPECT_EQ(p.find("X-Canary")->name_string(), "X-Canary");
    EXPECT_EQ(p.find("x-missing"), p.end());
    std::string order;
    for (const auto& f : p) order += std::string(f.name_string()) + ";";
    EXPECT_EQ(order, "Host;X-Canary;Cookie;Cookie;Content-Length;");
  }
}

TEST(lean_parser, response_status_reason_and_unfolded_values) {
  response_parser_type p;
  const std::string raw =
      "HTTP/1.1 418 I'm a teapot\r\nX-Folded: a\r\n b\r\nServer: t\r\nContent-Length: 2\r\n\r\nok";
  std::string copy = raw;
  boost::system::error_code ec;
  const auto n = p.put(boost::asio::buffer(copy), ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(p.is_header_done());
  std::fill(copy.begin(), copy.end(), '#');
  EXPECT_EQ(n, raw.size() - 2);
  EXPECT_EQ(p.result_int(), 418u);
  EXPECT_EQ(p.reason(), "I'm a teapot");
  EXPECT_EQ(p.find("x-folded")->value(), "a b");  // Beast unfolds; the copy is ours
  EXPECT_EQ(p[bhttp::field::server], "t");
  EXPECT_EQ(*p.content_length(), 2u);
  EXPECT_EQ(p.head_bytes(), "X-Folded: a b\r\nServer: t\r\nContent-Length: 2\r\n");
}

// Field lines are forwarded as received, except that no obs-fold survives (RFC 9112 §5.2), in
// any of the shapes Beast unfolds: a fold after a value, after an empty value, an empty one.
TEST(lean_parser, forwarded_lines_never_carry_obs_fold) {
  struct one {
    std::string in, lines, value;
  };
  for (const auto& c :
       {one{"X: a\r\n b\r\n", "X: a b\r\n", "a b"}, one{"X:\r\n  v\r\n", "X: v\r\n", "v"},
        one{"X: a\r\n \r\n", "X: a\r\n", "a"}, one{"X:  a  \r\n", "X:  a  \r\n", "a"},
        one{"X:\r\n", "X:\r\n", ""}}) {
    response_parser_type p;
    std::string raw = "HTTP/1.1 200 OK\r\n" + c.in + "Y: y\r\nContent-Length: 0\r\n\r\n";
    boost::system::error_code ec;
    p.put(boost::asio::buffer(raw), ec);
    ASSERT_FALSE(ec) << c.in << ": " << ec.message();
    std::fill(raw.begin(), raw.end(), '#');
    EXPECT_EQ(p.find("x")->value(), c.value) << c.in;
    std::string out;
    p.append_fields(out, [](const auto& f) { return f.name() != bhttp::field::content_length; });
    EXPECT_EQ(out, c.lines + "Y: y\r\n") << c.in;
  }
}

// The response fast path takes the plain heads a backend sends (and agrees with Beast on them:
// fuzz/request_fuzz.cpp compares the two on every seed and input); anything unusual is Beast's.
TEST(lean_parser, response_fast_path_takes_plain_heads_only) {
  auto fast = [](const std::string& raw, bool head_request = false) {
    response_parser_type p;
    p.header_limit(64 * 1024);
    if (head_request) p.skip(true);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(raw), ec);
    EXPECT_FALSE(ec) << raw << ": " << ec.message();
    return p.fast();
  };
  const std::string ok = "HTTP/1.1 200 OK\r\n";
  EXPECT_TRUE(
      fast(ok + "Server: nginx\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nblue\n"));
  EXPECT_TRUE(fast("HTTP/1.1 204 No Content\r\n\r\n"));
  EXPECT_TRUE(fast("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"));
  EXPECT_TRUE(fast(ok + "Content-Type: text/plain\r\n\r\n", true));  // HEAD: no body
  EXPECT_FALSE(fast(ok + "Transfer-Encoding: chunked\r\n\r\n"));
  EXPECT_FALSE(fast(ok + "Content-Type: text/plain\r\n\r\n"));         // close-delimited
  EXPECT_FALSE(fast(ok + "X: a\r\n b\r\nContent-Length: 0\r\n\r\n"));  // obs-fold
  EXPECT_FALSE(fast(ok + "Content-Length: 3, 3\r\n\r\nabc"));
  EXPECT_FALSE(fast(ok + "Content-Length: 0\r\nContent-Length: 0\r\n\r\n"));

  response_parser_type p;
  p.header_limit(64 * 1024);
  std::string raw =
      "HTTP/1.0 200 Fine\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabcNEXT";
  boost::system::error_code ec;
  const auto n = p.put(boost::asio::buffer(raw), ec);
  ASSERT_TRUE(p.fast());
  EXPECT_EQ(n, raw.size() - 7);
  std::fill(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(n), '#');
  EXPECT_EQ(p.result_int(), 200u);
  EXPECT_EQ(p.reason(), "Fine");
  EXPECT_EQ(p.version(), 10u);
  EXPECT_TRUE(p.keep_alive());
  EXPECT_FALSE(p.need_eof());
  EXPECT_EQ(*p.content_length(), 3u);
  EXPECT_EQ(p.head_bytes(), "Connection: Keep-Alive\r\nContent-Length: 3\r\n");
  char body[2];
  p.body().data = body;
  p.body().size = sizeof body;
  EXPECT_EQ(p.put(boost::asio::buffer(raw.data() + n, raw.size() - n), ec), 2u);
  EXPECT_EQ(ec, bhttp::error::need_buffer);
  EXPECT_FALSE(p.is_done());
  p.body().data = body;
  p.body().size = sizeof body;
  EXPECT_EQ(p.put(boost::asio::buffer(raw.data() + n + 2, raw.size() - n - 2), ec), 1u);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(body[0], 'c');
}

TEST(lean_parser, request_fast_path_takes_plain_heads_only) {
  auto fast = [](const std::string& raw) {
    boost::beast::flat_buffer buf(64 * 1024);
    request_parser_type p;
    p.header_limit(16 * 1024);
    p.body_limit(1000);
    auto b = buf.prepare(raw.size());
    std::memcpy(b.data(), raw.data(), raw.size());
    buf.commit(raw.size());
    const auto step = parse_request_head(p, buf);
    return step.what == head_step::state::done && p.fast();
  };
  EXPECT_TRUE(fast("GET /a?b=c HTTP/1.1\r\nHost: a.example\r\nUser-Agent: wrk\r\n\r\n"));
  EXPECT_TRUE(fast("POST /up HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_FALSE(fast("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"));
  EXPECT_FALSE(fast("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"));
  EXPECT_FALSE(fast("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"));
  EXPECT_FALSE(fast("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"));
  EXPECT_FALSE(fast("GET / HTTP/2.0\r\nHost: a\r\n\r\n"));
}

// Beast's own parser<> stores trailer fields in a basic_fields, which throws on a 70 kB value
// (below); this parser keeps no trailer at all (the proxy never forwards one).
TEST(lean_parser, trailer_fields_are_not_kept) {
  request_parser_type p;
  p.eager(true);
  const std::string raw =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-T: " +
      std::string(70000, 'x') + "\r\n\r\n";
  char chunk[64];
  p.body().data = chunk;
  p.body().size = sizeof chunk;
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_done());
  EXPECT_EQ(std::string_view(chunk, 3), "abc");
  EXPECT_EQ(p.field_count(), 2u);
}

// ------------------------------------------------------------------ what Beast 1.81 accepts

// Beast alone, eager: these shapes parse without error, which is why the
// validator exists. If one of these starts failing, Beast got stricter: keep our check anyway.
std::string beast_alone(const std::string& raw, std::string* left = nullptr) {
  bhttp::request_parser<bhttp::buffer_body> p;
  p.eager(true);
  boost::system::error_code ec;
  char chunk[4096];
  std::string_view in = raw;
  while (!p.is_done()) {
    p.get().body().data = chunk;
    p.get().body().size = sizeof chunk;
    const auto n = p.put(boost::asio::buffer(in.data(), in.size()), ec);
    in.remove_prefix(n);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return ec.message();
    if (n == 0) break;
  }
  if (left) *left = std::string(in);
  return "accepted";
}

TEST(beast_1_81, accepts_smuggling_shapes_the_validator_refuses) {
  std::string left;
  EXPECT_EQ(beast_alone(post + "Transfer-Encoding: gzip\r\n\r\nabc", &left), "accepted");
  EXPECT_EQ(left, "abc");  // the body would be read as the next request
  EXPECT_EQ(beast_alone(post + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc"),
            "accepted");
  EXPECT_EQ(beast_alone(post + "Transfer-Encoding: ,chunked\r\n\r\n" + chunked_abc), "accepted");
  EXPECT_EQ(beast_alone(post + "Content-Length: 3, 3\r\n\r\nabc"), "accepted");
  EXPECT_EQ(beast_alone(post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), "accepted");
  EXPECT_EQ(beast_alone("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked_abc),
            "accepted");
  EXPECT_EQ(beast_alone("GET / HTTP/1.1\r\n\r\n"), "accepted");
  EXPECT_EQ(beast_alone(get + "Host: b\r\n\r\n"), "accepted");
  EXPECT_EQ(beast_alone(get + "X: a\r\n b\r\n\r\n"), "accepted");
  EXPECT_EQ(beast_alone(post + "Transfer-Encoding: x\r\n chunked\r\n\r\n" + chunked_abc, &left),
            "accepted");
  EXPECT_EQ(left, chunked_abc);
  EXPECT_EQ(beast_alone(post + "Transfer-Encoding: chunked\r\n\r\n3;e=" + std::string(200000, 'x') +
                        "\r\nabc\r\n0\r\n\r\n"),
            "accepted");  // no limit on chunk extensions before Boost 1.91
}

TEST(beast_1_81, unbounded_trailer_throws) {
  // Why the session's flat_buffer must stay bounded.
  EXPECT_THROW(beast_alone(post + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: " +
                           std::string(70000, 'x') + "\r\n\r\n"),
               std::length_error);
}

// ------------------------------------------------------------------ responses

// A response head parsed by Beast, then validate_response: "ok", "beast:<error>", "rule:<code>".
std::string run_response(const std::string& raw, bool head_request = false) {
  response_parser_type p;
  if (head_request) p.skip(true);
  boost::system::error_code ec;
  p.put(boost::asio::buffer(raw), ec);
  if (ec) return "beast:" + ec.message();
  if (!p.is_header_done()) return "incomplete";
  if (auto v = validate_response(p); v.code) return "rule:" + std::to_string(v.code);
  return "ok";
}

const std::string ok200 = "HTTP/1.1 200 OK\r\n";

TEST(response_rules, good_responses_pass) {
  EXPECT_EQ(run_response(ok200 + "Content-Length: 3\r\n\r\nabc"), "ok");
  EXPECT_EQ(run_response(ok200 + "Transfer-Encoding: chunked\r\n\r\n"), "ok");
  EXPECT_EQ(run_response(ok200 + "\r\n"), "ok");  // read to EOF
  EXPECT_EQ(run_response("HTTP/1.1 204 No Content\r\n\r\n"), "ok");
  EXPECT_EQ(run_response("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"), "ok");
  EXPECT_EQ(run_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"), "ok");
  EXPECT_EQ(run_response("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), "ok");
  EXPECT_EQ(run_response(ok200 + "Transfer-Encoding: gzip, chunked\r\n\r\n", true), "ok");
  EXPECT_EQ(run_response("HTTP/1.1 100 Continue\r\n\r\n"), "ok");
  EXPECT_EQ(run_response("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc"), "ok");
}

TEST(response_rules, bad_framing_is_502) {
  for (const char* te : {"gzip", "gzip, chunked", "chunked, gzip", ",chunked", "identity",
                         "chunked;x=1", "chunked, chunked"}) {
    SCOPED_TRACE(te);
    EXPECT_EQ(run_response(ok200 + "Transfer-Encoding: " + te + "\r\n\r\n"), "rule:502");
  }
  EXPECT_EQ(run_response(ok200 + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc"),
            "rule:502");
  EXPECT_EQ(run_response(ok200 + "Content-Length: 3, 3\r\n\r\nabc"), "rule:502");
  EXPECT_EQ(run_response(ok200 + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "rule:502");
  // HEAD / 304 may describe the GET's framing, but not ambiguously.
  EXPECT_EQ(run_response(ok200 + "Content-Length: 3, 3\r\n\r\n", true), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip\r\n"
                         "Content-Length: 3\r\n\r\n"),
            "rule:502");
}

TEST(response_rules, status_outside_100_to_599_is_502) {
  // Beast takes any three digits; the forwarded status line would read "HTTP/1.1 24 ...".
  EXPECT_EQ(run_response("HTTP/1.1 024 No\r\nContent-Length: 0\r\n\r\n"), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.1 000 No\r\n\r\n"), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.1 600 No\r\nContent-Length: 0\r\n\r\n"), "rule:502");
  EXPECT_EQ(run_response("HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n"), "ok");
}

TEST(response_rules, beast_refuses_the_rest) {
  EXPECT_EQ(run_response(ok200 + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            "beast:bad Transfer-Encoding");
  EXPECT_EQ(run_response(ok200 + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
            "beast:multiple Content-Length");
  EXPECT_EQ(run_response(ok200 + "Content-Length: +3\r\n\r\nabc"), "beast:bad Content-Length");
  EXPECT_EQ(run_response(ok200 + "X : y\r\n\r\n"), "beast:bad field");
  EXPECT_EQ(run_response("HTTP/1.1 2000 OK\r\n\r\n"), "beast:bad status");
  EXPECT_EQ(run_response("garbage\r\n\r\n"), "beast:bad version");
}

}  // namespace
}  // namespace canary::http
