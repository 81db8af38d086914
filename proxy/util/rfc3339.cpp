// RFC 3339 timestamps; see rfc3339.h.
#include "util/rfc3339.h"

#include <cstdint>

namespace canary::util {

namespace {

// Days since 1970-01-01 -> civil date (H. Hinnant's civil_from_days): a few integer operations
// instead of gmtime_r (which also takes a lock for the time zone on some libcs).
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
}

void append_digits(std::string& out, std::uint64_t v, int width) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 24);
  for (int i = n; i < width; ++i) out += '0';
  while (n > 0) out += buf[--n];
}

}  // namespace

void append_rfc3339(std::string& out, std::chrono::system_clock::time_point t) {
  const std::int64_t ms =
      std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::int64_t days = ms / 86400000;
  std::int64_t rest = ms % 86400000;
  if (rest < 0) {
    rest += 86400000;
    days -= 1;
  }
  std::int64_t y;
  unsigned mo, d;
  civil_from_days(days, y, mo, d);
  const auto r = static_cast<std::uint64_t>(rest);
  // Years outside 0000-9999 are not RFC 3339; they are still written whole rather than cut.
  if (y < 0) {
    out += '-';
    append_digits(out, static_cast<std::uint64_t>(-y), 4);
  } else {
    append_digits(out, static_cast<std::uint64_t>(y), 4);
  }
  out += '-';
  append_digits(out, mo, 2);
  out += '-';
  append_digits(out, d, 2);
  out += 'T';
  append_digits(out, r / 3600000, 2);
  out += ':';
  append_digits(out, r / 60000 % 60, 2);
  out += ':';
  append_digits(out, r / 1000 % 60, 2);
  out += '.';
  append_digits(out, r % 1000, 3);
  out += 'Z';
}

std::string format_rfc3339(std::chrono::system_clock::time_point t) {
  std::string out;
  out.reserve(24);
  append_rfc3339(out, t);
  return out;
}

// Reads `n` digits at `pos`; false if any is not a digit.
static bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  int y, mo, d, h, mi, sec;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) ||
      s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec))
    return std::nullopt;
  const year_month_day ymd{year(y), month(unsigned(mo)), day(unsigned(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 59) return std::nullopt;
  std::size_t pos = 19;
  nanoseconds fraction(0);
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::int64_t ns = 0;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 9) ns = ns * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (int i = n; i < 9; ++i) ns *= 10;
    fraction = nanoseconds(ns);
  }
  minutes offset(0);
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset = (s[pos] == '-' ? -1 : 1) * (hours(oh) + minutes(om));
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  const auto local = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) + fraction;
  return time_point_cast<system_clock::duration>(local - offset);
}

}  // namespace canary::util
