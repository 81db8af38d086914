// Tests for the shared text helpers: util::iequals, util::trim, util::to_lower (util/text.h) and
// the RFC 3339 writer (util/rfc3339.h).
#include <gtest/gtest.h>

#include <chrono>

#include "util/rfc3339.h"
#include "util/text.h"

namespace canary::util {
namespace {

using namespace std::chrono;

TEST(Iequals, AsciiCaseInsensitiveOnly) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Host", "Hos"));
  EXPECT_FALSE(iequals("Host", "Hosu"));
  EXPECT_FALSE(iequals("\xc3\x89", "\xc3\xa9"));  // no locale folding of non-ASCII bytes
  EXPECT_FALSE(iequals("[", "{"));                // '[' + 32 is '{': only letters fold
  static_assert(iequals("ABC", "abc"));
}

TEST(Trim, DefaultIsCLocaleWhitespace) {
  EXPECT_EQ(trim("  token \t\r\n"), "token");
  EXPECT_EQ(trim("\f\va b\v"), "a b");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \t\r\n"), "");
  EXPECT_EQ(trim("x"), "x");
}

TEST(Trim, HttpOwsIsSpaceAndTabOnly) {
  EXPECT_EQ(trim(" \tclose\t ", http_ows), "close");
  EXPECT_EQ(trim("\rclose\n", http_ows), "\rclose\n");  // CR/LF are not OWS
  EXPECT_EQ(trim("   ", http_ows), "");
}

TEST(ToLower, Ascii) {
  EXPECT_EQ(to_lower("A.Example-COM_1"), "a.example-com_1");
  EXPECT_EQ(to_lower("\xc3\x89"), "\xc3\x89");
}

TEST(Rfc3339, UtcWithMilliseconds) {
  const auto t = sys_days(year(2026) / 11 / 26) + 13h + 2min + 16s + 123ms;
  EXPECT_EQ(format_rfc3339(t), "2026-11-26T13:02:16.123Z");
  EXPECT_EQ(format_rfc3339(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
  // Sub-millisecond parts are cut (floor), also before 1970.
  EXPECT_EQ(format_rfc3339(sys_days(year(2000) / 2 / 29) + 999999us), "2000-02-29T00:00:00.999Z");
  EXPECT_EQ(format_rfc3339(system_clock::time_point{} - 1us), "1969-12-31T23:59:59.999Z");
  // system_clock counts nanoseconds: its range ends in 2262.
  EXPECT_EQ(format_rfc3339(sys_days(year(2199) / 12 / 31) + 86399999ms),
            "2199-12-31T23:59:59.999Z");
}

TEST(Rfc3339, AppendsWithoutClearing) {
  std::string out = "time=";
  append_rfc3339(out, sys_days(year(2024) / 5 / 1) + 12h + 34min + 56s + 789ms);
  EXPECT_EQ(out, "time=2024-05-01T12:34:56.789Z");
}

}  // namespace
}  // namespace canary::util
