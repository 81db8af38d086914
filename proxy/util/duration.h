// The one duration grammar of canary-proxy, shared by the config file, canaryctl and the demo
// backend, and the one way of writing a duration back:
//   "30s", "1m30s", "1.5h", "250ms", or an integer number of seconds ("30").
// Units h, m, s, ms (as in Go's time.ParseDuration), each at most once and largest first, so
// "30m30m" or "30s1m" (likely typos) are refused rather than summed. A fraction is allowed on any
// unit; below a millisecond is truncated. No sign, no spaces. Pure functions: any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace canary::util {

// For error messages: what parse_duration accepts.
inline constexpr std::string_view duration_forms =
    "use 30s, 1m30s, 1.5h, 250ms or an integer number of seconds";

// nullopt when malformed, negative or beyond std::chrono::milliseconds::max().
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest text parse_duration reads back as the same value: "0s", "250ms", "1.5s", "1m30s",
// "1h5s", "1h2m3.004s" (sub-second parts as a decimal fraction of the seconds; zero units
// omitted). Negative values get a leading "-" (which parse_duration refuses).
std::string format_duration(std::chrono::milliseconds d);

}  // namespace canary::util
