// YAML (DESIGN §2) -> proxy_config, validated. Every error is collected with its 1-based position
// and key path so `--check` and a refused reload can list them all at once, like a compiler.
// The only file that includes yaml-cpp. Control thread (or main) only; keeps no state between
// calls. Host names are resolved here, once per load, so nothing resolves per request.

#include "config/load.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <re2/re2.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <utility>

namespace canary::config {
namespace {

constexpr std::string_view duration_forms =
    "use 30s, 1m30s, 1.5h, 250ms or an integer number of seconds";

// ---- text helpers

// RFC 9110 §5.6.2 tchar: header field names (§5.1) and cookie names (RFC 6265 §4.1.1) are tokens.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Letters, digits, '.', '_' and '-': route and upstream names (they appear in URLs such as
// /api/v1/rollouts/NAME and in metric labels) and host names (IP literals included).
bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool is_ipv6_literal(const std::string& s) {
  in6_addr a{};
  return inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

template <class Range>
std::string join(const Range& items, std::string_view sep) {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// ---- positions and key paths

source_pos to_pos(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string child_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
}

std::string index_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

// A value in the document, with what an error about it should point at.
struct item {
  YAML::Node node;
  std::string path;
  YAML::Mark mark;
};

struct entry {
  std::string key;
  YAML::Mark key_mark;
  item value;
};

// The keys of one mapping, each once: duplicates and unknown keys were reported and dropped.
class mapping_view {
 public:
  explicit mapping_view(item self) : self_(std::move(self)) {}
  void add(entry e) { entries_.push_back(std::move(e)); }
  const item* get(std::string_view key) const {
    for (const auto& e : entries_)
      if (e.key == key) return &e.value;
    return nullptr;
  }
  const std::vector<entry>& entries() const { return entries_; }
  const item& self() const { return self_; }

 private:
  item self_;
  std::vector<entry> entries_;
};

// Walks YAML nodes with their key paths and records every error instead of throwing, so one pass
// reports all of them. Each reader returns nullopt (error recorded) when the value is unusable.
class walker {
 public:
  walker(const std::string& file, std::vector<config_error>& errors)
      : file_(file), errors_(errors) {}

  void error(const YAML::Mark& mark, std::string path, std::string message) {
    source_pos p = to_pos(mark);
    errors_.push_back({file_, p.line, p.col, std::move(path), std::move(message)});
  }
  void error(const item& at, std::string message) { error(at.mark, at.path, std::move(message)); }
  void error(source_pos p, std::string path, std::string message) {
    errors_.push_back({file_, p.line, p.col, std::move(path), std::move(message)});
  }

  // Accepts a mapping with string keys; any key when `allowed` is empty (names), else only those.
  std::optional<mapping_view> mapping(const item& at,
                                      std::initializer_list<std::string_view> allowed) {
    if (!at.node.IsMap()) {
      error(at, "expected a mapping");
      return std::nullopt;
    }
    mapping_view view(at);
    // By value: yaml-cpp's iterator hands out a temporary pair, so references would dangle.
    for (const auto& kv : at.node) {
      const YAML::Node k = kv.first;
      const YAML::Node v = kv.second;
      if (!k.IsScalar()) {
        error(k.Mark(), at.path, "expected a string key");
        continue;
      }
      const std::string& key = k.Scalar();
      std::string path = child_path(at.path, key);
      if (allowed.size() != 0 && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        error(k.Mark(), path,
              "unknown key " + quote(key) + " (expected one of: " + join(allowed, ", ") + ")");
        continue;
      }
      // yaml-cpp keeps both entries of a repeated key; lookups would silently take the first.
      if (view.get(key) != nullptr) {
        error(k.Mark(), path, "duplicate key " + quote(key));
        continue;
      }
      view.add({key, k.Mark(), item{v, path, value_mark(k, v)}});
    }
    return view;
  }

  // Reports every required key missing from `m`, at the mapping itself.
  void require(const mapping_view& m, std::initializer_list<std::string_view> keys) {
    for (std::string_view k : keys)
      if (m.get(k) == nullptr) error(m.self(), "missing required key " + quote(k));
  }

  std::optional<std::vector<item>> sequence(const item& at) {
    if (!at.node.IsSequence()) {
      error(at, "expected a list");
      return std::nullopt;
    }
    std::vector<item> out;
    std::size_t i = 0;
    for (const auto& n : at.node) {
      YAML::Mark m = n.Mark().is_null() ? at.mark : n.Mark();
      out.push_back(item{n, index_path(at.path, i++), m});
    }
    return out;
  }

  std::optional<std::string> string(const item& at) {
    if (!at.node.IsScalar()) {
      error(at, "expected a string");
      return std::nullopt;
    }
    return at.node.Scalar();
  }

  std::optional<std::int64_t> integer(const item& at, std::int64_t min, std::int64_t max) {
    auto text = integer_text(at);
    if (!text) return std::nullopt;
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || end != text->data() + text->size()) {
      error(at, quote(*text) + " is out of range");
      return std::nullopt;
    }
    if (v < min || v > max) {
      error(at, range_message(v < min, std::to_string(min), std::to_string(max),
                              max < std::numeric_limits<int>::max()));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::uint64_t> unsigned_integer(const item& at, std::uint64_t min,
                                                std::uint64_t max) {
    auto text = integer_text(at);
    if (!text) return std::nullopt;
    if (text->front() == '-') {
      error(at, "must be at least " + std::to_string(min));
      return std::nullopt;
    }
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec != std::errc() || end != text->data() + text->size()) {
      error(at, quote(*text) + " is out of range");
      return std::nullopt;
    }
    if (v < min || v > max) {
      error(at, range_message(v < min, std::to_string(min), std::to_string(max),
                              max < static_cast<std::uint64_t>(std::numeric_limits<int>::max())));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const item& at) {
    // YAML 1.2 core schema only: yaml-cpp would also take yes/no/on/off, which YAML 1.2 (and
    // most other tools reading the same file) treat as strings.
    if (at.node.IsScalar() && at.node.Tag() != "!") {
      const std::string& s = at.node.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    error(at, "expected true or false");
    return std::nullopt;
  }

  // A duration: a string like "1m30s" or an integer number of seconds.
  std::optional<duration> duration_value(const item& at, bool allow_zero) {
    if (!at.node.IsScalar()) {
      error(at, "expected a duration (" + std::string(duration_forms) + ")");
      return std::nullopt;
    }
    const std::string& s = at.node.Scalar();
    auto d = parse_duration(s);
    if (!d) {
      error(at, "bad duration " + quote(s) + " (" + std::string(duration_forms) + ")");
      return std::nullopt;
    }
    if (!allow_zero && d->count() == 0) {
      error(at, "must be greater than 0");
      return std::nullopt;
    }
    return d;
  }

 private:
  // Where to point for a key's value: an empty value has no position of its own (yaml-cpp marks
  // wherever the next token starts, often the next line), so point at its key instead.
  static YAML::Mark value_mark(const YAML::Node& k, const YAML::Node& v) {
    if (v.IsNull() && (v.Mark().is_null() || v.Mark().line != k.Mark().line)) return k.Mark();
    return v.Mark();
  }

  // A bound that is only the type's limit is not worth naming: "must be at least 1" reads better
  // than "must be between 1 and 18446744073709551615".
  static std::string range_message(bool below, const std::string& min, const std::string& max,
                                   bool bounded) {
    if (bounded) return "must be between " + min + " and " + max;
    return below ? "must be at least " + min : "must be at most " + max;
  }

  // The text of a plain scalar written as a decimal integer; quoted "5" is a string, not 5.
  std::optional<std::string> integer_text(const item& at) {
    if (at.node.IsScalar() && at.node.Tag() != "!") {
      const std::string& s = at.node.Scalar();
      std::string_view digits(s);
      if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
      if (!digits.empty() &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return s;
    }
    error(at, "expected an integer");
    return std::nullopt;
  }

  const std::string& file_;
  std::vector<config_error>& errors_;
};

// ---- addresses

struct host_port {
  std::string host;  // without brackets
  std::uint16_t port = 0;
  bool ipv6_literal = false;
};

// "host:port" or "[v6]:port"; on failure `why` says what is wrong.
// Listen addresses may use port 0 (any free port, logged at start: tests rely on it).
std::optional<host_port> split_host_port(std::string_view text, std::string& why,
                                         bool allow_port_zero = false) {
  constexpr std::string_view example = " (expected host:port, e.g. 127.0.0.1:9001 or [::1]:9001)";
  host_port out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      why = "missing \"]\"" + std::string(example);
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    if (!is_ipv6_literal(out.host)) {
      why = quote(out.host) + " is not an IPv6 address";
      return std::nullopt;
    }
    out.ipv6_literal = true;
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      why = "missing \":port\"" + std::string(example);
      return std::nullopt;
    }
    port = rest.substr(1);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      why = "missing \":port\"" + std::string(example);
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      why = "IPv6 addresses need brackets, e.g. [::1]:9001";
      return std::nullopt;
    }
    if (out.host.empty()) {
      why = "missing host" + std::string(example);
      return std::nullopt;
    }
    if (!is_name(out.host)) {
      why = quote(out.host) + " is not a host name or IP address";
      return std::nullopt;
    }
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value < (allow_port_zero ? 0 : 1) || value > 65535) {
    why = allow_port_zero ? "port must be 0-65535" : "port must be 1-65535";
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

struct resolution {
  std::string address;  // numeric, IPv6 without brackets; empty on failure
  std::string error;
};

// Blocking getaddrinfo, acceptable on the control thread at load time only. IPv4 is preferred
// because demo backends and most sidecar set-ups listen on 127.0.0.1 even where "localhost" also
// maps to ::1.
resolution resolve(const host_port& hp) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (hp.ipv6_literal ? AI_NUMERICHOST : 0);
  addrinfo* list = nullptr;
  std::string service = std::to_string(hp.port);
  int rc = getaddrinfo(hp.host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc);
    return {"", "cannot resolve " + quote(hp.host) + ": " + why};
  }
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
    if (a->ai_family == AF_INET6 && pick == nullptr) pick = a;
  }
  resolution out;
  char buf[INET6_ADDRSTRLEN] = {};
  if (pick != nullptr && pick->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr, buf,
              sizeof buf);
    out.address = buf;
  } else if (pick != nullptr) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr, buf,
              sizeof buf);
    out.address = buf;
  } else {
    out.error = "cannot resolve " + quote(hp.host) + ": no IPv4 or IPv6 address";
  }
  freeaddrinfo(list);
  return out;
}

// 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: only local processes can reach these.
bool is_loopback(const std::string& numeric) {
  in_addr v4{};
  if (inet_pton(AF_INET, numeric.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, numeric.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

// ---- the reader

// Where a route's name stood, for the cross-route checks that run after the whole file is read.
struct route_marks {
  std::string path;
  source_pos name_pos;
};

class config_reader {
 public:
  config_reader(const std::string& file, std::vector<config_error>& errors)
      : w_(file, errors), base_dir_(base_dir_of(file)) {}

  proxy_config read(const YAML::Node& root, const std::string& file) {
    proxy_config cfg;
    cfg.file = file;
    read_root(item{root, "", root.Mark()}, cfg);
    cfg.state_file = resolve_path(cfg.state_file);
    if (!cfg.admin.token_file.empty()) cfg.admin.token_file = resolve_path(cfg.admin.token_file);
    if (cfg.access_log.path != "-") cfg.access_log.path = resolve_path(cfg.access_log.path);
    check_routes(cfg);
    return cfg;
  }

 private:
  static std::filesystem::path base_dir_of(const std::string& file) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(std::filesystem::path(file), ec);
    if (ec) return std::filesystem::path(file).parent_path();
    return abs.parent_path();
  }

  std::string resolve_path(const std::string& p) const {
    std::filesystem::path path(p);
    if (path.is_relative()) path = base_dir_ / path;
    return path.lexically_normal().string();
  }

  void read_root(const item& at, proxy_config& cfg) {
    if (at.node.IsNull()) {
      w_.error(at, "the config is empty (upstreams and routes are required)");
      return;
    }
    auto m = w_.mapping(at, {"listen", "workers", "admin", "state_file", "limits", "timeouts",
                             "access_log", "upstreams", "routes"});
    if (!m) return;
    w_.require(*m, {"upstreams", "routes"});
    if (auto* v = m->get("listen")) read_listen(*v, cfg.listen);
    if (auto* v = m->get("workers"))
      if (auto n = w_.integer(*v, 0, std::numeric_limits<int>::max()))
        cfg.workers = static_cast<int>(*n);
    if (auto* v = m->get("admin")) read_admin(*v, cfg.admin);
    if (auto* v = m->get("state_file"))
      if (auto s = w_.string(*v)) {
        if (s->empty())
          w_.error(*v, "must not be empty (the rollout state is kept there)");
        else
          cfg.state_file = *s;
      }
    if (auto* v = m->get("limits")) read_limits(*v, cfg.limits);
    if (auto* v = m->get("timeouts")) read_timeouts(*v, cfg.timeouts);
    if (auto* v = m->get("access_log")) read_access_log(*v, cfg.access_log);
    if (auto* v = m->get("upstreams")) read_upstreams(*v, cfg.upstreams);
    if (auto* v = m->get("routes")) read_routes(*v, cfg.routes);
  }

  // A listen address: its host is stored numeric so the server binds without resolving.
  std::optional<std::string> read_listen(const item& at, listen_config& out) {
    auto text = w_.string(at);
    if (!text) return std::nullopt;
    std::string why;
    auto hp = split_host_port(*text, why, true);
    if (!hp) {
      w_.error(at, "bad address " + quote(*text) + ": " + why);
      return std::nullopt;
    }
    resolution r = resolve(*hp);
    if (!r.error.empty()) {
      w_.error(at, r.error);
      return std::nullopt;
    }
    out = listen_config{r.address, hp->port, *text};
    return r.address;
  }

  void read_admin(const item& at, admin_config& out) {
    auto m = w_.mapping(at, {"listen", "token_file"});
    if (!m) return;
    std::optional<std::string> address;
    if (auto* v = m->get("listen")) address = read_listen(*v, out.listen);
    if (auto* v = m->get("token_file"))
      if (auto s = w_.string(*v)) out.token_file = *s;
    if (address && !is_loopback(*address) && out.listen.text.rfind("localhost:", 0) != 0 &&
        out.token_file.empty())
      w_.error(*m->get("listen"),
               "admin listens on a non-loopback address without admin.token_file: anyone who "
               "can reach it could shift traffic");
  }

  void read_limits(const item& at, limits_config& out) {
    auto m = w_.mapping(at, {"max_request_header_bytes", "max_header_fields",
                             "max_request_body_bytes", "max_connections"});
    if (!m) return;
    constexpr auto size_max = std::numeric_limits<std::size_t>::max();
    auto positive = [&](std::string_view key, auto& field) {
      if (auto* v = m->get(key))
        if (auto n = w_.unsigned_integer(*v, 1, size_max)) field = *n;
    };
    positive("max_request_header_bytes", out.max_request_header_bytes);
    positive("max_header_fields", out.max_header_fields);
    positive("max_request_body_bytes", out.max_request_body_bytes);
    positive("max_connections", out.max_connections);
  }

  void read_timeouts(const item& at, timeouts_config& out) {
    auto m = w_.mapping(at, {"client_header", "client_idle", "client_body_idle", "upstream_connect",
                             "upstream_response", "upstream_idle", "drain"});
    if (!m) return;
    // A zero drain means "cut at once", which is meaningful; a zero wait anywhere else would
    // fail every request.
    auto read = [&](std::string_view key, duration& field, bool allow_zero) {
      if (auto* v = m->get(key))
        if (auto d = w_.duration_value(*v, allow_zero)) field = *d;
    };
    read("client_header", out.client_header, false);
    read("client_idle", out.client_idle, false);
    read("client_body_idle", out.client_body_idle, false);
    read("upstream_connect", out.upstream_connect, false);
    read("upstream_response", out.upstream_response, false);
    read("upstream_idle", out.upstream_idle, false);
    read("drain", out.drain, true);
  }

  void read_access_log(const item& at, access_log_config& out) {
    auto m = w_.mapping(at, {"enabled", "path", "format"});
    if (!m) return;
    if (auto* v = m->get("enabled"))
      if (auto b = w_.boolean(*v)) out.enabled = *b;
    if (auto* v = m->get("path"))
      if (auto s = w_.string(*v)) {
        if (s->empty())
          w_.error(*v, "must not be empty (use \"-\" for stdout)");
        else
          out.path = *s;
      }
    if (auto* v = m->get("format"))
      if (auto s = w_.string(*v)) {
        if (*s == "json" || *s == "text")
          out.format = *s;
        else
          w_.error(*v, "unknown format " + quote(*s) + " (expected json or text)");
      }
  }

  void read_upstreams(const item& at, std::vector<upstream_config>& out) {
    auto m = w_.mapping(at, {});
    if (!m) return;
    if (m->entries().empty()) w_.error(at, "expected at least one upstream");
    for (const auto& e : m->entries()) {
      upstream_config u;
      u.name = e.key;
      u.pos = to_pos(e.key_mark);
      if (!is_name(e.key))
        w_.error(e.key_mark, e.value.path,
                 "bad upstream name " + quote(e.key) +
                     " (use letters, digits, \".\", \"_\" and \"-\": it appears in URLs)");
      read_upstream(e.value, u);
      out.push_back(std::move(u));
    }
  }

  void read_upstream(const item& at, upstream_config& out) {
    auto m = w_.mapping(at, {"endpoints", "health_check", "outlier"});
    if (!m) return;
    w_.require(*m, {"endpoints"});
    if (auto* v = m->get("endpoints"))
      if (auto list = w_.sequence(*v)) {
        if (list->empty()) w_.error(*v, "expected at least one endpoint");
        for (const auto& ep : *list)
          if (auto e = read_endpoint(ep)) out.endpoints.push_back(std::move(*e));
      }
    if (auto* v = m->get("health_check")) read_health_check(*v, out.health_check.emplace());
    if (auto* v = m->get("outlier")) read_outlier(*v, out.outlier.emplace());
  }

  std::optional<endpoint_config> read_endpoint(const item& at) {
    auto text = w_.string(at);
    if (!text) return std::nullopt;
    std::string why;
    auto hp = split_host_port(*text, why);
    if (!hp) {
      w_.error(at, "bad address " + quote(*text) + ": " + why);
      return std::nullopt;
    }
    resolution r = resolve(*hp);
    if (!r.error.empty()) {
      w_.error(at, r.error);
      return std::nullopt;
    }
    return endpoint_config{*text, hp->host, r.address, hp->port};
  }

  void read_health_check(const item& at, health_check_config& out) {
    auto m = w_.mapping(at, {"path", "interval", "timeout", "healthy", "unhealthy"});
    if (!m) return;
    if (auto* v = m->get("path"))
      if (auto s = w_.string(*v)) {
        if (s->empty() || s->front() != '/')
          w_.error(*v, "must start with \"/\"");
        else
          out.path = *s;
      }
    if (auto* v = m->get("interval"))
      if (auto d = w_.duration_value(*v, false)) out.interval = *d;
    if (auto* v = m->get("timeout"))
      if (auto d = w_.duration_value(*v, false)) out.timeout = *d;
    if (auto* v = m->get("healthy"))
      if (auto n = w_.integer(*v, 1, std::numeric_limits<int>::max()))
        out.healthy = static_cast<int>(*n);
    if (auto* v = m->get("unhealthy"))
      if (auto n = w_.integer(*v, 1, std::numeric_limits<int>::max()))
        out.unhealthy = static_cast<int>(*n);
  }

  void read_outlier(const item& at, outlier_config& out) {
    auto m = w_.mapping(at, {"consecutive_failures", "base_ejection", "max_ejected_percent"});
    if (!m) return;
    if (auto* v = m->get("consecutive_failures"))
      if (auto n = w_.integer(*v, 1, std::numeric_limits<int>::max()))
        out.consecutive_failures = static_cast<int>(*n);
    if (auto* v = m->get("base_ejection"))
      if (auto d = w_.duration_value(*v, false)) out.base_ejection = *d;
    if (auto* v = m->get("max_ejected_percent"))
      if (auto n = w_.integer(*v, 0, 100)) out.max_ejected_percent = static_cast<int>(*n);
  }

  void read_routes(const item& at, std::vector<route_config>& out) {
    auto list = w_.sequence(at);
    if (!list) return;
    if (list->empty()) w_.error(at, "expected at least one route");
    for (const auto& r : *list) {
      route_config route;
      route.pos = to_pos(r.mark);
      route_marks marks{r.path, route.pos};
      read_route(r, route, marks);
      out.push_back(std::move(route));
      route_marks_.push_back(std::move(marks));
    }
  }

  void read_route(const item& at, route_config& out, route_marks& marks) {
    auto m = w_.mapping(at, {"name", "hosts", "path_prefix", "upstream", "canary", "steps"});
    if (!m) return;
    w_.require(*m, {"name", "upstream"});
    if (auto* v = m->get("name"))
      if (auto s = w_.string(*v)) {
        marks.name_pos = to_pos(v->mark);
        if (!is_name(*s))
          w_.error(*v, "bad route name " + quote(*s) +
                           " (use letters, digits, \".\", \"_\" and \"-\": it appears in URLs)");
        out.name = *s;
      }
    if (auto* v = m->get("hosts"))
      if (auto list = w_.sequence(*v))
        for (const auto& h : *list)
          if (auto s = read_route_host(h)) out.hosts.push_back(std::move(*s));
    if (auto* v = m->get("path_prefix"))
      if (auto s = w_.string(*v)) {
        if (s->empty() || s->front() != '/')
          w_.error(*v, "must start with \"/\"");
        else if (s->find_first_of("?#") != std::string::npos)
          w_.error(*v, "must not contain \"?\" or \"#\" (it matches the path before the query)");
        // Kept even when bad (the config is dropped anyway) so the overlap check below does not
        // report a second, made-up conflict against the default "/".
        out.path_prefix = *s;
      }
    if (auto* v = m->get("upstream"))
      if (auto s = w_.string(*v)) {
        out.upstream = *s;
        out.upstream_pos = to_pos(v->mark);
        upstream_refs_.push_back(*v);
      }
    if (auto* v = m->get("canary")) read_canary(*v, out.canary);
    if (auto* v = m->get("steps")) read_steps(*v, out.canary.weight_total, out.steps);
  }

  // Hosts are compared with the request's Host without its port, case-insensitively.
  std::optional<std::string> read_route_host(const item& at) {
    auto s = w_.string(at);
    if (!s) return std::nullopt;
    std::string host = lower(*s);
    bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    if (bracketed && is_ipv6_literal(host.substr(1, host.size() - 2))) return host;
    // A bad host is still returned (the config is dropped anyway) so the overlap check does
    // not report a made-up conflict with a route that has fewer hosts.
    if (host.find(':') != std::string::npos)
      w_.error(at, "host " + quote(*s) +
                       " must not have a port (the request's port is ignored when matching)");
    else if (!is_name(host))
      w_.error(at, "bad host " + quote(*s) + " (expected a host name or IP address)");
    return host;
  }

  void read_canary(const item& at, canary_config& out) {
    auto m = w_.mapping(at, {"by_header", "by_header_value", "by_header_pattern", "by_cookie",
                             "weight_total", "sticky", "sticky_cookie_max_age"});
    if (!m) return;
    if (auto* v = m->get("by_header"))
      if (auto s = w_.string(*v)) {
        if (!s->empty() && !is_token(*s))
          w_.error(*v, "bad header name " + quote(*s) + " (expected an HTTP token)");
        out.by_header = *s;
      }
    if (auto* v = m->get("by_header_value"))
      if (auto s = w_.string(*v)) out.by_header_value = *s;
    if (auto* v = m->get("by_header_pattern"))
      if (auto s = w_.string(*v)) {
        if (!s->empty()) {
          RE2 re(*s, RE2::Quiet);
          if (!re.ok()) w_.error(*v, "invalid RE2 pattern " + quote(*s) + ": " + re.error());
        }
        out.by_header_pattern = *s;
      }
    if (out.by_header.empty())
      for (std::string_view key : {"by_header_value", "by_header_pattern"})
        if (auto* v = m->get(key); v != nullptr && v->node.IsScalar() && !v->node.Scalar().empty())
          w_.error(*v, std::string(key) + " has no effect without by_header");
    if (auto* v = m->get("by_cookie"))
      if (auto s = w_.string(*v)) {
        if (!s->empty() && !is_token(*s))
          w_.error(*v, "bad cookie name " + quote(*s) + " (expected an HTTP token)");
        out.by_cookie = *s;
      }
    if (auto* v = m->get("weight_total")) {
      if (auto n = w_.integer(*v, 1, 1000000))
        out.weight_total = static_cast<int>(*n);
      else
        out.weight_total = 0;  // unknown: read_steps then skips the upper bound
    }
    if (auto* v = m->get("sticky"))
      if (auto s = w_.string(*v)) read_sticky(*v, *s, out.sticky);
    if (auto* v = m->get("sticky_cookie_max_age"))
      if (auto d = w_.duration_value(*v, false)) out.sticky_cookie_max_age = *d;
  }

  void read_sticky(const item& at, const std::string& s, sticky_config& out) {
    auto named = [&](std::string_view prefix, sticky_config::kind how, std::string_view what) {
      std::string name = s.substr(prefix.size());
      if (!is_token(name)) {
        w_.error(at, "bad sticky " + quote(s) + ": " + quote(name) + " is not a valid " +
                         std::string(what) + " name (an HTTP token)");
        return;
      }
      out = sticky_config{how, name};
    };
    if (s.empty()) {
      out = sticky_config{};
    } else if (s == "client_ip") {
      out = sticky_config{sticky_config::kind::client_ip, ""};
    } else if (s.rfind("header:", 0) == 0) {
      named("header:", sticky_config::kind::header, "header");
    } else if (s.rfind("cookie:", 0) == 0) {
      named("cookie:", sticky_config::kind::cookie, "cookie");
    } else {
      w_.error(at, "bad sticky " + quote(s) +
                       " (expected \"\", \"client_ip\", \"header:NAME\" or \"cookie:NAME\")");
    }
  }

  // `weight_total` 0 means it was invalid (already reported): only the lower bound is checked.
  void read_steps(const item& at, int weight_total, std::vector<step_config>& out) {
    auto list = w_.sequence(at);
    if (!list) return;
    for (const auto& s : *list) {
      if (!s.node.IsMap() || s.node.size() != 1) {
        w_.error(s,
                 "a step is a mapping with one key: setWeight: N, pause: {} or "
                 "pause: {duration: 30s}");
        continue;
      }
      auto m = w_.mapping(s, {"setWeight", "pause"});
      if (!m || m->entries().empty()) continue;
      const entry& e = m->entries().front();
      if (e.key == "setWeight") {
        auto n =
            w_.integer(e.value, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
        if (!n) continue;
        if (*n < 0 || (weight_total > 0 && *n > weight_total)) {
          w_.error(e.value, "setWeight " + std::to_string(*n) + " is outside 0.." +
                                (weight_total > 0 ? std::to_string(weight_total) : "?") +
                                " (weight_total)");
          continue;
        }
        out.push_back(step_config{step_config::kind::set_weight, static_cast<int>(*n), {}});
      } else {
        read_pause(e.value, out);
      }
    }
  }

  void read_pause(const item& at, std::vector<step_config>& out) {
    if (!at.node.IsMap()) {
      w_.error(at, "expected a mapping: pause: {} or pause: {duration: 30s}");
      return;
    }
    auto m = w_.mapping(at, {"duration"});
    if (!m) return;
    step_config step{step_config::kind::pause, 0, {}};
    if (auto* v = m->get("duration")) {
      auto d = w_.duration_value(*v, false);
      if (!d) return;
      step.duration = *d;
    }
    out.push_back(step);
  }

  // Checks that need the whole file: references between routes and upstreams.
  void check_routes(const proxy_config& cfg) {
    std::vector<std::string> defined;
    for (const auto& u : cfg.upstreams) defined.push_back(u.name);
    for (const item& ref : upstream_refs_) {
      const std::string& name = ref.node.Scalar();
      if (cfg.find_upstream(name) == nullptr)
        w_.error(ref, "unknown upstream " + quote(name) + " (defined: " +
                          (defined.empty() ? std::string("none") : join(defined, ", ")) + ")");
    }
    // route_marks_ and cfg.routes are parallel: one entry per list item.
    // By key, not pairwise: a config may hold tens of thousands of routes.
    std::map<std::string, std::size_t> first_by_name;
    std::map<std::pair<std::string, std::set<std::string>>, std::size_t> first_by_match;
    for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
      const route_config& r = cfg.routes[i];
      if (!r.name.empty()) {
        auto [it, fresh] = first_by_name.try_emplace(r.name, i);
        if (!fresh)
          w_.error(route_marks_[i].name_pos, route_marks_[i].path + ".name",
                   "duplicate route name " + quote(r.name) + " (first at " +
                       route_marks_[it->second].path + ")");
      }
      auto [it, fresh] = first_by_match.try_emplace(
          {r.path_prefix, std::set<std::string>(r.hosts.begin(), r.hosts.end())}, i);
      if (!fresh)
        w_.error(r.pos, route_marks_[i].path,
                 "same hosts and path_prefix as " + route_marks_[it->second].path + " (" +
                     quote(cfg.routes[it->second].name) + "): this route could never match");
    }
  }

  walker w_;
  std::filesystem::path base_dir_;
  std::vector<item> upstream_refs_;  // each route's `upstream` value, checked at the end
  std::vector<route_marks> route_marks_;
};

void sort_by_position(std::vector<config_error>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const config_error& a, const config_error& b) {
    return std::pair(a.line, a.col) < std::pair(b.line, b.col);
  });
}

}  // namespace

std::string config_error::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(col);
  out += ": ";
  if (!key_path.empty()) out += key_path + ": ";
  return out + message;
}

load_result load_string(std::string_view yaml, const std::string& file) {
  load_result result;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml));
  } catch (const YAML::Exception& e) {
    source_pos p = to_pos(e.mark);
    result.errors.push_back({file, p.line, p.col, "", e.msg});
    return result;
  }
  walker extra(file, result.errors);
  if (docs.size() > 1)
    extra.error(docs[1].Mark(), "", "only one YAML document is allowed in a config file");
  YAML::Node root = docs.empty() ? YAML::Node() : docs.front();
  config_reader reader(file, result.errors);
  proxy_config cfg = reader.read(root, file);
  if (result.errors.empty())
    result.config = std::move(cfg);
  else
    sort_by_position(result.errors);
  return result;
}

load_result load_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  auto unreadable = [&](int err) {
    load_result r;
    r.errors.push_back({path, 0, 0, "", std::string("cannot read file: ") + std::strerror(err)});
    return r;
  };
  if (f == nullptr) return unreadable(errno);
  std::string text;
  char buf[65536];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
  // fread on a directory fails with EISDIR; errno is only meaningful when ferror says so.
  int err = std::ferror(f) ? errno : 0;
  std::fclose(f);
  if (err != 0) return unreadable(err);
  return load_string(text, path);
}

std::optional<duration> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr std::int64_t max = std::numeric_limits<std::int64_t>::max();
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (std::all_of(text.begin(), text.end(), is_digit)) {
    std::int64_t s = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), s);
    if (ec != std::errc() || end != text.data() + text.size() || s > max / 1000)
      return std::nullopt;
    return duration(s * 1000);
  }
  // Go's time.ParseDuration grammar restricted to h, m, s, ms, each at most once and largest
  // first, so "30m30m" or "30s1m" (likely typos) are refused rather than summed.
  struct unit {
    std::string_view name;
    std::int64_t ms;
  };
  constexpr unit units[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  std::int64_t total = 0;
  int next_unit = 0;  // index of the smallest unit still allowed
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t int_start = i;
    while (i < text.size() && is_digit(text[i])) ++i;
    std::string_view whole = text.substr(int_start, i - int_start);
    std::string_view frac;
    if (i < text.size() && text[i] == '.') {
      std::size_t frac_start = ++i;
      while (i < text.size() && is_digit(text[i])) ++i;
      frac = text.substr(frac_start, i - frac_start);
    }
    if (whole.empty() && frac.empty()) return std::nullopt;
    std::size_t unit_start = i;
    while (i < text.size() && !is_digit(text[i]) && text[i] != '.') ++i;
    std::string_view name = text.substr(unit_start, i - unit_start);
    int u = next_unit;
    while (u < 4 && units[u].name != name) ++u;
    if (u == 4) return std::nullopt;  // unknown unit, missing unit, or out of order
    next_unit = u + 1;

    std::int64_t w = 0;
    if (!whole.empty()) {
      auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), w);
      if (ec != std::errc() || end != whole.data() + whole.size()) return std::nullopt;
    }
    if (w > max / units[u].ms) return std::nullopt;
    std::int64_t part = w * units[u].ms;
    // Nine fraction digits are far below a millisecond for every unit; later ones are dropped.
    std::int64_t f = 0, scale = 1;
    for (std::size_t k = 0; k < frac.size() && k < 9; ++k) {
      f = f * 10 + (frac[k] - '0');
      scale *= 10;
    }
    part += f * units[u].ms / scale;
    if (part > max - total) return std::nullopt;
    total += part;
  }
  return duration(total);
}

std::string format_duration(duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string sign;
  std::uint64_t v = static_cast<std::uint64_t>(ms);
  if (ms < 0) {
    sign = "-";
    v = 0 - v;  // well-defined for INT64_MIN too
  }
  if (v < 1000) return sign + std::to_string(v) + "ms";
  std::uint64_t h = v / 3600000, m = v / 60000 % 60, s = v / 1000 % 60, rest = v % 1000;
  std::string out = sign;
  if (h != 0) out += std::to_string(h) + "h";
  if (m != 0) out += std::to_string(m) + "m";
  if (s != 0 || rest != 0) {
    out += std::to_string(s);
    if (rest != 0) {
      std::string frac = std::to_string(rest);
      frac.insert(0, 3 - frac.size(), '0');
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    out += "s";
  }
  return out;
}

}  // namespace canary::config
