// canaryctl: argument parsing, text rendering of the control API's JSON, the `wait` logic, an SSE
// parser, and a small blocking HTTP/1.1 client (Beast coroutines run to completion on a private
// io_context per call, so every read can carry a timeout: Beast's synchronous calls ignore
// tcp_stream expiries). Single-threaded; the only Beast translation unit of the CLI.
#include "ctl/canaryctl.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#ifndef CANARY_VERSION
#define CANARY_VERSION "dev"
#endif

namespace canary::ctl {

namespace json = boost::json;
using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Durations

std::optional<milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool bare_number = std::all_of(text.begin(), text.end(),
                                 [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  // A bare (possibly fractional) number means seconds, as in the config file.
  std::string owned(text);
  if (bare_number) owned += 's';
  std::string_view rest = owned;
  double total_ms = 0;
  while (!rest.empty()) {
    std::size_t i = 0;
    bool digits = false, dot = false;
    while (i < rest.size() && ((rest[i] >= '0' && rest[i] <= '9') || (rest[i] == '.' && !dot))) {
      if (rest[i] == '.') {
        dot = true;
      } else {
        digits = true;
      }
      ++i;
    }
    if (!digits) return std::nullopt;
    double value = std::strtod(std::string(rest.substr(0, i)).c_str(), nullptr);
    rest.remove_prefix(i);
    std::size_t u = 0;
    while (u < rest.size() && rest[u] >= 'a' && rest[u] <= 'z') ++u;
    std::string_view unit = rest.substr(0, u);
    rest.remove_prefix(u);
    double scale = 0;
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60'000;
    } else if (unit == "h") {
      scale = 3'600'000;
    } else {
      return std::nullopt;
    }
    total_ms += value * scale;
  }
  // Beyond this the cast to int64 milliseconds would overflow.
  if (total_ms > 9.0e15) return std::nullopt;
  return milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

std::string format_duration(milliseconds d) {
  std::int64_t ms = d.count();
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms == 0) return "0s";
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  std::int64_t s = ms / 1000;
  std::int64_t h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(sec) + "s";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Arguments

namespace {

struct command_spec {
  std::string_view name;
  int positionals;  // exact count
  std::string_view synopsis;
};

constexpr command_spec command_specs[] = {
    {"list", 0, "list"},
    {"get", 1, "get NAME [--watch]"},
    {"promote", 1, "promote NAME [--full]"},
    {"abort", 1, "abort NAME"},
    {"retry", 1, "retry NAME"},
    {"pause", 1, "pause NAME"},
    {"resume", 1, "resume NAME"},
    {"set-weight", 2, "set-weight NAME N"},
    {"set-upstream", 2, "set-upstream NAME UPSTREAM"},
    {"events", 1, "events NAME"},
    {"reload", 0, "reload"},
    {"wait", 1, "wait NAME --for=healthy|paused|degraded [--timeout 10m]"},
    {"version", 0, "version"},
    {"help", 0, "help"},
};

const command_spec* find_command(std::string_view name) {
  for (const auto& spec : command_specs) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

bool looks_negative_number(std::string_view arg) {
  return arg.size() > 1 && arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::string usage() {
  std::string out =
      "canaryctl: drive canary-proxy's control API (like kubectl argo rollouts)\n"
      "\n"
      "Usage: canaryctl [--server URL] [--token-file FILE] [-o json] COMMAND ...\n"
      "\n"
      "Commands:\n";
  for (const auto& spec : command_specs) {
    out += "  ";
    out += spec.synopsis;
    out += '\n';
  }
  out +=
      "\n"
      "Options (before or after the command):\n"
      "  -s, --server URL    control API base URL (default $CANARYCTL_SERVER, else "
      "http://127.0.0.1:9901)\n"
      "  --token-file FILE   send the file's content as 'Authorization: Bearer <token>'\n"
      "  -o, --output json   print the server's JSON instead of text\n"
      "  -w, --watch         get: redraw on every change\n"
      "  --full              promote: skip the remaining steps\n"
      "  --for PHASE         wait: healthy, paused or degraded\n"
      "  --timeout DURATION  wait: give up after this (default 10m; e.g. 90s, 1m30s)\n"
      "  --version           print the version and exit\n"
      "  -h, --help          print this help and exit\n"
      "\n"
      "Exit codes: 0 ok; 1 error (wait: the rollout degraded); 2 usage error (wait: timeout).\n";
  return out;
}

parse_result parse_args(const std::vector<std::string>& args, std::string_view env_server) {
  parse_result result;
  options opts;
  std::vector<std::string> positionals;
  bool server_given = false, help = false, for_given = false;
  std::vector<std::string> command_flags;  // flags valid only for one command, for the check below
  auto fail = [&](std::string message) {
    result.error = std::move(message);
    return result;
  };

  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positionals.insert(positionals.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                         args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-' || looks_negative_number(arg)) {
      positionals.push_back(arg);
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    } else if (arg.starts_with("-o") && arg.size() > 2) {  // -ojson
      name = "-o";
      inline_value = arg.substr(2);
    }
    auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 < args.size()) return args[++i];
      return std::nullopt;
    };
    auto boolean = [&]() { return !inline_value.has_value(); };

    if (name == "-h" || name == "--help") {
      help = true;
    } else if (name == "--version") {
      positionals.insert(positionals.begin(), "version");
    } else if (name == "--server" || name == "-s") {
      auto v = value();
      if (!v || v->empty()) return fail("flag " + name + " needs a URL");
      opts.server = *v;
      server_given = true;
    } else if (name == "--token-file") {
      auto v = value();
      if (!v || v->empty()) return fail("flag --token-file needs a file name");
      opts.token_file = *v;
    } else if (name == "-o" || name == "--output") {
      auto v = value();
      if (!v) return fail("flag " + name + " needs a format (json)");
      if (*v == "json") {
        opts.output = output_format::json;
      } else if (*v == "text" || *v == "human") {
        opts.output = output_format::human;
      } else {
        return fail("unknown output format '" + *v + "' (want json)");
      }
    } else if (name == "--full") {
      if (!boolean()) return fail("flag --full takes no value");
      opts.full = true;
      command_flags.push_back("--full");
    } else if (name == "--watch" || name == "-w") {
      if (!boolean()) return fail("flag --watch takes no value");
      opts.watch = true;
      command_flags.push_back("--watch");
    } else if (name == "--for") {
      auto v = value();
      if (!v) return fail("flag --for needs a phase (healthy, paused or degraded)");
      std::string phase = lower(*v);
      if (phase == "healthy") {
        opts.wait_for = wait_target::healthy;
      } else if (phase == "paused") {
        opts.wait_for = wait_target::paused;
      } else if (phase == "degraded") {
        opts.wait_for = wait_target::degraded;
      } else {
        return fail("unknown phase '" + *v + "' for --for (want healthy, paused or degraded)");
      }
      for_given = true;
      command_flags.push_back("--for");
    } else if (name == "--timeout") {
      auto v = value();
      if (!v) return fail("flag --timeout needs a duration (e.g. 10m, 90s)");
      auto d = parse_duration(*v);
      if (!d) return fail("bad duration '" + *v + "' for --timeout (e.g. 10m, 90s, 1m30s)");
      opts.timeout = *d;
      command_flags.push_back("--timeout");
    } else {
      return fail("unknown flag: " + arg);
    }
  }

  if (help) {
    opts.command = "help";
    result.opts = std::move(opts);
    return result;
  }
  if (positionals.empty()) return fail("missing command");
  opts.command = positionals.front();
  if (opts.command == "-h") opts.command = "help";
  opts.args.assign(positionals.begin() + 1, positionals.end());
  const command_spec* spec = find_command(opts.command);
  if (spec == nullptr) return fail("unknown command '" + opts.command + "'");
  if (static_cast<int>(opts.args.size()) != spec->positionals) {
    return fail(std::string(opts.args.size() < static_cast<std::size_t>(spec->positionals)
                                ? "missing arguments"
                                : "too many arguments") +
                "; usage: canaryctl " + std::string(spec->synopsis));
  }
  for (const auto& flag : command_flags) {
    bool ok = (flag == "--full" && opts.command == "promote") ||
              (flag == "--watch" && opts.command == "get") ||
              ((flag == "--for" || flag == "--timeout") && opts.command == "wait");
    if (!ok) return fail("flag " + flag + " is not valid for '" + opts.command + "'");
  }
  if (opts.command == "wait" && !for_given) {
    return fail("wait needs --for=healthy|paused|degraded");
  }
  if (opts.command == "set-weight") {
    const std::string& n = opts.args[1];
    std::int64_t w = 0;
    bool ok = !n.empty() && n.size() <= 9 &&
              std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (ok) w = std::stoll(n);
    if (!ok) return fail("weight must be a non-negative integer, not '" + n + "'");
    opts.weight = w;
  }
  for (const auto& a : opts.args) {
    if (a.empty()) return fail("empty argument");
  }
  if (!server_given && !env_server.empty()) opts.server = std::string(env_server);
  if (auto url = parse_server_url(opts.server); !url.url) {
    return fail(url.error);
  }
  result.opts = std::move(opts);
  return result;
}

url_result parse_server_url(std::string_view text) {
  url_result r;
  std::string_view rest = text;
  if (lower(text.substr(0, 8)) == "https://") {
    r.error = "https is not supported (" + std::string(text) +
              "): the control API speaks plain HTTP; use an http:// URL or a TLS tunnel";
    return r;
  }
  if (lower(text.substr(0, 7)) != "http://") {
    r.error = "server URL must start with http:// (got '" + std::string(text) + "')";
    return r;
  }
  rest.remove_prefix(7);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  std::string_view path = rest.substr(authority.size());
  if (auto q = path.find_first_of("?#"); q != std::string_view::npos) path = path.substr(0, q);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (authority.find('@') != std::string_view::npos) {
    r.error = "server URL must not carry credentials; use --token-file";
    return r;
  }
  server_url u;
  std::string_view port;
  if (authority.starts_with("[")) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      r.error = "bad IPv6 address in server URL '" + std::string(text) + "'";
      return r;
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        r.error = "bad server URL '" + std::string(text) + "'";
        return r;
      }
      port = after.substr(1);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) {
    r.error = "server URL '" + std::string(text) + "' has no host";
    return r;
  }
  if (!port.empty()) {
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
      r.error = "bad port in server URL '" + std::string(text) + "'";
      return r;
    }
    u.port = std::string(port);
  }
  u.base_path = std::string(path);
  std::string bracketed = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  u.host_header = u.port == "80" ? bracketed : bracketed + ":" + u.port;
  r.url = std::move(u);
  return r;
}

std::string encode_path_segment(std::string_view segment) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rendering

namespace {

const json::value* field(const json::value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(key);
}

std::string number_text(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  std::ostringstream os;
  os << d;
  return os.str();
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

std::string render_step(const json::value& step) {
  if (const json::value* w = field(step, "setWeight"); w && step.as_object().size() == 1) {
    return "setWeight: " + text_of(w);
  }
  if (const json::value* p = field(step, "pause"); p && step.as_object().size() == 1) {
    const json::value* d = field(*p, "duration");
    if (p->is_object() && p->as_object().empty()) return "pause: {}";
    if (d && p->as_object().size() == 1) {
      // The server sends the duration as written ("30s") or as seconds (30).
      if (d->is_string()) return "pause: " + std::string(d->as_string());
      if (auto n = number_of(d)) {
        return "pause: " + format_duration(milliseconds(std::llround(*n * 1000)));
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
  out += line("Stable:", text_of(status, "stable"));
  out += line("Canary:", text_of(status, "canary"));
  std::string paused_by = text_of(status, "paused_by");
  if (paused_by != "-") out += line("Paused by:", paused_by);
  if (auto left = number_of(field(status, "pause_remaining_s"))) {
    // Whole seconds, rounded up: "0s" would read as "already over".
    auto ms = milliseconds(static_cast<std::int64_t>(std::ceil(std::max(0.0, *left))) * 1000);
    std::string text = format_duration(ms);
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

// ---------------------------------------------------------------------------------------------
// wait

wait_decision decide_wait(wait_target target, std::string_view phase) {
  if (phase == to_string(target)) return wait_decision::reached;
  if (phase == "Degraded") return wait_decision::degraded;
  return wait_decision::keep_waiting;
}

std::string_view to_string(wait_target target) {
  switch (target) {
    case wait_target::healthy:
      return "Healthy";
    case wait_target::paused:
      return "Paused";
    case wait_target::degraded:
      return "Degraded";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// Server-sent events (WHATWG HTML "Interpreting an event stream")

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

// ---------------------------------------------------------------------------------------------
// HTTP client

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using executor_t = net::io_context::executor_type;
using stream_t = beast::basic_stream<tcp, executor_t>;
using resolver_t = net::ip::basic_resolver<tcp, executor_t>;
template <class T>
using task = net::awaitable<T, executor_t>;
using steady = std::chrono::steady_clock;

auto use_tuple() { return net::as_tuple(net::use_awaitable_t<executor_t>{}); }

// Ordinary calls answer at once; this only catches a hung server.
constexpr auto call_timeout = std::chrono::seconds(10);
// The server sends ": ping" every 15 s on a watch; three missed pings mean the stream is dead.
constexpr auto watch_idle_limit = std::chrono::seconds(45);
// Error bodies and statuses are small; anything bigger is not our server.
constexpr std::uint64_t max_reply_body = 64 * 1024 * 1024;
// Delay before re-opening a dropped watch, so a restarting proxy is not hammered.
constexpr auto reconnect_delay = std::chrono::seconds(1);

struct http_reply {
  unsigned status = 0;
  std::string reason;
  std::string body;
};

enum class failure { none, unreachable, timeout };

struct call_result {
  failure fail = failure::none;
  std::string message;  // for fail != none
  http_reply reply;
};

enum class watch_end { stopped, deadline, dropped, http_error, unreachable, bad_data };

struct watch_result {
  watch_end end = watch_end::dropped;
  std::string message;
  http_reply reply;  // for http_error
};

std::string describe(const beast::error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  return ec.message();
}

class api_client {
 public:
  api_client(server_url url, std::string display_url, std::string token)
      : url_(std::move(url)), display_url_(std::move(display_url)), token_(std::move(token)) {}

  call_result call(http::verb method, const std::string& path, std::optional<std::string> body) {
    return run_task(do_call(method, path, std::move(body)));
  }

  // Follows a text/event-stream at `path`, calling on_event for each event until it returns
  // false, the stream ends or `deadline` (if any) passes.
  watch_result watch(const std::string& path, std::optional<steady::time_point> deadline,
                     const std::function<bool(const sse_event&)>& on_event) {
    return run_task(do_watch(path, deadline, on_event));
  }

  const std::string& display_url() const { return display_url_; }

 private:
  template <class T>
  T run_task(task<T> t) {
    std::optional<T> result;
    std::exception_ptr error;
    net::co_spawn(ioc_.get_executor(), std::move(t), [&](std::exception_ptr e, T value) {
      error = e;
      if (!e) result = std::move(value);
    });
    ioc_.restart();
    ioc_.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }

  http::request<http::string_body> make_request(http::verb method, const std::string& path,
                                                std::optional<std::string> body,
                                                std::string_view accept) const {
    http::request<http::string_body> req{method, url_.base_path + path, 11};
    req.set(http::field::host, url_.host_header);
    req.set(http::field::user_agent, "canaryctl/" CANARY_VERSION);
    req.set(http::field::accept, accept);
    if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
    if (body) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(*body);
    }
    req.prepare_payload();
    return req;
  }

  // Resolves and connects within call_timeout; returns the failure text or "".
  task<std::string> connect(stream_t& stream) {
    resolver_t resolver(ioc_.get_executor());
    auto [rec, endpoints] = co_await resolver.async_resolve(url_.host, url_.port, use_tuple());
    if (rec) co_return "cannot reach " + display_url_ + ": " + describe(rec);
    stream.expires_after(call_timeout);
    auto [cec, ep] = co_await stream.async_connect(endpoints, use_tuple());
    if (cec) co_return "cannot reach " + display_url_ + ": " + describe(cec);
    co_return std::string();
  }

  task<call_result> do_call(http::verb method, std::string path, std::optional<std::string> body) {
    call_result r;
    stream_t stream(ioc_.get_executor());
    if (std::string err = co_await connect(stream); !err.empty()) {
      r.fail = failure::unreachable;
      r.message = err;
      co_return r;
    }
    auto req = make_request(method, path, std::move(body), "application/json");
    stream.expires_after(call_timeout);
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple());
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_reply_body);
    beast::error_code rec;
    if (!wec) {
      std::tie(rec, std::ignore) = co_await http::async_read(stream, buffer, parser, use_tuple());
    }
    if (beast::error_code ec = wec ? wec : rec) {
      r.fail = ec == beast::error::timeout ? failure::timeout : failure::unreachable;
      r.message = "request to " + display_url_ + " failed: " + describe(ec);
      co_return r;
    }
    auto& res = parser.get();
    r.reply.status = res.result_int();
    r.reply.reason = std::string(res.reason());
    r.reply.body = std::move(res.body());
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return r;
  }

  task<watch_result> do_watch(std::string path, std::optional<steady::time_point> deadline,
                              const std::function<bool(const sse_event&)>& on_event) {
    watch_result r;
    stream_t stream(ioc_.get_executor());
    if (std::string err = co_await connect(stream); !err.empty()) {
      r.end = watch_end::unreachable;
      r.message = err;
      co_return r;
    }
    // Arms the stream for the next read: the wait deadline or the idle limit, whichever is first;
    // returns true when the deadline (not the idle limit) is the one armed.
    auto arm = [&](steady::duration idle) {
      auto at = steady::now() + idle;
      if (deadline && *deadline <= at) {
        stream.expires_at(*deadline);
        return true;
      }
      stream.expires_at(at);
      return false;
    };
    auto timed_out = [&](bool deadline_armed) {
      r.end = deadline_armed ? watch_end::deadline : watch_end::dropped;
      r.message = deadline_armed
                      ? "deadline passed"
                      : "no data from the server for " + format_duration(watch_idle_limit);
      return r;
    };

    auto req = make_request(http::verb::get, path, std::nullopt, "text/event-stream");
    bool by_deadline = arm(call_timeout);
    auto [wec, wn] = co_await http::async_write(stream, req, use_tuple());
    if (wec) {
      if (wec == beast::error::timeout) co_return timed_out(by_deadline);
      r.message = describe(wec);
      co_return r;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);  // a watch is endless by design
    by_deadline = arm(call_timeout);
    auto [hec, hn] = co_await http::async_read_header(stream, buffer, parser, use_tuple());
    if (hec) {
      if (hec == beast::error::timeout) co_return timed_out(by_deadline);
      r.message = describe(hec);
      co_return r;
    }
    bool ok = parser.get().result() == http::status::ok;
    if (!ok) {
      r.end = watch_end::http_error;
      r.reply.status = parser.get().result_int();
      r.reply.reason = std::string(parser.get().reason());
    }
    sse_parser sse;
    std::vector<sse_event> events;
    char chunk[16 * 1024];
    while (!parser.is_done()) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      by_deadline = arm(ok ? std::chrono::duration_cast<steady::duration>(watch_idle_limit)
                           : std::chrono::duration_cast<steady::duration>(call_timeout));
      auto [ec, n] = co_await http::async_read_some(stream, buffer, parser, use_tuple());
      if (ec == http::error::need_buffer) ec = {};
      std::size_t got = sizeof chunk - parser.get().body().size;
      if (!ok) {
        if (r.reply.body.size() < max_reply_body) r.reply.body.append(chunk, got);
        if (ec) break;  // best effort: the status line already says what went wrong
        continue;
      }
      if (got > 0) {
        events.clear();
        if (!sse.feed(std::string_view(chunk, got), events)) {
          r.end = watch_end::bad_data;
          r.message = "event stream line too long";
          co_return r;
        }
        for (const auto& e : events) {
          if (!on_event(e)) {
            r.end = watch_end::stopped;
            co_return r;
          }
        }
      }
      if (ec) {
        if (ec == beast::error::timeout) co_return timed_out(by_deadline);
        r.end = watch_end::dropped;
        r.message = ec == http::error::end_of_stream || ec == net::error::eof
                        ? "the server closed the stream"
                        : describe(ec);
        co_return r;
      }
    }
    if (ok) {
      r.end = watch_end::dropped;
      r.message = "the server ended the stream";
    }
    co_return r;
  }

  server_url url_;
  std::string display_url_;
  std::string token_;
  net::io_context ioc_;
};

// ---------------------------------------------------------------------------------------------
// Commands

std::string trim(std::string_view s) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

class cli {
 public:
  cli(const options& opts, api_client& client) : opts_(opts), client_(client) {}

  int dispatch() {
    const std::string& cmd = opts_.command;
    if (cmd == "list") return list();
    if (cmd == "get") return opts_.watch ? watch_get() : get();
    if (cmd == "events") return events();
    if (cmd == "wait") return wait();
    if (cmd == "reload") return reload();
    return mutate();
  }

 private:
  std::string rollout_path() const {
    return "/api/v1/rollouts/" + encode_path_segment(opts_.args.at(0));
  }
  const std::string& name() const { return opts_.args.at(0); }

  // Prints why a call failed: transport problems, or the API's {"error", "errors"}.
  static void print_http_error(const http_reply& reply) {
    std::error_code ignored;
    json::value body = json::parse(reply.body, ignored);
    if (!ignored && field(body, "error") && field(body, "error")->is_string()) {
      std::cerr << "error: " << field(body, "error")->as_string().c_str() << "\n";
      if (const json::value* errors = field(body, "errors"); errors && errors->is_array()) {
        for (const auto& e : errors->as_array()) std::cerr << text_of(&e) << "\n";
      }
      return;
    }
    std::cerr << "error: HTTP " << reply.status << " " << reply.reason;
    std::string text = trim(reply.body);
    if (!text.empty() && text.size() < 500) std::cerr << ": " << text;
    std::cerr << "\n";
  }

  // One API call; returns the parsed JSON of a 2xx answer, or prints the error and returns
  // nullopt.
  std::optional<json::value> call(http::verb method, const std::string& path,
                                  std::optional<std::string> body = std::nullopt) {
    call_result r = client_.call(method, path, std::move(body));
    if (r.fail != failure::none) {
      std::cerr << "error: " << r.message << "\n";
      return std::nullopt;
    }
    if (r.reply.status < 200 || r.reply.status >= 300) {
      print_http_error(r.reply);
      return std::nullopt;
    }
    std::error_code ec;
    json::value v = json::parse(r.reply.body, ec);
    if (ec) {
      std::cerr << "error: the server's answer is not JSON (" << ec.message() << ")\n";
      return std::nullopt;
    }
    return v;
  }

  void print_json(const json::value& v) { std::cout << pretty_json(v) << std::flush; }

  int list() {
    auto v = call(http::verb::get, "/api/v1/rollouts");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      const json::value* rollouts = field(*v, "rollouts");
      std::cout << render_list(rollouts ? *rollouts : json::value()) << std::flush;
    }
    return 0;
  }

  int get() {
    auto v = call(http::verb::get, rollout_path());
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      std::cout << render_get(*v) << std::flush;
    }
    return 0;
  }

  int events() {
    auto v = call(http::verb::get, rollout_path() + "/events");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      const json::value* list = field(*v, "events");
      std::cout << render_events(list ? *list : json::value()) << std::flush;
    }
    return 0;
  }

  int reload() {
    auto v = call(http::verb::post, "/api/v1/config/reload");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
      return 0;
    }
    std::cout << "config reloaded\n";
    if (const json::value* warnings = field(*v, "warnings"); warnings && warnings->is_array()) {
      for (const auto& w : warnings->as_array()) std::cerr << "warning: " << text_of(&w) << "\n";
    }
    std::cout << std::flush;
    return 0;
  }

  int mutate() {
    const std::string& cmd = opts_.command;
    http::verb method = http::verb::post;
    std::string path = rollout_path();
    std::optional<std::string> body;
    std::string done;
    if (cmd == "promote") {
      path += "/promote";
      if (opts_.full) body = R"({"full": true})";
      done = opts_.full ? "fully promoted" : "promoted";
    } else if (cmd == "abort" || cmd == "retry" || cmd == "pause" || cmd == "resume") {
      path += "/" + cmd;
      done = cmd == "abort"   ? "aborted"
             : cmd == "retry" ? "retried"
             : cmd == "pause" ? "paused"
                              : "resumed";
    } else if (cmd == "set-weight") {
      method = http::verb::put;
      path += "/weight";
      body = json::serialize(json::object{{"weight", opts_.weight}});
      done = "weight set to " + std::to_string(opts_.weight);
    } else if (cmd == "set-upstream") {
      method = http::verb::put;
      path += "/upstream";
      body = json::serialize(json::object{{"upstream", opts_.args.at(1)}});
      done = "upstream set to '" + opts_.args.at(1) + "'";
    } else {
      std::cerr << "error: unknown command '" << cmd << "'\n";
      return 2;
    }
    auto v = call(method, path, std::move(body));
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      std::cout << "rollout '" << name() << "' " << done << "\n"
                << render_status_line(*v) << "\n"
                << std::flush;
    }
    return 0;
  }

  // Events for other routes (on a shared stream) or of other types are skipped.
  std::optional<json::value> status_of(const sse_event& e) {
    if (e.type != "status") return std::nullopt;
    std::error_code ec;
    json::value v = json::parse(e.data, ec);
    if (ec || !v.is_object()) return std::nullopt;
    if (const json::value* n = field(v, "name"); n && n->is_string() && n->as_string() != name()) {
      return std::nullopt;
    }
    return v;
  }

  int report_watch_failure(const watch_result& r) {
    switch (r.end) {
      case watch_end::http_error:
        print_http_error(r.reply);
        break;
      case watch_end::unreachable:
        std::cerr << "error: " << r.message << "\n";
        break;
      default:
        std::cerr << "error: watch of rollout '" << name() << "' ended: " << r.message << "\n";
        break;
    }
    return 1;
  }

  int watch_get() {
    bool tty = ::isatty(STDOUT_FILENO) == 1;
    bool first = true;
    watch_result r =
        client_.watch(rollout_path() + "/watch", std::nullopt, [&](const sse_event& e) {
          auto status = status_of(e);
          if (!status) return true;
          if (opts_.output == output_format::json) {
            std::cout << json::serialize(*status) << "\n";
          } else if (tty) {
            std::cout << "\x1b[H\x1b[2J" << render_get(*status);
          } else {
            if (!first) std::cout << "---\n";
            std::cout << render_get(*status);
          }
          first = false;
          std::cout << std::flush;
          return true;
        });
    return report_watch_failure(r);
  }

  void print_final(const json::value& status) {
    if (opts_.output == output_format::json) {
      print_json(status);
    } else {
      std::cout << render_status_line(status) << "\n" << std::flush;
    }
  }

  int finish_wait(wait_decision d, const json::value& status) {
    print_final(status);
    if (d == wait_decision::reached) return 0;
    std::cerr << "error: rollout '" << name() << "' is Degraded";
    if (std::string m = text_of(status, "message"); m != "-" && !m.empty()) std::cerr << ": " << m;
    std::cerr << "\n";
    return 1;
  }

  int wait() {
    auto deadline = steady::now() + opts_.timeout;
    // A plain GET first: it answers "already there" at once and turns a wrong name into a clean
    // 404 before any streaming starts.
    auto first = call(http::verb::get, rollout_path());
    if (!first) return 1;
    json::value last = *first;
    auto decision = decide_wait(opts_.wait_for, text_of(last, "phase"));
    if (decision != wait_decision::keep_waiting) return finish_wait(decision, last);

    std::string last_problem;
    while (steady::now() < deadline) {
      watch_result r = client_.watch(rollout_path() + "/watch", deadline, [&](const sse_event& e) {
        auto status = status_of(e);
        if (!status) return true;
        last = std::move(*status);
        decision = decide_wait(opts_.wait_for, text_of(last, "phase"));
        return decision == wait_decision::keep_waiting;
      });
      if (r.end == watch_end::stopped) return finish_wait(decision, last);
      if (r.end == watch_end::deadline) break;
      if (r.end == watch_end::http_error) return report_watch_failure(r);
      // Dropped or unreachable: the proxy may be restarting; try again within the timeout.
      last_problem = r.message;
      auto left = deadline - steady::now();
      if (left <= steady::duration::zero()) break;
      std::this_thread::sleep_for(std::min<steady::duration>(reconnect_delay, left));
    }
    std::cerr << "error: timed out after " << format_duration(opts_.timeout)
              << " waiting for rollout '" << name() << "' to be " << to_string(opts_.wait_for);
    if (!last_problem.empty()) std::cerr << " (last problem: " << last_problem << ")";
    std::cerr << "\n";
    print_final(last);
    return 2;
  }

  const options& opts_;
  api_client& client_;
};

}  // namespace

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  const char* env = std::getenv("CANARYCTL_SERVER");
  parse_result parsed = parse_args(args, env ? env : "");
  if (!parsed.opts) {
    std::cerr << "canaryctl: " << parsed.error << "\nRun 'canaryctl help' for usage.\n";
    return 2;
  }
  const options& opts = *parsed.opts;
  if (opts.command == "help") {
    std::cout << usage();
    return 0;
  }
  if (opts.command == "version") {
    if (opts.output == output_format::json) {
      std::cout << pretty_json(json::object{{"client", CANARY_VERSION}});
    } else {
      std::cout << "canaryctl " CANARY_VERSION "\n";
    }
    return 0;
  }
  std::string token;
  if (!opts.token_file.empty()) {
    std::ifstream in(opts.token_file, std::ios::binary);
    if (!in) {
      std::cerr << "error: cannot read token file '" << opts.token_file
                << "': " << std::strerror(errno) << "\n";
      return 1;
    }
    std::stringstream content;
    content << in.rdbuf();
    token = trim(content.str());
    if (token.empty()) {
      std::cerr << "error: token file '" << opts.token_file << "' is empty\n";
      return 1;
    }
  }
  url_result url = parse_server_url(opts.server);  // validated by parse_args
  std::string display = opts.server;
  while (display.size() > 7 && display.back() == '/') display.pop_back();
  try {
    api_client client(*url.url, display, token);
    cli c(opts, client);
    return c.dispatch();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace canary::ctl
