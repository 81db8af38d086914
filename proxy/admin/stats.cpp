// Windowed per-variant statistics; see stats.h.
#include "admin/stats.h"

#include <boost/json.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>

namespace canary::admin {

namespace {

constexpr std::size_t n_buckets = metrics::duration_buckets.size() + 1;

const std::array<variant_counts, 2>& counts_of(const stats_sample& s, const std::string& route) {
  static const std::array<variant_counts, 2> zero{};
  auto it = s.routes.find(route);
  return it == s.routes.end() ? zero : it->second;
}

// Counters only grow (cells live as long as the process); a smaller newer value would mean
// samples from different processes, which the ring never mixes, but never go negative.
std::uint64_t delta(std::uint64_t newer, std::uint64_t older) {
  return newer >= older ? newer - older : 0;
}

// Shortest text of v rounded to `decimals` places ("12.5", "0", "0.0123").
void append_number(std::string& out, double v, int decimals) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  const double scale = std::pow(10.0, decimals);
  v = std::round(v * scale) / scale;
  if (v == 0) v = 0;  // no "-0"
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, decimals);
  std::string_view s(buf, static_cast<std::size_t>(end - buf));
  if (s.find('.') != std::string_view::npos) {
    while (s.back() == '0') s.remove_suffix(1);
    if (s.back() == '.') s.remove_suffix(1);
  }
  out += s;
}

void append_optional(std::string& out, const std::optional<double>& v, int decimals) {
  if (v)
    append_number(out, *v, decimals);
  else
    out += "null";
}

}  // namespace

stats_sample take_sample(double time_s, const metrics::series_registry& registry,
                         const std::vector<const metrics::worker_cells*>& workers) {
  stats_sample out;
  out.time_s = time_s;
  const auto& keys = registry.series();
  for (std::uint32_t id = 0; id < keys.size(); ++id) {
    const auto& key = keys[id];
    auto& c = out.routes[key.route][key.variant == "canary" ? 1 : 0];
    for (const auto* w : workers) {
      const auto* s = w->find_series(id);
      if (!s) continue;
      for (std::size_t code = 0; code < s->by_code.size(); ++code) {
        const auto n = s->by_code[code].get();
        if (!n) continue;
        c.requests += n;
        if (code >= 500 && code < 600) c.errors += n;
      }
      for (std::size_t i = 0; i < n_buckets; ++i) c.latency[i] += s->latency[i].get();
    }
  }
  return out;
}

std::optional<double> histogram_quantile(
    double q, const std::array<std::uint64_t, metrics::duration_buckets.size() + 1>& buckets) {
  std::uint64_t total = 0;
  for (auto b : buckets) total += b;
  if (total == 0) return std::nullopt;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(total);
  std::uint64_t below = 0;  // observations in the buckets before i
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const std::uint64_t cum = below + buckets[i];
    if (static_cast<double>(cum) >= rank && buckets[i] > 0) {
      if (i == metrics::duration_buckets.size())  // +Inf: the highest finite bound
        return metrics::duration_buckets.back();
      const double lower = i == 0 ? 0.0 : metrics::duration_buckets[i - 1];
      const double upper = metrics::duration_buckets[i];
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(buckets[i]);
      return lower + (upper - lower) * within;
    }
    below = cum;
  }
  return metrics::duration_buckets.back();
}

std::vector<route_stats> compute_stats(const stats_sample& older, const stats_sample& newer,
                                       const std::vector<std::string>& routes) {
  const double elapsed = newer.time_s - older.time_s;
  std::vector<route_stats> out;
  out.reserve(routes.size());
  for (const auto& name : routes) {
    route_stats r;
    r.route = name;
    const auto& a = counts_of(older, name);
    const auto& b = counts_of(newer, name);
    std::uint64_t route_requests = 0;
    for (int v = 0; v < 2; ++v) {
      auto& s = r.variants[v];
      s.requests = delta(b[v].requests, a[v].requests);
      route_requests += s.requests;
      const std::uint64_t errors = delta(b[v].errors, a[v].errors);
      s.rps = elapsed > 0 ? static_cast<double>(s.requests) / elapsed : 0;
      s.error_rate =
          s.requests ? static_cast<double>(errors) / static_cast<double>(s.requests) : 0;
      std::array<std::uint64_t, n_buckets> lat{};
      for (std::size_t i = 0; i < n_buckets; ++i) lat[i] = delta(b[v].latency[i], a[v].latency[i]);
      if (auto p = histogram_quantile(0.5, lat)) s.p50_ms = *p * 1000;
      if (auto p = histogram_quantile(0.99, lat)) s.p99_ms = *p * 1000;
    }
    for (auto& s : r.variants)
      s.share = route_requests ? static_cast<double>(s.requests) /
                                     static_cast<double>(route_requests)
                               : 0;
    out.push_back(std::move(r));
  }
  return out;
}

std::string stats_json(int window_s, const std::vector<route_stats>& stats) {
  static constexpr const char* names[] = {"stable", "canary"};
  std::string out = "{\"window_s\": " + std::to_string(window_s) + ", \"routes\": [";
  bool first_route = true;
  for (const auto& r : stats) {
    if (!first_route) out += ", ";
    first_route = false;
    out += "{\"route\": " + boost::json::serialize(boost::json::value(r.route)) +
           ", \"variants\": {";
    for (int v = 0; v < 2; ++v) {
      const auto& s = r.variants[v];
      if (v) out += ", ";
      out += "\"";
      out += names[v];
      out += "\": {\"rps\": ";
      append_number(out, s.rps, 3);
      out += ", \"error_rate\": ";
      append_number(out, s.error_rate, 4);
      out += ", \"p50_ms\": ";
      append_optional(out, s.p50_ms, 3);
      out += ", \"p99_ms\": ";
      append_optional(out, s.p99_ms, 3);
      out += ", \"share\": ";
      append_number(out, s.share, 4);
      out += ", \"requests\": " + std::to_string(s.requests) + "}";
    }
    out += "}}";
  }
  out += "]}\n";
  return out;
}

void stats_ring::push(stats_sample s) {
  samples_.push_back(std::move(s));
  while (samples_.size() > capacity) samples_.pop_front();
}

std::vector<route_stats> stats_ring::compute(const std::vector<std::string>& routes) const {
  if (samples_.empty()) return compute_stats({}, {}, routes);
  if (samples_.size() == 1) return compute_stats(samples_.front(), samples_.front(), routes);
  return compute_stats(samples_.front(), samples_.back(), routes);
}

}  // namespace canary::admin
