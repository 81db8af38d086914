// upstreams: NAME -> endpoints, health_check, outlier. See reader.h.
#include <limits>

#include "config/reader.h"
#include "config/syntax.h"

namespace canary::config {

void config_reader::read_upstreams(const item& at, std::vector<upstream_config>& out) {
  auto m = w_.mapping(at, {});
  if (!m) return;
  if (m->entries().empty()) w_.error(at, "expected at least one upstream");
  out.reserve(m->entries().size());
  for (const auto& e : m->entries()) {
    upstream_config u;
    u.name = e.key;
    u.pos = to_pos(e.key_mark);
    if (!is_name(e.key))
      w_.error(e.key_mark, e.value.path,
               "bad upstream name " + quote(e.key) + " (" + std::string(name_rule) + ")");
    read_upstream(e.value, out.size(), u);
    out.push_back(std::move(u));
  }
}

void config_reader::read_upstream(const item& at, std::size_t index, upstream_config& out) {
  auto m = w_.mapping(at, {"endpoints", "protocol", "health_check", "outlier"});
  if (!m) return;
  w_.require(*m, {"endpoints"});
  if (auto* v = m->get("protocol"))
    if (auto s = w_.string(*v)) {
      if (*s == "http1")
        out.protocol = upstream_protocol::http1;
      else if (*s == "h2c")
        out.protocol = upstream_protocol::h2c;
      else
        w_.error(*v, "bad protocol " + quote(*s) + " (http1 or h2c)");
    }
  if (auto* v = m->get("endpoints"))
    if (auto list = w_.sequence(*v)) {
      if (list->empty()) w_.error(*v, "expected at least one endpoint");
      for (const auto& ep : *list)
        if (auto e = read_endpoint(ep, index, out.endpoints.size()))
          out.endpoints.push_back(std::move(*e));
    }
  if (auto* v = m->get("health_check")) {
    // The checker speaks HTTP/1.1 only: against an h2c-only server every probe would fail.
    if (out.protocol == upstream_protocol::h2c)
      w_.error(*v, "health_check is HTTP/1.1: not available with protocol h2c");
    read_health_check(*v, out.health_check.emplace());
  }
  if (auto* v = m->get("outlier")) read_outlier(*v, out.outlier.emplace());
}

// `upstream` and `endpoint` are where the endpoint will stand in the config, for resolve_names.
std::optional<endpoint_config> config_reader::read_endpoint(const item& at, std::size_t upstream,
                                                            std::size_t endpoint) {
  auto text = w_.string(at);
  if (!text) return std::nullopt;
  std::string why;
  auto hp = split_host_port(*text, why);
  if (!hp) {
    w_.error(at, "bad address " + quote(*text) + ": " + why);
    return std::nullopt;
  }
  endpoint_config out{*text, hp->host, "", hp->port};
  if (auto numeric = numeric_address(hp->host))
    out.address = *numeric;
  else
    pending_names_.push_back({pending_name::slot::endpoint, upstream, endpoint, hp->host, at});
  return out;
}

void config_reader::read_health_check(const item& at, health_check_config& out) {
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

void config_reader::read_outlier(const item& at, outlier_config& out) {
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

}  // namespace canary::config
