// Retry and failure rules; see upstream_failure.h.
#include "http/upstream_failure.h"

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>

namespace canary::http {

namespace bhttp = boost::beast::http;

bool idempotent(bhttp::verb v) noexcept {
  switch (v) {
    case bhttp::verb::get:
    case bhttp::verb::head:
    case bhttp::verb::options:
    case bhttp::verb::trace:
    case bhttp::verb::put:
    case bhttp::verb::delete_:
      return true;
    default:
      return false;
  }
}

bool is_parse_error(const boost::system::error_code& ec) noexcept {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
         ec != bhttp::error::end_of_stream && ec != bhttp::error::need_buffer &&
         ec != bhttp::error::need_more;
}

bool may_retry_after_send_failure(const attempt_state& a) noexcept {
  return a.reused && !a.retried && a.body_sent == 0;
}

bool silent_close(const boost::system::error_code& ec, std::size_t buffered) noexcept {
  return ec == bhttp::error::end_of_stream ||
         (ec == boost::asio::error::connection_reset && buffered == 0);
}

bool may_retry_after_no_response(const attempt_state& a, bool expired, bool silent,
                                 bhttp::verb method, bool has_body) noexcept {
  return !expired && silent && a.reused && !a.retried && a.body_sent == 0 &&
         (idempotent(method) || !has_body);
}

head_failure classify_head_failure(bool expired, const boost::system::error_code& ec) noexcept {
  if (expired) return {504, metrics::upstream_error::timeout, "upstream response timeout"};
  return {502,
          is_parse_error(ec) ? metrics::upstream_error::protocol : metrics::upstream_error::reset,
          "bad upstream response"};
}

}  // namespace canary::http
