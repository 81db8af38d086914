// Unit tests of the engine's fleet seam (docs/fleet.md) against an in-memory store that plays
// the other replicas: a save that loses its compare-and-swap is re-applied to the newer state
// (or refused with the state machine's reason), states adopted from the watch are published
// without a save, only the leader moves timers, and a store known down changes nothing.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/load.h"
#include "rollout/engine.h"

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 5h;

const std::string kConfig =
    "state_file: /nonexistent/state.json\n"
    "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, green: {endpoints: [\"127.0.0.1:9\"]}}\n"
    "routes: [{name: web, upstream: blue, steps: [{setWeight: 20}, {pause: {duration: 10s}}, "
    "{setWeight: 50}, {pause: {}}]}]\n";

config::proxy_config load(const std::string& text) {
  auto loaded = config::load_string(text, "/nonexistent/c.yaml");
  if (!loaded.config) throw std::runtime_error(loaded.errors.at(0).to_string());
  return *loaded.config;
}

class EngineFleetTest : public ::testing::Test {
 protected:
  void start() { start_with(kConfig); }
  void start_with(const std::string& text) {
    engine_ = std::make_unique<engine>(
        std::make_shared<const config::proxy_config>(load(text)), [this] { return now_; },
        [this](std::shared_ptr<const core::snapshot> s) { published_.push_back(std::move(s)); },
        store_);
    engine_->subscribe([this](const std::string& name) { told_.push_back(name); });
  }
  // The canary green at its first step (weight 20, a 10 s pause running), committed here.
  void start_canary() {
    start();
    ASSERT_EQ(engine_->apply("web", operation::set_upstream, 0, "green").status, 200);
    ASSERT_EQ(state().weight, 20);
  }
  const config::route_config& route() const { return engine_->config().routes.at(0); }
  const route_state& state() const { return *engine_->status("web")->state; }
  const core::route_view& routed() const { return engine_->snapshot()->routes.at(0); }
  const route_state& stored() const { return store_->stored()->at("web"); }
  // What another replica committed: the state here with `op` applied.
  state_map remote_with(op_result (*op)(route_state&, const config::route_config&, wall_time)) {
    route_state s = state();
    EXPECT_TRUE(op(s, route(), now_).ok);
    return state_map{{"web", s}};
  }

  wall_time now_ = t0;
  std::shared_ptr<memory_state_store> store_ = std::make_shared<memory_state_store>();
  std::vector<std::shared_ptr<const core::snapshot>> published_;
  std::vector<std::string> told_;
  std::unique_ptr<engine> engine_;
};

TEST_F(EngineFleetTest, AConflictReappliesTheOperationToTheNewerStateOnce) {
  start_canary();
  // Another replica promoted first (step 3, weight 50); this one's weight change must keep
  // that promotion (not lost) and be applied once on top of it.
  auto newer = remote_with(&promote);
  ASSERT_EQ(newer.at("web").weight, 50);
  store_->conflict_next(1, newer);
  const auto saves = store_->saves();
  const auto res = engine_->apply("web", operation::set_weight, 30);
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(store_->saves(), saves + 1);
  EXPECT_EQ(stored().weight, 30);
  EXPECT_EQ(stored().step, newer.at("web").step);
  EXPECT_EQ(state(), stored());
  EXPECT_EQ(routed().weight, 30);
}

TEST_F(EngineFleetTest, AnOperationTheNewerStateNoLongerAllowsIs409) {
  start_canary();
  auto newer = remote_with([](route_state& s, const config::route_config& r, wall_time now) {
    return rollout::abort(s, r, now);
  });
  store_->conflict_next(1, newer);
  const auto saves = store_->saves();
  const auto res = engine_->apply("web", operation::promote);
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(store_->saves(), saves);
  // The other replica's abort is in force here now, and routed.
  EXPECT_EQ(state(), newer.at("web"));
  EXPECT_FALSE(routed().canary_active);
}

TEST_F(EngineFleetTest, RetriesAreBounded) {
  start_canary();
  int writes = 0;
  // Another replica changes the weight before every attempt of this one.
  store_->conflict_next(engine::max_conflict_retries + 1, remote_with(&pause),
                        [&](state_map& m) { m.at("web").weight = 21 + writes++; });
  const auto res = engine_->apply("web", operation::set_weight, 30);
  EXPECT_EQ(res.status, 409);
  EXPECT_NE(res.error.find("conflict: "), std::string::npos) << res.error;
  EXPECT_EQ(store_->conflicts_left(), 0);
  EXPECT_EQ(writes, engine::max_conflict_retries + 1);
  EXPECT_EQ(state().weight, 21 + writes - 2);  // the last one read; 30 was never written
}

TEST_F(EngineFleetTest, AdoptedStatesArePublishedAndToldButNotSaved) {
  start_canary();
  const auto saves = store_->saves();
  const auto published = published_.size();
  told_.clear();
  const auto newer = remote_with(&promote);
  EXPECT_EQ(engine_->adopt_remote(newer), std::vector<std::string>{"web"});
  EXPECT_EQ(state(), newer.at("web"));
  EXPECT_EQ(routed().weight, 50);
  EXPECT_EQ(published_.size(), published + 1);
  EXPECT_EQ(told_, std::vector<std::string>{"web"});
  EXPECT_EQ(store_->saves(), saves);
  // The same states again, or a route this config lacks: nothing to do.
  state_map again = newer;
  again.emplace("other", newer.at("web"));
  EXPECT_TRUE(engine_->adopt_remote(again).empty());
  EXPECT_EQ(published_.size(), published + 1);
}

TEST_F(EngineFleetTest, AStateNamingAnUpstreamThisConfigLacksIsNotAdopted) {
  start_canary();
  auto newer = remote_with(&promote);
  newer.at("web").canary = "purple";
  EXPECT_TRUE(engine_->adopt_remote(newer).empty());
  EXPECT_EQ(state().canary, "green");
}

TEST_F(EngineFleetTest, OnlyTheLeaderMovesTimedPauses) {
  start_canary();
  engine_->set_leader(false);
  now_ += 11s;
  engine_->tick();
  EXPECT_EQ(state().weight, 20);
  engine_->set_leader(true);
  engine_->tick();
  EXPECT_EQ(state().weight, 50);
  EXPECT_EQ(stored().weight, 50);
}

TEST_F(EngineFleetTest, AStoreKnownDownRefusesChangesAtOnceAndHoldsTimers) {
  start_canary();
  const auto saves = store_->saves();
  engine_->set_store_down("state store unavailable: connect http://127.0.0.1:1: refused");
  const auto res = engine_->apply("web", operation::promote);
  EXPECT_EQ(res.status, 503);
  EXPECT_EQ(res.error,
            "state store unavailable: connect http://127.0.0.1:1: refused; nothing changed");
  now_ += 11s;
  engine_->tick();
  EXPECT_EQ(state().weight, 20);
  EXPECT_EQ(store_->saves(), saves);
  // Back: the pause that ended meanwhile ends now (its deadline is in the state).
  engine_->set_store_down(std::nullopt);
  engine_->tick();
  EXPECT_EQ(state().weight, 50);
}

TEST_F(EngineFleetTest, StaleRoutingSendsCanaryTrafficToStableWithoutChangingTheState) {
  start_canary();
  const route_state before = state();
  ASSERT_TRUE(routed().canary_active);
  engine_->set_stale(true);
  EXPECT_FALSE(routed().canary_active);
  EXPECT_EQ(routed().weight, 0);
  EXPECT_EQ(engine_->status("web")->actual_weight, 0);
  EXPECT_EQ(state(), before);
  engine_->set_stale(false);
  EXPECT_TRUE(routed().canary_active);
  EXPECT_EQ(routed().weight, 20);
}

TEST_F(EngineFleetTest, AFirstStartThatLosesTheRaceTakesTheWinnersState) {
  route_state winner = initial_state(load(kConfig).routes.at(0), t0);
  winner.weight_total = 100;
  // The store was empty when read; another replica wrote its first state meanwhile.
  store_->conflict_next(1, state_map{}, [&](state_map& m) { m = {{"web", winner}}; });
  start();
  EXPECT_EQ(state(), winner);
}

TEST_F(EngineFleetTest, AStartFromTheCacheWritesNothing) {
  route_state cached = initial_state(load(kConfig).routes.at(0), t0);
  // restore_states would rescale it (a change to save): a cache start must not try.
  cached.weight_total = 0;
  store_ = std::make_shared<memory_state_store>(state_map{{"web", cached}});
  store_->fail_saves("state store unavailable: connect refused");
  store_->serve_from_cache(true);
  start();
  EXPECT_EQ(state().stable, "blue");
  EXPECT_EQ(engine_->state_write_errors(), 0u);
}

// Config drift: replica B still has the file that says blue while the fleet rolls out green
// (started by replica A's newer file).
class EngineDriftTest : public EngineFleetTest {
 protected:
  std::string with_upstream(const std::string& u) {
    auto text = kConfig;
    text.replace(text.find("upstream: blue"), 14, "upstream: " + u);
    return text;
  }
  // The shared state after A loaded the green file (B loaded the blue one before).
  void fleet_rolls_out_green() {
    store_->replica_seen = std::map<std::string, std::string>{};
    start();  // as A, first load: blue
    ASSERT_EQ(engine_->reload(load(with_upstream("green"))).status, 200);
    ASSERT_EQ(state().canary, "green");
    engine_.reset();
    store_->replica_seen = std::map<std::string, std::string>{{"web", "blue"}};  // B's record
  }
};

TEST_F(EngineDriftTest, AReplicaReloadingItsOldFileNeverCancelsTheRollout) {
  fleet_rolls_out_green();
  start_with(with_upstream("blue"));  // B restarts with its old file
  EXPECT_EQ(state().canary, "green");
  EXPECT_EQ(state().weight, 20);
  const auto saves = store_->saves();
  ASSERT_EQ(engine_->reload(load(with_upstream("blue"))).status, 200);
  EXPECT_EQ(state().canary, "green");
  EXPECT_EQ(store_->saves(), saves);
  EXPECT_EQ(engine_->config_drift(), std::vector<std::string>{"web"});
}

TEST_F(EngineDriftTest, TheSameNewFileOnAnotherReplicaStartsNoSecondRollout) {
  fleet_rolls_out_green();
  start_with(with_upstream("blue"));
  const auto before = state();
  // B now loads the same new file: its file changed, but the shared state already has it.
  ASSERT_EQ(engine_->reload(load(with_upstream("green"))).status, 200);
  EXPECT_EQ(state(), before);
  EXPECT_TRUE(engine_->config_drift().empty());
  EXPECT_EQ(store_->replica_seen->at("web"), "green");
}

TEST_F(EngineDriftTest, AReplicaWhoseFileChangedActs) {
  fleet_rolls_out_green();
  start_with(with_upstream("blue"));
  ASSERT_EQ(engine_->reload(load(with_upstream("green"))).status, 200);
  // A newer file again (back to blue, the stable) on B: this one acts and cancels the canary.
  ASSERT_EQ(engine_->reload(load(with_upstream("blue"))).status, 200);
  EXPECT_EQ(state().canary, "");
  EXPECT_EQ(state().stable, "blue");
  EXPECT_EQ(state().seen_upstream, "blue");
}

}  // namespace
}  // namespace canary::rollout
