// Request-target forms; see request_target.h.
#include "http/request_target.h"

#include "http/header_rules.h"

namespace canary::http {

target_parts split_target(std::string_view target) noexcept {
  target_parts out;
  std::string_view rest;
  if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
    rest = target.substr(7);
  } else if (target.size() >= 8 && iequals(target.substr(0, 8), "https://")) {
    rest = target.substr(8);
  } else {
    out.path_and_query = target;
    return out;
  }
  out.absolute = true;
  const auto end = rest.find_first_of("/?#");
  out.authority = rest.substr(0, end);
  out.path_and_query = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  out.needs_slash = out.path_and_query.empty() || out.path_and_query.front() != '/';
  return out;
}

}  // namespace canary::http
