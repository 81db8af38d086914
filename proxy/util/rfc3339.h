// The one RFC 3339 timestamp writer: UTC, milliseconds, "2026-11-26T13:02:16.123Z". Used for the
// access log (per request: append_rfc3339 does not allocate beyond `out`), the state file and the
// control API, so every time the proxy prints reads the same way. Pure: any thread.
#pragma once

#include <chrono>
#include <string>

namespace canary::util {

void append_rfc3339(std::string& out, std::chrono::system_clock::time_point t);
std::string format_rfc3339(std::chrono::system_clock::time_point t);

}  // namespace canary::util
