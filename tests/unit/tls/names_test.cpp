// SNI certificate choice and ALPN selection (tls/names.h, tls/context.h): pure functions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tls/context.h"
#include "tls/names.h"

namespace canary::tls {
namespace {

TEST(dns_name_matches, exact_names_ignore_ascii_case_and_a_trailing_dot) {
  EXPECT_TRUE(dns_name_matches("www.example.com", "www.example.com"));
  EXPECT_TRUE(dns_name_matches("WWW.Example.com", "www.example.COM"));
  EXPECT_TRUE(dns_name_matches("www.example.com", "www.example.com."));
  EXPECT_FALSE(dns_name_matches("www.example.com", "example.com"));
  EXPECT_FALSE(dns_name_matches("www.example.com", ""));
  EXPECT_FALSE(dns_name_matches("", "www.example.com"));
}

TEST(dns_name_matches, a_wildcard_covers_exactly_one_left_most_label) {
  EXPECT_TRUE(dns_name_matches("*.example.com", "a.example.com"));
  EXPECT_TRUE(dns_name_matches("*.example.com", "A.EXAMPLE.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", "example.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(dns_name_matches("*.example.com", "a.example.org"));
}

TEST(dns_name_matches, partial_and_inner_wildcards_match_nothing) {
  // RFC 6125 §6.4.3 allows a client to refuse these; a server choosing a certificate should
  // not pick one by a pattern its clients would reject.
  EXPECT_FALSE(dns_name_matches("w*.example.com", "www.example.com"));
  EXPECT_FALSE(dns_name_matches("www.*.com", "www.example.com"));
  EXPECT_FALSE(dns_name_matches("*.*.com", "a.example.com"));
  EXPECT_FALSE(dns_name_matches("*", "localhost"));
}

TEST(pick_certificate, the_first_is_the_default_and_exact_beats_wildcard) {
  const std::vector<std::vector<std::string>> names = {
      {"default.test"}, {"*.example.com"}, {"api.example.com", "api2.example.com"}};
  EXPECT_EQ(pick_certificate(names, ""), 0u);
  EXPECT_EQ(pick_certificate(names, "nothing.test"), 0u);
  EXPECT_EQ(pick_certificate(names, "default.test"), 0u);
  EXPECT_EQ(pick_certificate(names, "www.example.com"), 1u);
  EXPECT_EQ(pick_certificate(names, "api.example.com"), 2u);  // exact, though listed later
  EXPECT_EQ(pick_certificate(names, "API2.example.com"), 2u);
  EXPECT_EQ(pick_certificate(names, "a.b.example.com"), 0u);
}

TEST(select_protocol, ours_in_our_order_among_the_clients) {
  using namespace std::string_view_literals;
  const auto ours = "\x02h2\x08http/1.1"sv;
  EXPECT_EQ(select_protocol(ours, "\x08http/1.1\x02h2"sv), "h2");
  EXPECT_EQ(select_protocol(ours, "\x08http/1.1"sv), "http/1.1");
  EXPECT_EQ(select_protocol(ours, "\x06spdy/3"sv), "");
  EXPECT_EQ(select_protocol(ours, ""sv), "");
  EXPECT_EQ(select_protocol(ours, "\x09http/1.1"sv), "");  // a length past the end: ignored
  EXPECT_EQ(select_protocol(offered_protocols(), "\x02h2\x08http/1.1"sv), "http/1.1");
}

}  // namespace
}  // namespace canary::tls
