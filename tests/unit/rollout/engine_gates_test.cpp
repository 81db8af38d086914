// The confirm-rollout and pre-rollout gates (proxy/rollout/engine_webhooks.cpp, state.cpp): the
// engine with an injected clock and a memory store, its webhooks sent by the real dispatcher and
// http_client to scripted receivers on 127.0.0.1 port 0 (the answers are delivered onto a test
// io_context standing in for the control thread). Plus the pure state rules of a pending canary.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../analysis/http_client_harness.h"
#include "../analysis/http_test_server.h"
#include "config/load.h"
#include "rollout/engine.h"
#include "rollout/state_file.h"

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;
using analysis::testing::control_thread;
using analysis::testing::seen_request;
using analysis::testing::test_reply;
using analysis::testing::test_server;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 9h;

test_reply status(int code) {
  test_reply r;
  r.status = code;
  return r;
}

// Route "web" on blue: setWeight 20 then an endless pause, with `webhooks` and `extra` keys.
std::string yaml(const std::string& webhooks, const std::string& extra = "") {
  return "state_file: /nonexistent/state.json\n"
         "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, "
         "green: {endpoints: [\"127.0.0.1:9\"]}}\n"
         "routes: [{name: web, upstream: blue, steps: [{setWeight: 20}, {pause: {}}], "
         "webhooks: [" +
         webhooks + "]" + extra + "}]\n";
}

std::string hook(const std::string& name, const std::string& type, const std::string& url) {
  return "{name: " + name + ", type: " + type + ", url: \"" + url + "\", timeout: 5s}";
}

config::proxy_config load(const std::string& text) {
  auto loaded = config::load_string(text, "/nonexistent/c.yaml");
  if (!loaded.config)
    throw std::runtime_error(loaded.errors.empty() ? "?" : loaded.errors[0].to_string());
  return *loaded.config;
}

class EngineGatesTest : public ::testing::Test {
 protected:
  void start(const std::string& text) {
    engine_.reset();
    engine_ = std::make_unique<engine>(std::make_shared<const config::proxy_config>(load(text)),
                                       [this] { return now_; }, nullptr, store_);
    engine_->set_webhooks(&hooks_);
  }
  const route_state& state() const { return *engine_->status("web")->state; }
  const core::route_view& routed() const { return engine_->snapshot()->routes.at(0); }
  void begin() { ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200); }
  // Ticks until `done` holds (answers arrive on ctl_); bounded by the harness' 20 s.
  template <class Pred>
  bool tick_until(Pred done) {
    return ctl_.run_until([&] {
      engine_->tick();
      return done();
    });
  }
  std::uint64_t calls(const std::string& webhook, const std::string& result) const {
    for (const auto& c : hooks_.counts())
      if (c.route == "web" && c.webhook == webhook && c.result == result) return c.n;
    return 0;
  }

  control_thread ctl_;
  analysis::http_client client_{ctl_.deliver()};
  analysis::webhook_dispatcher hooks_{client_};
  wall_time now_ = t0;
  std::shared_ptr<memory_state_store> store_ = std::make_shared<memory_state_store>();
  std::unique_ptr<engine> engine_;
};

TEST_F(EngineGatesTest, ConfirmRolloutHoldsTheCanaryPendingUntil2xxThenPreRolloutThenSteps) {
  test_server confirm([](const seen_request&, std::size_t i) { return status(i == 0 ? 503 : 200); });
  test_server pre([](const seen_request&, std::size_t) { return status(200); });
  start(yaml(hook("go", "confirm-rollout", confirm.url("/go")) + ", " +
             hook("smoke", "pre-rollout", pre.url("/smoke"))));
  begin();
  // Pending: no traffic, no override, no mirror can reach the canary.
  EXPECT_EQ(state().gate, rollout_gate::confirm_rollout);
  EXPECT_EQ(state().phase, phase::paused);
  EXPECT_EQ(state().paused_by, paused_by::webhook);
  EXPECT_EQ(state().weight, 0);
  EXPECT_FALSE(routed().canary_active);
  EXPECT_EQ(routed().weight, 0);

  ASSERT_TRUE(tick_until([&] { return state().message != "waiting for confirm-rollout webhooks"; }));
  EXPECT_EQ(state().message, "waiting for confirm-rollout webhook go: HTTP 503");
  EXPECT_EQ(state().gate, rollout_gate::confirm_rollout);
  EXPECT_FALSE(routed().canary_active);
  // Asked again only after the interval (10 s without analysis), never before.
  for (int i = 0; i < 5; ++i) engine_->tick();
  ctl_.ioc.poll();
  EXPECT_EQ(confirm.count(), 1u);
  EXPECT_EQ(pre.count(), 0u);

  now_ += 10s;
  ASSERT_TRUE(tick_until([&] { return state().weight == 20 || state().aborted; }));
  EXPECT_EQ(confirm.count(), 2u);
  EXPECT_EQ(pre.count(), 1u);  // after the confirmation, before any traffic
  EXPECT_EQ(state().gate, rollout_gate::none);
  EXPECT_EQ(state().weight, 20);
  EXPECT_TRUE(routed().canary_active);
  EXPECT_EQ(routed().weight, 20);
  bool confirmed = false, passed = false;
  for (const auto& e : state().events) {
    confirmed = confirmed || (e.cause == cause::webhook &&
                              e.message == "confirm-rollout webhooks answered 2xx");
    passed = passed || (e.cause == cause::webhook && e.message == "pre-rollout webhooks passed");
  }
  EXPECT_TRUE(confirmed);
  EXPECT_TRUE(passed);
  EXPECT_EQ(calls("go", "failure"), 1u);
  EXPECT_EQ(calls("go", "success"), 1u);
  EXPECT_EQ(calls("smoke", "success"), 1u);
}

TEST_F(EngineGatesTest, AFailedPreRolloutAbortsBeforeAnyTraffic) {
  test_server pre([](const seen_request&, std::size_t) { return status(500); });
  start(yaml(hook("smoke", "pre-rollout", pre.url("/smoke"))));
  begin();
  EXPECT_EQ(state().gate, rollout_gate::pre_rollout);
  EXPECT_FALSE(routed().canary_active);
  ASSERT_TRUE(tick_until([&] { return state().aborted; }));
  EXPECT_EQ(state().phase, phase::degraded);
  EXPECT_EQ(state().message, "PreRolloutWebhook: smoke failed: HTTP 500");
  EXPECT_EQ(state().events.back().cause, cause::webhook);
  EXPECT_EQ(state().gate, rollout_gate::none);
  EXPECT_EQ(pre.count(), 1u);
  EXPECT_EQ(calls("smoke", "failure"), 1u);
  // A retry starts behind the gate again.
  ASSERT_EQ(engine_->apply("web", operation::retry).status, 200);
  EXPECT_EQ(state().gate, rollout_gate::pre_rollout);
  EXPECT_FALSE(routed().canary_active);
}

TEST_F(EngineGatesTest, APreRolloutFailureWithinTheFailureLimitContinues) {
  test_server pre([](const seen_request&, std::size_t) { return status(500); });
  start(yaml(hook("smoke", "pre-rollout", pre.url("/smoke")),
             ", analysis: {interval: 10s, failure_limit: 1, metrics: "
             "[{name: errors, builtin: error_rate, max: 0.5}]}"));
  begin();
  EXPECT_FALSE(state().analysis.active);  // nothing to measure before the canary's traffic
  ASSERT_TRUE(tick_until([&] { return state().weight == 20 || state().aborted; }));
  EXPECT_FALSE(state().aborted);
  EXPECT_EQ(state().weight, 20);
  EXPECT_TRUE(state().analysis.active);
}

TEST_F(EngineGatesTest, PromoteOverridesTheGateAndAbortWorksAsUsual) {
  test_server confirm([](const seen_request&, std::size_t) { return status(503); });
  start(yaml(hook("go", "confirm-rollout", confirm.url("/go"))));
  begin();
  ASSERT_EQ(engine_->apply("web", operation::promote).status, 200);
  EXPECT_EQ(state().gate, rollout_gate::none);
  bool promoted = false;
  for (const auto& e : state().events)
    promoted = promoted || (e.cause == cause::api &&
                            e.message == "Rollout promoted over the confirm-rollout gate");
  EXPECT_TRUE(promoted);
  EXPECT_EQ(state().weight, 20);
  EXPECT_TRUE(routed().canary_active);

  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "blue").status, 200);  // rolled back
  begin();
  ASSERT_EQ(engine_->apply("web", operation::abort).status, 200);
  EXPECT_EQ(state().phase, phase::degraded);
  EXPECT_EQ(state().gate, rollout_gate::none);
  EXPECT_FALSE(routed().canary_active);
}

TEST_F(EngineGatesTest, TheGateSurvivesARestartAndNothingIsWrittenWhileWritesAreHeld) {
  test_server confirm([](const seen_request&, std::size_t) { return status(200); });
  const auto text = yaml(hook("go", "confirm-rollout", confirm.url("/go")));
  start(text);
  begin();
  start(text);  // a restart: the same store
  EXPECT_EQ(state().gate, rollout_gate::confirm_rollout);
  EXPECT_EQ(state().paused_by, paused_by::webhook);
  EXPECT_FALSE(routed().canary_active);

  engine_->hold_writes(true);
  ASSERT_TRUE(tick_until([&] { return calls("go", "success") == 1; }));
  ctl_.ioc.poll();
  EXPECT_EQ(state().gate, rollout_gate::confirm_rollout);  // the answer was dropped

  engine_->hold_writes(false);
  now_ += 10s;
  ASSERT_TRUE(tick_until([&] { return state().gate == rollout_gate::none; }));
  EXPECT_EQ(state().weight, 20);
}

TEST_F(EngineGatesTest, AReloadWithoutTheGateWebhooksStartsTheSteps) {
  test_server confirm([](const seen_request&, std::size_t) { return status(503); });
  start(yaml(hook("go", "confirm-rollout", confirm.url("/go"))));
  begin();
  ASSERT_EQ(engine_->reload(load(yaml(hook("chat", "event", confirm.url("/chat"))))).status, 200);
  EXPECT_EQ(state().gate, rollout_gate::none);
  EXPECT_EQ(state().paused_by, paused_by::step);  // at the pause after setWeight 20
  EXPECT_EQ(state().weight, 20);
  EXPECT_TRUE(routed().canary_active);
}

// Pure rules: a user's pause and resume keep the canary pending behind the gate.
TEST(RolloutGate, ResumeAfterAUserPauseReturnsBehindTheGate) {
  const auto cfg = load(yaml(hook("go", "confirm-rollout", "http://127.0.0.1:9/")));
  const auto& route = cfg.routes[0];
  auto s = initial_state(route, t0);
  set_desired(s, route, "green", cause::api, t0);
  ASSERT_TRUE(gated(s));
  ASSERT_TRUE(pause(s, route, t0).ok);
  EXPECT_FALSE(gated(s));
  EXPECT_FALSE(s.canary_active());
  ASSERT_TRUE(resume(s, route, t0).ok);
  EXPECT_TRUE(gated(s));
  EXPECT_EQ(s.weight, 0);
  EXPECT_EQ(s.message, "waiting for confirm-rollout webhooks");
  EXPECT_FALSE(s.canary_active());
}

TEST(RolloutGate, TheStateFileKeepsTheGate) {
  const auto cfg = load(yaml(hook("smoke", "pre-rollout", "http://127.0.0.1:9/")));
  auto s = initial_state(cfg.routes[0], t0);
  set_desired(s, cfg.routes[0], "green", cause::api, t0);
  ASSERT_EQ(s.gate, rollout_gate::pre_rollout);
  state_map states{{"web", s}};
  const auto back = parse_state(serialize_state(states));
  ASSERT_TRUE(back.ok) << back.error;
  EXPECT_EQ(back.states.at("web").gate, rollout_gate::pre_rollout);
}

}  // namespace
}  // namespace canary::rollout
