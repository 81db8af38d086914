// Tests for config::parse_duration and config::format_duration: every accepted form of DESIGN §2
// ("30s, 1m30s, 1.5h, 250ms, or an integer = seconds"), the malformed ones, and that formatting
// gives the shortest readable text that parses back to the same value.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>

#include "config/load.h"

namespace canary::config {
namespace {

using namespace std::chrono_literals;

std::optional<std::int64_t> ms(std::string_view text) {
  auto d = parse_duration(text);
  if (!d) return std::nullopt;
  return d->count();
}

TEST(ParseDuration, IntegerMeansSeconds) {
  EXPECT_EQ(ms("10"), 10000);
  EXPECT_EQ(ms("0"), 0);
  EXPECT_EQ(ms("007"), 7000);
}

TEST(ParseDuration, SingleUnits) {
  EXPECT_EQ(ms("250ms"), 250);
  EXPECT_EQ(ms("30s"), 30000);
  EXPECT_EQ(ms("2m"), 120000);
  EXPECT_EQ(ms("24h"), 86400000);
  EXPECT_EQ(ms("0s"), 0);
}

TEST(ParseDuration, CompoundUnitsLargestFirst) {
  EXPECT_EQ(ms("1m30s"), 90000);
  EXPECT_EQ(ms("2h45m"), 9900000);
  EXPECT_EQ(ms("1h30s"), 3630000);
  EXPECT_EQ(ms("1h2m3s4ms"), 3723004);
  EXPECT_EQ(ms("1s500ms"), 1500);
}

TEST(ParseDuration, Fractions) {
  EXPECT_EQ(ms("1.5h"), 5400000);
  EXPECT_EQ(ms("0.5s"), 500);
  EXPECT_EQ(ms(".5s"), 500);
  EXPECT_EQ(ms("5.s"), 5000);
  EXPECT_EQ(ms("1.25m"), 75000);
  EXPECT_EQ(ms("0.001s"), 1);
  // Below a millisecond is truncated: the config's resolution is 1 ms.
  EXPECT_EQ(ms("1.5ms"), 1);
  EXPECT_EQ(ms("0.0001s"), 0);
  EXPECT_EQ(ms("1.1234567891234s"), 1123);
}

TEST(ParseDuration, RejectsMalformed) {
  for (const char* bad :
       {"",      "5x",     "s",   "ms",    "1.5", "-1s",    "-5",   "+5s",  "1 s",
        " 1s",   "1s ",    "1us", "1ns",   "1d",  "1H",     "1S",   "1m1m", "30s1m",
        "1ms1s", "1.2.3s", ".s",  "1..5s", "abc", "1h-30m", "0x10", "1e3s", "10.0"}) {
    EXPECT_EQ(parse_duration(bad), std::nullopt) << '"' << bad << '"';
  }
}

TEST(ParseDuration, RejectsOverflow) {
  EXPECT_EQ(parse_duration("9223372036854775807"), std::nullopt);  // seconds: too many ms
  EXPECT_EQ(parse_duration("99999999999999999999"), std::nullopt);
  EXPECT_EQ(parse_duration("9223372036854775807ms"), 9223372036854775807ms);
  EXPECT_EQ(parse_duration("9223372036854775808ms"), std::nullopt);
  EXPECT_EQ(parse_duration("2562047788016h"), std::nullopt);
  EXPECT_EQ(parse_duration("2562047788015h12m55.807s"), duration::max());
  EXPECT_EQ(parse_duration("2562047788015h13m"), std::nullopt);  // only the sum overflows
}

TEST(FormatDuration, ShortestReadable) {
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(1ms), "1ms");
  EXPECT_EQ(format_duration(1000ms), "1s");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(1250ms), "1.25s");
  EXPECT_EQ(format_duration(1005ms), "1.005s");
  EXPECT_EQ(format_duration(30s), "30s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(2min), "2m");
  EXPECT_EQ(format_duration(1h), "1h");
  EXPECT_EQ(format_duration(90min), "1h30m");
  EXPECT_EQ(format_duration(1h + 30s), "1h30s");
  EXPECT_EQ(format_duration(24h), "24h");
  EXPECT_EQ(format_duration(1h + 2min + 3s + 4ms), "1h2m3.004s");
  EXPECT_EQ(format_duration(-1500ms), "-1.5s");
}

TEST(FormatDuration, ParsesBackToTheSameValue) {
  const std::int64_t values[] = {
      1,       999,     1000,    1001,     59999,     60000,
      3599999, 3600000, 5400000, 86400000, 123456789, std::numeric_limits<std::int64_t>::max()};
  for (std::int64_t v : values) {
    duration d(v);
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  }
}

}  // namespace
}  // namespace canary::config
