// header_rules: the hop-by-hop list (RFC 9110 §7.6.1) and the Connection token list the
// forwarded head is built with; fuzzed further by fuzz/request_fuzz.cpp.
#include "http/header_rules.h"

#include <gtest/gtest.h>

#include <string>

namespace canary::http {
namespace {

TEST(header_rules, iequals_is_ascii_case_insensitive) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Host", "Hos"));
  EXPECT_FALSE(iequals("Host", "Hosu"));
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));  // no locale folding of non-ASCII bytes
}

TEST(header_rules, hop_by_hop_fields) {
  for (const char* name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                           "Upgrade", "Transfer-Encoding", "CONTENT-LENGTH"}) {
    EXPECT_TRUE(is_hop_by_hop(name)) << name;
  }
  for (const char* name :
       {"Host", "Trailers", "X-Connection", "Content-Type", "Expect", "t", "Connections", ""}) {
    EXPECT_FALSE(is_hop_by_hop(name)) << name;
  }
}

// The session checks by Beast's field enum: the two forms must agree on every name, and no
// hop-by-hop name may be one Beast does not know (it would pass as field::unknown).
TEST(header_rules, hop_by_hop_by_enum_agrees_with_by_name) {
  namespace bhttp = boost::beast::http;
  for (const char* name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                           "Upgrade", "Transfer-Encoding", "CONTENT-LENGTH", "Host", "Trailers",
                           "Content-Type", "Expect", "Cookie", "Date", "Server"}) {
    const auto f = bhttp::string_to_field(name);
    EXPECT_EQ(is_hop_by_hop(f), is_hop_by_hop(std::string_view(name))) << name;
    if (is_hop_by_hop(std::string_view(name))) {
      EXPECT_NE(f, bhttp::field::unknown) << name;
    }
  }
  EXPECT_FALSE(is_hop_by_hop(bhttp::field::unknown));
}

TEST(header_rules, connection_tokens_parse_lists) {
  connection_tokens t;
  t.add_list(" close ,X-Private,, \tKeep-Alive\t");
  ASSERT_EQ(t.count, 3u);
  EXPECT_EQ(t.tokens[0], "close");
  EXPECT_EQ(t.tokens[1], "X-Private");
  EXPECT_EQ(t.tokens[2], "Keep-Alive");
  EXPECT_TRUE(t.contains("x-private"));
  EXPECT_TRUE(t.contains("CLOSE"));
  EXPECT_FALSE(t.contains("Host"));
  EXPECT_FALSE(t.overflow);
  t.add_list("");
  t.add_list(",,,");
  EXPECT_EQ(t.count, 3u);
}

TEST(header_rules, connection_tokens_overflow_is_reported) {
  connection_tokens t;
  std::string many;
  for (std::size_t i = 0; i < connection_tokens::max + 3; ++i)
    many += "X-" + std::to_string(i) + ",";
  t.add_list(many);
  EXPECT_EQ(t.count, connection_tokens::max);
  EXPECT_TRUE(t.overflow);
  EXPECT_TRUE(t.contains("X-0"));
  EXPECT_FALSE(t.contains("X-17"));
}

}  // namespace
}  // namespace canary::http
