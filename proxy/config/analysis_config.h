// What a route's `analysis:` and `webhooks:` sections say (docs/analysis.md): plain structs built
// by the config loader, immutable once loaded, shared between threads with the proxy_config.
// Every default lives here, with its reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace canary::config {

// An external HTTP provider's connection settings (prometheus and web metrics, webhooks).
struct http_target_config {
  std::string url;  // http:// or https://; may hold {{route}} {{stable}} {{canary}} {{interval}}
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
  std::string ca_file;  // "" = the system store (https only); absolute after load
  std::map<std::string, std::string> headers;
};

struct metric_config {
  enum class kind { sequential, threshold, prometheus, web };
  enum class builtin {
    none,                  // a provider metric
    error_rate_vs_stable,  // sequential: 5xx (and bad gRPC statuses) against stable
    latency_vs_stable,     // sequential: share slower than `slow` against stable
    success_rate,          // threshold on the canary alone, per interval (Flagger's method)
    error_rate,
    latency_p50,
    latency_p90,
    latency_p99,
  };

  std::string name;
  kind what = kind::threshold;
  enum builtin builtin = builtin::none;

  // Sequential metrics.
  double max_increase = 0;  // tolerated relative increase of the bad rate (0.5 = 1.5x stable)
  double confidence = 0.99;  // P(false abort over the whole run) <= 1 - confidence
  // Canary requests in the run (sequential) or in the interval (threshold) before a measurement
  // can be Successful: below it, Inconclusive. Sequential 100: a few bad requests say nothing;
  // threshold 20: Flagger's "no values" case is Inconclusive, never Failed.
  std::optional<std::uint64_t> min_requests;
  std::optional<double> pass_margin;  // Successful also needs the upper bound of r <= 1 + this
  std::chrono::milliseconds slow{0};  // latency_vs_stable: slower than this is "bad"

  // Threshold and provider metrics: a measurement outside [min, max] is Failed. Fractions for
  // rates, milliseconds for latencies, the provider's number as is.
  std::optional<double> min;
  std::optional<double> max;

  // Provider metrics.
  std::string query;  // prometheus: an instant query (templated)
  http_target_config target;  // prometheus: url = the server's address; web: the URL to GET
  std::string json_path;  // web: "$.a.b[0]"; "" = the whole body is the number

  std::optional<bool> dry_run;  // nullopt = the analysis' dry_run

  std::uint64_t effective_min_requests() const {
    if (min_requests) return *min_requests;
    return what == kind::sequential ? 100 : 20;
  }
};

struct analysis_config {
  bool background = true;  // from the first setWeight/setMirror to the end; false: inline only
  std::chrono::milliseconds interval = std::chrono::seconds(10);
  std::chrono::milliseconds initial_delay{0};
  int failure_limit = 0;       // Failed measurements tolerated per metric and run (Argo: 0)
  int inconclusive_limit = 3;  // consecutive Inconclusive tolerated per metric; one more pauses
  int error_limit = 4;         // consecutive Errors tolerated (Argo's consecutiveErrorLimit: 4)
  bool dry_run = false;
  std::vector<metric_config> metrics;

  const metric_config* find(const std::string& metric) const {
    for (const auto& m : metrics)
      if (m.name == metric) return &m;
    return nullptr;
  }
};

struct webhook_config {
  enum class kind {
    confirm_rollout,
    pre_rollout,
    rollout,
    confirm_promotion,
    post_rollout,
    rollback,
    event,
  };
  enum class body_format { json, slack };

  std::string name;
  kind type = kind::event;
  http_target_config target;  // POSTed to; timeout default 10s (Flagger's webhook default)
  int retries = 0;
  body_format format = body_format::json;
  std::map<std::string, std::string> metadata;
};

}  // namespace canary::config
