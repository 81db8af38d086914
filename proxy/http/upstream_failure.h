// What the session does when an upstream exchange fails before the response head: retry once on
// a fresh connection (only when that is safe, RFC 9110 §9.2.2) or answer, and with what status
// and error metric. Pure: any thread.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <string_view>

#include "metrics/cells.h"

namespace canary::http {

// RFC 9110 §9.2.2.
bool idempotent(boost::beast::http::verb v) noexcept;

// A Beast parse error (the upstream sent bytes that are no HTTP), not an I/O error.
bool is_parse_error(const boost::system::error_code& ec) noexcept;

// One attempt at an exchange on one upstream connection.
struct attempt_state {
  bool reused = false;          // the connection came from the pool
  bool retried = false;         // this is already the retry
  std::uint64_t body_sent = 0;  // request body bytes consumed from the client
};

// The request could not be written whole: a pooled connection that died before any body byte
// was consumed is retried once (the request can be replayed as it was).
bool may_retry_after_send_failure(const attempt_state& a) noexcept;

// The connection ended without a byte of response (EOF, or a reset with nothing buffered): the
// "stale keep-alive connection" race.
bool silent_close(const boost::system::error_code& ec, std::size_t buffered) noexcept;

// No response head: retried once only when a pooled connection closed silently before the
// deadline, nothing of the body was consumed, and the request is idempotent or has no body.
bool may_retry_after_no_response(const attempt_state& a, bool expired, bool silent,
                                 boost::beast::http::verb method, bool has_body) noexcept;

struct head_failure {
  unsigned status;  // 504 after the deadline, else 502
  metrics::upstream_error error;
  std::string_view message;  // the local reply's text
};
head_failure classify_head_failure(bool expired, const boost::system::error_code& ec) noexcept;

}  // namespace canary::http
