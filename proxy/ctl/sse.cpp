// Server-sent events (WHATWG HTML "Interpreting an event stream"); see sse.h.
#include "ctl/sse.h"

namespace canary::ctl {

bool sse_parser::feed(std::string_view bytes, std::vector<sse_event>& out) {
  for (char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // CRLF: the CR already ended the line
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      process_line(line_, out);
      line_.clear();
      continue;
    }
    if (line_.size() >= max_line_bytes_) return false;
    line_ += c;
  }
  return true;
}

void sse_parser::process_line(std::string_view line, std::vector<sse_event>& out) {
  if (first_line_) {
    first_line_ = false;
    if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  }
  if (line.empty()) {
    if (has_data_) {
      if (!current_.data.empty() && current_.data.back() == '\n') current_.data.pop_back();
      if (current_.type.empty()) current_.type = "message";
      out.push_back(current_);
    }
    // The last event id outlives the event; type and data do not.
    current_.type = "message";
    current_.data.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // comment, e.g. ": ping"
  std::string_view name = line, value;
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    name = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
  }
  if (name == "event") {
    current_.type = std::string(value);
  } else if (name == "data") {
    current_.data.append(value);
    current_.data += '\n';
    has_data_ = true;
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos) current_.id = std::string(value);
  }
  // "retry" and unknown fields are ignored: canaryctl reconnects on its own schedule.
}

}  // namespace canary::ctl
