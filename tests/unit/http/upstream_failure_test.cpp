#include "http/upstream_failure.h"

#include <gtest/gtest.h>

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

namespace canary::http {
namespace {

namespace bhttp = boost::beast::http;
using boost::system::error_code;

TEST(upstream_failure, idempotent_methods) {
  for (auto v : {bhttp::verb::get, bhttp::verb::head, bhttp::verb::put, bhttp::verb::delete_,
                 bhttp::verb::options, bhttp::verb::trace})
    EXPECT_TRUE(idempotent(v));
  EXPECT_FALSE(idempotent(bhttp::verb::post));
  EXPECT_FALSE(idempotent(bhttp::verb::patch));
}

TEST(upstream_failure, send_failure_is_retried_once_on_a_pooled_connection_before_any_body) {
  EXPECT_TRUE(may_retry_after_send_failure({.reused = true, .retried = false, .body_sent = 0}));
  EXPECT_FALSE(may_retry_after_send_failure({.reused = false, .retried = false, .body_sent = 0}));
  EXPECT_FALSE(may_retry_after_send_failure({.reused = true, .retried = true, .body_sent = 0}));
  EXPECT_FALSE(may_retry_after_send_failure({.reused = true, .retried = false, .body_sent = 1}));
}

TEST(upstream_failure, silent_close_is_eof_or_a_reset_with_nothing_read) {
  EXPECT_TRUE(silent_close(bhttp::error::end_of_stream, 0));
  EXPECT_TRUE(silent_close(boost::asio::error::connection_reset, 0));
  EXPECT_FALSE(silent_close(boost::asio::error::connection_reset, 3));
  EXPECT_FALSE(silent_close(bhttp::error::partial_message, 0));
}

TEST(upstream_failure, no_response_is_retried_only_when_safe) {
  const attempt_state pooled{.reused = true, .retried = false, .body_sent = 0};
  EXPECT_TRUE(may_retry_after_no_response(pooled, false, true, bhttp::verb::get, false));
  EXPECT_TRUE(may_retry_after_no_response(pooled, false, true, bhttp::verb::post, false));
  EXPECT_FALSE(may_retry_after_no_response(pooled, false, true, bhttp::verb::post, true));
  EXPECT_TRUE(may_retry_after_no_response(pooled, false, true, bhttp::verb::put, true));
  EXPECT_FALSE(may_retry_after_no_response(pooled, true, true, bhttp::verb::get, false));
  EXPECT_FALSE(may_retry_after_no_response(pooled, false, false, bhttp::verb::get, false));
  EXPECT_FALSE(
      may_retry_after_no_response({.reused = false}, false, true, bhttp::verb::get, false));
}

TEST(upstream_failure, classification) {
  const auto t = classify_head_failure(true, boost::asio::error::operation_aborted);
  EXPECT_EQ(t.status, 504u);
  EXPECT_EQ(t.error, metrics::upstream_error::timeout);
  const auto p = classify_head_failure(false, bhttp::error::bad_version);
  EXPECT_EQ(p.status, 502u);
  EXPECT_EQ(p.error, metrics::upstream_error::protocol);
  const auto r = classify_head_failure(false, boost::asio::error::connection_reset);
  EXPECT_EQ(r.error, metrics::upstream_error::reset);
  EXPECT_FALSE(is_parse_error(bhttp::error::end_of_stream));
  EXPECT_TRUE(is_parse_error(bhttp::error::header_limit));
}

}  // namespace
}  // namespace canary::http
