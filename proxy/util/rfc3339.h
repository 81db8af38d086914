// The one RFC 3339 timestamp writer: UTC, milliseconds, "2026-11-26T13:02:16.123Z". Used for the
// access log (per request: append_rfc3339 does not allocate beyond `out`), the state file and the
// control API, so every time the proxy prints reads the same way; and the one reader (the state
// file, analysis runs in it). Pure: any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace canary::util {

void append_rfc3339(std::string& out, std::chrono::system_clock::time_point t);
std::string format_rfc3339(std::chrono::system_clock::time_point t);

// Accepts RFC 3339 date-time (§5.6): a fraction of any length (kept to the nanosecond), "Z" or
// a numeric offset. Leap seconds (":60") are refused: the clock cannot represent them.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

}  // namespace canary::util
