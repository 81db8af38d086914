// Unit tests of undo and the blue-green recipe: the state machine (proxy/rollout/state.cpp), the
// engine's checks against the config and its restarts (an in-memory store, an injected clock),
// and the state file's previous_stable field. Nothing sleeps; time is a fixed t0.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/load.h"
#include "rollout/engine.h"
#include "rollout/state.h"
#include "rollout/state_file.h"

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;
using config::route_config;
using config::step_config;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 8h;

step_config set_weight_step(int weight) {
  step_config s;
  s.what = step_config::kind::set_weight;
  s.weight = weight;
  return s;
}

step_config manual_pause() {
  step_config s;
  s.what = step_config::kind::pause;
  return s;
}

route_config make_route(std::vector<step_config> steps) {
  route_config r;
  r.name = "web";
  r.upstream = "blue";
  r.steps = std::move(steps);
  return r;
}

// blue stable, then a rollout to green walked to completion through its one pause.
route_state completed_blue_to_green(const route_config& r) {
  route_state s = initial_state(r, t0);
  set_desired(s, r, "green", cause::api, t0);
  EXPECT_TRUE(promote(s, r, t0 + 1s).ok);
  EXPECT_EQ(s.phase, phase::healthy);
  return s;
}

TEST(undo_state, completion_keeps_the_replaced_stable) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = initial_state(r, t0);
  EXPECT_EQ(s.previous_stable, "");
  s = completed_blue_to_green(r);
  EXPECT_EQ(s.stable, "green");
  EXPECT_EQ(s.previous_stable, "blue");
}

TEST(undo_state, undo_after_completion_makes_the_previous_stable_stable_at_once) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = completed_blue_to_green(r);
  const auto before_events = s.events.size();
  ASSERT_TRUE(undo(s, r, t0 + 5s).ok);
  EXPECT_EQ(s.stable, "blue");
  EXPECT_EQ(s.canary, "");
  EXPECT_EQ(s.weight, 0);
  EXPECT_EQ(s.step, r.steps.size());
  EXPECT_EQ(s.phase, phase::healthy);
  EXPECT_EQ(s.previous_stable, "green");
  ASSERT_EQ(s.events.size(), before_events + 1);
  const event& e = s.events.back();
  EXPECT_EQ(e.cause, cause::api);
  EXPECT_EQ(e.time, t0 + 5s);
  EXPECT_EQ(e.message, "Rollout undone: blue is stable again, replacing green");
  EXPECT_EQ(s.updated_at, t0 + 5s);
}

TEST(undo_state, a_second_undo_redoes) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = completed_blue_to_green(r);
  ASSERT_TRUE(undo(s, r, t0 + 5s).ok);
  ASSERT_TRUE(undo(s, r, t0 + 6s).ok);
  EXPECT_EQ(s.stable, "green");
  EXPECT_EQ(s.previous_stable, "blue");
  EXPECT_EQ(s.events.back().message, "Rollout undone: green is stable again, replacing blue");
}

TEST(undo_state, refused_while_a_canary_exists) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = completed_blue_to_green(r);
  set_desired(s, r, "blue", cause::api, t0 + 2s);  // green -> blue rollout, paused at step 2
  ASSERT_EQ(s.phase, phase::paused);
  const route_state before = s;
  const op_result res = undo(s, r, t0 + 3s);
  EXPECT_FALSE(res.ok);
  EXPECT_NE(res.error.find("a rollout to blue exists"), std::string::npos) << res.error;
  EXPECT_EQ(s, before);
  // An aborted rollout still has its canary: still refused.
  ASSERT_TRUE(abort(s, r, t0 + 4s).ok);
  EXPECT_FALSE(undo(s, r, t0 + 5s).ok);
}

TEST(undo_state, refused_with_no_previous_stable) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = initial_state(r, t0);
  const route_state before = s;
  const op_result res = undo(s, r, t0 + 1s);
  EXPECT_FALSE(res.ok);
  EXPECT_NE(res.error.find("no previous stable"), std::string::npos) << res.error;
  EXPECT_EQ(s, before);
}

TEST(undo_state, a_cancelled_rollout_does_not_replace_the_stable) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = initial_state(r, t0);
  set_desired(s, r, "green", cause::api, t0);
  set_desired(s, r, "blue", cause::api, t0 + 1s);  // rolled back: blue never stopped being stable
  EXPECT_EQ(s.previous_stable, "");
  EXPECT_FALSE(undo(s, r, t0 + 2s).ok);
}

TEST(undo_state, promote_full_also_keeps_the_replaced_stable) {
  const auto r = make_route({set_weight_step(20), manual_pause()});
  route_state s = initial_state(r, t0);
  set_desired(s, r, "green", cause::api, t0);
  ASSERT_TRUE(abort(s, r, t0 + 1s).ok);
  ASSERT_TRUE(promote_full(s, r, t0 + 2s).ok);
  EXPECT_EQ(s.stable, "green");
  EXPECT_EQ(s.previous_stable, "blue");
}

// Blue-green: one `pause: {}` step previews the new version at weight 0 (header override only);
// one promote then moves every request.
TEST(blue_green, a_lone_manual_pause_previews_then_one_promote_switches_everything) {
  const auto r = make_route({manual_pause()});
  route_state s = initial_state(r, t0);
  set_desired(s, r, "green", cause::api, t0);
  EXPECT_EQ(s.phase, phase::paused);
  EXPECT_EQ(s.weight, 0);
  EXPECT_TRUE(s.canary_active());  // the override reaches green during the preview
  ASSERT_TRUE(promote(s, r, t0 + 1s).ok);
  EXPECT_EQ(s.phase, phase::healthy);
  EXPECT_EQ(s.stable, "green");
  EXPECT_EQ(s.canary, "");
  EXPECT_EQ(s.previous_stable, "blue");
  ASSERT_TRUE(undo(s, r, t0 + 2s).ok);  // and the switch back is one call too
  EXPECT_EQ(s.stable, "blue");
}

// ---- the engine: config checks, reloads and restarts ----

std::string yaml(const std::string& upstreams, const std::string& upstream) {
  return "state_file: /nonexistent/state.json\n"
         "upstreams: {" +
         upstreams +
         "}\n"
         "routes: [{name: web, upstream: " +
         upstream + ", steps: [{pause: {}}]}]\n";
}
const std::string both =
    "blue: {endpoints: [\"127.0.0.1:9\"]}, green: {endpoints: [\"127.0.0.1:9\"]}";
const std::string green_only = "green: {endpoints: [\"127.0.0.1:9\"]}";

std::shared_ptr<const config::proxy_config> load(const std::string& text) {
  auto loaded = config::load_string(text, "/nonexistent/c.yaml");
  if (!loaded.config)
    throw std::runtime_error(loaded.errors.empty() ? "?" : loaded.errors[0].to_string());
  return std::make_shared<const config::proxy_config>(*loaded.config);
}

class UndoEngineTest : public ::testing::Test {
 protected:
  void start(const std::string& text) {
    engine_.reset();  // as a restart: the new engine sees only what the store kept
    engine_ = std::make_unique<engine>(
        load(text), [this] { return now_; }, nullptr, store_);
  }
  // blue -> green through the API, promoted past the preview.
  void complete_to_green() {
    ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
    ASSERT_EQ(engine_->apply("web", operation::promote).status, 200);
    ASSERT_EQ(state().stable, "green");
  }
  const route_state& state() const { return *engine_->status("web")->state; }

  wall_time now_ = t0;
  std::shared_ptr<memory_state_store> store_ = std::make_shared<memory_state_store>();
  std::unique_ptr<engine> engine_;
};

TEST_F(UndoEngineTest, undo_is_saved_and_routes_the_previous_stable) {
  start(yaml(both, "blue"));
  complete_to_green();
  const auto res = engine_->apply("web", operation::undo);
  ASSERT_EQ(res.status, 200) << res.error;
  const auto& snap = *engine_->snapshot();
  EXPECT_EQ(snap.upstreams.at(snap.routes.at(0).stable).name, "blue");
  EXPECT_EQ(store_->stored()->at("web").stable, "blue");
  EXPECT_EQ(store_->stored()->at("web").previous_stable, "green");
}

TEST_F(UndoEngineTest, refused_with_409_during_a_rollout_and_with_no_previous_stable) {
  start(yaml(both, "blue"));
  auto res = engine_->apply("web", operation::undo);
  EXPECT_EQ(res.status, 409);
  EXPECT_NE(res.error.find("no previous stable"), std::string::npos) << res.error;
  ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
  res = engine_->apply("web", operation::undo);
  EXPECT_EQ(res.status, 409);
  EXPECT_NE(res.error.find("a rollout to green exists"), std::string::npos) << res.error;
}

TEST_F(UndoEngineTest, previous_stable_survives_a_restart_before_and_after_undo) {
  start(yaml(both, "blue"));
  complete_to_green();
  start(yaml(both, "blue"));  // restart before undo
  EXPECT_EQ(state().previous_stable, "blue");
  ASSERT_EQ(engine_->apply("web", operation::undo).status, 200);
  start(yaml(both, "blue"));  // restart after undo
  EXPECT_EQ(state().stable, "blue");
  EXPECT_EQ(state().previous_stable, "green");
  ASSERT_EQ(engine_->apply("web", operation::undo).status, 200);  // redo after the restart
  EXPECT_EQ(state().stable, "green");
}

TEST_F(UndoEngineTest, a_reload_removing_the_previous_stable_drops_it_and_is_not_refused) {
  start(yaml(both, "blue"));
  complete_to_green();
  const auto res = engine_->reload(*load(yaml(green_only, "green")));
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(state().previous_stable, "");
  EXPECT_EQ(store_->stored()->at("web").previous_stable, "");
  const auto undo_res = engine_->apply("web", operation::undo);
  EXPECT_EQ(undo_res.status, 409);
}

TEST_F(UndoEngineTest, a_start_whose_config_lacks_the_previous_stable_drops_it) {
  start(yaml(both, "blue"));
  complete_to_green();
  start(yaml(green_only, "green"));  // would throw if the previous stable counted as in use
  EXPECT_EQ(state().stable, "green");
  EXPECT_EQ(state().previous_stable, "");
}

// ---- the state file ----

TEST(undo_state_file, previous_stable_round_trips_and_is_optional) {
  const auto r = make_route({manual_pause()});
  route_state s = initial_state(r, t0);
  set_desired(s, r, "green", cause::api, t0);
  ASSERT_TRUE(promote(s, r, t0).ok);
  const std::string text = serialize_state({{"web", s}});
  auto parsed = parse_state(text);
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.states.at("web").previous_stable, "blue");
  EXPECT_EQ(parsed.states.at("web"), s);

  // A file written before undo existed has no such field: no previous stable.
  auto file = boost::json::parse(text).as_object();
  auto& web = file["routes"].as_object()["web"].as_object();
  EXPECT_EQ(web.at("previous_stable").as_string(), "blue");
  web.erase("previous_stable");
  parsed = parse_state(boost::json::serialize(file));
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.states.at("web").previous_stable, "");
}

}  // namespace
}  // namespace canary::rollout
