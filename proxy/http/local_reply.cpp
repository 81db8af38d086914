// Local replies for refused requests; see local_reply.h.
#include "http/local_reply.h"

#include <boost/beast/http/error.hpp>

namespace canary::http {

namespace bhttp = boost::beast::http;

verdict reply_for_head_error(const head_step& step) noexcept {
  if (step.bad.code) return step.bad;
  if (step.ec == bhttp::error::header_limit) return {431, "request header too large"};
  if (step.ec == bhttp::error::body_limit) return {413, "request body too large"};
  return {400, "malformed request"};
}

verdict reply_for_body_error(body_result r) noexcept {
  switch (r) {
    case body_result::too_large:
      return {413, "request body too large"};
    case body_result::timeout:
      return {408, "request body timeout"};
    case body_result::malformed:
      return {400, "malformed request body"};
    case body_result::ok:
    case body_result::client_gone:
    case body_result::upstream_failed:
      break;
  }
  return {};
}

}  // namespace canary::http
