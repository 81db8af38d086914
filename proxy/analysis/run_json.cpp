// JSON of run.h's types. The state file form keeps the sequential tests' per-grid log
// likelihoods as hexadecimal floating-point strings ("-0x1.28p+5"): Boost.JSON 1.81 writes
// doubles exactly but parses them with up to an ulp of error, and a restored test should decide
// exactly as the one that was saved.
#include "analysis/run_json.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "util/rfc3339.h"

namespace canary::analysis {

namespace json = boost::json;
using config::analysis_config;
using config::metric_config;

namespace {

json::value opt_number(const std::optional<double>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

// Bounds in the metric's unit: fractions and milliseconds as configured, the ratio for
// sequential metrics.
std::pair<json::value, json::value> bounds(const metric_config* mc) {
  if (!mc) return {nullptr, nullptr};
  if (mc->what == metric_config::kind::sequential) {
    return {mc->pass_margin ? json::value(1 + *mc->pass_margin) : json::value(nullptr),
            json::value(1 + mc->max_increase)};
  }
  return {opt_number(mc->min), opt_number(mc->max)};
}

json::object metric_json(const std::string& name, metric_kind kind, const metric_config* mc,
                         const metric_state* s) {
  json::object o;
  o["name"] = name;
  o["kind"] = to_string(kind);
  auto [lo, hi] = bounds(mc);
  o["min"] = lo;
  o["max"] = hi;
  o["phase"] = to_string(s && s->last ? s->last->phase : metric_phase::pending);
  o["successful"] = s ? s->successful : 0;
  o["failed"] = s ? s->failed : 0;
  o["inconclusive"] = s ? s->inconclusive : 0;
  o["errors"] = s ? s->errors : 0;
  o["last"] = s && s->last ? json::value(measurement_json(*s->last)) : json::value(nullptr);
  return o;
}

// Strict readers: each names the key it could not read.
struct reader {
  const json::object& o;
  std::string& error;
  std::string where;

  const json::value* get(std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (!v) error = where + ": missing " + std::string(key);
    return v;
  }
  bool str(std::string_view key, std::string& out) {
    const json::value* v = get(key);
    if (!v) return false;
    if (!v->is_string()) return fail(key, "a string");
    out = std::string(v->as_string());
    return true;
  }
  bool u64(std::string_view key, std::uint64_t& out) {
    const json::value* v = get(key);
    if (!v) return false;
    if (v->is_uint64()) out = v->as_uint64();
    else if (v->is_int64() && v->as_int64() >= 0) out = static_cast<std::uint64_t>(v->as_int64());
    else return fail(key, "a count");
    return true;
  }
  bool count(std::string_view key, int& out) {
    std::uint64_t v = 0;
    if (!u64(key, v)) return false;
    if (v > 1'000'000'000) return fail(key, "a count");
    out = static_cast<int>(v);
    return true;
  }
  bool dbl(std::string_view key, double& out) {
    const json::value* v = get(key);
    if (!v) return false;
    if (v->is_double()) out = v->as_double();
    else if (v->is_int64()) out = static_cast<double>(v->as_int64());
    else if (v->is_uint64()) out = static_cast<double>(v->as_uint64());
    else return fail(key, "a number");
    if (!std::isfinite(out)) return fail(key, "a number");
    return true;
  }
  bool time(std::string_view key, wall_time& out) {
    std::string s;
    if (!str(key, s)) return false;
    auto t = util::parse_rfc3339(s);
    if (!t) return fail(key, "an RFC 3339 UTC time");
    out = *t;
    return true;
  }
  bool fail(std::string_view key, std::string_view what) {
    error = where + ": " + std::string(key) + " is not " + std::string(what);
    return false;
  }
};

json::object sample_json(const variant_sample& v) {
  json::object o;
  o["requests"] = v.requests;
  o["bad"] = v.bad;
  json::array slow, lat;
  for (auto c : v.slow) slow.push_back(c);
  for (auto c : v.latency) lat.push_back(c);
  o["slow"] = std::move(slow);
  o["total"] = v.total;
  o["errors"] = v.errors;
  o["latency"] = std::move(lat);
  return o;
}

template <std::size_t N>
bool read_counts(reader& r, std::string_view key, std::array<std::uint64_t, N>& out) {
  const json::value* v = r.get(key);
  if (!v) return false;
  const json::array* a = v->if_array();
  if (!a || a->size() != N) return r.fail(key, "an array of " + std::to_string(N) + " counts");
  for (std::size_t i = 0; i < N; ++i) {
    const auto& e = (*a)[i];
    if (e.is_uint64()) out[i] = e.as_uint64();
    else if (e.is_int64() && e.as_int64() >= 0) out[i] = static_cast<std::uint64_t>(e.as_int64());
    else return r.fail(key, "an array of counts");
  }
  return true;
}

bool sample_from(const json::value& v, variant_sample& out, std::string& error,
                 const std::string& where) {
  const json::object* o = v.if_object();
  if (!o) {
    error = where + " is not an object";
    return false;
  }
  reader r{*o, error, where};
  return r.u64("requests", out.requests) && r.u64("bad", out.bad) &&
         read_counts(r, "slow", out.slow) && r.u64("total", out.total) &&
         r.u64("errors", out.errors) && read_counts(r, "latency", out.latency);
}

std::optional<measurement> measurement_from(const json::value& v, std::string& error,
                                            const std::string& where) {
  const json::object* o = v.if_object();
  if (!o) {
    error = where + " is not an object";
    return std::nullopt;
  }
  reader r{*o, error, where};
  measurement m;
  std::string phase;
  if (!r.time("time", m.time) || !r.str("metric", m.metric) || !r.str("phase", phase) ||
      !r.dbl("value", m.value) || !r.dbl("stable_value", m.stable_value) ||
      !r.u64("canary_requests", m.canary_requests) ||
      !r.u64("stable_requests", m.stable_requests) || !r.str("message", m.message))
    return std::nullopt;
  auto p = metric_phase_from_string(phase);
  if (!p) {
    r.fail("phase", "a measurement phase");
    return std::nullopt;
  }
  m.phase = *p;
  return m;
}

json::value exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return json::value(buf);
}

std::optional<double> from_exact(const json::value& v) {
  const json::string* s = v.if_string();
  if (!s || s->empty()) return std::nullopt;
  const std::string text(*s);
  char* end = nullptr;
  const double d = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

json::object sequential_json(const sequential_data& d) {
  json::object o;
  o["r0"] = d.r0;
  o["confidence"] = d.confidence;
  o["canary_requests"] = d.canary_requests;
  o["stable_requests"] = d.stable_requests;
  o["canary_bad"] = d.canary_bad;
  o["stable_bad"] = d.stable_bad;
  o["strata"] = d.strata;
  o["max_log_e"] = exact(d.max_log_e);
  json::array ll;
  for (double v : d.log_lik) ll.push_back(exact(v));
  o["log_lik"] = std::move(ll);
  return o;
}

std::optional<sequential_test> sequential_from(const json::value& v, std::string& error,
                                               const std::string& where) {
  const json::object* o = v.if_object();
  if (!o) {
    error = where + " is not an object";
    return std::nullopt;
  }
  reader r{*o, error, where};
  sequential_data d;
  if (!r.dbl("r0", d.r0) || !r.dbl("confidence", d.confidence) ||
      !r.u64("canary_requests", d.canary_requests) ||
      !r.u64("stable_requests", d.stable_requests) || !r.u64("canary_bad", d.canary_bad) ||
      !r.u64("stable_bad", d.stable_bad) || !r.u64("strata", d.strata))
    return std::nullopt;
  const json::value* max_log_e = r.get("max_log_e");
  if (!max_log_e) return std::nullopt;
  if (auto m = from_exact(*max_log_e)) {
    d.max_log_e = *m;
  } else {
    r.fail("max_log_e", "a hexadecimal number");
    return std::nullopt;
  }
  const json::value* ll = r.get("log_lik");
  if (!ll) return std::nullopt;
  const json::array* a = ll->if_array();
  if (!a) {
    r.fail("log_lik", "an array");
    return std::nullopt;
  }
  for (const auto& e : *a) {
    const auto x = from_exact(e);
    if (!x) {
      r.fail("log_lik", "an array of hexadecimal numbers");
      return std::nullopt;
    }
    d.log_lik.push_back(*x);
  }
  auto t = sequential_test::from_data(std::move(d));
  if (!t) error = where + ": inconsistent sequential test state";
  return t;
}

}  // namespace

json::object measurement_json(const measurement& m) {
  json::object o;
  o["time"] = util::format_rfc3339(m.time);
  o["metric"] = m.metric;
  o["phase"] = to_string(m.phase);
  o["value"] = m.value;
  o["stable_value"] = m.stable_value;
  o["canary_requests"] = m.canary_requests;
  o["stable_requests"] = m.stable_requests;
  o["message"] = m.message;
  return o;
}

json::object status_json(const run_state* run, const analysis_config& cfg) {
  json::object o;
  o["run"] = run ? json::value(run->id) : json::value(nullptr);
  o["phase"] = run ? json::value(to_string(run->phase)) : json::value(nullptr);
  json::array metrics;
  if (!run) {
    for (const auto& mc : cfg.metrics) metrics.push_back(metric_json(mc.name, kind_of(mc), &mc, nullptr));
  } else {
    for (const auto& s : run->metrics) metrics.push_back(metric_json(s.name, s.kind, cfg.find(s.name), &s));
  }
  o["metrics"] = std::move(metrics);
  return o;
}

json::object history_json(const run_state& run) {
  json::object o;
  o["run"] = run.id;
  json::array list;
  for (const auto& m : run.history) list.push_back(measurement_json(m));
  o["measurements"] = std::move(list);
  return o;
}

json::object to_json(const run_state& run) {
  json::object o;
  o["id"] = run.id;
  o["started"] = util::format_rfc3339(run.started);
  o["phase"] = to_string(run.phase);
  o["measurements"] = run.measurements;
  json::array metrics;
  for (const auto& s : run.metrics) {
    json::object m;
    m["name"] = s.name;
    m["kind"] = to_string(s.kind);
    m["fingerprint"] = s.fingerprint;
    m["successful"] = s.successful;
    m["failed"] = s.failed;
    m["inconclusive"] = s.inconclusive;
    m["errors"] = s.errors;
    m["consecutive_inconclusive"] = s.consecutive_inconclusive;
    m["consecutive_errors"] = s.consecutive_errors;
    m["sticky_failed"] = s.sticky_failed;
    m["last"] = s.last ? json::value(measurement_json(*s.last)) : json::value(nullptr);
    m["sequential"] =
        s.sequential ? json::value(sequential_json(s.sequential->data())) : json::value(nullptr);
    metrics.push_back(std::move(m));
  }
  o["metrics"] = std::move(metrics);
  json::array history;
  for (const auto& m : run.history) history.push_back(measurement_json(m));
  o["history"] = std::move(history);
  json::object interval;
  interval["stable"] = sample_json(run.interval.stable);
  interval["canary"] = sample_json(run.interval.canary);
  o["interval"] = std::move(interval);
  return o;
}

std::optional<run_state> run_state_from_json(const json::value& v, std::string& error) {
  const json::object* o = v.if_object();
  if (!o) {
    error = "analysis run is not an object";
    return std::nullopt;
  }
  reader r{*o, error, "analysis run"};
  run_state run;
  std::string phase;
  if (!r.str("id", run.id) || !r.time("started", run.started) || !r.str("phase", phase) ||
      !r.count("measurements", run.measurements))
    return std::nullopt;
  auto p = run_phase_from_string(phase);
  if (!p) {
    r.fail("phase", "a run phase");
    return std::nullopt;
  }
  run.phase = *p;

  const json::value* metrics = r.get("metrics");
  if (!metrics) return std::nullopt;
  if (!metrics->is_array()) {
    r.fail("metrics", "an array");
    return std::nullopt;
  }
  for (const auto& mv : metrics->as_array()) {
    const std::string where = "analysis metric " + std::to_string(run.metrics.size());
    const json::object* mo = mv.if_object();
    if (!mo) {
      error = where + " is not an object";
      return std::nullopt;
    }
    reader mr{*mo, error, where};
    metric_state s;
    std::string kind;
    if (!mr.str("name", s.name) || !mr.str("kind", kind) ||
        !mr.str("fingerprint", s.fingerprint) || !mr.count("successful", s.successful) ||
        !mr.count("failed", s.failed) || !mr.count("inconclusive", s.inconclusive) ||
        !mr.count("errors", s.errors) ||
        !mr.count("consecutive_inconclusive", s.consecutive_inconclusive) ||
        !mr.count("consecutive_errors", s.consecutive_errors))
      return std::nullopt;
    auto k = metric_kind_from_string(kind);
    if (!k) {
      mr.fail("kind", "a metric kind");
      return std::nullopt;
    }
    s.kind = *k;
    const json::value* sticky = mr.get("sticky_failed");
    if (!sticky) return std::nullopt;
    if (!sticky->is_bool()) {
      mr.fail("sticky_failed", "a boolean");
      return std::nullopt;
    }
    s.sticky_failed = sticky->as_bool();
    const json::value* last = mr.get("last");
    if (!last) return std::nullopt;
    if (!last->is_null()) {
      s.last = measurement_from(*last, error, where + " last");
      if (!s.last) return std::nullopt;
    }
    const json::value* seq = mr.get("sequential");
    if (!seq) return std::nullopt;
    if (!seq->is_null()) {
      s.sequential = sequential_from(*seq, error, where + " sequential");
      if (!s.sequential) return std::nullopt;
    }
    if ((s.kind == metric_kind::sequential) != s.sequential.has_value()) {
      error = where + ": a sequential metric needs its test state, others none";
      return std::nullopt;
    }
    run.metrics.push_back(std::move(s));
  }

  const json::value* history = r.get("history");
  if (!history) return std::nullopt;
  if (!history->is_array()) {
    r.fail("history", "an array");
    return std::nullopt;
  }
  for (const auto& hv : history->as_array()) {
    auto m = measurement_from(hv, error, "analysis measurement " + std::to_string(run.history.size()));
    if (!m) return std::nullopt;
    run.history.push_back(std::move(*m));
  }
  while (run.history.size() > max_history) run.history.pop_front();

  const json::value* interval = r.get("interval");
  if (!interval) return std::nullopt;
  const json::object* io = interval->if_object();
  if (!io) {
    r.fail("interval", "an object");
    return std::nullopt;
  }
  const json::value* st = io->if_contains("stable");
  const json::value* ca = io->if_contains("canary");
  if (!st || !ca) {
    error = "analysis run: interval needs stable and canary";
    return std::nullopt;
  }
  if (!sample_from(*st, run.interval.stable, error, "analysis interval stable") ||
      !sample_from(*ca, run.interval.canary, error, "analysis interval canary"))
    return std::nullopt;
  return run;
}

}  // namespace canary::analysis
