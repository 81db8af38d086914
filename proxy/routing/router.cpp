// Routing decisions of docs/routing.md: route lookup, header/cookie overrides, weighted and sticky
// split. Everything here runs on a worker per request except the constructors and compile_rule
// (control thread, once per config). The per-request paths never allocate, lock or compile a regex;
// the only allocation is the Set-Cookie value when a sticky cookie is issued.
#include "routing/router.h"

#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "util/text.h"

namespace canary::routing {

std::string_view to_string(variant v) {
  switch (v) {
    case variant::stable:
      return "stable";
    case variant::canary:
      return "canary";
  }
  return "stable";
}

std::string_view to_string(reason r) {
  switch (r) {
    case reason::header:
      return "header";
    case reason::cookie:
      return "cookie";
    case reason::weight:
      return "weight";
    case reason::sticky:
      return "sticky";
    case reason::no_canary:
      return "no_canary";
    case reason::failover:
      return "failover";
  }
  return "no_canary";
}

namespace {

using util::ascii_lower;
using util::iequals;


// Accepts a Host field value (RFC 9110 §7.2: uri-host [":" port]) or a configured host name.
// Returns the bare host: brackets of an IP literal removed, port and one trailing dot dropped
// ("example.com." names the same host as "example.com"). Case is left to the comparison.
std::string_view bare_host(std::string_view h) {
  h = util::trim(h, util::http_ows);
  if (!h.empty() && h.front() == '[') {
    auto close = h.find(']');
    if (close == std::string_view::npos) return h.substr(1);  // malformed; matches nothing real
    return h.substr(1, close - 1);
  }
  auto colon = h.rfind(':');
  // More than one colon without brackets is not a valid Host; keep it whole rather than guess.
  if (colon != std::string_view::npos && h.find(':') == colon) h = h.substr(0, colon);
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  return h;
}

// Accepts origin-form ("/p?q") or absolute-form ("http://h/p?q", RFC 9112 §3.2.2) targets;
// returns the path before '?'. An absolute-form target with an empty path means "/".
std::string_view target_path(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    auto scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      auto rest = target.substr(scheme_end + 3);
      auto path_start = rest.find_first_of("/?");
      if (path_start == std::string_view::npos || rest[path_start] == '?') return "/";
      target = rest.substr(path_start);
    }
  }
  return target.substr(0, target.find('?'));
}

std::string normalized_host(std::string_view h) {
  std::string s(bare_host(h));
  for (auto& c : s) c = ascii_lower(c);
  return s;
}

// The splitmix64 finalizer: spreads FNV-1a's weak low bits, which a mask or a modulo takes.
constexpr std::uint64_t splitmix64_finish(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// 64-bit FNV-1a over the lower-cased bytes, so "Shop.Example.COM" hashes as its configured form
// without a lower-cased copy; the splitmix64 finalizer spreads FNV's weak low bits, which the
// table's mask takes.
std::uint64_t host_hash(std::string_view h) {
  std::uint64_t x = 0xcbf29ce484222325ULL;
  for (char c : h) {
    x ^= static_cast<unsigned char>(ascii_lower(c));
    x *= 0x100000001b3ULL;
  }
  return splitmix64_finish(x);
}

}  // namespace

route_table::route_table(const std::vector<config::route_config>& routes) {
  std::unordered_map<std::string, std::size_t> host_index;  // control thread: allocation is fine
  std::vector<std::string> seen;  // one route's hosts, so a route listing a host twice is one entry
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const auto& r = routes[i];
    const entry e{r.path_prefix, static_cast<int>(i)};
    if (r.hosts.empty()) {
      any_host_.push_back(e);
      continue;
    }
    seen.clear();
    for (const auto& configured : r.hosts) {
      std::string h = normalized_host(configured);
      if (std::find(seen.begin(), seen.end(), h) != seen.end()) continue;
      seen.push_back(h);
      auto [it, inserted] = host_index.try_emplace(h, hosts_.size());
      if (inserted) hosts_.push_back({std::move(h), {}});
      hosts_[it->second].entries.push_back(e);
    }
  }
  // Longest prefix first, so the first hit is the answer. Stable: entries were added in file
  // order, so should two routes naming the same host share a prefix, file order decides.
  auto longer = [](const entry& a, const entry& b) { return a.prefix.size() > b.prefix.size(); };
  for (auto& h : hosts_) std::stable_sort(h.entries.begin(), h.entries.end(), longer);
  std::stable_sort(any_host_.begin(), any_host_.end(), longer);

  std::size_t size = 16;
  while (size < 2 * hosts_.size()) size *= 2;
  slots_.assign(size, slot{});
  const std::size_t mask = size - 1;
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    const std::uint64_t h = host_hash(hosts_[i].host);
    std::size_t at = h & mask;
    while (slots_[at].host >= 0) at = (at + 1) & mask;  // linear probing; never full (<= half)
    slots_[at] = {static_cast<std::uint32_t>(h >> 32), static_cast<std::int32_t>(i)};
  }
}

const route_table::host_routes* route_table::find_host(std::string_view bare) const {
  const std::uint64_t h = host_hash(bare);
  const auto tag = static_cast<std::uint32_t>(h >> 32);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t at = h & mask;; at = (at + 1) & mask) {
    const slot& s = slots_[at];
    if (s.host < 0) return nullptr;
    const auto& candidate = hosts_[static_cast<std::size_t>(s.host)];
    if (s.tag == tag && iequals(bare, candidate.host)) return &candidate;
  }
}

int route_table::match(std::string_view host_header, std::string_view target) const {
  const std::string_view host = bare_host(host_header);
  const std::string_view path = target_path(target);
  if (!host.empty()) {
    if (const auto* h = find_host(host)) {
      for (const auto& e : h->entries)
        if (path.starts_with(e.prefix)) return e.index;
    }
  }
  for (const auto& e : any_host_)
    if (path.starts_with(e.prefix)) return e.index;
  return -1;
}

canary_rule compile_rule(const config::route_config& route) {
  const auto& c = route.canary;
  canary_rule r;
  r.route_name = route.name;
  r.by_header = c.by_header;
  r.by_header_value = c.by_header_value;
  if (!c.by_header_pattern.empty())
    r.by_header_pattern = std::make_shared<const re2::RE2>(c.by_header_pattern, RE2::Quiet);
  r.by_cookie = c.by_cookie;
  r.weight_total = c.weight_total;
  r.sticky = c.sticky;
  r.sticky_cookie_max_age_s =
      std::chrono::duration_cast<std::chrono::seconds>(c.sticky_cookie_max_age).count();
  return r;
}

variant wrr_state::next(int w, int total) {
  if (w != weight || total != weight_total) {
    weight = w;
    weight_total = total;
    current_canary = 0;
    current_stable = 0;
  }
  // Validation keeps 0 <= w <= total and total > 0; clamp anyway so a bad caller cannot make the
  // currents drift without bound.
  if (total <= 0 || w <= 0) return variant::stable;
  if (w >= total) return variant::canary;
  current_canary += w;
  current_stable += total - w;
  if (current_canary >= current_stable) {
    current_canary -= total;
    return variant::canary;
  }
  current_stable -= total;
  return variant::stable;
}

std::optional<std::string_view> find_cookie(std::string_view cookies, std::string_view name) {
  // RFC 6265 §4.2.1: cookie-pair *( ";" SP cookie-pair ). Clients and intermediaries drift from
  // the exact form, so the separator's space and whitespace around pairs are optional here.
  while (!cookies.empty()) {
    auto semi = cookies.find(';');
    std::string_view pair = cookies.substr(0, semi);
    cookies = semi == std::string_view::npos ? std::string_view{} : cookies.substr(semi + 1);
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;  // not a cookie-pair
    if (util::trim(pair.substr(0, eq), util::http_ows) != name) continue;
    std::string_view value = util::trim(pair.substr(eq + 1), util::http_ows);
    // cookie-value may be a DQUOTE-wrapped cookie-octet string; the quotes are not the value.
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    return value;
  }
  return std::nullopt;
}

std::uint64_t sticky_hash(std::string_view route_name, std::string_view key) {
  // 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3) over
  // route_name, one 0 byte, key; then the splitmix64 finalizer, because FNV's low bits are weak
  // and the caller takes the hash modulo weight_total. Part of the on-the-wire contract: changing
  // it moves sticky users between variants, so tests pin known values.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto feed = [&h](unsigned char b) {
    h ^= b;
    h *= 0x100000001b3ULL;
  };
  for (char c : route_name) feed(static_cast<unsigned char>(c));
  feed(0);
  for (char c : key) feed(static_cast<unsigned char>(c));
  return splitmix64_finish(h);
}

namespace {

variant by_hash(const canary_rule& rule, int weight, std::string_view key) {
  if (rule.weight_total <= 0) return variant::stable;
  auto bucket = sticky_hash(rule.route_name, key) % static_cast<std::uint64_t>(rule.weight_total);
  return weight > 0 && bucket < static_cast<std::uint64_t>(weight) ? variant::canary
                                                                   : variant::stable;
}

// NAME=ID; Path=/; Max-Age=N; HttpOnly; SameSite=Lax (RFC 6265 §4.1). Path=/ so the assets and
// API calls of the page stick with it.
std::string sticky_set_cookie(std::string_view name, std::string_view id, std::int64_t max_age_s) {
  std::string max_age = std::to_string(max_age_s);
  std::string s;
  s.reserve(name.size() + id.size() + max_age.size() + 48);
  s.append(name).append("=").append(id).append("; Path=/; Max-Age=").append(max_age);
  s.append("; HttpOnly; SameSite=Lax");
  return s;
}

}  // namespace

decision decide(const canary_rule& rule, bool canary_active, int weight, const request_inputs& in,
                wrr_state& wrr, std::uint64_t random) {
  // Step 2: an aborted or finished rollout sends nothing to canary, whatever the request asks.
  if (!canary_active) return {variant::stable, reason::no_canary, {}};

  // Step 3 (ingress-nginx canary-by-header): a configured value wins over the pattern, and with
  // either configured "always"/"never" lose their meaning; a miss falls through to the cookie.
  if (!rule.by_header.empty() && in.canary_header) {
    const std::string_view v = *in.canary_header;
    if (!rule.by_header_value.empty()) {
      if (v == rule.by_header_value) return {variant::canary, reason::header, {}};
    } else if (rule.by_header_pattern) {
      if (re2::RE2::PartialMatch(v, *rule.by_header_pattern))
        return {variant::canary, reason::header, {}};
    } else if (v == "always") {
      return {variant::canary, reason::header, {}};
    } else if (v == "never") {
      return {variant::stable, reason::header, {}};
    }
  }

  // Step 4 (canary-by-cookie): only the two fixed values mean anything.
  if (!rule.by_cookie.empty()) {
    if (auto c = find_cookie(in.cookies, rule.by_cookie)) {
      if (*c == "always") return {variant::canary, reason::cookie, {}};
      if (*c == "never") return {variant::stable, reason::cookie, {}};
    }
  }

  // Step 5: weight, either by a per-user hash (sticky) or smooth round-robin.
  using kind = config::sticky_config::kind;
  switch (rule.sticky.how) {
    case kind::none:
      break;
    case kind::header:
      if (in.sticky_header && !in.sticky_header->empty())
        return {by_hash(rule, weight, *in.sticky_header), reason::sticky, {}};
      break;
    case kind::client_ip:
      if (!in.client_ip.empty()) return {by_hash(rule, weight, in.client_ip), reason::sticky, {}};
      break;
    case kind::cookie: {
      auto c = find_cookie(in.cookies, rule.sticky.name);
      if (c && !c->empty()) return {by_hash(rule, weight, *c), reason::sticky, {}};
      // No usable cookie (absent, or empty so it identifies no one): issue an id and route this
      // request by it, so the page's next requests land on the same side.
      static constexpr char hex[] = "0123456789abcdef";
      char id[16];
      for (int i = 0; i < 16; ++i) id[i] = hex[(random >> (60 - 4 * i)) & 0xf];
      const std::string_view id_view(id, sizeof id);
      return {by_hash(rule, weight, id_view), reason::sticky,
              sticky_set_cookie(rule.sticky.name, id_view, rule.sticky_cookie_max_age_s)};
    }
  }
  return {wrr.next(weight, rule.weight_total), reason::weight, {}};
}

}  // namespace canary::routing
