// Tests for util::parse_duration and util::format_duration, the one duration grammar of the config
// file, canaryctl and the demo backend: every accepted form of docs/config-reference.md ("30s,
// 1m30s, 1.5h, 250ms, or an integer = seconds"), the malformed ones (repeated and out-of-order
// units included), the bounds, and that formatting gives the shortest readable text that parses
// back to the same value.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <limits>

#include "util/duration.h"

namespace canary::util {
namespace {

using namespace std::chrono_literals;
using duration = std::chrono::milliseconds;

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
        "1ms1s", "1.2.3s", ".s",  "1..5s", "abc", "1h-30m", "0x10", "1e3s", "10.0",
        "1h1h",  "1s1s",   "1ms1ms", "1m1h", "5s1h", "1h30m1m", "1.5h1.5h", "1sms", "1hh",
        "s1",    "1h 1m",  "1,5s"}) {
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
  // A fraction that alone overflows after the whole part.
  EXPECT_EQ(parse_duration("2562047788015.999999999h"), std::nullopt);
  EXPECT_EQ(parse_duration("9223372036854775.807s"), duration::max());
  EXPECT_EQ(parse_duration("9223372036854775.808s"), std::nullopt);
  EXPECT_EQ(parse_duration("9223372036854775s"), 9223372036854775000ms);
  EXPECT_EQ(parse_duration("9223372036854776"), std::nullopt);
}

TEST(ParseDuration, EachUnitOnceLargestFirst) {
  EXPECT_EQ(ms("1h1m1s1ms"), 3661001);
  EXPECT_EQ(ms("1h1ms"), 3600001);
  EXPECT_EQ(ms("1m1ms"), 60001);
  EXPECT_EQ(parse_duration("1h1h"), std::nullopt);
  EXPECT_EQ(parse_duration("1m1h"), std::nullopt);
  EXPECT_EQ(parse_duration("1ms1s"), std::nullopt);
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
  EXPECT_EQ(format_duration(600s), "10m");    // not Go's "10m0s"
  EXPECT_EQ(format_duration(3605400ms), "1h5.4s");  // not "1h0m5s": sub-seconds kept
  EXPECT_EQ(format_duration(2500ms), "2.5s");  // not "2s500ms"
  EXPECT_EQ(format_duration(duration::max()), "2562047788015h12m55.807s");
  EXPECT_EQ(format_duration(duration::min()), "-2562047788015h12m55.808s");
}

TEST(FormatDuration, ParsesBackToTheSameValue) {
  const std::int64_t values[] = {
      1,       999,     1000,    1001,     59999,     60000,
      3599999, 3600000, 5400000, 86400000, 123456789, std::numeric_limits<std::int64_t>::max()};
  for (std::int64_t v : values) {
    duration d(v);
    EXPECT_EQ(parse_duration(format_duration(d)), d) << format_duration(d);
  }
  // And a sweep: every millisecond of the first few seconds, then a spread up to a year.
  for (std::int64_t v = 0; v < 5000; ++v)
    ASSERT_EQ(parse_duration(format_duration(duration(v))), duration(v)) << v;
  for (std::int64_t v = 1; v < 366LL * 86400000; v = v * 3 + 7)
    ASSERT_EQ(parse_duration(format_duration(duration(v))), duration(v)) << v;
}

TEST(FormatDuration, ParseThenFormatIsCanonical) {
  EXPECT_EQ(format_duration(*parse_duration("90")), "1m30s");
  EXPECT_EQ(format_duration(*parse_duration("0.5h")), "30m");
  EXPECT_EQ(format_duration(*parse_duration("1h0m5s")), "1h5s");
  EXPECT_EQ(format_duration(*parse_duration("1s500ms")), "1.5s");
}

}  // namespace
}  // namespace canary::util
