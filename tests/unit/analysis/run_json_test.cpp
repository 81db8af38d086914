// Unit tests of the analysis JSON (proxy/analysis/run_json.h): the status block's shape and
// units, the measurement list, and the state file round trip (a restored run decides exactly as
// the saved one), with strict errors on broken input.
#include "analysis/run_json.h"

#include <gtest/gtest.h>

namespace canary::analysis {
namespace {

using namespace std::chrono_literals;
using config::analysis_config;
using config::metric_config;
namespace json = boost::json;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 11 / 26)) + 13h +
                     123ms;

analysis_config config_under_test() {
  analysis_config c;
  metric_config seq;
  seq.name = "errors";
  seq.what = metric_config::kind::sequential;
  seq.builtin = metric_config::builtin::error_rate_vs_stable;
  seq.max_increase = 0.5;
  metric_config p99;
  p99.name = "p99";
  p99.what = metric_config::kind::threshold;
  p99.builtin = metric_config::builtin::latency_p99;
  p99.max = 500;
  metric_config web;
  web.name = "smoke";
  web.what = metric_config::kind::web;
  web.target.url = "http://127.0.0.1:1/score";
  web.max = 3;
  c.metrics = {seq, p99, web};
  return c;
}

interval_sample some_traffic() {
  interval_sample s;
  s.canary.requests = s.canary.total = 300;
  s.canary.bad = s.canary.errors = 4;
  s.stable.requests = s.stable.total = 700;
  s.stable.bad = s.stable.errors = 6;
  s.canary.latency[7] = 290;
  s.canary.latency[9] = 10;
  return s;
}

TEST(AnalysisJson, StatusWithoutRunListsConfiguredMetricsPending) {
  const auto cfg = config_under_test();
  const json::object o = status_json(nullptr, cfg);
  EXPECT_TRUE(o.at("run").is_null());
  EXPECT_TRUE(o.at("phase").is_null());
  const auto& m = o.at("metrics").as_array();
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].at("kind"), "sequential");
  EXPECT_EQ(m[0].at("max").as_double(), 1.5);
  EXPECT_TRUE(m[0].at("min").is_null());
  EXPECT_EQ(m[0].at("phase"), "Pending");
  EXPECT_EQ(m[1].at("kind"), "threshold");
  EXPECT_EQ(m[1].at("max").as_double(), 500);
  EXPECT_EQ(m[2].at("kind"), "web");
  EXPECT_TRUE(m[2].at("last").is_null());
}

TEST(AnalysisJson, StatusOfARun) {
  const auto cfg = config_under_test();
  run_state run = start_run(cfg, "run-7", t0);
  measure(run, cfg, some_traffic(), {{"smoke", {provider_result::status::value, 2, ""}},
                                     {"pre", {provider_result::status::value, 200, ""}}},
          t0 + 10s);
  const json::object o = status_json(&run, cfg);
  EXPECT_EQ(o.at("run"), "run-7");
  EXPECT_EQ(o.at("phase"), "Running");
  const auto& m = o.at("metrics").as_array();
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[1].at("phase"), "Successful");
  EXPECT_EQ(m[1].at("successful").as_int64(), 1);
  const auto& last = m[1].at("last").as_object();
  EXPECT_EQ(last.at("time"), "2026-11-26T13:00:10.123Z");
  EXPECT_NEAR(last.at("value").as_double(), 425.0, 1e-9);  // 99th of 300: (250, 500] ms
  EXPECT_EQ(last.at("canary_requests").as_uint64(), 300u);
  EXPECT_EQ(m[3].at("kind"), "webhook");
  EXPECT_TRUE(m[3].at("max").is_null());

  const json::object h = history_json(run);
  EXPECT_EQ(h.at("run"), "run-7");
  EXPECT_EQ(h.at("measurements").as_array().size(), 4u);
  EXPECT_EQ(h.at("measurements").as_array()[0].at("metric"), "errors");
}

TEST(AnalysisJson, StateRoundTripDecidesLikeTheOriginal) {
  const auto cfg = config_under_test();
  run_state run = start_run(cfg, "run-7", t0);
  measure(run, cfg, some_traffic(), {{"smoke", {provider_result::status::error, 0, "timeout"}}},
          t0 + 10s);
  add_stratum(run, cfg, some_traffic());  // a weight change: interval half accumulated

  const std::string text = json::serialize(to_json(run));
  std::string error;
  auto back = run_state_from_json(json::parse(text), error);
  ASSERT_TRUE(back.has_value()) << error;
  EXPECT_EQ(json::serialize(to_json(*back)), text);
  EXPECT_EQ(back->started, run.started);
  EXPECT_EQ(back->interval.canary.latency, run.interval.canary.latency);

  interval_sample worse = some_traffic();
  worse.canary.bad = worse.canary.errors = 40;
  const std::map<std::string, provider_result> ok = {
      {"smoke", {provider_result::status::value, 1, ""}}};
  for (int i = 0; i < 3; ++i) {
    const decision a = measure(run, cfg, worse, ok, t0 + 20s);
    const decision b = measure(*back, cfg, worse, ok, t0 + 20s);
    EXPECT_EQ(a.act, b.act);
    EXPECT_EQ(a.message, b.message);
  }
  EXPECT_EQ(json::serialize(to_json(*back)), json::serialize(to_json(run)));
}

TEST(AnalysisJson, StateErrorsNameTheProblem) {
  const auto cfg = config_under_test();
  run_state run = start_run(cfg, "run-7", t0);
  std::string error;

  json::object o = to_json(run);
  o.erase("started");
  EXPECT_FALSE(run_state_from_json(o, error).has_value());
  EXPECT_EQ(error, "analysis run: missing started");

  o = to_json(run);
  o["phase"] = "Sleeping";
  EXPECT_FALSE(run_state_from_json(o, error).has_value());
  EXPECT_EQ(error, "analysis run: phase is not a run phase");

  o = to_json(run);
  o["metrics"].as_array()[0].as_object()["sequential"].as_object()["log_lik"].as_array().pop_back();
  EXPECT_FALSE(run_state_from_json(o, error).has_value());
  EXPECT_EQ(error, "analysis metric 0 sequential: inconsistent sequential test state");

  o = to_json(run);
  o["metrics"].as_array()[1].as_object()["sequential"] = nullptr;
  o["metrics"].as_array()[0].as_object()["sequential"] = nullptr;
  EXPECT_FALSE(run_state_from_json(o, error).has_value());
  EXPECT_EQ(error, "analysis metric 0: a sequential metric needs its test state, others none");

  o = to_json(run);
  o["started"] = "2026-11-26 13:00:00";
  EXPECT_FALSE(run_state_from_json(o, error).has_value());
  EXPECT_EQ(error, "analysis run: started is not an RFC 3339 UTC time");
}

}  // namespace
}  // namespace canary::analysis
