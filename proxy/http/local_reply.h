// Which local reply answers a request the proxy cannot take: a request head that failed to
// parse or passed a limit, a request body that could not be read. Pure: any thread.
#pragma once

#include <cstdint>

#include "http/request_rules.h"

namespace canary::http {

// How reading (and relaying) a request body ended.
enum class body_result : std::uint8_t {
  ok,
  too_large,        // over limits.max_request_body_bytes
  timeout,          // client_body_idle passed
  malformed,        // a chunked framing error
  client_gone,      // the client closed or reset
  upstream_failed,  // the upstream stopped taking it
};

// A head parse_request_head refused (state::error): scan verdicts as they are, Beast's
// header_limit 431, body_limit 413 (a Content-Length over the limit), anything else 400.
verdict reply_for_head_error(const head_step& step) noexcept;

// A body the client did not deliver: 413, 408, 400, or code 0 for no reply at all (the client
// is gone; an upstream failure is answered by the upstream path).
verdict reply_for_body_error(body_result r) noexcept;

}  // namespace canary::http
