// canaryctl: the command-line client of the control API (like `kubectl argo rollouts`).
// The pure parts (argument parsing, rendering a status/list/events JSON as text, the `wait`
// decision, the server-sent-events line parser, durations) are exposed here so unit tests can
// drive them without sockets; run() adds the HTTP client. Single-threaded; no state outlives run().
#pragma once

#include <boost/json/value.hpp>
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
  std::chrono::milliseconds timeout = default_wait_timeout;  // wait --timeout
  std::int64_t weight = 0;                                   // set-weight N
};

struct parse_result {
  std::optional<options> opts;  // set iff error is empty
  std::string error;            // a usage error: print it and exit 2
};

// Accepts argv without the program name. Options may come before or after the command, as
// `--flag value` or `--flag=value`; `--` ends option parsing. `env_server` is $CANARYCTL_SERVER
// (used when no --server is given; empty = unset).
parse_result parse_args(const std::vector<std::string>& args, std::string_view env_server = {});

// The usage text printed by `canaryctl help`.
std::string usage();

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

// "10m", "1m30s", "1.5h", "250ms" (units h, m, s, ms, as in Go); a bare number means
// seconds. nullopt when malformed or negative.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// Go-style rendering: "25s", "1m30s", "1h0m5s", "250ms", "0s". Sub-second parts of durations
// of a second or more are dropped.
std::string format_duration(std::chrono::milliseconds d);

// Status icons as `kubectl argo rollouts` prints them: ✔ Healthy, ◌ Progressing, ॥ Paused,
// ✖ Degraded, ? otherwise.
std::string_view phase_icon(std::string_view phase);
// One step as text: "setWeight: 20", "pause: {}", "pause: 30s"; anything else as compact JSON.
std::string render_step(const boost::json::value& step);
// The `get NAME` block (trailing newline included) from a status object. Tolerates missing or
// mistyped fields (prints them as "-") since the server may be newer or older than the client.
std::string render_get(const boost::json::value& status);
// The `list` table from the `rollouts` array.
std::string render_list(const boost::json::value& rollouts);
// The `events NAME` table from the `events` array.
std::string render_events(const boost::json::value& events);
// One line (no newline): "NAME: ॥ Paused - CanaryPauseStep (step 1/6, weight 20, actual 20,
// stable blue, canary green)".
std::string render_status_line(const boost::json::value& status);
// Pretty-printed JSON (2-space indent) with a trailing newline, for `-o json`.
std::string pretty_json(const boost::json::value& v);
// Terminal column count of UTF-8 text (one per code point: enough for the icons used here).
std::size_t display_width(std::string_view text);

// What `wait` does with a phase it has just seen.
enum class wait_decision { keep_waiting, reached, degraded };
wait_decision decide_wait(wait_target target, std::string_view phase);
std::string_view to_string(wait_target target);  // "Healthy", "Paused", "Degraded"

// One dispatched server-sent event (WHATWG HTML §9.2.6).
struct sse_event {
  std::string type = "message";
  std::string data;  // data lines joined by "\n"
  std::string id;
};

// Incremental text/event-stream parser: feed() it bytes in any split (lines may be cut anywhere,
// including between CR and LF) and it returns the events completed by those bytes. Comment
// lines (": ping") and unknown fields are ignored; an event without data is not dispatched.
class sse_parser {
 public:
  // A line longer than this makes feed() fail: a broken server must not eat all memory.
  static constexpr std::size_t default_max_line_bytes = 16 * 1024 * 1024;

  explicit sse_parser(std::size_t max_line_bytes = default_max_line_bytes)
      : max_line_bytes_(max_line_bytes) {}

  // Appends the completed events to `out`. Returns false when a line exceeded the limit (the
  // stream should be dropped).
  bool feed(std::string_view bytes, std::vector<sse_event>& out);

 private:
  void process_line(std::string_view line, std::vector<sse_event>& out);

  std::size_t max_line_bytes_;
  std::string line_;
  bool after_cr_ = false;   // the last byte was CR: a following LF belongs to the same line end
  bool first_line_ = true;  // a leading UTF-8 BOM is skipped
  sse_event current_;
  bool has_data_ = false;
};

// The whole program: returns the process exit code (0 ok, 1 error, 2 usage error or wait
// timeout).
int run(int argc, char** argv);

}  // namespace canary::ctl
