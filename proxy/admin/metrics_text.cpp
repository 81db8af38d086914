// Prometheus exposition of DESIGN §6; see metrics_text.h.
#include "admin/metrics_text.h"

#include <limits>
#include <sstream>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "routing/router.h"

namespace canary::admin {

namespace prom = prometheus;

namespace {

prom::MetricFamily family(std::string name, std::string help, prom::MetricType type) {
  return prom::MetricFamily{std::move(name), std::move(help), type, {}};
}

prom::ClientMetric counter(std::vector<prom::ClientMetric::Label> labels, double v) {
  prom::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  return m;
}

prom::ClientMetric gauge(std::vector<prom::ClientMetric::Label> labels, double v) {
  prom::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  return m;
}

constexpr const char* upstream_error_names[] = {"connect", "timeout", "reset", "protocol"};

}  // namespace

std::string render_metrics(rollout::engine& engine,
                           const std::vector<const metrics::worker_cells*>& workers) {
  const auto& reg = engine.series();
  std::vector<prom::MetricFamily> out;

  auto requests = family("canary_proxy_requests_total",
                         "Requests answered through an upstream, by route, variant, upstream "
                         "and status code.",
                         prom::MetricType::Counter);
  auto durations = family("canary_proxy_request_duration_seconds",
                          "Time from the request head to the upstream response head.",
                          prom::MetricType::Histogram);
  for (std::uint32_t id = 0; id < reg.series().size(); ++id) {
    const auto& key = reg.series()[id];
    std::array<std::uint64_t, 1000> codes{};
    std::array<std::uint64_t, metrics::duration_buckets.size() + 1> buckets{};
    std::uint64_t sum_us = 0;
    bool seen = false;
    for (const auto* w : workers) {
      const auto* c = w->find_series(id);
      if (!c) continue;
      seen = true;
      for (std::size_t i = 0; i < codes.size(); ++i) codes[i] += c->by_code[i].get();
      for (std::size_t i = 0; i < buckets.size(); ++i) buckets[i] += c->latency[i].get();
      sum_us += c->latency_sum_us.get();
    }
    if (!seen) continue;
    for (std::size_t code = 0; code < codes.size(); ++code) {
      if (!codes[code]) continue;
      requests.metric.push_back(counter({{"route", key.route},
                                         {"variant", key.variant},
                                         {"upstream", key.upstream},
                                         {"code", std::to_string(code)}},
                                        static_cast<double>(codes[code])));
    }
    std::uint64_t total = 0;
    for (auto b : buckets) total += b;
    if (total == 0) continue;
    prom::ClientMetric h;
    h.label = {{"route", key.route}, {"variant", key.variant}, {"upstream", key.upstream}};
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
      cumulative += buckets[i];
      prom::ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < metrics::duration_buckets.size()
                          ? metrics::duration_buckets[i]
                          : std::numeric_limits<double>::infinity();
      h.histogram.bucket.push_back(b);
    }
    h.histogram.sample_count = total;
    h.histogram.sample_sum = static_cast<double>(sum_us) / 1e6;
    durations.metric.push_back(std::move(h));
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(durations));

  auto decisions = family("canary_proxy_routing_decisions_total",
                          "Routing decisions by route, variant and reason.",
                          prom::MetricType::Counter);
  for (std::uint32_t id = 0; id < reg.routes().size(); ++id) {
    std::array<std::array<std::uint64_t, 6>, 2> sums{};
    for (const auto* w : workers)
      if (const auto* c = w->find_route(id))
        for (int v = 0; v < 2; ++v)
          for (int r = 0; r < 6; ++r) sums[v][r] += c->decisions[v][r].get();
    for (int v = 0; v < 2; ++v)
      for (int r = 0; r < 6; ++r)
        if (sums[v][r])
          decisions.metric.push_back(counter(
              {{"route", reg.routes()[id]},
               {"variant", std::string(routing::to_string(static_cast<routing::variant>(v)))},
               {"reason", std::string(routing::to_string(static_cast<routing::reason>(r)))}},
              static_cast<double>(sums[v][r])));
  }
  out.push_back(std::move(decisions));

  auto local = family("canary_proxy_local_replies_total",
                      "Data-plane replies the proxy made itself, by status code.",
                      prom::MetricType::Counter);
  for (unsigned code = 100; code < 600; ++code) {
    std::uint64_t n = 0;
    for (const auto* w : workers) n += w->local_replies(code);
    if (n) local.metric.push_back(counter({{"code", std::to_string(code)}}, static_cast<double>(n)));
  }
  out.push_back(std::move(local));

  auto upstream_errors = family("canary_proxy_upstream_errors_total",
                                "Upstream failures by upstream and reason.",
                                prom::MetricType::Counter);
  for (std::uint32_t id = 0; id < reg.upstreams().size(); ++id) {
    std::array<std::uint64_t, 4> sums{};
    for (const auto* w : workers)
      if (const auto* c = w->find_upstream(id))
        for (int i = 0; i < 4; ++i) sums[i] += c->errors[i].get();
    for (int i = 0; i < 4; ++i)
      if (sums[i])
        upstream_errors.metric.push_back(counter(
            {{"upstream", reg.upstreams()[id]}, {"reason", upstream_error_names[i]}},
            static_cast<double>(sums[i])));
  }
  out.push_back(std::move(upstream_errors));

  std::uint64_t active = 0, total = 0;
  for (const auto* w : workers) {
    active += w->connections_active();
    total += w->connections_total();
  }
  auto conn_active = family("canary_proxy_connections_active", "Open client connections.",
                            prom::MetricType::Gauge);
  conn_active.metric.push_back(gauge({}, static_cast<double>(active)));
  out.push_back(std::move(conn_active));
  auto conn_total = family("canary_proxy_connections_total", "Client connections accepted.",
                           prom::MetricType::Counter);
  conn_total.metric.push_back(counter({}, static_cast<double>(total)));
  out.push_back(std::move(conn_total));

  auto weight = family("canary_proxy_rollout_weight",
                       "Canary weight routing applies now, in percent (0-100).",
                       prom::MetricType::Gauge);
  auto step = family("canary_proxy_rollout_step", "Current step index of the rollout.",
                     prom::MetricType::Gauge);
  auto info = family("canary_proxy_rollout_info", "Rollout phase and versions (value 1).",
                     prom::MetricType::Gauge);
  for (const auto& s : engine.statuses()) {
    const auto& name = s.route->name;
    weight.metric.push_back(gauge({{"route", name}}, 100.0 * s.actual_weight /
                                                         s.route->canary.weight_total));
    step.metric.push_back(gauge({{"route", name}}, static_cast<double>(s.state->step)));
    info.metric.push_back(gauge({{"route", name},
                                 {"phase", std::string(rollout::to_string(s.state->phase))},
                                 {"stable", s.state->stable},
                                 {"canary", s.state->canary}},
                                1));
  }
  out.push_back(std::move(weight));
  out.push_back(std::move(step));
  out.push_back(std::move(info));

  auto reloads = family("canary_proxy_config_reloads_total", "Config reloads by result.",
                        prom::MetricType::Counter);
  reloads.metric.push_back(counter({{"result", "success"}}, static_cast<double>(engine.reloads_ok())));
  reloads.metric.push_back(
      counter({{"result", "failure"}}, static_cast<double>(engine.reloads_failed())));
  out.push_back(std::move(reloads));

  auto build = family("canary_proxy_build_info", "Build information (value 1).",
                      prom::MetricType::Gauge);
  build.metric.push_back(gauge({{"version", CANARY_VERSION}}, 1));
  out.push_back(std::move(build));

  std::ostringstream text;
  prom::TextSerializer().Serialize(text, out);
  return text.str();
}

}  // namespace canary::admin
