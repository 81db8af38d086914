// canaryctl's command line: the options, the command table, the usage text, and the server URL.
// Pure: unit tests drive it without sockets. canaryctl is single-threaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canary::ctl {

inline constexpr std::string_view default_server = "http://127.0.0.1:9901";
// `wait` gives up after this unless --timeout says otherwise (kubectl's progress deadline is 10m).
inline constexpr std::chrono::milliseconds default_wait_timeout = std::chrono::minutes(10);
// The longest --timeout, in the unit of the clock `wait` adds it to (steady_clock, 64-bit
// nanoseconds: about 292 years from boot). A year is far beyond any real wait and far below the
// point where now() + timeout would wrap into the past (and `wait` time out at once).
inline constexpr std::chrono::steady_clock::duration max_wait_timeout =
    std::chrono::hours(24 * 365);

// Process exit codes. `wait` gives 2 for "timed out" (like `kubectl rollout status`'s deadline),
// so a usage error must not: it has sysexits' EX_USAGE.
inline constexpr int exit_ok = 0;
inline constexpr int exit_error = 1;
inline constexpr int exit_timeout = 2;
inline constexpr int exit_usage = 64;

enum class output_format { human, json };
enum class wait_target { healthy, paused, degraded };

struct options {
  std::string server = std::string(default_server);
  std::string token_file;
  output_format output = output_format::human;
  std::string command;            // "list", "get", ...; "help" for help/-h
  std::vector<std::string> args;  // positional arguments after the command
  bool full = false;              // promote --full
  bool watch = false;             // get --watch
  wait_target wait_for = wait_target::healthy;
  // wait --timeout, in steady_clock's unit; at most max_wait_timeout.
  std::chrono::steady_clock::duration timeout = default_wait_timeout;
  std::int64_t weight = 0;  // set-weight N
};

struct parse_result {
  std::optional<options> opts;  // set iff error is empty
  std::string error;            // a usage error: print it and exit exit_usage
};

// Accepts argv without the program name. Options may come before or after the command, as
// `--flag value` or `--flag=value`; `--` ends option parsing. `env_server` is $CANARYCTL_SERVER
// (used when no --server is given; empty = unset).
parse_result parse_args(const std::vector<std::string>& args, std::string_view env_server = {});

// The usage text printed by `canaryctl help`.
std::string usage();

std::string_view to_string(wait_target target);  // "Healthy", "Paused", "Degraded"

// An http:// base URL: "http://host[:port][/prefix]". IPv6 hosts are written in brackets.
struct server_url {
  std::string host;  // without brackets
  std::string port = "80";
  std::string base_path;    // "" or "/prefix" (no trailing slash)
  std::string host_header;  // what the Host field carries, e.g. "127.0.0.1:9901"
};
struct url_result {
  std::optional<server_url> url;
  std::string error;
};
url_result parse_server_url(std::string_view text);

// Percent-encodes one path segment (RFC 3986 §3.3: unreserved characters pass through).
std::string encode_path_segment(std::string_view segment);

}  // namespace canary::ctl
