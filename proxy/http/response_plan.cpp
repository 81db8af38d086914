// Response framing and connection reuse decisions; see response_plan.h.
#include "http/response_plan.h"

namespace canary::http {

framing choose_framing(bool head_request, unsigned status, bool has_content_length,
                       unsigned client_version) noexcept {
  if (head_request || status == 204 || status == 304 || status < 200) return framing::none;
  if (has_content_length) return framing::length;
  return client_version >= 11 ? framing::chunked : framing::close;
}

bool keep_client_connection(bool client_keep_alive, bool draining, framing f,
                            bool request_body_read) noexcept {
  return client_keep_alive && !draining && f != framing::close && request_body_read;
}

bool reuse_upstream_connection(bool request_sent_whole, bool response_read_whole,
                               bool upstream_keep_alive, bool upstream_needs_eof,
                               framing f) noexcept {
  return request_sent_whole && response_read_whole && upstream_keep_alive && !upstream_needs_eof &&
         f != framing::close;
}

}  // namespace canary::http
