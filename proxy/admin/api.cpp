// Control API request handling; see api.h. Checks run in the order docs/control-api.md gives:
// authentication first, then Origin, then the path and method, then content type and body.
#include "admin/api.h"
#include "util/text.h"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <ctime>
#include <set>

#include "analysis/run_json.h"
#include "config/load.h"
#include "util/duration.h"
#include "util/rfc3339.h"

namespace canary::admin {

namespace json = boost::json;

namespace {

std::string rfc3339(rollout::wall_time t) { return util::format_rfc3339(t); }

response json_response(int status, const json::value& v) {
  return {status, "application/json", json::serialize(v) + "\n", {}, {}};
}

// Boost.JSON serializes string bytes as they are: an error that echoes a request's bytes (a
// path, an Origin) must be made valid UTF-8 first, or the body is not JSON (RFC 8259 §8.1).
response error(int status, std::string message, std::vector<std::string> details = {}) {
  json::object o;
  o["error"] = valid_utf8(message);
  json::array errs;
  for (auto& d : details) errs.emplace_back(valid_utf8(d));
  o["errors"] = std::move(errs);
  return json_response(status, o);
}

response method_not_allowed(std::string allow) {
  auto r = error(405, "method not allowed (allowed: " + allow + ")");
  r.allow = std::move(allow);
  return r;
}

// Splits "/a/b/c" into segments (no empty ones).
std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    while (!path.empty() && path.front() == '/') path.remove_prefix(1);
    auto slash = path.find('/');
    auto seg = path.substr(0, slash);
    if (!seg.empty()) out.push_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

bool is_loopback_host(std::string_view h) {
  return h == "localhost" || h == "::1" || h == "[::1]" || h.starts_with("127.");
}

json::value event_json(const rollout::event& e) {
  return json::object{{"time", rfc3339(e.time)},
                      {"from", rollout::to_string(e.from)},
                      {"to", rollout::to_string(e.to)},
                      {"step", e.step},
                      {"weight", e.weight},
                      {"cause", rollout::to_string(e.cause)},
                      {"message", e.message}};
}

// Collects the first key that appears twice in one object, at any depth. Boost.JSON's value
// parser keeps the last of duplicate keys silently; the config refuses duplicates, and so does
// the API (RFC 8259 §4: names SHOULD be unique, receivers differ on which one wins).
struct duplicate_key_handler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  std::vector<std::set<std::string, std::less<>>> objects;
  std::string key;
  std::optional<std::string> duplicate;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) {
    objects.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    objects.pop_back();
    return true;
  }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t, boost::system::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, boost::system::error_code&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, boost::system::error_code&) {
    key.append(s.data(), s.size());
    if (!objects.back().insert(key).second && !duplicate) duplicate = key;
    key.clear();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, boost::system::error_code&) { return true; }
  bool on_number_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, json::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(json::string_view, boost::system::error_code&) { return true; }
};

}  // namespace

std::optional<std::string> duplicate_json_key(std::string_view text) {
  json::basic_parser<duplicate_key_handler> p(json::parse_options{});
  boost::system::error_code ec;
  p.write_some(false, text.data(), text.size(), ec);
  return p.handler().duplicate;
}

std::string valid_utf8(std::string_view in) {
  // RFC 3629 §4: no overlong forms, no surrogates, nothing above U+10FFFF. Each byte that does
  // not start a well-formed sequence becomes U+FFFD.
  std::string out;
  out.reserve(in.size());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) len = 1;
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) len = 3, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) len = 3;
    else if (c == 0xED) len = 3, hi = 0x9F;
    else if (c == 0xF0) len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) len = 4, hi = 0x8F;
    bool ok = len > 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      const unsigned char b = p[i + k];
      ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Compare over the longer length so the time does not depend on where they differ.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string step_json(const config::step_config& s) {
  json::object o;
  if (s.what == config::step_config::kind::set_weight) {
    o["setWeight"] = s.weight;
  } else if (s.what == config::step_config::kind::analysis) {
    json::object a;
    if (s.duration) a["duration"] = util::format_duration(*s.duration);
    if (!s.metrics.empty()) {
      json::array names;
      for (const auto& m : s.metrics) names.push_back(json::value(m));
      a["metrics"] = std::move(names);
    }
    o["analysis"] = std::move(a);
  } else if (s.what == config::step_config::kind::set_mirror) {
    json::object m;
    m["percent"] = s.mirror.percent;
    json::array methods;
    for (const auto& name : s.mirror.methods) methods.push_back(json::value(name));
    m["methods"] = std::move(methods);
    m["max_body_bytes"] = s.mirror.max_body_bytes;
    if (s.mirror.allow_unsafe) m["allow_unsafe"] = true;
    o["setMirror"] = std::move(m);
  } else {
    json::object p;
    if (s.duration) p["duration"] = util::format_duration(*s.duration);
    o["pause"] = std::move(p);
  }
  return json::serialize(o);
}

api::api(rollout::engine& engine, api_options options)
    : engine_(engine), options_(std::move(options)) {}

std::string api::status_json(const rollout::route_status& s) const {
  const auto& st = *s.state;
  json::array steps;
  for (const auto& step : s.route->steps) steps.push_back(json::parse(step_json(step)));
  json::object o{
      {"name", s.route->name},
      {"phase", rollout::to_string(st.phase)},
      {"message", st.message},
      {"stable", st.stable},
      {"canary", st.canary.empty() ? json::value(nullptr) : json::value(st.canary)},
      {"weight", st.weight},
      {"actual_weight", s.actual_weight},
      {"weight_total", s.route->canary.weight_total},
      {"step", st.step},
      {"steps", std::move(steps)},
      {"paused_by", st.paused_by == rollout::paused_by::none
                        ? json::value(nullptr)
                        : json::value(rollout::to_string(st.paused_by))},
      {"pause_remaining_s",
       s.pause_remaining ? json::value(static_cast<double>(s.pause_remaining->count()) / 1000.0)
                         : json::value(nullptr)},
      {"updated_at", rfc3339(st.updated_at)},
      {"previous_stable",
       st.previous_stable.empty() ? json::value(nullptr) : json::value(st.previous_stable)},
      // A fleet replica cut off from etcd keeps routing but can change nothing.
      {"store", engine_.store_down() ? "disconnected" : "connected"},
  };
  if (st.mirror && st.canary_active()) {
    json::array methods;
    for (const auto& name : st.mirror->methods) methods.push_back(json::value(name));
    o["mirror"] = json::object{{"percent", st.mirror->percent}, {"methods", std::move(methods)}};
  } else {
    o["mirror"] = nullptr;
  }
  // Only on routes with analysis: status stays as it was for the others.
  if (s.route->analysis)
    o["analysis"] = analysis::status_json(st.analysis.run ? &*st.analysis.run : nullptr,
                                          *s.route->analysis);
  return json::serialize(o);
}

// A loopback listener (which may run without a token) accepts only its own loopback origins:
// a page elsewhere, even one whose name was rebound to 127.0.0.1, cannot drive it. A listener on
// another address always has a token; reached through a name or address the browser used, its
// origin is "http://" + the Host header (e.g. 0.0.0.0:9901 in a container, opened as
// http://localhost:9901 or http://proxy.internal:9901).
bool api::origin_allowed(std::string_view origin, std::optional<std::string_view> host) const {
  if (origin == "null") return false;
  const std::string port = std::to_string(options_.listen_port);
  auto matches = [&](std::string_view h) {
    return origin == "http://" + std::string(h) + ":" + port;
  };
  const auto& h = options_.listen_host;
  if (is_loopback_host(h))
    return matches("localhost") || matches("127.0.0.1") || matches("[::1]") ||
           (h.starts_with("127.") && matches(h));
  if (host && !host->empty() && origin == "http://" + std::string(*host)) return true;
  return matches(h.find(':') != std::string::npos ? "[" + h + "]" : h);
}

response api::handle(const request& req) {
  const bool mutating = req.method != "GET" && req.method != "HEAD";
  // 1. Authentication, before anything else.
  if (mutating && !options_.token.empty()) {
    // RFC 9110 §11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ], the scheme
    // case-insensitive (§11.1): "bearer x" and "Bearer  x" are the same credentials.
    constexpr std::string_view scheme = "Bearer";
    std::string_view auth = req.authorization.value_or("");
    bool ok = auth.size() > scheme.size() && auth[scheme.size()] == ' ' &&
              util::iequals(auth.substr(0, scheme.size()), scheme);
    if (ok) {
      auth.remove_prefix(scheme.size());
      while (!auth.empty() && auth.front() == ' ') auth.remove_prefix(1);
      ok = !auth.empty() && constant_time_equals(auth, options_.token);
    }
    if (!ok) return error(401, "missing or wrong bearer token (Authorization: Bearer <token>)");
  }
  // 2. Cross-site calls: a page elsewhere must not drive the API, token or not.
  if (req.origin && !origin_allowed(*req.origin, req.host))
    return error(403, "Origin " + std::string(*req.origin) +
                          " is not allowed: the control API accepts calls from its own origin "
                          "only");
  // From a binary upgrade's hand-over on, the state belongs to the new process: a change made
  // here would be lost (or overwrite the new process's file).
  if (mutating && options_.upgrading)
    if (auto why = options_.upgrading(); !why.empty()) return error(503, why);
  // 3. Body type.
  if (mutating && req.has_body) {
    auto ct = req.content_type.value_or("");
    auto semi = ct.find(';');
    auto base = ct.substr(0, semi);
    while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
    if (base != "application/json")
      return error(415, "request body must be Content-Type: application/json");
  }

  auto path = req.target.substr(0, req.target.find('?'));
  auto seg = segments(path);
  const bool get = req.method == "GET" || req.method == "HEAD";

  if (seg.empty()) {
    if (!get) return method_not_allowed("GET");
    return {200, "text/html; charset=utf-8", options_.dashboard(), {}, {}};
  }
  if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "readyz")) {
    if (!get) return method_not_allowed("GET");
    if (seg[0] == "readyz" && options_.draining && options_.draining())
      return {503, "text/plain; charset=utf-8", "draining\n", {}, {}};
    return {200, "text/plain; charset=utf-8", "ok\n", {}, {}};
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    if (!get) return method_not_allowed("GET");
    return {200, "text/plain; version=0.0.4; charset=utf-8", options_.metrics(), {}, {}};
  }
  if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1")
    return error(404, "no such endpoint: " + std::string(path));

  if (seg.size() == 3 && seg[2] == "watch") {
    if (!get) return method_not_allowed("GET");
    response r;
    r.watch = "";
    return r;
  }
  if (seg.size() == 3 && seg[2] == "stats") {
    if (!get) return method_not_allowed("GET");
    if (!options_.stats) return error(404, "no statistics on this server");
    return {200, "application/json", options_.stats(), {}, {}};
  }
  if (seg.size() == 3 && seg[2] == "cluster") {
    if (!get) return method_not_allowed("GET");
    if (!options_.cluster) return error(404, "no cluster view on this server");
    return {200, "application/json", options_.cluster() + "\n", {}, {}};
  }
  if (seg.size() == 4 && seg[2] == "config" && seg[3] == "reload") {
    if (req.method != "POST") return method_not_allowed("POST");
    response r;
    r.reload = true;
    return r;
  }
  if (seg[2] != "rollouts") return error(404, "no such endpoint: " + std::string(path));
  if (seg.size() == 3) {
    if (!get) return method_not_allowed("GET");
    json::array list;
    for (const auto& s : engine_.statuses()) list.push_back(json::parse(status_json(s)));
    return json_response(200, json::object{{"rollouts", std::move(list)}});
  }
  if (seg.size() > 5) return error(404, "no such endpoint: " + std::string(path));
  return rollout_call(req.method, seg[3], seg.size() == 5 ? seg[4] : "", req);
}

response api::reload_response(const rollout::api_result& result) const {
  if (result.status != 200) return error(result.status, result.error, result.errors);
  return json_response(200, json::object{{"result", "ok"}, {"file", engine_.config().file}});
}

response api::rollout_call(std::string_view method, std::string_view name_view,
                           std::string_view action, const request& req) {
  const std::string name(name_view);
  auto status = engine_.status(name);
  if (!status) return error(404, "no rollout named \"" + name + "\"");
  const bool get = method == "GET" || method == "HEAD";

  if (action.empty()) {
    if (!get) return method_not_allowed("GET");
    return {200, "application/json", status_json(*status) + "\n", {}, {}};
  }
  if (action == "events") {
    if (!get) return method_not_allowed("GET");
    json::array events;
    for (const auto& e : status->state->events) events.push_back(event_json(e));
    return json_response(200, json::object{{"name", name}, {"events", std::move(events)}});
  }
  if (action == "analysis") {
    if (!get) return method_not_allowed("GET");
    if (!status->route->analysis)
      return error(404, "route \"" + name + "\" has no analysis configured");
    json::object body{{"name", name}, {"run", nullptr}, {"measurements", json::array{}}};
    if (const auto& run = status->state->analysis.run) {
      for (auto& [k, v] : analysis::history_json(*run)) body[k] = v;
    }
    return json_response(200, std::move(body));
  }
  if (action == "watch") {
    if (!get) return method_not_allowed("GET");
    response r;
    r.watch = name;
    return r;
  }

  struct action_spec {
    std::string_view name;
    std::string_view method;
  };
  static constexpr action_spec actions[] = {{"promote", "POST"}, {"abort", "POST"},
                                            {"retry", "POST"},   {"pause", "POST"},
                                            {"resume", "POST"},  {"weight", "PUT"},
                                            {"upstream", "PUT"}, {"undo", "POST"}};
  const action_spec* spec = nullptr;
  for (const auto& a : actions)
    if (a.name == action) spec = &a;
  if (!spec) return error(404, "no such rollout action: " + std::string(action));
  if (method != spec->method) return method_not_allowed(std::string(spec->method));

  // Body: a JSON object (or nothing for the POST actions).
  json::object body;
  if (!req.body.empty()) {
    boost::system::error_code ec;
    auto v = json::parse(req.body, ec);
    if (ec || !v.is_object())
      return error(400, "request body must be a JSON object" +
                            (ec ? ": " + ec.message() : std::string()));
    if (auto dup = duplicate_json_key(req.body))
      return error(400, "duplicate key \"" + *dup + "\" in request body");
    body = std::move(v.as_object());
  }
  auto allow_only = [&](std::initializer_list<std::string_view> keys) -> std::optional<response> {
    for (const auto& [k, v] : body) {
      bool known = false;
      for (auto key : keys) known = known || k == key;
      if (!known) return error(400, "unknown field \"" + std::string(k) + "\" in request body");
    }
    return std::nullopt;
  };

  rollout::api_result result;
  if (action == "promote") {
    if (auto bad = allow_only({"full"})) return *bad;
    bool full = false;
    if (auto* f = body.if_contains("full")) {
      if (!f->is_bool()) return error(400, "\"full\" must be true or false");
      full = f->as_bool();
    }
    result = engine_.apply(name, full ? rollout::operation::promote_full
                                      : rollout::operation::promote);
  } else if (action == "weight") {
    if (auto bad = allow_only({"weight"})) return *bad;
    auto* w = body.if_contains("weight");
    if (!w || !(w->is_int64() || w->is_uint64()))
      return error(400, "body must be {\"weight\": N} with an integer N");
    // Compared as the number given: a uint64 above INT64_MAX must not wrap to a negative one.
    const int total = status->route->canary.weight_total;
    const bool in_range = w->is_int64()
                              ? w->as_int64() >= 0 && w->as_int64() <= total
                              : w->as_uint64() <= static_cast<std::uint64_t>(total);
    if (!in_range)
      return error(400, "weight " + json::serialize(*w) + " is outside 0.." +
                            std::to_string(total) + " (weight_total)");
    const auto n = w->is_int64() ? w->as_int64() : static_cast<std::int64_t>(w->as_uint64());
    result = engine_.apply(name, rollout::operation::set_weight, static_cast<int>(n));
  } else if (action == "upstream") {
    if (auto bad = allow_only({"upstream"})) return *bad;
    auto* u = body.if_contains("upstream");
    if (!u || !u->is_string())
      return error(400, "body must be {\"upstream\": \"NAME\"} with an upstream name");
    result = engine_.apply(name, rollout::operation::set_upstream, 0,
                           std::string(u->as_string()));
  } else {
    if (auto bad = allow_only({})) return *bad;
    const auto op = action == "abort"   ? rollout::operation::abort
                    : action == "retry" ? rollout::operation::retry
                    : action == "pause" ? rollout::operation::pause
                    : action == "undo"  ? rollout::operation::undo
                                        : rollout::operation::resume;
    result = engine_.apply(name, op);
  }
  if (result.status != 200) return error(result.status, result.error, result.errors);
  return {200, "application/json", status_json(*engine_.status(name)) + "\n", {}, {}};
}

}  // namespace canary::admin
