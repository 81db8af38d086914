// A route's `analysis:` and `webhooks:` sections and its `- analysis:` steps (docs/analysis.md).
// See reader.h; runs on the loading thread, inside one config_reader.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "analysis/providers.h"
#include "config/reader.h"
#include "config/syntax.h"

namespace canary::config {

namespace {

// The route's latency_vs_stable metrics share 4 slow counters per variant on the data plane.
constexpr std::size_t max_slow_values = 4;

struct builtin_name {
  std::string_view name;
  enum metric_config::builtin value;
  metric_config::kind what;
  bool latency;  // min/max are durations
};

constexpr builtin_name builtins[] = {
    {"error_rate_vs_stable", metric_config::builtin::error_rate_vs_stable,
     metric_config::kind::sequential, false},
    {"latency_vs_stable", metric_config::builtin::latency_vs_stable,
     metric_config::kind::sequential, false},
    {"success_rate", metric_config::builtin::success_rate, metric_config::kind::threshold, false},
    {"error_rate", metric_config::builtin::error_rate, metric_config::kind::threshold, false},
    {"latency_p50", metric_config::builtin::latency_p50, metric_config::kind::threshold, true},
    {"latency_p90", metric_config::builtin::latency_p90, metric_config::kind::threshold, true},
    {"latency_p99", metric_config::builtin::latency_p99, metric_config::kind::threshold, true},
};

struct webhook_type_name {
  std::string_view name;
  webhook_config::kind value;
};

constexpr webhook_type_name webhook_types[] = {
    {"confirm-rollout", webhook_config::kind::confirm_rollout},
    {"pre-rollout", webhook_config::kind::pre_rollout},
    {"rollout", webhook_config::kind::rollout},
    {"confirm-promotion", webhook_config::kind::confirm_promotion},
    {"post-rollout", webhook_config::kind::post_rollout},
    {"rollback", webhook_config::kind::rollback},
    {"event", webhook_config::kind::event},
};

}  // namespace

std::optional<double> config_reader::read_number(const item& at) {
  if (at.node.IsScalar() && at.node.Tag() != "!") {
    const std::string& s = at.node.Scalar();
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && errno == 0 && std::isfinite(v)) return v;
  }
  w_.error(at, "expected a number");
  return std::nullopt;
}

void config_reader::check_template(const item& at, const std::string& text) {
  if (auto bad = analysis::unknown_template_variable(text))
    w_.error(at, "unknown template variable {{" + *bad + "}}" +
                     " (expected {{route}}, {{stable}}, {{canary}} or {{interval}})");
}

void config_reader::read_http_target(const mapping_view& m, const char* url_key,
                                     http_target_config& out) {
  if (auto* v = m.get(url_key))
    if (auto s = w_.string(*v)) {
      if (s->rfind("http://", 0) != 0 && s->rfind("https://", 0) != 0)
        w_.error(*v, "expected an http:// or https:// URL");
      check_template(*v, *s);
      out.url = *s;
    }
  if (auto* v = m.get("timeout"))
    if (auto d = w_.duration_value(*v, false)) out.timeout = *d;
  if (auto* v = m.get("ca_file"))
    if (auto s = w_.string(*v)) out.ca_file = s->empty() ? "" : resolve_path(*s);
  if (auto* v = m.get("headers"))
    if (auto hm = w_.mapping(*v, {}))
      for (const auto& e : hm->entries()) {
        if (!is_token(e.key))
          w_.error(e.key_mark, e.value.path, "bad header name " + quote(e.key));
        if (auto s = w_.string(e.value)) {
          check_template(e.value, *s);
          out.headers[e.key] = *s;
        }
      }
}

void config_reader::read_analysis(const item& at, analysis_config& out) {
  auto m = w_.mapping(at, {"background", "interval", "initial_delay", "failure_limit",
                           "inconclusive_limit", "error_limit", "dry_run", "metrics"});
  if (!m) return;
  w_.require(*m, {"metrics"});
  if (auto* v = m->get("background"))
    if (auto b = w_.boolean(*v)) out.background = *b;
  if (auto* v = m->get("interval"))
    if (auto d = w_.duration_value(*v, false)) out.interval = *d;
  if (auto* v = m->get("initial_delay"))
    if (auto d = w_.duration_value(*v, true)) out.initial_delay = *d;
  if (auto* v = m->get("failure_limit"))
    if (auto n = w_.integer(*v, 0, 1000000)) out.failure_limit = static_cast<int>(*n);
  if (auto* v = m->get("inconclusive_limit"))
    if (auto n = w_.integer(*v, 0, 1000000)) out.inconclusive_limit = static_cast<int>(*n);
  if (auto* v = m->get("error_limit"))
    if (auto n = w_.integer(*v, 0, 1000000)) out.error_limit = static_cast<int>(*n);
  if (auto* v = m->get("dry_run"))
    if (auto b = w_.boolean(*v)) out.dry_run = *b;
  auto* list_at = m->get("metrics");
  if (list_at == nullptr) return;
  auto list = w_.sequence(*list_at);
  if (!list) return;
  if (list->empty()) w_.error(*list_at, "expected at least one metric");
  std::set<std::string> names;
  std::set<long long> slow_values;
  for (const auto& mi : *list) {
    metric_config metric;
    const item* name_at = read_metric(mi, metric);
    if (name_at != nullptr && !names.insert(metric.name).second)
      w_.error(*name_at, "duplicate metric name " + quote(metric.name));
    if (metric.builtin == metric_config::builtin::latency_vs_stable && metric.slow.count() > 0 &&
        slow_values.insert(metric.slow.count()).second &&
        slow_values.size() == max_slow_values + 1)
      w_.error(mi, "more than " + std::to_string(max_slow_values) +
                       " distinct `slow` values on one route (each costs counters on every "
                       "request)");
    out.metrics.push_back(std::move(metric));
  }
}

const item* config_reader::read_metric(const item& at, metric_config& out) {
  auto m = w_.mapping(at, {"name", "builtin", "max_increase", "confidence", "min_requests",
                           "pass_margin", "slow", "min", "max", "prometheus", "web", "dry_run"});
  if (!m) return nullptr;
  w_.require(*m, {"name"});
  const item* name_at = m->get("name");
  if (name_at != nullptr)
    if (auto s = w_.string(*name_at)) {
      if (!is_name(*s))
        w_.error(*name_at, "bad metric name " + quote(*s) + " (" + std::string(name_rule) + ")");
      out.name = *s;
    }
  const builtin_name* b = nullptr;
  std::vector<const item*> sources;
  if (auto* v = m->get("builtin")) {
    sources.push_back(v);
    if (auto s = w_.string(*v)) {
      for (const auto& cand : builtins)
        if (cand.name == *s) b = &cand;
      if (b == nullptr)
        w_.error(*v, "unknown builtin " + quote(*s) +
                         " (expected one of: error_rate_vs_stable, latency_vs_stable, "
                         "success_rate, error_rate, latency_p50, latency_p90, latency_p99)");
    }
  }
  if (auto* v = m->get("prometheus")) sources.push_back(v);
  if (auto* v = m->get("web")) sources.push_back(v);
  if (sources.empty()) {
    w_.error(at, "a metric needs one of: builtin, prometheus, web");
    return name_at;
  }
  if (sources.size() > 1) {
    w_.error(*sources[1], "several providers on one metric (use one of: builtin, prometheus, web)");
    return name_at;
  }
  bool latency = false;
  if (b != nullptr) {
    out.builtin = b->value;
    out.what = b->what;
    latency = b->latency;
  } else if (auto* v = m->get("prometheus")) {
    out.what = metric_config::kind::prometheus;
    if (auto pm = w_.mapping(*v, {"address", "query", "timeout", "ca_file", "headers"})) {
      w_.require(*pm, {"address", "query"});
      read_http_target(*pm, "address", out.target);
      if (auto* q = pm->get("query"))
        if (auto s = w_.string(*q)) {
          check_template(*q, *s);
          out.query = *s;
        }
    }
  } else if (auto* v = m->get("web")) {
    out.what = metric_config::kind::web;
    if (auto wm = w_.mapping(*v, {"url", "json_path", "timeout", "ca_file", "headers"})) {
      w_.require(*wm, {"url"});
      read_http_target(*wm, "url", out.target);
      if (auto* j = wm->get("json_path"))
        if (auto s = w_.string(*j)) {
          if (auto bad = analysis::json_path_error(*s)) w_.error(*j, "bad json_path: " + *bad);
          out.json_path = *s;
        }
    }
  } else {
    return name_at;  // an unknown builtin, already reported
  }

  bool sequential = out.what == metric_config::kind::sequential;
  auto only = [&](std::string_view key, bool allowed, std::string_view why) {
    const item* v = m->get(key);
    if (v != nullptr && !allowed) w_.error(*v, std::string(key) + " " + std::string(why));
    return allowed ? v : nullptr;
  };
  if (auto* v = only("max_increase", sequential, "applies to *_vs_stable metrics only"))
    if (auto d = read_number(*v)) {
      if (*d < 0)
        w_.error(*v, "must be at least 0");
      else
        out.max_increase = *d;
    }
  if (auto* v = only("confidence", sequential, "applies to *_vs_stable metrics only"))
    if (auto d = read_number(*v)) {
      if (!(*d > 0.5 && *d < 1))
        w_.error(*v, "confidence must be strictly between 0.5 and 1");
      else
        out.confidence = *d;
    }
  if (auto* v = only("pass_margin", sequential, "applies to *_vs_stable metrics only"))
    if (!v->node.IsNull())
      if (auto d = read_number(*v)) {
        if (*d < 0)
          w_.error(*v, "must be at least 0");
        else
          out.pass_margin = *d;
      }
  bool provider = out.what == metric_config::kind::prometheus ||
                  out.what == metric_config::kind::web;
  if (auto* v = only("min_requests", !provider, "does not apply to provider metrics"))
    if (auto n = w_.unsigned_integer(*v, 0, 1000000000000ULL)) out.min_requests = *n;
  bool slow_allowed = out.builtin == metric_config::builtin::latency_vs_stable;
  if (auto* v = only("slow", slow_allowed, "applies to latency_vs_stable only"))
    if (auto d = w_.duration_value(*v, false)) out.slow = *d;
  if (slow_allowed && m->get("slow") == nullptr)
    w_.error(at, "latency_vs_stable needs `slow` (the latency above which a request is bad)");
  for (std::string_view key : {"min", "max"}) {
    const item* v = only(key, !sequential, "does not apply to *_vs_stable metrics (use max_increase)");
    if (v == nullptr) continue;
    std::optional<double> value;
    if (latency) {
      if (auto d = w_.duration_value(*v, true)) value = static_cast<double>(d->count());
    } else {
      value = read_number(*v);
    }
    if (value) (key == "min" ? out.min : out.max) = *value;
  }
  if (!sequential && m->get("min") == nullptr && m->get("max") == nullptr)
    w_.error(at, "metric " + quote(out.name) + " needs min or max");
  if (out.min && out.max && *out.min > *out.max)
    w_.error(*m->get("min"), "min is above max");
  if (auto* v = m->get("dry_run"))
    if (auto bv = w_.boolean(*v)) out.dry_run = *bv;
  return name_at;
}

void config_reader::read_webhooks(const item& at, std::vector<webhook_config>& out) {
  auto list = w_.sequence(at);
  if (!list) return;
  std::set<std::string> names;
  for (const auto& wi : *list) {
    auto m = w_.mapping(wi, {"name", "type", "url", "timeout", "retries", "format", "metadata",
                             "headers", "ca_file"});
    if (!m) continue;
    w_.require(*m, {"name", "type", "url"});
    webhook_config hook;
    hook.target.timeout = std::chrono::seconds(10);
    if (auto* v = m->get("name"))
      if (auto s = w_.string(*v)) {
        if (!is_name(*s))
          w_.error(*v, "bad webhook name " + quote(*s) + " (" + std::string(name_rule) + ")");
        else if (!names.insert(*s).second)
          w_.error(*v, "duplicate webhook name " + quote(*s));
        hook.name = *s;
      }
    if (auto* v = m->get("type"))
      if (auto s = w_.string(*v)) {
        bool found = false;
        for (const auto& t : webhook_types)
          if (t.name == *s) {
            hook.type = t.value;
            found = true;
          }
        if (found && hook.type == webhook_config::kind::rollout) rollout_hook_refs_.push_back(*v);
        if (!found)
          w_.error(*v, "unknown webhook type " + quote(*s) +
                           " (expected one of: confirm-rollout, pre-rollout, rollout, "
                           "confirm-promotion, post-rollout, rollback, event)");
      }
    read_http_target(*m, "url", hook.target);
    if (auto* v = m->get("retries"))
      if (auto n = w_.integer(*v, 0, 10)) hook.retries = static_cast<int>(*n);
    if (auto* v = m->get("format"))
      if (auto s = w_.string(*v)) {
        if (*s == "json")
          hook.format = webhook_config::body_format::json;
        else if (*s == "slack")
          hook.format = webhook_config::body_format::slack;
        else
          w_.error(*v, "unknown webhook format " + quote(*s) + " (expected json or slack)");
      }
    if (auto* v = m->get("metadata"))
      if (auto mm = w_.mapping(*v, {}))
        for (const auto& e : mm->entries())
          if (auto s = w_.string(e.value)) hook.metadata[e.key] = *s;
    out.push_back(std::move(hook));
  }
}

void config_reader::read_analysis_step(const item& at, std::vector<step_config>& out) {
  step_config step{step_config::kind::analysis, 0, {}, {}, {}};
  if (!at.node.IsNull()) {
    auto m = w_.mapping(at, {"duration", "metrics"});
    if (!m) return;
    if (auto* v = m->get("duration")) {
      auto d = w_.duration_value(*v, false);
      if (!d) return;
      step.duration = *d;
    }
    if (auto* v = m->get("metrics"))
      if (auto list = w_.sequence(*v))
        for (const auto& n : *list)
          if (auto s = w_.string(n)) {
            step.metrics.push_back(*s);
            step_metric_refs_.push_back(n);
          }
  }
  analysis_step_refs_.push_back(at);
  out.push_back(std::move(step));
}

// After the whole route: `analysis:` may stand below the steps that use it.
void config_reader::check_analysis_steps(const route_config& route) {
  if (!route.analysis) {
    for (const auto& at : analysis_step_refs_)
      w_.error(at, "an analysis step needs the route's `analysis:` section");
    // A rollout webhook is judged with each analysis interval's measurement: without analysis
    // there is no interval, and a webhook that is never called would only look configured.
    for (const auto& at : rollout_hook_refs_)
      w_.error(at, "a rollout webhook is judged with each analysis interval: it needs the "
                   "route's `analysis:` section");
  } else {
    for (const auto& at : step_metric_refs_)
      if (route.analysis->find(at.node.Scalar()) == nullptr)
        w_.error(at, "unknown metric " + quote(at.node.Scalar()) +
                         " (not in the route's analysis.metrics)");
  }
  analysis_step_refs_.clear();
  step_metric_refs_.clear();
  rollout_hook_refs_.clear();
}

}  // namespace canary::config
