// canaryctl's text rendering; see render.h.
#include "ctl/render.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
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
    // An empty last cell (no message) leaves no trailing blanks.
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string printf_text(const char* format, double d) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, d);
  return buf;
}

// The sequential bound 1 + max_increase as a factor: "1.0", "1.5", "1.25".
std::string ratio_text(double r) {
  std::string s = printf_text("%.2f", r);
  if (s.ends_with('0')) s.pop_back();
  return s;
}

// Whether a measurement's value means something: the server writes 0 when a provider could not
// be asked (Error) or when the canary had no request to measure, and "0.0 % < min 99.0 %" would
// read as a verdict on data that does not exist.
bool has_value(const json::value& metric, const json::value& m) {
  std::string phase = text_of(m, "phase");
  if (phase == "Error" || phase == "Pending") return false;
  std::string kind = text_of(metric, "kind");
  if (kind == "sequential" || kind == "threshold") {
    auto requests = number_of(field(m, "canary_requests"));
    if (requests && *requests == 0) return false;
  }
  return true;
}

// "◌ Running"; "-" for null or missing (no measurement yet).
std::string analysis_phase_text(const json::value* phase) {
  if (phase == nullptr || !phase->is_string()) return "-";
  std::string_view p = phase->as_string();
  return std::string(analysis_icon(p)) + " " + std::string(p);
}

// The metric of the status's analysis block named `name`, or nullptr.
const json::value* find_metric(const json::value& status_analysis, std::string_view name) {
  const json::value* metrics = field(status_analysis, "metrics");
  if (metrics == nullptr || !metrics->is_array()) return nullptr;
  for (const auto& m : metrics->as_array()) {
    const json::value* n = field(m, "name");
    if (n && n->is_string() && n->as_string() == name) return &m;
  }
  return nullptr;
}

std::string value_text(const json::value* v, value_unit unit) {
  auto n = number_of(v);
  return n ? format_value(*n, unit) : "-";
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

namespace {

// "20 % of GET, HEAD": a status' or a step's mirror.
std::string mirror_text(const json::value& mirror) {
  std::string out = text_of(field(mirror, "percent")) + " %";
  if (const json::value* methods = field(mirror, "methods"); methods && methods->is_array()) {
    std::string names;
    for (const auto& m : methods->as_array()) names += (names.empty() ? "" : ", ") + text_of(&m);
    if (!names.empty()) out += " of " + names;
  }
  return out;
}

// The server sends a duration as written ("30s") or as seconds (30); "" for anything else.
std::string step_duration(const json::value* d) {
  if (d == nullptr) return "";
  if (d->is_string()) return std::string(d->as_string());
  if (auto n = number_of(d)) return util::format_duration(milliseconds(std::llround(*n * 1000)));
  return "";
}

// "analysis: 2m", "analysis: 2m (errors, success)", "analysis" (no duration); "" when the step
// has other keys.
std::string analysis_step(const json::value& a) {
  if (!a.is_object()) return "";
  const auto& obj = a.as_object();
  const json::value* d = obj.if_contains("duration");
  std::string duration = step_duration(d);
  const json::value* metrics = obj.if_contains("metrics");
  std::size_t known = (d ? 1 : 0) + (metrics ? 1 : 0);
  if ((d && duration.empty()) || known != obj.size()) return "";
  std::string out = duration.empty() ? "analysis" : "analysis: " + duration;
  if (metrics && !metrics->is_null()) {
    if (!metrics->is_array()) return "";
    std::string names;
    for (const auto& m : metrics->as_array()) {
      if (!m.is_string()) return "";
      names += (names.empty() ? "" : ", ") + std::string(m.as_string());
    }
    if (!names.empty()) out += " (" + names + ")";
  }
  return out;
}

}  // namespace

std::string render_step(const json::value& step) {
  if (!step.is_object() || step.as_object().size() != 1) return json::serialize(step);
  if (const json::value* w = field(step, "setWeight")) return "setWeight: " + text_of(w);
  if (const json::value* m = field(step, "setMirror"); m && m->is_object()) {
    return "setMirror: " + mirror_text(*m);
  }
  if (const json::value* p = field(step, "pause")) {
    if (p->is_object() && p->as_object().empty()) return "pause: {}";
    const json::value* d = field(*p, "duration");
    if (std::string text = step_duration(d); !text.empty() && p->as_object().size() == 1) {
      return "pause: " + text;
    }
  }
  if (const json::value* a = field(step, "analysis")) {
    if (std::string text = analysis_step(*a); !text.empty()) return text;
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
  const json::value* analysis = field(status, "analysis");
  std::string analysis_text = analysis ? render_analysis(*analysis) : "";
  if (steps == nullptr || !steps->is_array() || steps->as_array().empty()) {
    out += "  (none)\n";
    return out + analysis_text;
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
  return out + analysis_text;
}

std::string_view analysis_icon(std::string_view phase) {
  if (phase == "Successful") return "✔";
  if (phase == "Running") return "◌";
  if (phase == "Failed") return "✖";
  if (phase == "Error") return "⚠";
  if (phase == "DryRun") return "•";
  if (phase == "Pending") return "◷";
  return "?";
}

value_unit unit_of_metric(const json::value& metric) {
  std::string kind = text_of(metric, "kind");
  if (kind == "sequential") return value_unit::fraction;
  if (kind != "threshold") return value_unit::number;
  const json::value* last = field(metric, "last");
  for (const json::value* v :
       {field(metric, "min"), field(metric, "max"), last ? field(*last, "value") : nullptr}) {
    if (auto n = number_of(v); n && *n > 1) return value_unit::milliseconds;
  }
  return value_unit::fraction;
}

std::string format_value(double v, value_unit unit) {
  if (!std::isfinite(v)) return number_text(v);
  switch (unit) {
    case value_unit::fraction: {
      double p = 100 * v;
      // Small error rates keep two significant digits: "0.0 %" would hide a real difference.
      if (p != 0 && std::fabs(p) < 0.1) return printf_text("%.2g", p) + " %";
      return printf_text("%.1f", p) + " %";
    }
    case value_unit::milliseconds:
      return printf_text(std::fabs(v) < 10    ? "%.2f"
                         : std::fabs(v) < 100 ? "%.1f"
                                              : "%.0f",
                         v) +
             " ms";
    case value_unit::number:
      return printf_text("%.6g", v);
  }
  return number_text(v);
}

std::string render_bound(const json::value& metric) {
  const json::value* last = field(metric, "last");
  auto v = last ? number_of(field(*last, "value")) : std::nullopt;
  if (!v || !has_value(metric, *last)) return "-";
  value_unit unit = unit_of_metric(metric);
  auto fmt = [unit](double d) { return format_value(d, unit); };
  auto min = number_of(field(metric, "min"));
  auto max = number_of(field(metric, "max"));
  if (text_of(metric, "kind") == "sequential") {
    // The canary's bad rate against (1 + max_increase) times the stable's. The verdict itself is
    // the test's (the phase column): a ratio above the bound on few requests is not yet Failed.
    auto stable = number_of(field(*last, "stable_value"));
    double bound = max.value_or(1);
    if (!stable) return fmt(*v) + " vs stable -";
    std::string_view op = *v > bound * *stable ? " > " : " <= ";
    return fmt(*v) + std::string(op) + ratio_text(bound) + "x stable " + fmt(*stable);
  }
  if (max && *v > *max) return fmt(*v) + " > max " + fmt(*max);
  if (min && *v < *min) return fmt(*v) + " < min " + fmt(*min);
  if (min && max) return fmt(*min) + " <= " + fmt(*v) + " <= " + fmt(*max);
  if (max) return fmt(*v) + " <= max " + fmt(*max);
  if (min) return fmt(*v) + " >= min " + fmt(*min);
  return fmt(*v);
}

std::string render_analysis(const json::value& analysis) {
  if (!analysis.is_object()) return "";
  std::string out = "\n" + pad("Analysis:", 17);
  const json::value* phase = field(analysis, "phase");
  out += phase && phase->is_string() ? analysis_phase_text(phase) : "- (no run)";
  if (std::string run = text_of(analysis, "run"); run != "-") out += " (run " + run + ")";
  out += "\n";
  const json::value* metrics = field(analysis, "metrics");
  if (metrics == nullptr || !metrics->is_array() || metrics->as_array().empty()) {
    return out + "  (no metrics)\n";
  }
  std::vector<std::vector<std::string>> rows{
      {"METRIC", "KIND", "PHASE", "SUCCESSFUL", "FAILED", "INCONCLUSIVE", "ERRORS", "LAST"}};
  for (const auto& m : metrics->as_array()) {
    rows.push_back({text_of(m, "name"), text_of(m, "kind"), analysis_phase_text(field(m, "phase")),
                    text_of(m, "successful"), text_of(m, "failed"), text_of(m, "inconclusive"),
                    text_of(m, "errors"), render_bound(m)});
  }
  std::string table = render_table(rows);
  // Indented under the heading, like the steps.
  for (std::size_t start = 0; start < table.size();) {
    std::size_t end = table.find('\n', start);
    out += "  " + table.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}

std::string render_measurements(const json::value& reply, const json::value& status_analysis) {
  const json::value* list = field(reply, "measurements");
  if (list == nullptr || !list->is_array() || list->as_array().empty()) {
    return "No measurements.\n";
  }
  std::vector<std::vector<std::string>> rows{
      {"TIME", "METRIC", "PHASE", "VALUE", "STABLE", "CANARY-REQ", "STABLE-REQ", "MESSAGE"}};
  for (const auto& m : list->as_array()) {
    std::string name = text_of(m, "metric");
    const json::value* metric = find_metric(status_analysis, name);
    value_unit unit = metric ? unit_of_metric(*metric) : value_unit::number;
    bool valued = has_value(metric ? *metric : json::value(), m);
    rows.push_back({text_of(m, "time"), name, analysis_phase_text(field(m, "phase")),
                    valued ? value_text(field(m, "value"), unit) : "-",
                    valued ? value_text(field(m, "stable_value"), unit) : "-",
                    text_of(m, "canary_requests"), text_of(m, "stable_requests"),
                    text_of(m, "message")});
  }
  return render_table(rows);
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

namespace {

// A replica's drifted routes: an array of names joined with ","; an empty array, null or a
// missing field as "-"; anything else (an older or newer server) as its text.
std::string drift_text(const json::value& replica) {
  const json::value* drift = field(replica, "config_drift");
  if (drift == nullptr || !drift->is_array()) return text_of(drift);
  std::string out;
  for (const auto& route : drift->as_array()) {
    if (!out.empty()) out += ",";
    out += text_of(&route);
  }
  return out.empty() ? "-" : out;
}

}  // namespace

std::string render_cluster(const json::value& cluster) {
  const std::string self = text_of(cluster, "replica");
  const std::string leader = text_of(cluster, "leader");
  std::string out = "Replica:  " + self + "\nLeader:   " + (leader == "-" ? "none" : leader) + "\n";
  const json::value* store = field(cluster, "store");
  out += "Store:    " + text_of(store ? *store : json::value(), "type") + ", " +
         text_of(store ? *store : json::value(), "state");
  if (const json::value* rev = store ? field(*store, "revision") : nullptr; rev && !rev->is_null()) {
    out += ", revision " + text_of(rev);
  }
  out += "\n\n";
  const json::value* replicas = field(cluster, "replicas");
  if (replicas == nullptr || !replicas->is_array() || replicas->as_array().empty()) {
    return out + "No replicas registered.\n";
  }
  std::vector<std::vector<std::string>> rows{
      {"REPLICA", "INCARNATION", "LAST SEEN", "LEADER", "CONFIG DRIFT"}};
  for (const auto& r : replicas->as_array()) {
    std::string id = text_of(r, "id");
    rows.push_back({id == self ? id + " (this)" : id, text_of(r, "incarnation"),
                    text_of(r, "last_seen"), id == leader ? "*" : "", drift_text(r)});
  }
  return out + render_table(rows);
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

// Re-indents the text itself rather than a parsed value, so every number reads exactly as the
// server wrote it (a parse and re-serialize may move a double by one unit in the last place).
std::string pretty_json(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  int level = 0;
  auto newline = [&](int l) {
    out += '\n';
    out.append(static_cast<std::size_t>(std::max(l, 0)) * 2, ' ');
  };
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto next_significant = [&](std::size_t i) {
    while (i < text.size() && is_space(text[i])) ++i;
    return i;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (is_space(c)) continue;
    if (c == '"') {
      std::size_t j = i + 1;
      while (j < text.size() && text[j] != '"') j += text[j] == '\\' ? 2 : 1;
      out.append(text.substr(i, std::min(j, text.size() - 1) - i + 1));
      i = j;
    } else if (c == '{' || c == '[') {
      std::size_t j = next_significant(i + 1);
      if (j < text.size() && text[j] == (c == '{' ? '}' : ']')) {
        out += c;
        out += text[j];
        i = j;
        continue;
      }
      out += c;
      newline(++level);
    } else if (c == '}' || c == ']') {
      newline(--level);
      out += c;
    } else if (c == ',') {
      out += ',';
      newline(level);
    } else if (c == ':') {
      out += ": ";
    } else {
      out += c;
    }
  }
  out += '\n';
  return out;
}

std::string pretty_json(const json::value& v) { return pretty_json(json::serialize(v)); }

}  // namespace canary::ctl
