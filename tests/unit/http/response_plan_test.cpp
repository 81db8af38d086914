#include "http/response_plan.h"

#include <gtest/gtest.h>

namespace canary::http {
namespace {

TEST(response_plan, bodiless_responses_have_no_framing) {
  EXPECT_EQ(choose_framing(true, 200, true, 11), framing::none);  // HEAD
  for (unsigned status : {100u, 103u, 204u, 304u})
    EXPECT_EQ(choose_framing(false, status, true, 11), framing::none) << status;
}

TEST(response_plan, length_else_chunked_else_close) {
  EXPECT_EQ(choose_framing(false, 200, true, 10), framing::length);
  EXPECT_EQ(choose_framing(false, 200, false, 11), framing::chunked);
  EXPECT_EQ(choose_framing(false, 200, false, 10), framing::close);  // 1.0 reads no chunks
}

TEST(response_plan, client_connection_stays_only_when_everything_allows_it) {
  EXPECT_TRUE(keep_client_connection(true, false, framing::length, true));
  EXPECT_FALSE(keep_client_connection(false, false, framing::length, true));
  EXPECT_FALSE(keep_client_connection(true, true, framing::length, true));  // draining
  EXPECT_FALSE(keep_client_connection(true, false, framing::close, true));
  EXPECT_FALSE(keep_client_connection(true, false, framing::length, false));  // early response
}

TEST(response_plan, upstream_connection_is_reused_only_after_a_whole_exchange) {
  EXPECT_TRUE(reuse_upstream_connection(true, true, true, false, framing::chunked));
  EXPECT_FALSE(reuse_upstream_connection(false, true, true, false, framing::length));
  EXPECT_FALSE(reuse_upstream_connection(true, false, true, false, framing::length));
  EXPECT_FALSE(reuse_upstream_connection(true, true, false, false, framing::length));
  EXPECT_FALSE(reuse_upstream_connection(true, true, true, true, framing::length));
  EXPECT_FALSE(reuse_upstream_connection(true, true, true, false, framing::close));
}

TEST(response_plan, interim_budget_bounds_count_and_bytes) {
  interim_budget by_count;
  for (std::size_t i = 0; i < max_interim_responses; ++i) EXPECT_TRUE(by_count.take(40)) << i;
  EXPECT_FALSE(by_count.take(40));

  interim_budget by_bytes;
  EXPECT_TRUE(by_bytes.take(max_interim_bytes - 10));
  EXPECT_TRUE(by_bytes.take(10));
  EXPECT_FALSE(by_bytes.take(1));
}

}  // namespace
}  // namespace canary::http
