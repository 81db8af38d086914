// Fleet-wide analysis counts; see counters.h.
#include "fleet/counters.h"

#include <boost/json.hpp>

namespace canary::fleet {

namespace json = boost::json;

namespace {

// requests, bad, slow[...], total, errors, latency[...] in that order.
json::array encode_variant(const analysis::variant_sample& v) {
  json::array a;
  a.push_back(v.requests);
  a.push_back(v.bad);
  for (auto n : v.slow) a.push_back(n);
  a.push_back(v.total);
  a.push_back(v.errors);
  for (auto n : v.latency) a.push_back(n);
  return a;
}

bool decode_variant(const json::value& v, analysis::variant_sample& out) {
  const auto* a = v.if_array();
  const std::size_t want = 4 + out.slow.size() + out.latency.size();
  if (!a || a->size() != want) return false;
  std::size_t i = 0;
  auto next = [&](std::uint64_t& field) {
    const auto& x = (*a)[i++];
    if (x.is_uint64()) field = x.as_uint64();
    else if (x.is_int64() && x.as_int64() >= 0) field = static_cast<std::uint64_t>(x.as_int64());
    else return false;
    return true;
  };
  bool ok = next(out.requests) && next(out.bad);
  for (auto& n : out.slow) ok = ok && next(n);
  ok = ok && next(out.total) && next(out.errors);
  for (auto& n : out.latency) ok = ok && next(n);
  return ok;
}

std::uint64_t sub(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

analysis::variant_sample minus_variant(const analysis::variant_sample& a,
                                       const analysis::variant_sample& b) {
  analysis::variant_sample out;
  out.requests = sub(a.requests, b.requests);
  out.bad = sub(a.bad, b.bad);
  for (std::size_t k = 0; k < out.slow.size(); ++k) out.slow[k] = sub(a.slow[k], b.slow[k]);
  out.total = sub(a.total, b.total);
  out.errors = sub(a.errors, b.errors);
  for (std::size_t k = 0; k < out.latency.size(); ++k)
    out.latency[k] = sub(a.latency[k], b.latency[k]);
  return out;
}

}  // namespace

std::string encode_counters(const std::map<std::string, analysis::interval_sample>& routes) {
  json::object o;
  for (const auto& [route, s] : routes)
    o[route] = json::object{{"stable", encode_variant(s.stable)},
                            {"canary", encode_variant(s.canary)}};
  return json::serialize(o);
}

std::optional<std::map<std::string, analysis::interval_sample>> decode_counters(
    const std::string& text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  std::map<std::string, analysis::interval_sample> out;
  for (const auto& [route, s] : v.as_object()) {
    const auto* o = s.if_object();
    analysis::interval_sample sample;
    if (!o || !o->contains("stable") || !o->contains("canary") ||
        !decode_variant(o->at("stable"), sample.stable) ||
        !decode_variant(o->at("canary"), sample.canary))
      return std::nullopt;
    out.emplace(std::string(route), sample);
  }
  return out;
}

analysis::interval_sample minus(const analysis::interval_sample& a,
                                const analysis::interval_sample& b) {
  return {minus_variant(a.stable, b.stable), minus_variant(a.canary, b.canary)};
}

void fleet_counters::update(const std::string& key,
                            const std::map<std::string, analysis::interval_sample>& c) {
  auto& routes = by_publisher_[key];
  for (const auto& [route, sample] : c) {
    auto it = routes.find(route);
    if (it == routes.end())
      routes.emplace(route, seen{sample, sample});
    else
      it->second.last = sample;
  }
}

analysis::interval_sample fleet_counters::others(const std::string& route,
                                                 const std::string& self) const {
  analysis::interval_sample sum;
  for (const auto& [key, routes] : by_publisher_) {
    if (key == self) continue;
    if (auto it = routes.find(route); it != routes.end())
      sum += minus(it->second.last, it->second.first);
  }
  return sum;
}

}  // namespace canary::fleet
