// The duration grammar and formatter; see duration.h.
#include "util/duration.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>

namespace canary::util {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  using std::chrono::milliseconds;
  if (text.empty()) return std::nullopt;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (std::all_of(text.begin(), text.end(), is_digit)) {
    std::int64_t s = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
    if (ec != std::errc() || end != text.data() + text.size() || s > max / 1000)
      return std::nullopt;
    return milliseconds(s * 1000);
  }
  struct unit {
    std::string_view name;
    std::int64_t ms;
  };
  constexpr unit units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  constexpr int unit_count = 4;
  std::int64_t total = 0;
  int next_unit = 0;  // index of the largest unit still allowed
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t int_start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    std::string_view whole = text.substr(int_start, i - int_start);
    std::string_view frac;
    if (i < text.size() && text[i] == '.') {
      std::size_t frac_start = ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
      frac = text.substr(frac_start, i - frac_start);
    }
    if (whole.empty() && frac.empty()) return std::nullopt;
    std::size_t unit_start = i;
    while (i < text.size() && !is_digit(text[i]) && text[i] != '.') ++i;
    std::string_view name = text.substr(unit_start, i - unit_start);
    int u = next_unit;
    while (u < unit_count && units[u].name != name) ++u;
    if (u == unit_count) return std::nullopt;  // unknown, missing, repeated or out of order
    next_unit = u + 1;

    std::int64_t w = 0;
    if (!whole.empty()) {
      auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
      if (ec != std::errc() || end != whole.data() + whole.size()) return std::nullopt;
    }
    if (w > max / units[u].ms) return std::nullopt;
    std::int64_t part = w * units[u].ms;
    // Nine fraction digits are far below a millisecond for every unit; later ones are dropped.
    // f < 10^9 and units[u].ms <= 3.6e6, so f * ms < 3.6e15: no overflow.
    std::int64_t f = 0, scale = 1;
    for (std::size_t k = 0; k < frac.size() && k < 9; ++k) {
      f = f * 10 + (frac[k] - '0');
      scale *= 10;
    }
    std::int64_t frac_ms = f * units[u].ms / scale;
    if (frac_ms > max - part) return std::nullopt;
    part += frac_ms;
    if (part > max - total) return std::nullopt;
    total += part;
  }
  return milliseconds(total);
}

std::string format_duration(std::chrono::milliseconds d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  std::uint64_t v = static_cast<std::uint64_t>(ms);
  if (ms < 0) {
    out = "-";
    v = 0 - v;  // well-defined for INT64_MIN too
  }
  if (v < 1000) return out + std::to_string(v) + "ms";
  std::uint64_t h = v / 3600000, m = v / 60000 % 60, s = v / 1000 % 60, rest = v % 1000;
  if (h != 0) out += std::to_string(h) + "h";
  if (m != 0) out += std::to_string(m) + "m";
  if (s != 0 || rest != 0) {
    out += std::to_string(s);
    if (rest != 0) {
      std::string frac = std::to_string(rest);
      frac.insert(0, 3 - frac.size(), '0');
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    out += "s";
  }
  return out;
}

}  // namespace canary::util
