// Plain configuration structs: what a validated config file says, nothing more.
// Built by config/load.h (only config/*.cpp know YAML); immutable once loaded and shared
// between threads as shared_ptr<const proxy_config>. Every default lives here, with its reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/analysis_config.h"

namespace canary::tls {
class context_set;
}

namespace canary::config {

using duration = std::chrono::milliseconds;

// Where a key or value stood in the file (1-based), so later checks (reload against rollout
// state) can still name the line.
struct source_pos {
  int line = 0;
  int col = 0;
};

// "host:port"; `address` is the numeric IP the name resolved to at load time (resolution happens
// at load and on reload only: never per request).
struct endpoint_config {
  std::string text;     // as written, e.g. "localhost:9001"
  std::string host;     // "localhost"
  std::string address;  // "127.0.0.1" (IPv6 without brackets)
  std::uint16_t port = 0;
};

struct listen_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string text = "127.0.0.1:8080";  // "" for the data listener: off (TLS only)
};

// `tls:` a second data listener terminating TLS. The certificates are loaded with the config
// (so a bad file is a config error and a reload swaps them); `contexts` is what handshakes use.
struct tls_certificate_config {
  std::string cert;  // absolute after load
  std::string key;
};
struct tls_config {
  listen_config listen{"127.0.0.1", 8443, "127.0.0.1:8443"};
  std::vector<tls_certificate_config> certificates;  // the first is the default (no SNI match)
  bool min_tls13 = false;                            // min_version "1.2" (default) or "1.3"
  std::shared_ptr<const tls::context_set> contexts;
};

struct health_check_config {
  std::string path = "/healthz";
  duration interval = std::chrono::seconds(5);
  duration timeout = std::chrono::seconds(1);
  int healthy = 2;    // consecutive successes to mark an endpoint up again
  int unhealthy = 3;  // consecutive failures to mark it down
};

struct outlier_config {
  int consecutive_failures = 5;  // connect failures or 5xx in a row before ejection (Envoy: 5)
  duration base_ejection = std::chrono::seconds(30);  // grows with each ejection (Envoy: 30s)
  int max_ejected_percent = 50;  // never eject more than this share of a side (Envoy: 10..100)
};

struct upstream_config {
  std::string name;
  std::vector<endpoint_config> endpoints;
  std::optional<health_check_config> health_check;
  std::optional<outlier_config> outlier;
  source_pos pos;
};

struct sticky_config {
  enum class kind { none, header, cookie, client_ip };
  kind how = kind::none;
  std::string name;  // header or cookie name for header/cookie
};

struct canary_config {
  std::string by_header = "X-Canary";  // ingress-nginx canary-by-header; "" = off
  std::string by_header_value;         // exact, case-sensitive; beats the pattern
  std::string by_header_pattern;       // RE2, unanchored search
  std::string by_cookie;               // cookie name; values always / never
  int weight_total = 100;              // denominator of setWeight (1000 gives 0.1 % steps)
  sticky_config sticky;
  duration sticky_cookie_max_age = std::chrono::hours(24);
};

// `setMirror: {percent, methods, max_body_bytes, allow_unsafe}`: copy a share of stable-bound
// requests to the canary; percent 0 ends mirroring.
struct mirror_config {
  int percent = 0;
  std::vector<std::string> methods{"GET", "HEAD"};  // upper case
  std::uint64_t max_body_bytes = 65536;
  bool allow_unsafe = false;
};

struct step_config {
  enum class kind { set_weight, pause, analysis, set_mirror };
  kind what = kind::set_weight;
  int weight = 0;  // set_weight
  // Qualified: an unqualified `duration` here would change meaning inside the class (ill-formed).
  // pause: nullopt = until promoted; analysis: how long to measure (nullopt = one interval).
  std::optional<config::duration> duration;
  std::vector<std::string> metrics;  // analysis: names; empty = every metric of the route
  mirror_config mirror;              // set_mirror
};

struct route_config {
  std::string name;
  std::vector<std::string> hosts;  // lower-cased, no port; empty = any host
  std::string path_prefix = "/";
  std::string upstream;  // the desired version
  canary_config canary;
  std::vector<step_config> steps;
  std::optional<analysis_config> analysis;  // nullopt = no automated analysis
  std::vector<webhook_config> webhooks;
  source_pos pos;           // the route's list item
  source_pos upstream_pos;  // its `upstream` value
};

struct admin_config {
  listen_config listen{"127.0.0.1", 9901, "127.0.0.1:9901"};
  std::string token_file;  // absolute after load; "" = no token
};

struct limits_config {
  std::size_t max_request_header_bytes = 16384;  // nginx large_client_header_buffers is 4x8k
  std::size_t max_header_fields = 100;           // HAProxy's tune.http.maxhdr default 101
  std::uint64_t max_request_body_bytes = 10485760;  // 10 MiB; uploads above it get 413
  std::size_t max_connections = 10000;           // global; protects fds and memory
};

struct timeouts_config {
  duration client_header = std::chrono::seconds(10);  // whole head; slowloris defence
  duration client_idle = std::chrono::seconds(60);    // keep-alive between requests
  duration client_body_idle = std::chrono::seconds(60);
  duration upstream_connect = std::chrono::seconds(2);
  duration upstream_response = std::chrono::seconds(30);  // until the response head
  duration upstream_idle = std::chrono::seconds(30);  // below the backends' keep-alive
  duration drain = std::chrono::seconds(15);
  // An upgraded connection (WebSocket) with no byte either way for this long is closed. Long:
  // WebSocket peers ping every 20-60 s, and a chat tab may sit quiet far longer.
  duration tunnel_idle = std::chrono::hours(1);
  // Bounds the resolution of ALL host names of one load (names are resolved concurrently, so
  // N slow names cost one timeout, not N). A reload runs while the old config serves: a hung
  // resolver must not stall it (or --check) forever. 5s is glibc's default per-query resolver
  // timeout (resolv.conf `timeout:5`): a name a healthy resolver answers is never cut short.
  duration resolve = std::chrono::seconds(5);
};

struct access_log_config {
  bool enabled = false;
  std::string path = "-";  // "-" = stdout; else absolute after load
  std::string format = "json";
};

// Where the rollout states live (docs/fleet.md): the state file alone, or etcd shared by a fleet
// of replicas (the state file then caches what etcd last held).
struct state_store_config {
  enum class kind { file, etcd };
  kind type = kind::file;
  std::vector<std::string> endpoints{"http://127.0.0.1:2379"};  // etcd: http:// only
  std::string prefix = "/canary-proxy/";
  duration lease_ttl = std::chrono::seconds(10);
  duration dial_timeout = std::chrono::seconds(2);
  std::string replica_id;  // "" = <hostname>-<admin port>, filled in at start
  // Disconnected from etcd this long, a replica sends canary-bound traffic to stable.
  duration stale_canary_after = std::chrono::minutes(5);
};

struct proxy_config {
  std::string file;  // the config file, as given
  listen_config listen;
  std::optional<tls_config> tls;
  int workers = 0;  // 0 = one per CPU
  admin_config admin;
  std::string state_file = "canary-proxy.state.json";  // absolute after load
  state_store_config state_store;
  limits_config limits;
  timeouts_config timeouts;
  access_log_config access_log;
  std::vector<upstream_config> upstreams;  // in file order
  std::vector<route_config> routes;        // in file order

  const upstream_config* find_upstream(const std::string& name) const {
    for (const auto& u : upstreams)
      if (u.name == name) return &u;
    return nullptr;
  }
  const route_config* find_route(const std::string& name) const {
    for (const auto& r : routes)
      if (r.name == name) return &r;
    return nullptr;
  }
};

}  // namespace canary::config
