// A text/event-stream (server-sent events) parser for `get --watch` and `wait`. Pure; one parser
// per stream, used by one thread, living as long as the stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace canary::ctl {

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

}  // namespace canary::ctl
