// Routing decisions of docs/routing.md: which route a request belongs to, and stable or canary.
// Pure: compiled from config on the control thread, then read-only on every worker; per-worker
// mutable state (wrr_state) is passed in by the caller. No I/O, no clock, randomness as input.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace re2 {
class RE2;
}

namespace canary::routing {

enum class variant : std::uint8_t { stable = 0, canary = 1 };
enum class reason : std::uint8_t { header, cookie, weight, sticky, no_canary, failover };
std::string_view to_string(variant v);  // "stable" | "canary"
std::string_view to_string(reason r);   // "header" | "cookie" | ... | "failover"

// §3.1: routes whose hosts contain the request host (case-insensitive, port ignored) first, then
// host-less routes; within each group the longest path_prefix (byte prefix of the path before
// '?') wins. The host is found by hash (open addressing over the configured host names), so the
// lookup costs the same for the first and the ten-thousandth host; within a host, and among the
// host-less routes, prefixes are tried longest first.
class route_table {
 public:
  explicit route_table(const std::vector<config::route_config>& routes);
  // Index into the routes given to the constructor, or -1 (404). Never allocates.
  int match(std::string_view host_header, std::string_view target) const;

 private:
  struct entry {
    std::string prefix;
    int index;
  };
  struct host_routes {
    std::string host;            // lower-case, bare (no port, brackets or trailing dot)
    std::vector<entry> entries;  // the routes naming this host, longest prefix first
  };
  struct slot {
    std::uint32_t tag = 0;   // the hash's high half: most probes of another host end here
    std::int32_t host = -1;  // index into hosts_, -1 = empty
  };
  const host_routes* find_host(std::string_view bare) const;

  std::vector<host_routes> hosts_;
  std::vector<slot> slots_;  // open addressing; size a power of two, at most half full
  std::vector<entry> any_host_;      // longest prefix first
};

// A route's canary rules, compiled once (RE2 compiled here, never per request).
struct canary_rule {
  std::string route_name;
  std::string by_header;
  std::string by_header_value;
  std::shared_ptr<const re2::RE2> by_header_pattern;  // null = none
  std::string by_cookie;
  int weight_total = 100;
  config::sticky_config sticky;
  std::int64_t sticky_cookie_max_age_s = 86400;
};
// The config was validated, so the pattern compiles.
canary_rule compile_rule(const config::route_config& route);

// What the session extracted from the request for this rule (all views into the request).
struct request_inputs {
  std::optional<std::string_view> canary_header;  // value of rule.by_header, if present
  std::string_view cookies;                       // all Cookie field values, "; "-joined
  std::optional<std::string_view> sticky_header;  // value of sticky header, if sticky = header
  std::string_view client_ip;                     // socket peer address
};

// Smooth weighted round-robin (nginx) over canary:stable = weight:(weight_total-weight).
// Per worker and route; reset whenever the weight it was built for changes.
struct wrr_state {
  int weight = -1;
  int weight_total = -1;
  std::int64_t current_canary = 0;
  std::int64_t current_stable = 0;
  variant next(int weight, int weight_total);
};

struct decision {
  variant side = variant::stable;
  enum reason why = reason::no_canary;
  // Non-empty when the proxy issues a sticky cookie: the full Set-Cookie field value.
  std::string set_cookie;
};

// §3 steps 2-5. `canary_active` = a rollout is in progress and not aborted; `weight` is the
// weight routing applies now. `random` seeds a new sticky cookie id.
decision decide(const canary_rule& rule, bool canary_active, int weight, const request_inputs& in,
                wrr_state& wrr, std::uint64_t random);

// The value of cookie `name` in a Cookie header ("a=1; b=2"), if present.
std::optional<std::string_view> find_cookie(std::string_view cookies, std::string_view name);

// Stable across processes and versions: users keep their variant over restarts.
std::uint64_t sticky_hash(std::string_view route_name, std::string_view key);

}  // namespace canary::routing
