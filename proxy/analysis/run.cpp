// The measurement and outcome rules of run.h (docs/analysis-method.md has the method). Every
// metric gives one measurement per interval; the counts decide abort and pause the way Argo
// Rollouts' AnalysisRun does (failureLimit, consecutiveErrorLimit, inconclusiveLimit).
#include "analysis/run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

namespace canary::analysis {

using config::analysis_config;
using config::metric_config;

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string percent(double fraction) { return fmt("%.1f", fraction * 100) + " %"; }

std::string number(double v) { return fmt("%g", v); }

double ratio(std::uint64_t a, std::uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

// "p < 0.01": the anytime-valid p-value against the next round level above it.
std::string p_text(double p) {
  static constexpr double levels[] = {1e-6, 1e-5, 1e-4, 1e-3, 0.005, 0.01, 0.05, 0.1, 0.5, 1};
  for (double l : levels) {
    if (p < l) return "p < " + number(l);
    if (p == l) return "p = " + number(l);
  }
  return "p = 1";
}

std::string_view builtin_name(enum metric_config::builtin b) {
  switch (b) {
    case metric_config::builtin::none: return "none";
    case metric_config::builtin::error_rate_vs_stable: return "error_rate_vs_stable";
    case metric_config::builtin::latency_vs_stable: return "latency_vs_stable";
    case metric_config::builtin::success_rate: return "success_rate";
    case metric_config::builtin::error_rate: return "error_rate";
    case metric_config::builtin::latency_p50: return "latency_p50";
    case metric_config::builtin::latency_p90: return "latency_p90";
    case metric_config::builtin::latency_p99: return "latency_p99";
  }
  return "none";
}

bool is_dry(const analysis_config& cfg, const metric_config* m) {
  return m && m->dry_run ? *m->dry_run : cfg.dry_run;
}

std::size_t slow_index(const analysis_config& cfg, std::chrono::milliseconds slow) {
  const auto t = slow_thresholds(cfg);
  for (std::size_t k = 0; k < t.size(); ++k)
    if (t[k] == slow) return k;
  return max_slow_thresholds;  // not counted: the loader refuses configs that get here
}

metric_state new_metric(const metric_config& m) {
  metric_state s;
  s.name = m.name;
  s.kind = kind_of(m);
  s.fingerprint = fingerprint(m);
  if (s.kind == metric_kind::sequential) s.sequential.emplace(1 + m.max_increase, m.confidence);
  return s;
}

// The bad count a sequential metric reads from one variant's sample.
std::uint64_t bad_of(const analysis_config& cfg, const metric_config& m, const variant_sample& v) {
  if (m.builtin != metric_config::builtin::latency_vs_stable) return v.bad;
  const std::size_t k = slow_index(cfg, m.slow);
  return k < max_slow_thresholds ? v.slow[k] : 0;
}

void record(run_state& run, metric_state& s, measurement m) {
  switch (m.phase) {
    case metric_phase::successful: ++s.successful; break;
    case metric_phase::failed: ++s.failed; break;
    case metric_phase::inconclusive: ++s.inconclusive; break;
    case metric_phase::error: ++s.errors; break;
    case metric_phase::pending: break;
  }
  s.consecutive_inconclusive =
      m.phase == metric_phase::inconclusive ? s.consecutive_inconclusive + 1 : 0;
  s.consecutive_errors = m.phase == metric_phase::error ? s.consecutive_errors + 1 : 0;
  run.history.push_back(m);
  while (run.history.size() > max_history) run.history.pop_front();
  s.last = std::move(m);
}

measurement judge_sequential(const metric_config& mc, metric_state& s) {
  const sequential_test& t = *s.sequential;
  measurement m;
  m.canary_requests = t.canary_requests();
  m.stable_requests = t.stable_requests();
  m.value = ratio(t.canary_bad(), t.canary_requests());
  m.stable_value = ratio(t.stable_bad(), t.stable_requests());
  const std::string what =
      mc.builtin == metric_config::builtin::latency_vs_stable
          ? " slower than " + std::to_string(mc.slow.count()) + "ms"
          : "";
  const std::string counts = "canary " + percent(m.value) + what + " (" +
                             std::to_string(t.canary_bad()) + "/" +
                             std::to_string(t.canary_requests()) + ") vs stable " +
                             percent(m.stable_value) + " (" + std::to_string(t.stable_bad()) + "/" +
                             std::to_string(t.stable_requests()) + ")";
  if (s.sticky_failed || t.rejected()) {
    s.sticky_failed = true;
    m.phase = metric_phase::failed;
    m.message = counts + ", " + p_text(t.p_value()) + " for ratio <= " + number(t.r0());
    return m;
  }
  const std::uint64_t need = mc.effective_min_requests();
  if (t.canary_requests() < need) {
    m.phase = metric_phase::inconclusive;
    m.message = counts + ", " + std::to_string(need) + " canary requests needed";
    return m;
  }
  const auto ub = t.upper_bound();
  const std::string bound = ub ? "ratio < " + fmt("%.2f", *ub) : "ratio unbounded yet";
  if (mc.pass_margin && !(ub && *ub <= 1 + *mc.pass_margin)) {
    m.phase = metric_phase::inconclusive;
    m.message = counts + ", " + bound + ", pass_margin needs <= " + number(1 + *mc.pass_margin);
    return m;
  }
  m.phase = metric_phase::successful;
  m.message = counts + ", " + bound;
  return m;
}

std::optional<double> threshold_value(const metric_config& mc, const variant_sample& v) {
  switch (mc.builtin) {
    case metric_config::builtin::success_rate: return success_rate(v.total, v.errors);
    case metric_config::builtin::error_rate: return error_rate(v.total, v.errors);
    case metric_config::builtin::latency_p50: return histogram_quantile_ms(0.5, v.latency);
    case metric_config::builtin::latency_p90: return histogram_quantile_ms(0.9, v.latency);
    case metric_config::builtin::latency_p99: return histogram_quantile_ms(0.99, v.latency);
    default: return std::nullopt;
  }
}

bool is_latency(const metric_config& mc) {
  return mc.builtin == metric_config::builtin::latency_p50 ||
         mc.builtin == metric_config::builtin::latency_p90 ||
         mc.builtin == metric_config::builtin::latency_p99;
}

std::string show(const metric_config& mc, double v) {
  if (is_latency(mc)) return fmt("%.1f", v) + " ms";
  if (mc.what == metric_config::kind::threshold) return fmt("%.4g", v);
  return number(v);
}

// "" when v is inside [min, max], else what is violated.
std::string bounds_violation(const metric_config& mc, double v) {
  if (mc.min && v < *mc.min) return show(mc, v) + " < min " + show(mc, *mc.min);
  if (mc.max && v > *mc.max) return show(mc, v) + " > max " + show(mc, *mc.max);
  return "";
}

measurement judge_threshold(const metric_config& mc, const interval_sample& iv) {
  measurement m;
  m.canary_requests = iv.canary.total;
  m.stable_requests = iv.stable.total;
  const std::uint64_t need = mc.effective_min_requests();
  const auto v = threshold_value(mc, iv.canary);
  m.stable_value = threshold_value(mc, iv.stable).value_or(0);
  if (iv.canary.total < need || !v) {
    m.phase = metric_phase::inconclusive;
    m.value = v.value_or(0);
    m.message = std::to_string(iv.canary.total) + " canary requests in the interval, " +
                std::to_string(need) + " needed";
    return m;
  }
  m.value = *v;
  const std::string of = " (" + std::to_string(iv.canary.total) + " canary requests)";
  const std::string bad = bounds_violation(mc, *v);
  m.phase = bad.empty() ? metric_phase::successful : metric_phase::failed;
  m.message = (bad.empty() ? show(mc, *v) : bad) + of;
  return m;
}

measurement judge_provider(const metric_config& mc, const provider_result* r) {
  measurement m;
  if (!r) {
    m.phase = metric_phase::error;
    m.message = "no result from the provider";
    return m;
  }
  switch (r->status) {
    case provider_result::status::error:
      m.phase = metric_phase::error;
      m.message = r->message;
      return m;
    case provider_result::status::empty:
      m.phase = metric_phase::inconclusive;
      m.message = r->message.empty() ? "no data" : r->message;
      return m;
    case provider_result::status::value: break;
  }
  m.value = r->value;
  if (!std::isfinite(r->value)) {
    m.value = 0;
    m.phase = metric_phase::inconclusive;
    m.message = "not a finite number";
    return m;
  }
  const std::string bad = bounds_violation(mc, r->value);
  m.phase = bad.empty() ? metric_phase::successful : metric_phase::failed;
  m.message = bad.empty() ? number(r->value) : bad;
  return m;
}

// A judged webhook (Flagger's pre-rollout / rollout): any 2xx passes, anything else fails,
// including not reaching it.
measurement judge_webhook(const provider_result& r) {
  measurement m;
  if (r.status == provider_result::status::value) {
    m.value = r.value;
    const bool ok = r.value >= 200 && r.value < 300;
    m.phase = ok ? metric_phase::successful : metric_phase::failed;
    m.message = "HTTP " + number(r.value) + (r.message.empty() ? "" : ": " + r.message);
  } else {
    m.phase = metric_phase::failed;
    m.message = r.message.empty() ? "no answer" : r.message;
  }
  return m;
}

void record_webhooks(run_state& run, const analysis_config& cfg,
                     const std::map<std::string, provider_result>& results, wall_time now) {
  for (const auto& [name, r] : results) {
    if (cfg.find(name)) continue;  // a configured metric, judged by measure()
    metric_state* s = run.find(name);
    if (!s) {
      metric_state fresh;
      fresh.name = name;
      fresh.kind = metric_kind::webhook;
      fresh.fingerprint = "webhook";
      run.metrics.push_back(std::move(fresh));
      s = &run.metrics.back();
    }
    if (s->kind != metric_kind::webhook) continue;
    measurement m = judge_webhook(r);
    m.time = now;
    m.metric = name;
    record(run, *s, std::move(m));
  }
}

// Abort before pause, first metric (config order, then webhooks) first.
decision decide(run_state& run, const analysis_config& cfg) {
  decision pause;
  for (const auto& s : run.metrics) {
    const metric_config* mc = cfg.find(s.name);
    if (!mc && s.kind != metric_kind::webhook) continue;
    if (is_dry(cfg, mc)) continue;
    const std::string last = s.last ? s.last->message : "";
    if (s.failed > cfg.failure_limit) {
      run.phase = run_phase::failed;
      return {decision::action::abort, s.name, "AnalysisFailed: " + s.name + ": " + last};
    }
    if (s.consecutive_errors > cfg.error_limit) {
      run.phase = run_phase::error;
      return {decision::action::abort, s.name,
              "AnalysisFailed: " + s.name + ": " + std::to_string(s.consecutive_errors) +
                  " consecutive errors, last: " + last};
    }
    if (pause.act == decision::action::none &&
        s.consecutive_inconclusive > cfg.inconclusive_limit) {
      pause = {decision::action::pause, s.name,
               "AnalysisInconclusive: " + s.name + ": " +
                   std::to_string(s.consecutive_inconclusive) +
                   " consecutive inconclusive measurements, last: " + last};
    }
  }
  if (pause.act == decision::action::pause) run.phase = run_phase::inconclusive;
  return pause;
}

void add_to(variant_sample& a, const variant_sample& b) {
  a.requests += b.requests;
  a.bad += b.bad;
  for (std::size_t k = 0; k < a.slow.size(); ++k) a.slow[k] += b.slow[k];
  a.total += b.total;
  a.errors += b.errors;
  for (std::size_t k = 0; k < a.latency.size(); ++k) a.latency[k] += b.latency[k];
}

}  // namespace

variant_sample& variant_sample::operator+=(const variant_sample& o) {
  add_to(*this, o);
  return *this;
}

interval_sample& interval_sample::operator+=(const interval_sample& o) {
  stable += o.stable;
  canary += o.canary;
  return *this;
}

std::vector<std::chrono::milliseconds> slow_thresholds(const analysis_config& cfg) {
  std::vector<std::chrono::milliseconds> out;
  for (const auto& m : cfg.metrics) {
    if (m.builtin != metric_config::builtin::latency_vs_stable) continue;
    if (std::find(out.begin(), out.end(), m.slow) == out.end()) out.push_back(m.slow);
  }
  return out;
}

std::string_view to_string(metric_phase p) {
  switch (p) {
    case metric_phase::pending: return "Pending";
    case metric_phase::successful: return "Successful";
    case metric_phase::failed: return "Failed";
    case metric_phase::inconclusive: return "Inconclusive";
    case metric_phase::error: return "Error";
  }
  return "Pending";
}

std::optional<metric_phase> metric_phase_from_string(std::string_view s) {
  for (auto p : {metric_phase::pending, metric_phase::successful, metric_phase::failed,
                 metric_phase::inconclusive, metric_phase::error})
    if (to_string(p) == s) return p;
  return std::nullopt;
}

std::string_view to_string(run_phase p) {
  switch (p) {
    case run_phase::running: return "Running";
    case run_phase::successful: return "Successful";
    case run_phase::failed: return "Failed";
    case run_phase::inconclusive: return "Inconclusive";
    case run_phase::error: return "Error";
    case run_phase::dry_run: return "DryRun";
  }
  return "Running";
}

std::optional<run_phase> run_phase_from_string(std::string_view s) {
  for (auto p : {run_phase::running, run_phase::successful, run_phase::failed,
                 run_phase::inconclusive, run_phase::error, run_phase::dry_run})
    if (to_string(p) == s) return p;
  return std::nullopt;
}

std::string_view to_string(metric_kind k) {
  switch (k) {
    case metric_kind::sequential: return "sequential";
    case metric_kind::threshold: return "threshold";
    case metric_kind::prometheus: return "prometheus";
    case metric_kind::web: return "web";
    case metric_kind::webhook: return "webhook";
  }
  return "threshold";
}

std::optional<metric_kind> metric_kind_from_string(std::string_view s) {
  for (auto k : {metric_kind::sequential, metric_kind::threshold, metric_kind::prometheus,
                 metric_kind::web, metric_kind::webhook})
    if (to_string(k) == s) return k;
  return std::nullopt;
}

metric_kind kind_of(const metric_config& m) {
  switch (m.what) {
    case metric_config::kind::sequential: return metric_kind::sequential;
    case metric_config::kind::threshold: return metric_kind::threshold;
    case metric_config::kind::prometheus: return metric_kind::prometheus;
    case metric_config::kind::web: return metric_kind::web;
  }
  return metric_kind::threshold;
}

const metric_state* run_state::find(std::string_view metric) const {
  for (const auto& m : metrics)
    if (m.name == metric) return &m;
  return nullptr;
}

metric_state* run_state::find(std::string_view metric) {
  for (auto& m : metrics)
    if (m.name == metric) return &m;
  return nullptr;
}

// Everything that changes what a measurement means; not dry_run (it changes what is done with
// it) nor timeouts and headers.
std::string fingerprint(const metric_config& m) {
  std::string f = std::string(to_string(kind_of(m))) + " " + std::string(builtin_name(m.builtin));
  auto opt = [](const std::optional<double>& v) { return v ? number(*v) : std::string("-"); };
  switch (m.what) {
    case metric_config::kind::sequential:
      f += " max_increase=" + number(m.max_increase) + " confidence=" + number(m.confidence) +
           " pass_margin=" + opt(m.pass_margin);
      if (m.builtin == metric_config::builtin::latency_vs_stable)
        f += " slow=" + std::to_string(m.slow.count()) + "ms";
      break;
    case metric_config::kind::threshold: break;
    case metric_config::kind::prometheus: f += " url=" + m.target.url + " query=" + m.query; break;
    case metric_config::kind::web:
      f += " url=" + m.target.url + " json_path=" + m.json_path;
      break;
  }
  f += " min_requests=" + std::to_string(m.effective_min_requests()) + " min=" + opt(m.min) +
       " max=" + opt(m.max);
  return f;
}

run_state start_run(const analysis_config& cfg, std::string id, wall_time now) {
  run_state run;
  run.id = std::move(id);
  run.started = now;
  run.phase = cfg.dry_run ? run_phase::dry_run : run_phase::running;
  for (const auto& m : cfg.metrics) run.metrics.push_back(new_metric(m));
  return run;
}

void add_stratum(run_state& run, const analysis_config& cfg, const interval_sample& delta) {
  run.interval += delta;
  for (auto& s : run.metrics) {
    if (!s.sequential) continue;
    const metric_config* mc = cfg.find(s.name);
    if (!mc) continue;
    s.sequential->add_stratum(delta.canary.requests, delta.stable.requests,
                              bad_of(cfg, *mc, delta.canary), bad_of(cfg, *mc, delta.stable));
  }
}

decision measure(run_state& run, const analysis_config& cfg, const interval_sample& delta,
                 const std::map<std::string, provider_result>& providers, wall_time now) {
  add_stratum(run, cfg, delta);
  ++run.measurements;
  for (const auto& mc : cfg.metrics) {
    metric_state* s = run.find(mc.name);
    if (!s) {  // a config the run was not reconciled with: start the metric now
      run.metrics.push_back(new_metric(mc));
      s = &run.metrics.back();
      if (s->sequential) {
        s->sequential->add_stratum(delta.canary.requests, delta.stable.requests,
                                   bad_of(cfg, mc, delta.canary), bad_of(cfg, mc, delta.stable));
      }
    }
    measurement m;
    switch (mc.what) {
      case metric_config::kind::sequential: m = judge_sequential(mc, *s); break;
      case metric_config::kind::threshold: m = judge_threshold(mc, run.interval); break;
      case metric_config::kind::prometheus:
      case metric_config::kind::web: {
        const auto it = providers.find(mc.name);
        m = judge_provider(mc, it == providers.end() ? nullptr : &it->second);
        break;
      }
    }
    m.time = now;
    m.metric = mc.name;
    record(run, *s, std::move(m));
  }
  record_webhooks(run, cfg, providers, now);
  run.interval = {};
  return decide(run, cfg);
}

decision judge_webhooks(run_state& run, const analysis_config& cfg,
                        const std::map<std::string, provider_result>& webhooks, wall_time now) {
  record_webhooks(run, cfg, webhooks, now);
  return decide(run, cfg);
}

void reset_inconclusive(run_state& run) {
  for (auto& s : run.metrics) s.consecutive_inconclusive = 0;
  if (run.phase == run_phase::inconclusive) run.phase = run_phase::running;
}

void complete_run(run_state& run) {
  if (run.phase == run_phase::running || run.phase == run_phase::inconclusive)
    run.phase = run_phase::successful;
}

std::optional<std::string> waiting_for(const run_state& run, const analysis_config& cfg,
                                       const std::vector<std::string>& names) {
  auto check = [&](const metric_config& mc) -> bool {
    if (is_dry(cfg, &mc)) return true;  // a dry-run metric never holds the rollout
    const metric_state* s = run.find(mc.name);
    return s && s->last && s->last->phase == metric_phase::successful;
  };
  if (names.empty()) {
    for (const auto& mc : cfg.metrics)
      if (!check(mc)) return mc.name;
    return std::nullopt;
  }
  for (const auto& n : names) {
    const metric_config* mc = cfg.find(n);
    if (mc && !check(*mc)) return n;
  }
  return std::nullopt;
}

bool inline_step_passed(const run_state& run, const analysis_config& cfg,
                        const std::vector<std::string>& names) {
  auto ok = [&](const metric_config& mc) {
    if (is_dry(cfg, &mc)) return true;
    const metric_state* s = run.find(mc.name);
    return s && s->successful > 0 && s->failed <= cfg.failure_limit &&
           s->consecutive_errors <= cfg.error_limit;
  };
  if (names.empty()) return std::all_of(cfg.metrics.begin(), cfg.metrics.end(), ok);
  return std::all_of(names.begin(), names.end(), [&](const std::string& n) {
    const metric_config* mc = cfg.find(n);
    return !mc || ok(*mc);
  });
}

void reconcile(run_state& run, const analysis_config& /*old_cfg*/, const analysis_config& new_cfg,
               std::vector<std::string>& warnings) {
  std::vector<metric_state> next;
  std::vector<bool> taken(run.metrics.size(), false);
  std::set<std::string> names;
  for (const auto& mc : new_cfg.metrics) names.insert(mc.name);
  for (const auto& mc : new_cfg.metrics) {
    std::size_t i = 0;
    while (i < run.metrics.size() &&
           (run.metrics[i].name != mc.name || run.metrics[i].kind == metric_kind::webhook))
      ++i;
    if (i < run.metrics.size()) {
      taken[i] = true;
      if (run.metrics[i].fingerprint == fingerprint(mc)) {
        next.push_back(std::move(run.metrics[i]));
        continue;
      }
      warnings.push_back("analysis metric " + mc.name +
                         " changed: its measurements restart from zero");
    }
    next.push_back(new_metric(mc));
  }
  for (std::size_t i = 0; i < run.metrics.size(); ++i) {
    if (taken[i]) continue;
    metric_state& s = run.metrics[i];
    if (s.kind != metric_kind::webhook) {
      warnings.push_back("analysis metric " + s.name +
                         " removed from the config: its measurements stop");
    } else if (!names.count(s.name)) {  // a webhook a metric now shadows is dropped
      next.push_back(std::move(s));
    }
  }
  run.metrics = std::move(next);
  if (new_cfg.dry_run && run.phase == run_phase::running) run.phase = run_phase::dry_run;
  if (!new_cfg.dry_run && run.phase == run_phase::dry_run) run.phase = run_phase::running;
}

}  // namespace canary::analysis
