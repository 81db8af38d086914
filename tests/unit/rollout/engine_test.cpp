// Unit tests of the rollout engine (proxy/rollout/engine.cpp) without files or threads: an
// in-memory state store that can be told to fail, an injected clock, a publisher that records.
// What they pin down: a change is saved before it is published, a failed save changes nothing,
// reloads are all or nothing, and the weight follows a changed weight_total.
#include "rollout/engine.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/load.h"

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 5h;

// One route "web" on blue; green is the other version. `route_extra` goes into the route's map.
std::string yaml(const std::string& upstream, const std::string& steps,
                 const std::string& route_extra = "") {
  return "state_file: /nonexistent/state.json\n"
         "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, "
         "green: {endpoints: [\"127.0.0.1:9\"]}}\n"
         "routes: [{name: web, upstream: " +
         upstream + ", steps: " + steps + route_extra + "}]\n";
}

config::proxy_config load(const std::string& text) {
  auto loaded = config::load_string(text, "/nonexistent/c.yaml");
  if (!loaded.config)
    throw std::runtime_error(loaded.errors.empty() ? "?" : loaded.errors[0].to_string());
  return *loaded.config;
}

const std::string steps = "[{setWeight: 20}, {pause: {duration: 10s}}, {setWeight: 50}, {pause: {}}]";

class EngineTest : public ::testing::Test {
 protected:
  void start(const std::string& text) {
    engine_ = std::make_unique<engine>(
        std::make_shared<const config::proxy_config>(load(text)), [this] { return now_; },
        [this](std::shared_ptr<const core::snapshot> s) { published_.push_back(std::move(s)); },
        store_);
    engine_->subscribe([this](const std::string& name) { told_.push_back(name); });
  }
  const route_state& state() const { return *engine_->status("web")->state; }
  const core::route_view& routed() const { return engine_->snapshot()->routes.at(0); }
  const route_state& stored() const { return store_->stored()->at("web"); }

  wall_time now_ = t0;
  std::shared_ptr<memory_state_store> store_ = std::make_shared<memory_state_store>();
  std::vector<std::shared_ptr<const core::snapshot>> published_;
  std::vector<std::string> told_;
  std::unique_ptr<engine> engine_;
};

TEST_F(EngineTest, FirstStartSavesTheInitialStateAndPublishesIt) {
  start(yaml("blue", steps));
  EXPECT_EQ(store_->saves(), 1u);
  EXPECT_EQ(stored().stable, "blue");
  EXPECT_EQ(stored().weight_total, 100);
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0], engine_->snapshot());
}

TEST_F(EngineTest, StartWithAnUnchangedStoredStateWritesNothing) {
  start(yaml("blue", steps));
  engine_.reset();
  store_->fail_saves("disk full");  // a start that needs no write does not care
  start(yaml("blue", steps));
  EXPECT_EQ(store_->saves(), 1u);
  EXPECT_EQ(state().stable, "blue");
}

TEST_F(EngineTest, StartRefusesWhenTheChangedStateCannotBeSaved) {
  store_->fail_saves("cannot write state file /s.json: open /s.json.tmp: Read-only file system");
  try {
    start(yaml("blue", steps));
    FAIL() << "started without a durable state";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("Read-only file system"), std::string::npos) << e.what();
  }
}

TEST_F(EngineTest, StartRefusesAnUnusableStoredState) {
  store_->fail_load("invalid JSON: syntax error at line 1, column 2");
  EXPECT_THROW(start(yaml("blue", steps)), std::runtime_error);
}

TEST_F(EngineTest, AnOperationIsSavedThenPublishedThenTold) {
  start(yaml("blue", steps));
  const auto res = engine_->apply("web", operation::set_upstream, 0, "green");
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(store_->saves(), 2u);
  EXPECT_EQ(stored().canary, "green");
  EXPECT_EQ(stored().weight, 20);
  ASSERT_EQ(published_.size(), 2u);
  EXPECT_EQ(routed().weight, 20);
  EXPECT_TRUE(routed().canary_active);
  EXPECT_EQ(told_, std::vector<std::string>{"web"});
}

TEST_F(EngineTest, AFailedSaveChangesNothingAndAnswers503) {
  start(yaml("blue", steps));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  const route_state before = state();
  const auto snapshot_before = engine_->snapshot();
  const auto published_before = published_.size();
  told_.clear();

  store_->fail_saves("cannot write state file /s.json: write /s.json.tmp: No space left on device");
  for (auto op : {operation::promote, operation::abort, operation::pause}) {
    const auto res = engine_->apply("web", op);
    EXPECT_EQ(res.status, 503);
    EXPECT_EQ(res.error,
              "cannot write state file /s.json: write /s.json.tmp: No space left on device; "
              "nothing changed");
  }
  EXPECT_EQ(engine_->apply("web", operation::set_weight, 40).status, 503);
  EXPECT_EQ(engine_->apply("web", operation::set_upstream, 0, "blue").status, 503);
  EXPECT_EQ(state(), before);
  EXPECT_EQ(stored(), before);
  EXPECT_EQ(engine_->snapshot(), snapshot_before);
  EXPECT_EQ(published_.size(), published_before);
  EXPECT_TRUE(told_.empty());
  EXPECT_EQ(engine_->state_write_errors(), 5u);

  store_->fail_saves(std::nullopt);
  ASSERT_EQ(engine_->apply("web", operation::promote).status, 200);
  EXPECT_EQ(state().step, 3u);
  EXPECT_EQ(stored().step, 3u);
  EXPECT_EQ(routed().weight, 50);
}

TEST_F(EngineTest, AnOperationThatChangesNothingNeedsNoSave) {
  start(yaml("blue", steps));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  store_->fail_saves("disk full");
  EXPECT_EQ(engine_->apply("web", operation::set_weight, 20).status, 200);
  EXPECT_EQ(engine_->apply("web", operation::promote_full).status, 503);
  EXPECT_EQ(engine_->apply("web", operation::retry).status, 409);  // refused before any save
  EXPECT_EQ(engine_->state_write_errors(), 1u);
}

TEST_F(EngineTest, ATimedPauseHoldsWhileTheStateCannotBeSaved) {
  start(yaml("blue", steps));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  ASSERT_EQ(state().phase, phase::paused);
  ASSERT_TRUE(state().pause_deadline);
  const route_state before = state();
  told_.clear();

  now_ += 11s;
  store_->fail_saves("read-only");
  engine_->tick();
  engine_->tick();
  EXPECT_EQ(state(), before);
  EXPECT_EQ(routed().weight, 20);
  EXPECT_EQ(engine_->state_write_errors(), 2u);
  EXPECT_TRUE(told_.empty());

  store_->fail_saves(std::nullopt);
  now_ += 1s;
  engine_->tick();
  EXPECT_EQ(state().step, 3u);
  EXPECT_EQ(state().weight, 50);
  EXPECT_EQ(stored().weight, 50);
  EXPECT_EQ(routed().weight, 50);
  EXPECT_EQ(told_, std::vector<std::string>{"web"});
  engine_->tick();  // nothing due: no save
  EXPECT_EQ(store_->saves(), 3u);
}

TEST_F(EngineTest, ReloadStartsTheRolloutOnlyOnceSaved) {
  start(yaml("blue", steps));
  store_->fail_saves("cannot write state file /s.json: open /s.json.tmp: Read-only file system");
  const auto snapshot_before = engine_->snapshot();
  auto res = engine_->reload(load(yaml("green", steps)));
  EXPECT_EQ(res.status, 503);
  EXPECT_NE(res.error.find("Read-only file system"), std::string::npos) << res.error;
  EXPECT_NE(res.error.find("the old config keeps serving"), std::string::npos) << res.error;
  EXPECT_EQ(engine_->config().routes[0].upstream, "blue");
  EXPECT_EQ(state().canary, "");
  EXPECT_EQ(engine_->snapshot(), snapshot_before);
  EXPECT_EQ(engine_->reloads_failed(), 1u);
  EXPECT_EQ(engine_->reloads_ok(), 0u);

  store_->fail_saves(std::nullopt);
  res = engine_->reload(load(yaml("green", steps)));
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(engine_->config().routes[0].upstream, "green");
  EXPECT_EQ(stored().canary, "green");
  EXPECT_EQ(routed().weight, 20);
}

TEST_F(EngineTest, AReloadThatChangesOnlyTheConfigNeedsNoSave) {
  start(yaml("blue", steps));
  store_->fail_saves("disk full");
  const auto res = engine_->reload(load(yaml("blue", steps, ", path_prefix: /api")));
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(engine_->config().routes[0].path_prefix, "/api");
  EXPECT_EQ(engine_->snapshot()->config->routes[0].path_prefix, "/api");
}

TEST_F(EngineTest, AReloadWhoseRoutingCannotBeBuiltKeepsEverything) {
  start(yaml("blue", steps));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  const route_state before = state();
  const auto snapshot_before = engine_->snapshot();
  const auto saves_before = store_->saves();
  // The loader resolves endpoints to numeric addresses; a config built otherwise may not be.
  auto next = load(yaml("blue", steps));
  next.upstreams[1].endpoints[0].address = "not-an-address";
  const auto res = engine_->reload(next);
  EXPECT_EQ(res.status, 500);
  EXPECT_EQ(res.error.rfind("config /nonexistent/c.yaml cannot be applied: upstream green: "
                            "endpoint \"not-an-address\": ",
                            0),
            0u)
      << res.error;
  EXPECT_EQ(state(), before);
  EXPECT_EQ(engine_->snapshot(), snapshot_before);
  EXPECT_EQ(store_->saves(), saves_before);
  EXPECT_EQ(engine_->config().routes[0].upstream, "blue");
  EXPECT_EQ(engine_->reloads_failed(), 1u);
  EXPECT_EQ(engine_->reloads_ok(), 0u);
}

TEST_F(EngineTest, RoutingIsCompiledOncePerConfigLoad) {
  start(yaml("blue", steps));
  const auto compiled = engine_->snapshot()->compiled;
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  ASSERT_EQ(engine_->apply("web", operation::set_weight, 30).status, 200);
  EXPECT_EQ(engine_->snapshot()->compiled, compiled);
  EXPECT_EQ(&engine_->snapshot()->routes[0].rule, &compiled->rules[0]);
  ASSERT_EQ(engine_->reload(load(yaml("green", steps))).status, 200);
  EXPECT_NE(engine_->snapshot()->compiled, compiled);
}

TEST_F(EngineTest, ReloadRescalesTheWeightToANewWeightTotal) {
  const std::string fine = "[{setWeight: 100}, {pause: {}}]";
  start(yaml("blue", fine, ", canary: {weight_total: 1000}"));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  ASSERT_EQ(state().weight, 100);

  ASSERT_EQ(engine_->reload(load(yaml("green", "[{setWeight: 1}, {pause: {}}]",
                                      ", canary: {weight_total: 10}")))
                .status,
            200);
  EXPECT_EQ(state().weight, 1);
  EXPECT_EQ(state().weight_total, 10);
  EXPECT_EQ(stored().weight, 1);
  EXPECT_EQ(stored().weight_total, 10);
  EXPECT_EQ(routed().weight, 1);
  EXPECT_EQ(routed().rule.weight_total, 10);
  EXPECT_EQ(state().events.back().message,
            "Traffic weight rescaled from 100/1000 to 1/10 (weight_total changed)");
  EXPECT_EQ(engine_->apply("web", operation::set_weight, 100).status, 400);
}

TEST_F(EngineTest, StartRescalesAWeightStoredUnderAnotherWeightTotal) {
  start(yaml("blue", "[{setWeight: 250}, {pause: {}}]", ", canary: {weight_total: 1000}"));
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  engine_.reset();
  start(yaml("green", "[{setWeight: 2}, {pause: {}}]", ", canary: {weight_total: 10}"));
  EXPECT_EQ(state().weight, 2);  // 2.5 rounded down
  EXPECT_EQ(stored().weight, 2);
  EXPECT_EQ(stored().weight_total, 10);
  EXPECT_EQ(routed().weight, 2);
}

TEST_F(EngineTest, StartClampsAWeightOfUnknownWeightTotal) {
  route_state old;
  old.stable = "blue";
  old.canary = "green";
  old.step = 1;
  old.weight = 100;  // written by a build that did not store weight_total
  old.phase = phase::paused;
  old.paused_by = paused_by::step;
  old.seen_upstream = "green";
  old.updated_at = t0;
  store_ = std::make_shared<memory_state_store>(state_map{{"web", old}});
  start(yaml("green", "[{setWeight: 1}, {pause: {}}]", ", canary: {weight_total: 10}"));
  EXPECT_EQ(state().weight, 10);
  EXPECT_EQ(routed().weight, 10);
  EXPECT_EQ(stored().weight_total, 10);
}

}  // namespace
}  // namespace canary::rollout
