#include "http/local_reply.h"

#include <gtest/gtest.h>

#include <boost/beast/http/error.hpp>

namespace canary::http {
namespace {

namespace bhttp = boost::beast::http;

head_step failed(boost::system::error_code ec, verdict bad = {}) {
  head_step s;
  s.what = head_step::state::error;
  s.ec = ec;
  s.bad = bad;
  return s;
}

TEST(local_reply, head_errors) {
  EXPECT_EQ(reply_for_head_error(failed({}, {400, "bare LF in request head"})).message,
            "bare LF in request head");
  EXPECT_EQ(reply_for_head_error(failed(bhttp::error::header_limit)).code, 431u);
  EXPECT_EQ(reply_for_head_error(failed(bhttp::error::body_limit)).code, 413u);
  EXPECT_EQ(reply_for_head_error(failed(bhttp::error::bad_method)).code, 400u);
}

TEST(local_reply, body_errors) {
  EXPECT_EQ(reply_for_body_error(body_result::too_large).code, 413u);
  EXPECT_EQ(reply_for_body_error(body_result::timeout).code, 408u);
  EXPECT_EQ(reply_for_body_error(body_result::malformed).code, 400u);
  EXPECT_EQ(reply_for_body_error(body_result::client_gone).code, 0u);
  EXPECT_EQ(reply_for_body_error(body_result::upstream_failed).code, 0u);
}

}  // namespace
}  // namespace canary::http
