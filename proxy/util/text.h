// Small ASCII text helpers shared by the proxy, canaryctl and the demo backend: the one
// case-insensitive compare, the one trim and the one lower-casing. Header-only and allocation-free
// (except to_lower), so the per-request HTTP code and the fuzz targets (which compile single
// sources) can use them without linking anything. Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>

namespace canary::util {

// What trim() strips by default: the C locale's isspace() set.
inline constexpr std::string_view whitespace = " \t\r\n\f\v";
// HTTP optional whitespace (RFC 9110 §5.6.3): only SP and HTAB.
inline constexpr std::string_view http_ows = " \t";

// ASCII only: no locale, so "É" and "é" differ (as header names and host names require).
constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// `s` without leading and trailing characters from `chars`.
constexpr std::string_view trim(std::string_view s, std::string_view chars = whitespace) noexcept {
  const auto first = s.find_first_not_of(chars);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(chars) - first + 1);
}

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

}  // namespace canary::util
