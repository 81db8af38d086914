// The top-level keys of the config: listen, tls, workers, admin, state_file, state_store,
// limits, timeouts, access_log (upstreams and routes have files of their own). See reader.h.
#include <algorithm>
#include <cctype>
#include <limits>

#include "tls/context.h"

#include "config/reader.h"
#include "config/syntax.h"

namespace canary::config {

void config_reader::read_root(const item& at, proxy_config& cfg) {
  if (at.node.IsNull()) {
    w_.error(at, "the config is empty (upstreams and routes are required)");
    return;
  }
  auto m = w_.mapping(at, {"listen", "tls", "workers", "admin", "state_file", "state_store", "limits", "timeouts",
                           "access_log", "upstreams", "routes"});
  if (!m) return;
  w_.require(*m, {"upstreams", "routes"});
  if (auto* v = m->get("listen")) {
    // "" turns the plain listener off: the proxy then serves TLS only.
    if (v->node.IsScalar() && v->node.Scalar().empty())
      cfg.listen = listen_config{"", 0, ""};
    else
      read_listen(*v, cfg.listen, pending_name::slot::listen);
  }
  if (auto* v = m->get("tls")) read_tls(*v, cfg);
  if (cfg.listen.text.empty() && !cfg.tls)
    w_.error(at, "listen is \"\" and there is no tls listener: nothing would serve requests");
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
  if (auto* v = m->get("state_store")) read_state_store(*v, cfg.state_store);
  if (auto* v = m->get("limits")) read_limits(*v, cfg.limits);
  if (auto* v = m->get("timeouts")) read_timeouts(*v, cfg.timeouts);
  if (auto* v = m->get("access_log")) read_access_log(*v, cfg.access_log);
  if (auto* v = m->get("upstreams")) read_upstreams(*v, cfg.upstreams);
  if (auto* v = m->get("routes")) read_routes(*v, cfg.routes);
}

// A listen address: its host is stored numeric so the server binds without resolving. A name is
// resolved with the others once the whole file is read (resolve_names).
void config_reader::read_listen(const item& at, listen_config& out, pending_name::slot where) {
  auto text = w_.string(at);
  if (!text) return;
  std::string why;
  auto hp = split_host_port(*text, why, true);
  if (!hp) {
    w_.error(at, "bad address " + quote(*text) + ": " + why);
    return;
  }
  out = listen_config{hp->host, hp->port, *text};
  if (auto numeric = numeric_address(hp->host))
    out.host = *numeric;
  else
    pending_names_.push_back({where, 0, 0, hp->host, at});
}

void config_reader::read_tls(const item& at, proxy_config& cfg) {
  auto m = w_.mapping(at, {"listen", "certificates", "min_version"});
  if (!m) return;
  w_.require(*m, {"listen", "certificates"});
  tls_config& t = cfg.tls.emplace();
  tls_at_ = at;
  if (auto* v = m->get("listen")) {
    read_listen(*v, t.listen, pending_name::slot::tls_listen);
    // Port 0 (tests) picks a free port for each listener: never the same one.
    if (!cfg.listen.text.empty() && t.listen.port != 0 && t.listen.port == cfg.listen.port &&
        (t.listen.text == cfg.listen.text || t.listen.host == cfg.listen.host))
      w_.error(*v, "tls.listen is the same address as listen (" + quote(t.listen.text) + ")");
  }
  if (auto* v = m->get("min_version"))
    if (auto s = w_.string(*v)) {
      if (*s == "1.2" || *s == "1.3")
        t.min_tls13 = *s == "1.3";
      else
        w_.error(*v, "unknown min_version " + quote(*s) +
                         " (expected \"1.2\" or \"1.3\"; older versions are not offered)");
    }
  auto* certs = m->get("certificates");
  if (!certs) return;
  auto list = w_.sequence(*certs);
  if (!list) return;
  if (list->empty()) w_.error(*certs, "expected at least one {cert, key}");
  for (const auto& c : *list) {
    auto cm = w_.mapping(c, {"cert", "key"});
    if (!cm) continue;
    w_.require(*cm, {"cert", "key"});
    tls_certificate_config files;
    if (auto* v = cm->get("cert"))
      if (auto s = w_.string(*v)) files.cert = resolve_path(*s);
    if (auto* v = cm->get("key"))
      if (auto s = w_.string(*v)) files.key = resolve_path(*s);
    if (!files.cert.empty() && !files.key.empty()) t.certificates.push_back(std::move(files));
  }
}

// The certificates are read with the config, so a bad file fails --check and a reload (the
// running config keeps serving) rather than the first handshake.
void config_reader::load_tls(proxy_config& cfg) {
  if (!cfg.tls || !tls_at_ || cfg.tls->certificates.empty()) return;
  std::vector<tls::certificate_files> files;
  for (const auto& c : cfg.tls->certificates) files.push_back({c.cert, c.key});
  std::string why;
  cfg.tls->contexts = tls::context_set::load(files, cfg.tls->min_tls13, why);
  if (!cfg.tls->contexts) w_.error(*tls_at_, why);
}

void config_reader::read_admin(const item& at, admin_config& out) {
  auto m = w_.mapping(at, {"listen", "token_file"});
  if (!m) return;
  if (auto* v = m->get("listen")) {
    read_listen(*v, out.listen, pending_name::slot::admin_listen);
    admin_listen_ = *v;
  }
  if (auto* v = m->get("token_file"))
    if (auto s = w_.string(*v)) out.token_file = *s;
}

void config_reader::read_state_store(const item& at, state_store_config& out) {
  auto m = w_.mapping(at, {"type", "etcd"});
  if (!m) return;
  if (auto* v = m->get("type"))
    if (auto s = w_.string(*v)) {
      if (*s == "file")
        out.type = state_store_config::kind::file;
      else if (*s == "etcd")
        out.type = state_store_config::kind::etcd;
      else
        w_.error(*v, "unknown type " + quote(*s) + " (expected file or etcd)");
    }
  auto* e = m->get("etcd");
  if (!e) return;
  auto em = w_.mapping(*e, {"endpoints", "prefix", "lease_ttl", "dial_timeout", "replica_id",
                            "stale_canary_after"});
  if (!em) return;
  if (auto* v = em->get("endpoints"))
    if (auto list = w_.sequence(*v)) {
      if (list->empty()) w_.error(*v, "expected at least one etcd endpoint");
      std::vector<std::string> eps;
      for (const auto& x : *list) {
        auto s = w_.string(x);
        if (!s) continue;
        if (s->starts_with("https://")) {
          w_.error(x, "https etcd endpoints are not supported yet (use http:// on a trusted "
                      "network)");
          continue;
        }
        std::string why;
        const std::string_view rest = std::string_view(*s).substr(
            s->starts_with("http://") ? 7 : 0);
        if (!s->starts_with("http://") || rest.find('/') != std::string_view::npos ||
            !split_host_port(std::string(rest), why, false)) {
          w_.error(x, "bad etcd endpoint " + quote(*s) +
                          " (expected http://HOST:PORT" + (why.empty() ? "" : ": " + why) + ")");
          continue;
        }
        eps.push_back(*s);
      }
      out.endpoints = std::move(eps);
    }
  if (auto* v = em->get("prefix"))
    if (auto s = w_.string(*v)) {
      // Every key is <prefix><kind>/<name>: a prefix not ending in "/" would share keys with
      // its siblings ("/a" would read "/ab/...").
      if (s->empty() || s->back() != '/')
        w_.error(*v, "must end with \"/\" (keys are <prefix>routes/<name>)");
      else
        out.prefix = *s;
    }
  if (auto* v = em->get("lease_ttl"))
    if (auto d = w_.duration_value(*v, false)) {
      // etcd leases are whole seconds (and its minimum TTL is a few seconds).
      if (*d < std::chrono::seconds(1) || *d % std::chrono::seconds(1) != duration::zero())
        w_.error(*v, "must be a whole number of seconds, at least 1s");
      else
        out.lease_ttl = *d;
    }
  if (auto* v = em->get("dial_timeout"))
    if (auto d = w_.duration_value(*v, false)) out.dial_timeout = *d;
  if (auto* v = em->get("replica_id"))
    if (auto s = w_.string(*v)) {
      const bool ok = std::all_of(s->begin(), s->end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '_' || c == '-';
      });
      if (!ok || s->size() > 128)
        w_.error(*v, "bad replica_id " + quote(*s) +
                         " (use up to 128 letters, digits, \".\", \"_\" and \"-\"; \"\" = "
                         "<hostname>-<admin port>)");
      else
        out.replica_id = *s;
    }
  if (auto* v = em->get("stale_canary_after"))
    if (auto d = w_.duration_value(*v, false)) out.stale_canary_after = *d;
}

void config_reader::read_limits(const item& at, limits_config& out) {
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

void config_reader::read_timeouts(const item& at, timeouts_config& out) {
  auto m = w_.mapping(at, {"client_header", "client_idle", "client_body_idle", "upstream_connect",
                           "upstream_response", "upstream_idle", "drain", "resolve",
                           "tunnel_idle"});
  if (!m) return;
  // A zero drain means "cut at once", which is meaningful; a zero wait anywhere else would
  // fail every request (or every name).
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
  read("resolve", out.resolve, false);
  read("tunnel_idle", out.tunnel_idle, false);
}

void config_reader::read_access_log(const item& at, access_log_config& out) {
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

}  // namespace canary::config
