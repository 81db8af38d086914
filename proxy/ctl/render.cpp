// canaryctl's text rendering; see render.h.
#include "ctl/render.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <vector>

#include "util/duration.h"

namespace canary::ctl {

namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

std::string number_text(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  std::ostringstream os;
  os << d;
  return os.str();
}

std::optional<double> number_of(const json::value* v) {
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  if (v->is_double()) return v->as_double();
  return std::nullopt;
}

std::size_t step_count(const json::value& status) {
  const json::value* steps = field(status, "steps");
  return steps && steps->is_array() ? steps->as_array().size() : 0;
}

std::string step_text(const json::value& status) {
  return text_of(status, "step") + "/" + std::to_string(step_count(status));
}

// "20", or "5/1000" when the route's denominator is not 100.
std::string weight_text(const json::value& status, std::string_view key) {
  std::string w = text_of(status, key);
  auto total = number_of(field(status, "weight_total"));
  if (total && *total != 100 && w != "-") w += "/" + number_text(*total);
  return w;
}

std::string status_text(const json::value& status) {
  std::string phase = text_of(status, "phase");
  return std::string(phase_icon(phase)) + " " + phase;
}

std::string pad(std::string_view s, std::size_t width) {
  std::string out(s);
  std::size_t w = display_width(s);
  if (w < width) out.append(width - w, ' ');
  return out;
}

// Columns separated by two spaces, each as wide as its widest cell; the last is not padded.
std::string render_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += c + 1 < row.size() ? pad(row[c], widths[c]) + "  " : row[c];
    }
    out += line + "\n";
  }
  return out;
}

void pretty(const json::value& v, std::string& out, int indent) {
  auto newline = [&](int level) {
    out += '\n';
    out.append(static_cast<std::size_t>(level) * 2, ' ');
  };
  if (v.is_object()) {
    const auto& obj = v.as_object();
    if (obj.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    bool first = true;
    for (const auto& kv : obj) {
      if (!first) out += ',';
      first = false;
      newline(indent + 1);
      out += json::serialize(json::string(kv.key()));
      out += ": ";
      pretty(kv.value(), out, indent + 1);
    }
    newline(indent);
    out += '}';
  } else if (v.is_array()) {
    const auto& arr = v.as_array();
    if (arr.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    bool first = true;
    for (const auto& e : arr) {
      if (!first) out += ',';
      first = false;
      newline(indent + 1);
      pretty(e, out, indent + 1);
    }
    newline(indent);
    out += ']';
  } else {
    out += json::serialize(v);
  }
}

}  // namespace

const json::value* field(const json::value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(key);
}

// Any JSON value as a table cell: strings bare, null or missing as "-".
std::string text_of(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_double()) return number_text(v->as_double());
  if (v->is_bool()) return v->as_bool() ? "true" : "false";
  return json::serialize(*v);
}

std::string text_of(const json::value& obj, std::string_view key) {
  return text_of(field(obj, key));
}

std::size_t display_width(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string_view phase_icon(std::string_view phase) {
  if (phase == "Healthy") return "✔";
  if (phase == "Progressing") return "◌";
  if (phase == "Paused") return "॥";
  if (phase == "Degraded") return "✖";
  return "?";
}

// "20 % of GET, HEAD": a status' or a step's mirror.
static std::string mirror_text(const json::value& mirror) {
  std::string out = text_of(field(mirror, "percent")) + " %";
  if (const json::value* methods = field(mirror, "methods"); methods && methods->is_array()) {
    std::string names;
    for (const auto& m : methods->as_array()) names += (names.empty() ? "" : ", ") + text_of(&m);
    if (!names.empty()) out += " of " + names;
  }
  return out;
}

std::string render_step(const json::value& step) {
  if (const json::value* w = field(step, "setWeight"); w && step.as_object().size() == 1) {
    return "setWeight: " + text_of(w);
  }
  if (const json::value* m = field(step, "setMirror"); m && step.as_object().size() == 1) {
    return "setMirror: " + mirror_text(*m);
  }
  if (const json::value* p = field(step, "pause"); p && step.as_object().size() == 1) {
    const json::value* d = field(*p, "duration");
    if (p->is_object() && p->as_object().empty()) return "pause: {}";
    if (d && p->as_object().size() == 1) {
      // The server sends the duration as written ("30s") or as seconds (30).
      if (d->is_string()) return "pause: " + std::string(d->as_string());
      if (auto n = number_of(d)) {
        return "pause: " + util::format_duration(milliseconds(std::llround(*n * 1000)));
      }
    }
  }
  return json::serialize(step);
}

std::string render_get(const json::value& status) {
  auto line = [](std::string_view label, std::string_view value) {
    return pad(label, 17) + std::string(value) + "\n";
  };
  std::string out;
  out += line("Name:", text_of(status, "name"));
  out += line("Status:", status_text(status));
  if (std::string message = text_of(status, "message"); message != "-" && !message.empty()) {
    out += line("Message:", message);
  }
  out += line("Strategy:", "Canary");
  out += line("  Step:", step_text(status));
  out += line("  SetWeight:", weight_text(status, "weight"));
  out += line("  ActualWeight:", weight_text(status, "actual_weight"));
  if (const json::value* m = field(status, "mirror"); m && m->is_object())
    out += line("  Mirror:", mirror_text(*m));
  out += line("Stable:", text_of(status, "stable"));
  out += line("Canary:", text_of(status, "canary"));
  std::string paused_by = text_of(status, "paused_by");
  if (paused_by != "-") out += line("Paused by:", paused_by);
  if (auto left = number_of(field(status, "pause_remaining_s"))) {
    // Whole seconds, rounded up: "0s" would read as "already over".
    auto ms = milliseconds(static_cast<std::int64_t>(std::ceil(std::max(0.0, *left))) * 1000);
    std::string text = util::format_duration(ms);
    if (paused_by == "user") text += " (on hold)";
    out += line("Pause left:", text);
  }
  out += line("Updated:", text_of(status, "updated_at"));
  out += "\nSteps:\n";
  const json::value* steps = field(status, "steps");
  if (steps == nullptr || !steps->is_array() || steps->as_array().empty()) {
    out += "  (none)\n";
    return out;
  }
  const auto& list = steps->as_array();
  auto current = number_of(field(status, "step")).value_or(-1);
  // No canary means no rollout in progress: nothing is "current", though finished ones stay done.
  const json::value* canary = field(status, "canary");
  bool in_progress = canary && !canary->is_null();
  // Steps are numbered from 1, as in the event messages ("Rollout step 1/6 completed"), so that
  // "Step: k/n" reads as "k of n steps done".
  std::size_t index_width = std::to_string(list.size()).size();
  for (std::size_t i = 0; i < list.size(); ++i) {
    double idx = static_cast<double>(i);
    std::string_view mark = idx < current ? "✔" : idx == current && in_progress ? "▶" : " ";
    out += "  " + std::string(mark) + " " + pad(std::to_string(i + 1), index_width) + "  " +
           render_step(list[i]) + "\n";
  }
  return out;
}

std::string render_list(const json::value& rollouts) {
  if (!rollouts.is_array() || rollouts.as_array().empty()) return "No rollouts found.\n";
  std::vector<std::vector<std::string>> rows{
      {"NAME", "STATUS", "STEP", "SETWEIGHT", "ACTUALWEIGHT", "STABLE", "CANARY"}};
  for (const auto& r : rollouts.as_array()) {
    rows.push_back({text_of(r, "name"), status_text(r), step_text(r), weight_text(r, "weight"),
                    weight_text(r, "actual_weight"), text_of(r, "stable"), text_of(r, "canary")});
  }
  return render_table(rows);
}

std::string render_events(const json::value& events) {
  if (!events.is_array() || events.as_array().empty()) return "No events.\n";
  std::vector<std::vector<std::string>> rows{
      {"TIME", "FROM", "TO", "STEP", "WEIGHT", "CAUSE", "MESSAGE"}};
  for (const auto& e : events.as_array()) {
    rows.push_back({text_of(e, "time"), text_of(e, "from"), text_of(e, "to"), text_of(e, "step"),
                    text_of(e, "weight"), text_of(e, "cause"), text_of(e, "message")});
  }
  return render_table(rows);
}

std::string render_status_line(const json::value& status) {
  std::string out = text_of(status, "name") + ": " + status_text(status);
  if (std::string message = text_of(status, "message"); message != "-" && !message.empty()) {
    out += " - " + message;
  }
  out += " (step " + step_text(status) + ", weight " + weight_text(status, "weight") + ", actual " +
         weight_text(status, "actual_weight") + ", stable " + text_of(status, "stable") +
         ", canary " + text_of(status, "canary") + ")";
  return out;
}

std::string pretty_json(const json::value& v) {
  std::string out;
  pretty(v, out, 0);
  out += '\n';
  return out;
}

}  // namespace canary::ctl
