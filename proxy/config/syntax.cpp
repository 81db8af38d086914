// Lexical rules of config values; see syntax.h.
#include "config/syntax.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

namespace canary::config {

namespace {

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

bool is_name(std::string_view s) {
  return !s.empty() && s.size() <= max_name_bytes && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), is_name_char);
}

bool is_host_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_name_char);
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool is_ipv6_literal(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace canary::config
