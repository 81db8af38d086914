// Resolving the host names of the file (listen, admin.listen, endpoints) in one batch within
// timeouts.resolve, and the admin check that needs the resolved address. See reader.h.
#include <map>

#include "config/reader.h"
#include "config/resolve.h"
#include "config/syntax.h"
#include "util/duration.h"

namespace canary::config {

void config_reader::resolve_names(proxy_config& cfg) {
  // Each distinct name once, however many endpoints use it.
  std::vector<std::string> hosts;
  std::map<std::string, std::size_t, std::less<>> index;
  for (const auto& p : pending_names_)
    if (index.emplace(p.host, hosts.size()).second) hosts.push_back(p.host);
  if (hosts.empty()) return;
  const auto results = resolve_all(hosts, options_.resolve, cfg.timeouts.resolve);
  for (const auto& p : pending_names_) {
    const auto& r = results[index.find(p.host)->second];
    if (!r) {
      w_.error(p.at, "cannot resolve " + quote(p.host) + ": no answer within " +
                         util::format_duration(cfg.timeouts.resolve) + " (timeouts.resolve)");
      continue;
    }
    if (!r->error.empty()) {
      w_.error(p.at, "cannot resolve " + quote(p.host) + ": " + r->error);
      continue;
    }
    auto numeric = numeric_address(r->address);
    if (!numeric) {
      w_.error(p.at, "cannot resolve " + quote(p.host) + ": the resolver answered " +
                         quote(r->address) + ", not an IP address");
      continue;
    }
    switch (p.where) {
      case pending_name::slot::listen:
        cfg.listen.host = *numeric;
        break;
      case pending_name::slot::admin_listen:
        cfg.admin.listen.host = *numeric;
        break;
      case pending_name::slot::tls_listen:
        if (cfg.tls) cfg.tls->listen.host = *numeric;
        break;
      case pending_name::slot::endpoint:
        cfg.upstreams.at(p.upstream).endpoints.at(p.endpoint).address = *numeric;
        break;
    }
  }
}

void config_reader::check_admin_exposure(const proxy_config& cfg) {
  if (!admin_listen_) return;
  const listen_config& l = cfg.admin.listen;
  // A name that did not resolve is already an error; nothing to judge.
  if (!numeric_address(l.host)) return;
  if (!is_loopback(l.host) && l.text.rfind("localhost:", 0) != 0 && cfg.admin.token_file.empty())
    w_.error(*admin_listen_,
             "admin listens on a non-loopback address without admin.token_file: anyone who "
             "can reach it could shift traffic");
}

}  // namespace canary::config
