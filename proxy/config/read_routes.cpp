// routes: name, hosts, path_prefix, upstream, canary overrides, stickiness, steps. See reader.h.
#include <re2/re2.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <string_view>

#include "config/reader.h"
#include "config/syntax.h"
#include "util/text.h"

namespace canary::config {

void config_reader::read_routes(const item& at, std::vector<route_config>& out) {
  auto list = w_.sequence(at);
  if (!list) return;
  if (list->empty()) w_.error(at, "expected at least one route");
  out.reserve(list->size());
  route_marks_.reserve(list->size());
  for (const auto& r : *list) {
    route_config route;
    route.pos = to_pos(r.mark);
    route_marks marks{r.path, route.pos};
    read_route(r, route, marks);
    out.push_back(std::move(route));
    route_marks_.push_back(std::move(marks));
  }
}

void config_reader::read_route(const item& at, route_config& out, route_marks& marks) {
  auto m = w_.mapping(at, {"name", "hosts", "path_prefix", "upstream", "canary", "steps",
                           "analysis", "webhooks"});
  if (!m) return;
  w_.require(*m, {"name", "upstream"});
  if (auto* v = m->get("name"))
    if (auto s = w_.string(*v)) {
      marks.name_pos = to_pos(v->mark);
      if (!is_name(*s))
        w_.error(*v, "bad route name " + quote(*s) + " (" + std::string(name_rule) + ")");
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
  if (auto* v = m->get("analysis")) read_analysis(*v, out.analysis.emplace());
  if (auto* v = m->get("webhooks")) read_webhooks(*v, out.webhooks);
  check_analysis_steps(out);
}

// Hosts are compared with the request's Host without its port, case-insensitively.
std::optional<std::string> config_reader::read_route_host(const item& at) {
  auto s = w_.string(at);
  if (!s) return std::nullopt;
  std::string host = util::to_lower(*s);
  bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed && is_ipv6_literal(host.substr(1, host.size() - 2))) return host;
  // A bad host is still returned (the config is dropped anyway) so the overlap check does
  // not report a made-up conflict with a route that has fewer hosts.
  if (host.find(':') != std::string::npos)
    w_.error(at, "host " + quote(*s) +
                     " must not have a port (the request's port is ignored when matching)");
  else if (!is_host_name(host))
    w_.error(at, "bad host " + quote(*s) + " (expected a host name or IP address)");
  return host;
}

void config_reader::read_canary(const item& at, canary_config& out) {
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

void config_reader::read_sticky(const item& at, const std::string& s, sticky_config& out) {
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
void config_reader::read_steps(const item& at, int weight_total, std::vector<step_config>& out) {
  auto list = w_.sequence(at);
  if (!list) return;
  for (const auto& s : *list) {
    if (!s.node.IsMap() || s.node.size() != 1) {
      w_.error(s,
               "a step is a mapping with one key: setWeight: N, pause: {}, "
               "pause: {duration: 30s}, analysis: {duration: 2m} or setMirror: {percent: 20}");
      continue;
    }
    auto m = w_.mapping(s, {"setWeight", "pause", "analysis", "setMirror"});
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
    } else if (e.key == "analysis") {
      read_analysis_step(e.value, out);
    } else if (e.key == "setMirror") {
      read_mirror_step(e.value, out);
    } else {
      read_pause(e.value, out);
    }
  }
}

void config_reader::read_pause(const item& at, std::vector<step_config>& out) {
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

// Copies of client requests reach the canary as real requests: an unsafe method (RFC 9110
// section 9.2.1) would be performed twice, so it needs an explicit allow_unsafe.
void config_reader::read_mirror_step(const item& at, std::vector<step_config>& out) {
  if (!at.node.IsMap()) {
    w_.error(at, "expected a mapping: setMirror: {percent: 20, methods: [GET, HEAD]}");
    return;
  }
  auto m = w_.mapping(at, {"percent", "methods", "max_body_bytes", "allow_unsafe"});
  if (!m) return;
  w_.require(*m, {"percent"});
  step_config step{step_config::kind::set_mirror, 0, {}};
  bool ok = true;
  if (auto* v = m->get("percent")) {
    if (auto n = w_.integer(*v, 0, 100))
      step.mirror.percent = static_cast<int>(*n);
    else
      ok = false;
  }
  if (auto* v = m->get("allow_unsafe")) {
    if (auto b = w_.boolean(*v))
      step.mirror.allow_unsafe = *b;
    else
      ok = false;
  }
  if (auto* v = m->get("max_body_bytes")) {
    if (auto n = w_.unsigned_integer(*v, 0, std::uint64_t{1} << 30))
      step.mirror.max_body_bytes = *n;
    else
      ok = false;
  }
  if (auto* v = m->get("methods")) {
    step.mirror.methods.clear();
    if (auto list = w_.sequence(*v)) {
      if (list->empty()) {
        w_.error(*v, "expected at least one method");
        ok = false;
      }
      for (const auto& it : *list) {
        auto name = w_.string(it);
        if (!name) {
          ok = false;
          continue;
        }
        // Written in any case; matched against the request's method token, which is
        // case-sensitive and upper case for every method listed here (RFC 9110 section 9.1).
        std::string upper = *name;
        for (char& c : upper)
          if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        static constexpr std::string_view known[] = {"GET",   "HEAD",    "OPTIONS", "TRACE",
                                                     "POST",  "PUT",     "PATCH",   "DELETE"};
        static constexpr std::string_view unsafe[] = {"POST", "PUT", "PATCH", "DELETE"};
        const auto in = [&](auto& set) {
          return std::find(std::begin(set), std::end(set), upper) != std::end(set);
        };
        if (!in(known)) {
          w_.error(it, "unknown method " + quote(*name) +
                           " (expected GET, HEAD, OPTIONS, TRACE, POST, PUT, PATCH or DELETE)");
          ok = false;
        } else if (in(unsafe) && !step.mirror.allow_unsafe) {
          w_.error(it, "method " + upper +
                           " is unsafe to mirror: the canary would perform it a second time "
                           "(a mirrored checkout charges twice); set allow_unsafe: true to "
                           "mirror it anyway");
          ok = false;
        } else if (std::find(step.mirror.methods.begin(), step.mirror.methods.end(), upper) ==
                   step.mirror.methods.end()) {
          step.mirror.methods.push_back(upper);
        }
      }
    } else {
      ok = false;
    }
  }
  if (ok) out.push_back(std::move(step));
}

}  // namespace canary::config
