// Certificate name matching for SNI: which configured certificate serves a requested host name.
// Pure functions of their arguments; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace canary::tls {

// Whether a certificate's DNS name `pattern` covers `host` (RFC 6125 §6.4): ASCII
// case-insensitive; a wildcard only as the whole left-most label ("*.example.com") and it
// matches exactly one label ("a.example.com", neither "example.com" nor "a.b.example.com").
// A trailing dot on `host` (an absolute name) is ignored.
bool dns_name_matches(std::string_view pattern, std::string_view host) noexcept;

// The index of the first certificate (in configuration order) with a name covering `host`;
// an exact name beats a wildcard anywhere in the list, as nginx and HAProxy prefer it. 0 (the
// default certificate) when none matches or `host` is empty (a client that sent no SNI).
std::size_t pick_certificate(const std::vector<std::vector<std::string>>& names,
                             std::string_view host) noexcept;

}  // namespace canary::tls
