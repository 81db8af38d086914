#include "http/request_target.h"

#include <gtest/gtest.h>

namespace canary::http {
namespace {

std::string origin_form(std::string_view target) {
  const auto t = split_target(target);
  return (t.needs_slash ? "/" : "") + std::string(t.path_and_query);
}

TEST(request_target, origin_form_stays) {
  const auto t = split_target("/a/b?c=d");
  EXPECT_FALSE(t.absolute);
  EXPECT_EQ(origin_form("/a/b?c=d"), "/a/b?c=d");
  EXPECT_EQ(origin_form("*"), "*");
}

TEST(request_target, absolute_form_splits_into_authority_and_origin_form) {
  const auto t = split_target("http://a.test:8080/color?x=1");
  EXPECT_TRUE(t.absolute);
  EXPECT_EQ(t.authority, "a.test:8080");
  EXPECT_EQ(origin_form("http://a.test:8080/color?x=1"), "/color?x=1");
  EXPECT_EQ(origin_form("HTTPS://a.test/"), "/");
}

TEST(request_target, empty_path_becomes_slash_before_a_query_too) {
  EXPECT_EQ(split_target("http://a.test").authority, "a.test");
  EXPECT_EQ(origin_form("http://a.test"), "/");
  EXPECT_EQ(origin_form("http://a.test?q=1"), "/?q=1");
  EXPECT_EQ(split_target("http://a.test?q=1").authority, "a.test");
}

TEST(request_target, other_schemes_are_not_absolute_form_here) {
  EXPECT_FALSE(split_target("ftp://a.test/x").absolute);
  EXPECT_FALSE(split_target("http:/a").absolute);
}

}  // namespace
}  // namespace canary::http
