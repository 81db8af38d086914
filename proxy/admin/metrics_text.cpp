// Prometheus exposition of docs/architecture.md#metrics; see metrics_text.h.
#include "admin/metrics_text.h"

#include <array>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include "http/mirror.h"
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
constexpr std::size_t n_reasons = 6;  // routing::reason
constexpr std::size_t n_buckets = metrics::duration_buckets.size() + 1;

struct histogram_sum {
  std::array<std::uint64_t, n_buckets> buckets{};  // non-cumulative, +Inf last
  std::uint64_t sum_us = 0;
};

}  // namespace

std::vector<prom::MetricFamily> collect_cells(
    const metrics::series_registry& reg, const std::vector<const metrics::worker_cells*>& workers) {
  std::vector<prom::MetricFamily> out;

  // requests_total keeps the upstream label; the histogram is {route, variant} (see
  // docs/architecture.md#metrics), so the series of one route and variant (one per upstream it has
  // had) are added up.
  auto requests = family("canary_proxy_requests_total",
                         "Requests answered on a route, by variant as routed, upstream and exact "
                         "status code (the proxy's own 502/503/504 for the upstream included).",
                         prom::MetricType::Counter);
  std::map<std::pair<std::string, std::string>, histogram_sum> durations_by_variant;
  for (std::uint32_t id = 0; id < reg.series().size(); ++id) {
    const auto& key = reg.series()[id];
    std::array<std::uint64_t, 1000> codes{};
    histogram_sum h;
    bool seen = false;
    for (const auto* w : workers) {
      const auto* c = w->find_series(id);
      if (!c) continue;
      seen = true;
      for (std::size_t i = 0; i < codes.size(); ++i) codes[i] += c->by_code[i].get();
      for (std::size_t i = 0; i < n_buckets; ++i) h.buckets[i] += c->latency[i].get();
      h.sum_us += c->latency_sum_us.get();
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
    std::uint64_t observed = 0;
    for (auto b : h.buckets) observed += b;
    if (observed == 0) continue;
    auto& agg = durations_by_variant[{key.route, key.variant}];
    for (std::size_t i = 0; i < n_buckets; ++i) agg.buckets[i] += h.buckets[i];
    agg.sum_us += h.sum_us;
  }
  out.push_back(std::move(requests));

  auto durations = family("canary_proxy_request_duration_seconds",
                          "Time from the complete request head to the upstream response head.",
                          prom::MetricType::Histogram);
  for (const auto& [key, h] : durations_by_variant) {
    prom::ClientMetric m;
    m.label = {{"route", key.first}, {"variant", key.second}};
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < n_buckets; ++i) {
      cumulative += h.buckets[i];
      prom::ClientMetric::Bucket b;
      b.cumulative_count = cumulative;
      b.upper_bound = i < metrics::duration_buckets.size()
                          ? metrics::duration_buckets[i]
                          : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(b);
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(h.sum_us) / 1e6;
    durations.metric.push_back(std::move(m));
  }
  out.push_back(std::move(durations));

  auto decisions = family("canary_proxy_routing_decisions_total",
                          "Routing decisions by route, variant and reason.",
                          prom::MetricType::Counter);
  for (std::uint32_t id = 0; id < reg.routes().size(); ++id) {
    std::array<std::array<std::uint64_t, n_reasons>, 2> sums{};
    for (const auto* w : workers)
      if (const auto* c = w->find_route(id))
        for (std::size_t v = 0; v < 2; ++v)
          for (std::size_t r = 0; r < n_reasons; ++r) sums[v][r] += c->decisions[v][r].get();
    for (std::size_t v = 0; v < 2; ++v)
      for (std::size_t r = 0; r < n_reasons; ++r)
        if (sums[v][r])
          decisions.metric.push_back(counter(
              {{"route", reg.routes()[id]},
               {"variant", std::string(routing::to_string(static_cast<routing::variant>(v)))},
               {"reason", std::string(routing::to_string(static_cast<routing::reason>(r)))}},
              static_cast<double>(sums[v][r])));
  }
  out.push_back(std::move(decisions));

  // Shadow copies (http/mirror.h): apart from requests_total, which stays client traffic.
  auto mirrored = family("canary_proxy_mirror_requests_total",
                         "Mirrored copies sent to the canary, by route, upstream and status code "
                         "(000: timeout or connection failure).",
                         prom::MetricType::Counter);
  for (std::uint32_t id = 0; id < reg.series().size(); ++id) {
    std::array<std::uint64_t, 1000> codes{};
    bool seen = false;
    for (const auto* w : workers)
      if (const auto* c = w->find_mirror_series(id)) {
        seen = true;
        for (std::size_t i = 0; i < codes.size(); ++i) codes[i] += c->by_code[i].get();
      }
    if (!seen) continue;
    const auto& key = reg.series()[id];
    for (std::size_t code = 0; code < codes.size(); ++code) {
      if (!codes[code]) continue;
      char text[4] = {static_cast<char>('0' + code / 100), static_cast<char>('0' + code / 10 % 10),
                      static_cast<char>('0' + code % 10), 0};
      mirrored.metric.push_back(counter(
          {{"route", key.route}, {"upstream", key.upstream}, {"code", text}},
          static_cast<double>(codes[code])));
    }
  }
  out.push_back(std::move(mirrored));
  auto mirror_dropped = family("canary_proxy_mirror_dropped_total",
                               "Mirrored copies not sent, by route and reason (body_too_large, "
                               "queue_full).",
                               prom::MetricType::Counter);
  for (std::uint32_t id = 0; id < reg.routes().size(); ++id) {
    std::array<std::uint64_t, http::mirror_drop_count> sums{};
    bool seen = false;
    for (const auto* w : workers)
      if (const auto* c = w->find_mirror_route(id)) {
        seen = true;
        for (std::size_t i = 0; i < sums.size(); ++i) sums[i] += c->dropped[i].get();
      }
    if (!seen) continue;
    for (std::size_t i = 0; i < sums.size(); ++i)
      mirror_dropped.metric.push_back(counter(
          {{"route", reg.routes()[id]},
           {"reason", std::string(http::to_string(static_cast<http::mirror_drop>(i)))}},
          static_cast<double>(sums[i])));
  }
  out.push_back(std::move(mirror_dropped));

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
        for (std::size_t i = 0; i < sums.size(); ++i) sums[i] += c->errors[i].get();
    for (std::size_t i = 0; i < sums.size(); ++i)
      if (sums[i])
        upstream_errors.metric.push_back(counter(
            {{"upstream", reg.upstreams()[id]}, {"reason", upstream_error_names[i]}},
            static_cast<double>(sums[i])));
  }
  out.push_back(std::move(upstream_errors));

  // An extension (listed in docs/architecture.md#metrics): outlier ejections (upstream.outlier),
  // per upstream.
  auto ejections = family("canary_proxy_upstream_ejections_total",
                          "Endpoints ejected by outlier detection, by upstream.",
                          prom::MetricType::Counter);
  for (std::uint32_t id = 0; id < reg.upstreams().size(); ++id) {
    std::uint64_t n = 0;
    for (const auto* w : workers)
      if (const auto* c = w->find_upstream(id)) n += c->ejections.get();
    if (n)
      ejections.metric.push_back(
          counter({{"upstream", reg.upstreams()[id]}}, static_cast<double>(n)));
  }
  out.push_back(std::move(ejections));

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
  // ok: a TLS session is up; failed: the client or OpenSSL gave up (version, cipher, alert,
  // reset); timeout: not done within timeouts.client_header.
  auto handshakes = family("canary_proxy_tls_handshakes_total",
                           "TLS handshakes on the TLS listener, by result.",
                           prom::MetricType::Counter);
  constexpr const char* handshake_results[] = {"ok", "failed", "timeout"};
  for (std::size_t r = 0; r < 3; ++r) {
    std::uint64_t n = 0;
    for (const auto* w : workers) n += w->tls_handshakes(r);
    handshakes.metric.push_back(counter({{"result", handshake_results[r]}}, static_cast<double>(n)));
  }
  out.push_back(std::move(handshakes));
  return out;
}

std::vector<prom::MetricFamily> collect_rollouts(const std::vector<rollout::route_status>& statuses,
                                                 std::uint64_t reloads_ok,
                                                 std::uint64_t reloads_failed) {
  std::vector<prom::MetricFamily> out;
  auto weight = family("canary_proxy_rollout_weight",
                       "Canary weight routing applies now, in percent (0-100).",
                       prom::MetricType::Gauge);
  auto step = family("canary_proxy_rollout_step",
                     "Current step index of the rollout (the step count when complete).",
                     prom::MetricType::Gauge);
  auto info = family("canary_proxy_rollout_info",
                     "Rollout phase and versions (value 1; canary empty when none).",
                     prom::MetricType::Gauge);
  for (const auto& s : statuses) {
    const auto& name = s.route->name;
    const int total = s.route->canary.weight_total > 0 ? s.route->canary.weight_total : 100;
    weight.metric.push_back(gauge({{"route", name}}, 100.0 * s.actual_weight / total));
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

  auto reloads = family("canary_proxy_config_reloads_total",
                        "Config reloads (SIGHUP or API) by result.", prom::MetricType::Counter);
  reloads.metric.push_back(counter({{"result", "success"}}, static_cast<double>(reloads_ok)));
  reloads.metric.push_back(counter({{"result", "failure"}}, static_cast<double>(reloads_failed)));
  out.push_back(std::move(reloads));
  return out;
}

std::vector<prom::MetricFamily> collect_analysis(const rollout::engine& engine) {
  std::vector<prom::MetricFamily> out;
  auto store_up = family("canary_proxy_state_store_up",
                         "1 while the rollout state store is reachable (always 1 for the "
                         "state file; etcd: 0 while this replica cannot reach it).",
                         prom::MetricType::Gauge);
  store_up.metric.push_back(gauge({}, engine.store_down() ? 0 : 1));
  out.push_back(std::move(store_up));
  auto measurements = family("canary_proxy_analysis_measurements_total",
                             "Analysis measurements by route, metric and phase.",
                             prom::MetricType::Counter);
  for (const auto& [key, n] : engine.measurement_counts()) {
    const auto& [route, metric, phase] = key;
    measurements.metric.push_back(
        counter({{"route", route}, {"metric", metric}, {"phase", phase}}, static_cast<double>(n)));
  }
  out.push_back(std::move(measurements));

  auto values = family("canary_proxy_analysis_value",
                       "The last measured value of an analysis metric by variant (provider "
                       "metrics: canary only).",
                       prom::MetricType::Gauge);
  auto phases = family("canary_proxy_analysis_phase",
                       "The route's analysis run phase (1 for the current one).",
                       prom::MetricType::Gauge);
  static constexpr analysis::run_phase all_phases[] = {
      analysis::run_phase::running,      analysis::run_phase::successful,
      analysis::run_phase::failed,       analysis::run_phase::inconclusive,
      analysis::run_phase::error,        analysis::run_phase::dry_run};
  for (const auto& s : engine.statuses()) {
    const auto& run = s.state->analysis.run;
    if (!s.route->analysis || !run) continue;
    for (const auto& m : run->metrics) {
      if (!m.last) continue;
      values.metric.push_back(
          gauge({{"route", s.route->name}, {"metric", m.name}, {"variant", "canary"}},
                m.last->value));
      if (m.kind == analysis::metric_kind::sequential || m.kind == analysis::metric_kind::threshold)
        values.metric.push_back(
            gauge({{"route", s.route->name}, {"metric", m.name}, {"variant", "stable"}},
                  m.last->stable_value));
    }
    for (auto p : all_phases)
      phases.metric.push_back(
          gauge({{"route", s.route->name}, {"phase", std::string(analysis::to_string(p))}},
                p == run->phase ? 1 : 0));
  }
  out.push_back(std::move(values));
  out.push_back(std::move(phases));

  auto calls = family("canary_proxy_webhook_calls_total",
                      "Webhook calls by route, webhook and result (after retries).",
                      prom::MetricType::Counter);
  if (const auto* hooks = engine.webhooks())
    for (const auto& c : hooks->counts())
      calls.metric.push_back(
          counter({{"route", c.route}, {"webhook", c.webhook}, {"result", c.result}},
                  static_cast<double>(c.n)));
  out.push_back(std::move(calls));
  return out;
}

analysis::interval_sample sample_route(metrics::series_registry& registry,
                                       const std::vector<const metrics::worker_cells*>& workers,
                                       const std::string& route, const std::string& stable,
                                       const std::string& canary) {
  analysis::interval_sample out;
  const auto route_id = registry.route_id(route);
  for (int v = 0; v < 2; ++v) {
    auto& side = v == 0 ? out.stable : out.canary;
    const std::string& upstream = v == 0 ? stable : canary;
    const bool has_series = !upstream.empty();
    const std::uint32_t series_id =
        has_series ? registry.series_id(route, v == 0 ? "stable" : "canary", upstream) : 0;
    for (const auto* w : workers) {
      if (const auto* c = w->find_route(route_id)) {
        const auto& d = c->decided[static_cast<std::size_t>(v)];
        side.requests += d.requests.get();
        side.bad += d.bad.get();
        for (std::size_t k = 0; k < side.slow.size() && k < d.slow.size(); ++k)
          side.slow[k] += d.slow[k].get();
      }
      if (!has_series) continue;
      if (const auto* c = w->find_series(series_id)) {
        for (std::size_t code = 0; code < c->by_code.size(); ++code) {
          const auto n = c->by_code[code].get();
          side.total += n;
          if (code >= 500 && code <= 599) side.errors += n;
        }
        for (std::size_t b = 0; b < side.latency.size() && b < c->latency.size(); ++b)
          side.latency[b] += c->latency[b].get();
      }
    }
  }
  return out;
}

std::vector<prom::MetricFamily> proxy_collector::Collect() const {
  auto out = collect_cells(engine_->series(), workers_);
  const std::uint64_t load_failures = load_failures_ ? load_failures_() : 0;
  auto rollouts = collect_rollouts(engine_->statuses(), engine_->reloads_ok(),
                                   engine_->reloads_failed() + load_failures);
  for (auto& f : rollouts) out.push_back(std::move(f));
  auto write_errors = family("canary_proxy_state_write_errors_total",
                             "Rollout state saves that failed (the change was refused or held).",
                             prom::MetricType::Counter);
  write_errors.metric.push_back(
      counter({}, static_cast<double>(engine_->state_write_errors())));
  out.push_back(std::move(write_errors));
  for (auto& f : collect_analysis(*engine_)) out.push_back(std::move(f));
  return out;
}

metrics_exposition::metrics_exposition(rollout::engine& engine,
                                       std::vector<const metrics::worker_cells*> workers,
                                       std::function<std::uint64_t()> load_failures)
    : registry_(std::make_shared<prom::Registry>()) {
  prom::BuildGauge()
      .Name("canary_proxy_build_info")
      .Help("Build information (value 1).")
      .Register(*registry_)
      .Add({{"version", CANARY_VERSION}})
      .Set(1);
  collectables_.push_back(
      std::make_shared<proxy_collector>(engine, std::move(workers), std::move(load_failures)));
  collectables_.push_back(registry_);
}

std::string metrics_exposition::render() const {
  std::vector<prom::MetricFamily> families;
  for (const auto& c : collectables_) {
    auto f = c->Collect();
    families.insert(families.end(), std::make_move_iterator(f.begin()),
                    std::make_move_iterator(f.end()));
  }
  std::ostringstream text;
  prom::TextSerializer().Serialize(text, families);
  return text.str();
}

std::string render_metrics(rollout::engine& engine,
                           const std::vector<const metrics::worker_cells*>& workers) {
  return metrics_exposition(engine, workers).render();
}

}  // namespace canary::admin
