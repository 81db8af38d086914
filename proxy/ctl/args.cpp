// canaryctl's command line; see args.h.
#include "ctl/args.h"

#include <algorithm>
#include <cctype>

#include "util/duration.h"
#include "util/text.h"

namespace canary::ctl {

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
    {"undo", 1, "undo NAME"},
    {"set-weight", 2, "set-weight NAME N"},
    {"set-upstream", 2, "set-upstream NAME UPSTREAM"},
    {"events", 1, "events NAME"},
    {"analysis", 1, "analysis NAME"},
    {"reload", 0, "reload"},
    {"cluster", 0, "cluster"},
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
      "  --timeout DURATION  wait: give up after this (default 10m, at most 8760h; 90s, 1m30s,\n"
      "                      1.5h, 250ms or an integer number of seconds)\n"
      "  --version           print the version and exit\n"
      "  -h, --help          print this help and exit\n"
      "\n"
      "Exit codes: 0 ok; 1 error (wait: the rollout degraded); 2 wait: timed out; 64 usage "
      "error.\n";
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
      std::string phase = util::to_lower(*v);
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
      auto d = util::parse_duration(*v);
      if (!d) {
        return fail("bad duration '" + *v + "' for --timeout (" +
                    std::string(util::duration_forms) + ")");
      }
      // Compared in the clock's unit, without converting the (maybe huge) value first.
      if (*d > std::chrono::duration_cast<std::chrono::milliseconds>(max_wait_timeout)) {
        return fail("--timeout " + *v + " is too long (at most " +
                    util::format_duration(
                        std::chrono::duration_cast<std::chrono::milliseconds>(max_wait_timeout)) +
                    ")");
      }
      opts.timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(*d);
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
  if (util::to_lower(text.substr(0, 8)) == "https://") {
    r.error = "https is not supported (" + std::string(text) +
              "): the control API speaks plain HTTP; use an http:// URL or a TLS tunnel";
    return r;
  }
  if (util::to_lower(text.substr(0, 7)) != "http://") {
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

}  // namespace canary::ctl
