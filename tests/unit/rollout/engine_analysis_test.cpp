// Unit tests of the engine's automated analysis (proxy/rollout/engine_analysis.cpp) with an
// injected clock, an injected sampler (cumulative counts the test sets) and a fake provider
// whose answers the test delivers when it wants: outcomes, the inline step, timed pauses gated
// on the analysis, no traffic never promoting, dry run, resume, reload reconcile, restart.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/load.h"
#include "rollout/engine.h"

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 5h;

// Route "web" on blue with `steps` and `analysis`.
std::string yaml(const std::string& steps, const std::string& analysis,
                 const std::string& upstream = "blue") {
  return "state_file: /nonexistent/state.json\n"
         "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, "
         "green: {endpoints: [\"127.0.0.1:9\"]}}\n"
         "routes: [{name: web, upstream: " +
         upstream + ", steps: " + steps + ", analysis: " + analysis + "}]\n";
}

config::proxy_config load(const std::string& text) {
  auto loaded = config::load_string(text, "/nonexistent/c.yaml");
  if (!loaded.config)
    throw std::runtime_error(loaded.errors.empty() ? "?" : loaded.errors[0].to_string());
  return *loaded.config;
}

const std::string errors_metric =
    "{name: errors, builtin: error_rate_vs_stable, min_requests: 100}";

std::string an(const std::string& metrics, const std::string& extra = "") {
  return "{interval: 10s, metrics: [" + metrics + "]" + extra + "}";
}

class EngineAnalysisTest : public ::testing::Test {
 protected:
  void start(const std::string& text) {
    engine_ = std::make_unique<engine>(
        std::make_shared<const config::proxy_config>(load(text)), [this] { return now_; },
        nullptr, store_);
    engine_->set_analysis_inputs(
        [this](const std::string&) { return counts_; },
        [this](const config::metric_config& m, const analysis::template_vars& vars,
               std::function<void(analysis::provider_result)> done) {
          asked_.push_back(m.name + " " + vars.canary);
          pending_.push_back(std::move(done));
        });
  }
  const route_state& state() const { return *engine_->status("web")->state; }
  const analysis::metric_state& metric(const std::string& name) const {
    return *state().analysis.run->find(name);
  }
  // Traffic since the last call: `n` decided requests per variant with the bad ones given.
  void traffic(std::uint64_t n, std::uint64_t stable_bad, std::uint64_t canary_bad) {
    counts_.stable.requests += n;
    counts_.stable.total += n;
    counts_.stable.bad += stable_bad;
    counts_.stable.errors += stable_bad;
    counts_.canary.requests += n;
    counts_.canary.total += n;
    counts_.canary.bad += canary_bad;
    counts_.canary.errors += canary_bad;
  }
  // Moves the clock one interval (in ticks of 1 s, as the proxy's timer would).
  void interval(std::chrono::seconds length = 10s) {
    for (auto s = 0s; s < length; s += 1s) {
      now_ += 1s;
      engine_->tick();
    }
  }
  void begin() {
    ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
    engine_->tick();  // the run's clock starts: the counts so far belong to no interval
  }

  wall_time now_ = t0;
  analysis::interval_sample counts_;
  std::vector<std::string> asked_;
  std::vector<std::function<void(analysis::provider_result)>> pending_;
  std::shared_ptr<memory_state_store> store_ = std::make_shared<memory_state_store>();
  std::unique_ptr<engine> engine_;
};

TEST_F(EngineAnalysisTest, ARunStartsWithTheCanaryAndAFaultyCanaryIsAborted) {
  start(yaml("[{setWeight: 50}, {pause: {}}]", an(errors_metric)));
  EXPECT_FALSE(state().analysis.run);
  begin();
  ASSERT_TRUE(state().analysis.active);
  EXPECT_EQ(state().analysis.run->id, "web-1");
  traffic(1000, 5, 300);
  interval();
  EXPECT_EQ(state().phase, phase::degraded);
  EXPECT_EQ(state().message.rfind("AnalysisFailed: errors", 0), 0u) << state().message;
  EXPECT_EQ(state().events.back().cause, cause::analysis);
  EXPECT_EQ(state().weight, 0);
  EXPECT_FALSE(state().analysis.active);  // abort ends the run
  EXPECT_EQ(engine_->snapshot()->routes[0].canary_active, false);
  const auto& counts = engine_->measurement_counts();
  EXPECT_EQ(counts.at({"web", "errors", "Failed"}), 1u);
  // The saved state holds the run: a restart resumes it.
  EXPECT_EQ(store_->stored()->at("web").analysis.run->id, "web-1");
}

TEST_F(EngineAnalysisTest, RetryStartsANewRun) {
  start(yaml("[{setWeight: 50}, {pause: {}}]", an(errors_metric)));
  begin();
  traffic(1000, 5, 300);
  interval();
  ASSERT_EQ(state().phase, phase::degraded);
  ASSERT_EQ(engine_->apply("web", operation::retry).status, 200);
  EXPECT_TRUE(state().analysis.active);
  EXPECT_EQ(state().analysis.run->id, "web-2");
  EXPECT_EQ(metric("errors").failed, 0);
}

TEST_F(EngineAnalysisTest, NoTrafficNeverPromotesAndPausesThroughTheInconclusiveLimit) {
  start(yaml("[{setWeight: 50}, {pause: {duration: 15s}}, {setWeight: 80}]",
             an(errors_metric, ", inconclusive_limit: 2")));
  begin();
  interval();
  EXPECT_EQ(metric("errors").inconclusive, 1);
  interval();  // the timed pause is over, but the analysis has nothing Successful
  EXPECT_EQ(state().phase, phase::paused);
  EXPECT_EQ(state().step, 1u);
  EXPECT_EQ(state().message, "waiting for analysis: errors");
  EXPECT_EQ(engine_->status("web")->pause_remaining, 0ms);
  interval();
  EXPECT_EQ(state().paused_by, paused_by::analysis);
  EXPECT_EQ(state().events.back().cause, cause::analysis);
  EXPECT_EQ(state().weight, 50);
  // resume resets the streak: one more Inconclusive does not pause at once.
  ASSERT_EQ(engine_->apply("web", operation::resume).status, 200);
  EXPECT_EQ(metric("errors").consecutive_inconclusive, 0);
  interval();
  EXPECT_NE(state().paused_by, paused_by::analysis);
  EXPECT_EQ(state().step, 1u);
}

TEST_F(EngineAnalysisTest, ATimedPauseEndsOnlyOnceEveryMetricIsSuccessful) {
  start(yaml("[{setWeight: 50}, {pause: {duration: 5s}}, {setWeight: 80}, {pause: {}}]",
             an(errors_metric)));
  begin();
  traffic(50, 0, 0);  // below min_requests: Inconclusive
  interval();
  EXPECT_EQ(state().step, 1u);
  EXPECT_EQ(state().message, "waiting for analysis: errors");
  traffic(100, 1, 1);
  interval();
  EXPECT_EQ(metric("errors").last->phase, analysis::metric_phase::successful);
  EXPECT_EQ(state().step, 3u);
  EXPECT_EQ(state().weight, 80);
}

TEST_F(EngineAnalysisTest, AnInlineStepCompletesAfterItsDurationWhenTheMetricsPassed) {
  start(yaml("[{setWeight: 50}, {analysis: {duration: 25s}}, {setWeight: 80}, {pause: {}}]",
             an(errors_metric, ", background: false")));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  EXPECT_EQ(state().step, 1u);
  EXPECT_EQ(state().phase, phase::progressing);
  ASSERT_TRUE(state().analysis.active);  // background: false starts at the analysis step
  engine_->tick();
  traffic(200, 1, 1);
  interval();
  EXPECT_EQ(metric("errors").successful, 1);
  EXPECT_EQ(state().step, 1u);  // the duration is not over
  traffic(200, 1, 1);
  interval();
  traffic(200, 1, 1);
  interval();
  EXPECT_EQ(state().step, 3u);
  EXPECT_EQ(state().weight, 80);
}

TEST_F(EngineAnalysisTest, PauseStopsTheInlineStepClockAndPromoteSkipsIt) {
  start(yaml("[{setWeight: 50}, {analysis: {duration: 25s}}, {setWeight: 80}, {pause: {}}]",
             an(errors_metric)));
  begin();
  ASSERT_EQ(engine_->apply("web", operation::pause).status, 200);
  EXPECT_EQ(engine_->status("web")->pause_remaining, 25s);
  traffic(200, 1, 1);
  interval();
  interval();
  interval();
  EXPECT_EQ(state().step, 1u);  // held: the step's clock does not run
  EXPECT_EQ(engine_->status("web")->pause_remaining, 25s);
  ASSERT_EQ(engine_->apply("web", operation::promote).status, 200);
  EXPECT_EQ(state().step, 3u);
}

TEST_F(EngineAnalysisTest, DryRunMeasuresButNeverActs) {
  start(yaml("[{setWeight: 50}, {pause: {duration: 5s}}, {setWeight: 80}, {pause: {}}]",
             an(errors_metric, ", dry_run: true")));
  begin();
  traffic(1000, 5, 300);
  interval();
  EXPECT_EQ(metric("errors").failed, 1);
  EXPECT_EQ(state().analysis.run->phase, analysis::run_phase::dry_run);
  EXPECT_NE(state().phase, phase::degraded);
  EXPECT_EQ(state().step, 3u);  // the timed pause was not gated
}

TEST_F(EngineAnalysisTest, ProviderAnswersAreAwaitedWithoutBlockingAndErrorsAbort) {
  start(yaml("[{setWeight: 50}, {pause: {}}]",
             an("{name: smoke, web: {url: \"http://127.0.0.1:9/s\"}, max: 3}",
                ", error_limit: 1")));
  begin();
  interval();
  ASSERT_EQ(pending_.size(), 1u);
  EXPECT_EQ(asked_[0], "smoke green");
  EXPECT_EQ(metric("smoke").errors + metric("smoke").successful, 0);  // not yet answered
  interval();  // no second question while the first is outstanding
  EXPECT_EQ(pending_.size(), 1u);
  pending_[0]({analysis::provider_result::status::value, 1.0, ""});
  EXPECT_EQ(metric("smoke").successful, 1);
  interval();
  ASSERT_EQ(pending_.size(), 2u);
  pending_[1]({analysis::provider_result::status::error, 0, "connect: Connection refused"});
  EXPECT_EQ(metric("smoke").errors, 1);
  EXPECT_EQ(state().phase, phase::paused);
  interval();
  ASSERT_EQ(pending_.size(), 3u);
  pending_[2]({analysis::provider_result::status::error, 0, "connect: Connection refused"});
  EXPECT_EQ(state().phase, phase::degraded);
  EXPECT_EQ(state().events.back().cause, cause::analysis);
}

TEST_F(EngineAnalysisTest, AnAnswerForAnEndedRunIsDropped) {
  start(yaml("[{setWeight: 50}, {pause: {}}]",
             an("{name: smoke, web: {url: \"http://127.0.0.1:9/s\"}, max: 3}")));
  begin();
  interval();
  ASSERT_EQ(pending_.size(), 1u);
  ASSERT_EQ(engine_->apply("web", operation::abort).status, 200);
  pending_[0]({analysis::provider_result::status::value, 100.0, ""});
  EXPECT_EQ(metric("smoke").failed, 0);
}

TEST_F(EngineAnalysisTest, AReloadKeepsUnchangedMetricsAndRestartsChangedOnes) {
  const std::string latency =
      "{name: fast, builtin: latency_p99, max: 500ms, min_requests: 1}";
  start(yaml("[{setWeight: 50}, {pause: {}}]", an(errors_metric + ", " + latency)));
  begin();
  traffic(200, 1, 1);
  counts_.canary.latency[0] += 200;
  interval();
  ASSERT_EQ(metric("errors").successful, 1);
  ASSERT_EQ(metric("fast").successful, 1);
  const std::string changed = "{name: fast, builtin: latency_p99, max: 200ms, min_requests: 1}";
  ASSERT_EQ(engine_->reload(load(yaml("[{setWeight: 50}, {pause: {}}]",
                                      an(errors_metric + ", " + changed), "green")))
                .status,
            200);
  EXPECT_EQ(state().analysis.run->id, "web-1");
  EXPECT_EQ(metric("errors").successful, 1);
  EXPECT_EQ(metric("fast").successful, 0);
}

TEST_F(EngineAnalysisTest, ARestartResumesTheRunFromTheStore) {
  start(yaml("[{setWeight: 50}, {pause: {}}]", an(errors_metric)));
  begin();
  traffic(200, 1, 1);
  interval();
  ASSERT_EQ(metric("errors").successful, 1);
  engine_.reset();
  counts_ = {};  // a new process: its counters start at zero
  start(yaml("[{setWeight: 50}, {pause: {}}]", an(errors_metric), "green"));
  EXPECT_EQ(state().analysis.run->id, "web-1");
  EXPECT_EQ(metric("errors").successful, 1);
  engine_->tick();
  traffic(200, 1, 1);
  interval();
  EXPECT_EQ(metric("errors").successful, 2);
}

TEST_F(EngineAnalysisTest, PromoteFullEndsTheRunSuccessful) {
  start(yaml("[{setWeight: 50}, {pause: {}}]", an(errors_metric)));
  begin();
  ASSERT_EQ(engine_->apply("web", operation::promote_full).status, 200);
  EXPECT_FALSE(state().analysis.active);
  EXPECT_EQ(state().analysis.run->phase, analysis::run_phase::successful);
}

}  // namespace
}  // namespace canary::rollout
