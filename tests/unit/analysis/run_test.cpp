// Unit tests of an analysis run's measurements and outcome rules (proxy/analysis/run.h):
// failure_limit, error_limit, inconclusive_limit, sticky sequential failures, dry run, judged
// webhooks, gating (waiting_for, inline steps), reload reconciliation. Time is injected.
#include "analysis/run.h"

#include <gtest/gtest.h>

namespace canary::analysis {
namespace {

using namespace std::chrono_literals;
using config::analysis_config;
using config::metric_config;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 11 / 26)) + 13h;
const std::map<std::string, provider_result> no_results;

metric_config errors_vs_stable(std::string name = "errors") {
  metric_config m;
  m.name = std::move(name);
  m.what = metric_config::kind::sequential;
  m.builtin = metric_config::builtin::error_rate_vs_stable;
  return m;
}

metric_config success(double min = 0.99) {
  metric_config m;
  m.name = "success";
  m.what = metric_config::kind::threshold;
  m.builtin = metric_config::builtin::success_rate;
  m.min = min;
  return m;
}

metric_config prometheus(std::string name = "apdex") {
  metric_config m;
  m.name = std::move(name);
  m.what = metric_config::kind::prometheus;
  m.query = "sum(rate(x[1m]))";
  m.target.url = "http://127.0.0.1:9090";
  m.min = 0.9;
  return m;
}

analysis_config with(std::vector<metric_config> metrics) {
  analysis_config c;
  c.metrics = std::move(metrics);
  return c;
}

// An interval in which each variant had `n` requests (all decided by weight) and `bad` of them
// bad (5xx).
interval_sample sample(std::uint64_t n_c, std::uint64_t bad_c, std::uint64_t n_s,
                       std::uint64_t bad_s) {
  interval_sample s;
  s.canary.requests = s.canary.total = n_c;
  s.canary.bad = s.canary.errors = bad_c;
  s.stable.requests = s.stable.total = n_s;
  s.stable.bad = s.stable.errors = bad_s;
  return s;
}

provider_result value(double v) { return {provider_result::status::value, v, ""}; }
provider_result failure(std::string msg) { return {provider_result::status::error, 0, msg}; }

TEST(AnalysisRun, StartsEveryMetricPending) {
  const auto cfg = with({errors_vs_stable(), success()});
  const run_state run = start_run(cfg, "r1", t0);
  EXPECT_EQ(run.id, "r1");
  EXPECT_EQ(run.phase, run_phase::running);
  ASSERT_EQ(run.metrics.size(), 2u);
  EXPECT_EQ(run.metrics[0].kind, metric_kind::sequential);
  EXPECT_TRUE(run.metrics[0].sequential.has_value());
  EXPECT_FALSE(run.metrics[1].last.has_value());
  EXPECT_EQ(waiting_for(run, cfg, {}), "errors");
}

TEST(AnalysisRun, SequentialRegressionAbortsWithTheMeasuredNumbers) {
  const auto cfg = with({errors_vs_stable()});
  run_state run = start_run(cfg, "r", t0);
  const decision d = measure(run, cfg, sample(1000, 41, 4000, 36), no_results, t0 + 10s);
  EXPECT_EQ(d.act, decision::action::abort);
  EXPECT_EQ(d.metric, "errors");
  EXPECT_EQ(d.message,
            "AnalysisFailed: errors: canary 4.1 % (41/1000) vs stable 0.9 % (36/4000), "
            "p < 1e-06 for ratio <= 1");
  EXPECT_EQ(run.phase, run_phase::failed);
  EXPECT_DOUBLE_EQ(run.metrics[0].last->value, 0.041);
  EXPECT_DOUBLE_EQ(run.metrics[0].last->stable_value, 0.009);
}

TEST(AnalysisRun, AFailedSequentialMetricStaysFailed) {
  auto cfg = with({errors_vs_stable()});
  cfg.failure_limit = 2;
  run_state run = start_run(cfg, "r", t0);
  EXPECT_EQ(measure(run, cfg, sample(1000, 41, 4000, 36), no_results, t0).act,
            decision::action::none);
  // Clean intervals afterwards: still Failed, and the count reaches the limit.
  EXPECT_EQ(measure(run, cfg, sample(1000, 0, 4000, 40), no_results, t0).act,
            decision::action::none);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::failed);
  EXPECT_EQ(measure(run, cfg, sample(1000, 0, 4000, 40), no_results, t0).act,
            decision::action::abort);
  EXPECT_EQ(run.metrics[0].failed, 3);
}

TEST(AnalysisRun, SequentialNeedsMinRequestsToSucceed) {
  const auto cfg = with({errors_vs_stable()});
  run_state run = start_run(cfg, "r", t0);
  measure(run, cfg, sample(99, 1, 400, 4), no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::inconclusive);
  EXPECT_NE(run.metrics[0].last->message.find("100 canary requests needed"), std::string::npos);
  measure(run, cfg, sample(1, 0, 4, 0), no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::successful);
  EXPECT_EQ(run.metrics[0].last->canary_requests, 100u);
  EXPECT_EQ(waiting_for(run, cfg, {}), std::nullopt);
}

TEST(AnalysisRun, PassMarginNeedsEvidenceOfNoRegression) {
  auto m = errors_vs_stable();
  m.pass_margin = 0.5;
  const auto cfg = with({m});
  run_state run = start_run(cfg, "r", t0);
  measure(run, cfg, sample(1000, 10, 1000, 10), no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::inconclusive) << run.metrics[0].last->message;
  EXPECT_NE(run.metrics[0].last->message.find("pass_margin"), std::string::npos);
  for (int i = 0; i < 60; ++i) measure(run, cfg, sample(1000, 10, 1000, 10), no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::successful) << run.metrics[0].last->message;
}

TEST(AnalysisRun, OnlyDecidedRequestsEnterTheSequentialTest) {
  // The canary's forced (header) requests all fail: thresholds see them, the comparison with
  // stable does not.
  auto cfg = with({errors_vs_stable(), success()});
  cfg.failure_limit = 10;
  run_state run = start_run(cfg, "r", t0);
  interval_sample s = sample(1000, 10, 4000, 40);
  s.canary.total += 200;
  s.canary.errors += 200;
  measure(run, cfg, s, no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::successful);
  EXPECT_EQ(run.metrics[0].last->canary_requests, 1000u);
  EXPECT_EQ(run.metrics[1].last->phase, metric_phase::failed);
  EXPECT_EQ(run.metrics[1].last->canary_requests, 1200u);
  EXPECT_NEAR(run.metrics[1].last->value, 990.0 / 1200, 1e-12);
}

TEST(AnalysisRun, LatencyVsStableReadsItsSlowCounter) {
  metric_config fast = errors_vs_stable("fast");
  fast.builtin = metric_config::builtin::latency_vs_stable;
  fast.slow = 100ms;
  metric_config slow = fast;
  slow.name = "slow";
  slow.slow = 250ms;
  metric_config again = fast;
  again.name = "again";
  const auto cfg = with({fast, slow, again});
  ASSERT_EQ(slow_thresholds(cfg), (std::vector<std::chrono::milliseconds>{100ms, 250ms}));
  run_state run = start_run(cfg, "r", t0);
  interval_sample s = sample(1000, 0, 4000, 0);
  s.canary.slow = {50, 41, 0, 0};
  s.stable.slow = {200, 36, 0, 0};
  measure(run, cfg, s, no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::successful);
  EXPECT_EQ(run.metrics[1].last->phase, metric_phase::failed);
  EXPECT_NE(run.metrics[1].last->message.find("slower than 250ms"), std::string::npos);
  EXPECT_DOUBLE_EQ(run.metrics[2].last->value, 0.05);
}

TEST(AnalysisRun, ThresholdFailureLimit) {
  auto cfg = with({success()});
  cfg.failure_limit = 1;
  run_state run = start_run(cfg, "r", t0);
  EXPECT_EQ(measure(run, cfg, sample(100, 5, 100, 0), no_results, t0).act,
            decision::action::none);
  EXPECT_EQ(measure(run, cfg, sample(100, 0, 100, 0), no_results, t0).act,
            decision::action::none);
  const decision d = measure(run, cfg, sample(100, 2, 100, 0), no_results, t0);
  EXPECT_EQ(d.act, decision::action::abort);
  EXPECT_EQ(d.message, "AnalysisFailed: success: 0.98 < min 0.99 (100 canary requests)");
  EXPECT_EQ(run.metrics[0].successful, 1);
  EXPECT_EQ(run.metrics[0].failed, 2);
}

TEST(AnalysisRun, ThresholdBelowMinRequestsIsInconclusive) {
  const auto cfg = with({success()});
  run_state run = start_run(cfg, "r", t0);
  measure(run, cfg, sample(19, 19, 100, 0), no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::inconclusive);
  EXPECT_EQ(run.metrics[0].last->message, "19 canary requests in the interval, 20 needed");
}

TEST(AnalysisRun, AWeightChangeSplitsStrataButThresholdsSeeTheWholeInterval) {
  const auto cfg = with({errors_vs_stable(), success()});
  run_state run = start_run(cfg, "r", t0);
  add_stratum(run, cfg, sample(10, 0, 90, 1));
  measure(run, cfg, sample(15, 0, 35, 0), no_results, t0);
  EXPECT_EQ(run.metrics[1].last->canary_requests, 25u);
  EXPECT_EQ(run.metrics[1].last->phase, metric_phase::successful);
  EXPECT_EQ(run.metrics[0].sequential->canary_requests(), 25u);
  // The next interval starts from zero.
  measure(run, cfg, sample(5, 0, 5, 0), no_results, t0);
  EXPECT_EQ(run.metrics[1].last->canary_requests, 5u);
}

TEST(AnalysisRun, InconclusiveLimitPausesAndResumeResetsTheStreak) {
  auto cfg = with({success()});
  cfg.inconclusive_limit = 2;
  run_state run = start_run(cfg, "r", t0);
  EXPECT_EQ(measure(run, cfg, sample(0, 0, 0, 0), no_results, t0).act, decision::action::none);
  EXPECT_EQ(measure(run, cfg, sample(0, 0, 0, 0), no_results, t0).act, decision::action::none);
  const decision d = measure(run, cfg, sample(0, 0, 0, 0), no_results, t0);
  EXPECT_EQ(d.act, decision::action::pause);
  EXPECT_EQ(d.metric, "success");
  EXPECT_EQ(d.message.rfind("AnalysisInconclusive: success: 3 consecutive inconclusive", 0), 0u);
  EXPECT_EQ(run.phase, run_phase::inconclusive);
  reset_inconclusive(run);
  EXPECT_EQ(run.phase, run_phase::running);
  EXPECT_EQ(measure(run, cfg, sample(0, 0, 0, 0), no_results, t0).act, decision::action::none);
  EXPECT_EQ(run.metrics[0].inconclusive, 4);
}

TEST(AnalysisRun, ConsecutiveErrorsAbortAndAValueResetsTheStreak) {
  auto cfg = with({prometheus()});
  cfg.error_limit = 1;
  run_state run = start_run(cfg, "r", t0);
  const std::map<std::string, provider_result> down = {{"apdex", failure("timeout after 5s")}};
  const std::map<std::string, provider_result> up = {{"apdex", value(0.95)}};
  EXPECT_EQ(measure(run, cfg, {}, down, t0).act, decision::action::none);
  EXPECT_EQ(measure(run, cfg, {}, up, t0).act, decision::action::none);
  EXPECT_EQ(measure(run, cfg, {}, down, t0).act, decision::action::none);
  const decision d = measure(run, cfg, {}, down, t0);
  EXPECT_EQ(d.act, decision::action::abort);
  EXPECT_EQ(d.message, "AnalysisFailed: apdex: 2 consecutive errors, last: timeout after 5s");
  EXPECT_EQ(run.phase, run_phase::error);
  EXPECT_EQ(run.metrics[0].errors, 3);
}

TEST(AnalysisRun, ProviderResults) {
  auto cfg = with({prometheus()});
  cfg.failure_limit = 5;
  run_state run = start_run(cfg, "r", t0);
  measure(run, cfg, {}, no_results, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::error);
  measure(run, cfg, {}, {{"apdex", {provider_result::status::empty, 0, "empty vector"}}}, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::inconclusive);
  EXPECT_EQ(run.metrics[0].last->message, "empty vector");
  measure(run, cfg, {}, {{"apdex", value(0.5)}}, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::failed);
  EXPECT_EQ(run.metrics[0].last->message, "0.5 < min 0.9");
  measure(run, cfg, {}, {{"apdex", value(0.95)}}, t0);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::successful);
  EXPECT_DOUBLE_EQ(run.metrics[0].last->value, 0.95);
}

TEST(AnalysisRun, DryRunRecordsButNeverActs) {
  auto cfg = with({errors_vs_stable(), success()});
  cfg.dry_run = true;
  run_state run = start_run(cfg, "r", t0);
  EXPECT_EQ(run.phase, run_phase::dry_run);
  const decision d = measure(run, cfg, sample(1000, 41, 4000, 36), no_results, t0);
  EXPECT_EQ(d.act, decision::action::none);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::failed);
  EXPECT_EQ(run.history.size(), 2u);
  EXPECT_EQ(run.phase, run_phase::dry_run);
  EXPECT_EQ(waiting_for(run, cfg, {}), std::nullopt);
}

TEST(AnalysisRun, PerMetricDryRunOnlySilencesThatMetric) {
  auto quiet = errors_vs_stable();
  quiet.dry_run = true;
  auto cfg = with({quiet, success()});
  run_state run = start_run(cfg, "r", t0);
  EXPECT_EQ(measure(run, cfg, sample(1000, 41, 4000, 36), no_results, t0).act,
            decision::action::abort);
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::failed);

  run = start_run(cfg, "r2", t0);
  EXPECT_EQ(measure(run, cfg, sample(1000, 30, 4000, 36), no_results, t0).act,
            decision::action::abort);
  cfg.metrics[1].dry_run = true;
  run = start_run(cfg, "r3", t0);
  EXPECT_EQ(measure(run, cfg, sample(1000, 41, 4000, 36), no_results, t0).act,
            decision::action::none);
}

TEST(AnalysisRun, JudgedWebhooks) {
  auto cfg = with({success()});
  run_state run = start_run(cfg, "r", t0);
  EXPECT_EQ(judge_webhooks(run, cfg, {{"load-test", value(204)}}, t0).act, decision::action::none);
  const metric_state* hook = run.find("load-test");
  ASSERT_NE(hook, nullptr);
  EXPECT_EQ(hook->kind, metric_kind::webhook);
  EXPECT_EQ(hook->successful, 1);
  const decision d = measure(run, cfg, sample(100, 0, 100, 0),
                             {{"load-test", failure("connection refused")}}, t0);
  EXPECT_EQ(d.act, decision::action::abort);
  EXPECT_EQ(d.message, "AnalysisFailed: load-test: connection refused");
  EXPECT_EQ(run.metrics[0].last->phase, metric_phase::successful);

  run = start_run(cfg, "r2", t0);
  EXPECT_EQ(judge_webhooks(run, cfg, {{"load-test", value(500)}}, t0).act,
            decision::action::abort);
}

TEST(AnalysisRun, InlineStepNeedsOneSuccessAndNothingBeyondLimits) {
  auto cfg = with({success(), prometheus()});
  cfg.failure_limit = 1;
  run_state run = start_run(cfg, "r", t0);
  EXPECT_FALSE(inline_step_passed(run, cfg, {"success"}));
  measure(run, cfg, sample(100, 0, 100, 0), no_results, t0);
  EXPECT_TRUE(inline_step_passed(run, cfg, {"success"}));
  EXPECT_FALSE(inline_step_passed(run, cfg, {}));  // apdex had an Error only
  EXPECT_EQ(waiting_for(run, cfg, {}), "apdex");
  EXPECT_EQ(waiting_for(run, cfg, {"success"}), std::nullopt);
  measure(run, cfg, sample(100, 5, 100, 0), {{"apdex", value(1)}}, t0);
  EXPECT_TRUE(inline_step_passed(run, cfg, {}));  // one Failed is within failure_limit 1
  EXPECT_EQ(waiting_for(run, cfg, {}), "success");  // but the last one is not Successful
}

TEST(AnalysisRun, ReconcileKeepsUnchangedRestartsChangedDropsRemoved) {
  const auto old_cfg = with({errors_vs_stable(), success(), prometheus()});
  run_state run = start_run(old_cfg, "r", t0);
  measure(run, old_cfg, sample(100, 1, 100, 1), {{"apdex", value(1)}, {"hook", value(200)}}, t0);

  auto new_cfg = with({errors_vs_stable(), success(0.95), prometheus("fresh")});
  std::vector<std::string> warnings;
  reconcile(run, old_cfg, new_cfg, warnings);
  ASSERT_EQ(run.metrics.size(), 4u);
  EXPECT_EQ(run.metrics[0].name, "errors");
  EXPECT_EQ(run.metrics[0].successful, 1);
  EXPECT_EQ(run.metrics[0].sequential->canary_requests(), 100u);
  EXPECT_EQ(run.metrics[1].name, "success");
  EXPECT_EQ(run.metrics[1].successful, 0);
  EXPECT_EQ(run.metrics[2].name, "fresh");
  EXPECT_FALSE(run.metrics[2].last.has_value());
  EXPECT_EQ(run.metrics[3].name, "hook");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("success changed"), std::string::npos);
  EXPECT_NE(warnings[1].find("apdex removed"), std::string::npos);

  new_cfg.dry_run = true;
  reconcile(run, new_cfg, new_cfg, warnings);
  EXPECT_EQ(run.phase, run_phase::dry_run);
  EXPECT_EQ(warnings.size(), 2u);
}

TEST(AnalysisRun, HistoryKeepsTheLastThousand) {
  const auto cfg = with({success()});
  run_state run = start_run(cfg, "r", t0);
  for (int i = 0; i < 1005; ++i) measure(run, cfg, {}, no_results, t0 + std::chrono::seconds(i));
  EXPECT_EQ(run.history.size(), max_history);
  EXPECT_EQ(run.history.front().time, t0 + 5s);
}

TEST(AnalysisRun, CompleteRun) {
  const auto cfg = with({success()});
  run_state run = start_run(cfg, "r", t0);
  complete_run(run);
  EXPECT_EQ(run.phase, run_phase::successful);
}

}  // namespace
}  // namespace canary::analysis
