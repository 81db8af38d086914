// SNI name matching; see names.h.
#include "tls/names.h"

#include "util/text.h"

namespace canary::tls {

bool dns_name_matches(std::string_view pattern, std::string_view host) noexcept {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (pattern.empty() || host.empty()) return false;
  if (pattern.size() < 3 || pattern[0] != '*' || pattern[1] != '.')
    return pattern.find('*') == std::string_view::npos && util::iequals(pattern, host);
  // "*.example.com": the host's first label is replaced by the wildcard, the rest must match.
  const auto suffix = pattern.substr(1);  // ".example.com"
  if (suffix.find('*') != std::string_view::npos) return false;
  const auto dot = host.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  return util::iequals(host.substr(dot), suffix);
}

std::size_t pick_certificate(const std::vector<std::vector<std::string>>& names,
                             std::string_view host) noexcept {
  if (host.empty()) return 0;
  for (std::size_t i = 0; i < names.size(); ++i)
    for (const auto& n : names[i])
      if (n.find('*') == std::string::npos && dns_name_matches(n, host)) return i;
  for (std::size_t i = 0; i < names.size(); ++i)
    for (const auto& n : names[i])
      if (dns_name_matches(n, host)) return i;
  return 0;
}

}  // namespace canary::tls
