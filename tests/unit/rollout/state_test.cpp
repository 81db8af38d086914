// Unit tests of the rollout state machine (proxy/rollout/state.cpp): every transition of
// docs/rollouts.md, every operation in its valid and invalid phases, and the event history. Time is
// injected (a fixed `t0` plus offsets); nothing sleeps.
#include "rollout/state.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;
using config::route_config;
using config::step_config;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 11 / 26)) + 13h;

step_config set_weight_step(int weight) {
  step_config s;
  s.what = step_config::kind::set_weight;
  s.weight = weight;
  return s;
}

step_config pause_step(std::optional<config::duration> d = std::nullopt) {
  step_config s;
  s.what = step_config::kind::pause;
  s.duration = d;
  return s;
}

route_config make_route(std::vector<step_config> steps, std::string upstream = "blue") {
  route_config r;
  r.name = "web";
  r.upstream = std::move(upstream);
  r.steps = std::move(steps);
  return r;
}

// The walk used by most tests: 0 setWeight 20, 1 pause {}, 2 setWeight 50, 3 pause 30s,
// 4 setWeight 80, 5 pause {}.
route_config six_steps() {
  return make_route({set_weight_step(20), pause_step(), set_weight_step(50), pause_step(30s),
                     set_weight_step(80), pause_step()});
}

void expect_event(const event& e, wall_time time, phase from, phase to, std::size_t step,
                  int weight, cause why, const std::string& message) {
  EXPECT_EQ(e.time, time);
  EXPECT_EQ(e.from, from);
  EXPECT_EQ(e.to, to);
  EXPECT_EQ(e.step, step);
  EXPECT_EQ(e.weight, weight);
  EXPECT_EQ(e.cause, why);
  EXPECT_EQ(e.message, message);
}

// Everything but the events, which tests check on their own.
void expect_same_fields(const route_state& a, const route_state& b) {
  EXPECT_EQ(a.stable, b.stable);
  EXPECT_EQ(a.canary, b.canary);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.weight_total, b.weight_total);
  EXPECT_EQ(a.phase, b.phase);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.paused_by, b.paused_by);
  EXPECT_EQ(a.pause_deadline, b.pause_deadline);
  EXPECT_EQ(a.pause_remaining, b.pause_remaining);
  EXPECT_EQ(a.aborted, b.aborted);
  EXPECT_EQ(a.seen_upstream, b.seen_upstream);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.events.size(), b.events.size());
}

class rollout_state : public ::testing::Test {
 protected:
  route_config route_ = six_steps();
  route_state s_ = initial_state(route_, t0);

  // Starts green at t0: Paused by step at step 1 (pause {}), weight 20.
  void start_green() { set_desired(s_, route_, "green", cause::config, t0); }
  // Then promote at t0+1m: Paused at the 30 s timed pause (step 3), weight 50.
  void reach_timed_pause() {
    start_green();
    ASSERT_TRUE(promote(s_, route_, t0 + 1min).ok);
    ASSERT_EQ(s_.step, 3u);
  }
};

TEST(rollout_strings, round_trip_and_reject_unknown) {
  for (phase p : {phase::healthy, phase::progressing, phase::paused, phase::degraded})
    EXPECT_EQ(phase_from_string(to_string(p)), p);
  for (paused_by p : {paused_by::none, paused_by::step, paused_by::user})
    EXPECT_EQ(paused_by_from_string(to_string(p)), p);
  for (cause c : {cause::step, cause::api, cause::config, cause::timer})
    EXPECT_EQ(cause_from_string(to_string(c)), c);
  EXPECT_EQ(to_string(phase::progressing), "Progressing");
  EXPECT_EQ(to_string(paused_by::none), "");
  EXPECT_EQ(to_string(cause::timer), "timer");
  EXPECT_FALSE(phase_from_string("healthy"));
  EXPECT_FALSE(paused_by_from_string("nobody"));
  EXPECT_FALSE(cause_from_string("cron"));
}

TEST_F(rollout_state, initial_state_is_healthy_on_the_configured_upstream) {
  EXPECT_EQ(s_.stable, "blue");
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_EQ(s_.step, 6u);
  EXPECT_EQ(s_.weight, 0);
  EXPECT_EQ(s_.paused_by, paused_by::none);
  EXPECT_EQ(s_.seen_upstream, "blue");
  EXPECT_EQ(s_.updated_at, t0);
  EXPECT_EQ(s_.message, "");
  EXPECT_TRUE(s_.events.empty());
  EXPECT_FALSE(s_.in_progress());
  EXPECT_FALSE(s_.canary_active());
}

TEST_F(rollout_state, new_desired_upstream_runs_set_weight_and_stops_at_pause) {
  start_green();
  EXPECT_EQ(s_.stable, "blue");
  EXPECT_EQ(s_.canary, "green");
  EXPECT_EQ(s_.step, 1u);
  EXPECT_EQ(s_.weight, 20);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_EQ(s_.message, "CanaryPauseStep");
  EXPECT_FALSE(s_.pause_deadline);
  EXPECT_TRUE(s_.canary_active());
  EXPECT_EQ(pause_remaining(s_, t0 + 1h), std::nullopt);
  ASSERT_EQ(s_.events.size(), 3u);
  expect_event(s_.events[0], t0, phase::healthy, phase::progressing, 0, 0, cause::config,
               "Update to green started");
  expect_event(s_.events[1], t0, phase::progressing, phase::progressing, 1, 20, cause::step,
               "Rollout step 1/6 completed (setWeight: 20)");
  expect_event(s_.events[2], t0, phase::progressing, phase::paused, 1, 20, cause::step,
               "Rollout is paused at step 2/6 (pause)");
}

TEST_F(rollout_state, promote_at_indefinite_pause_runs_to_timed_pause_with_deadline) {
  start_green();
  const wall_time t1 = t0 + 1min;
  ASSERT_TRUE(promote(s_, route_, t1).ok);
  EXPECT_EQ(s_.step, 3u);
  EXPECT_EQ(s_.weight, 50);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_EQ(s_.pause_deadline, t1 + 30s);
  EXPECT_EQ(s_.updated_at, t1);
  EXPECT_EQ(pause_remaining(s_, t1 + 10s), 20s);
  ASSERT_EQ(s_.events.size(), 6u);
  expect_event(s_.events[3], t1, phase::paused, phase::progressing, 2, 20, cause::api,
               "Rollout promoted: step 2/6 completed (pause)");
  expect_event(s_.events[4], t1, phase::progressing, phase::progressing, 3, 50, cause::step,
               "Rollout step 3/6 completed (setWeight: 50)");
  expect_event(s_.events[5], t1, phase::progressing, phase::paused, 3, 50, cause::step,
               "Rollout is paused at step 4/6 (pause: 30s)");
}

TEST_F(rollout_state, tick_before_deadline_changes_nothing_and_at_deadline_continues) {
  reach_timed_pause();
  const wall_time t1 = t0 + 1min;
  const route_state before = s_;
  EXPECT_FALSE(tick(s_, route_, t1 + 29999ms));
  expect_same_fields(s_, before);

  EXPECT_TRUE(tick(s_, route_, t1 + 30s));
  EXPECT_EQ(s_.step, 5u);
  EXPECT_EQ(s_.weight, 80);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_FALSE(s_.pause_deadline);
  EXPECT_EQ(s_.updated_at, t1 + 30s);
  ASSERT_EQ(s_.events.size(), 9u);
  expect_event(s_.events[6], t1 + 30s, phase::paused, phase::progressing, 4, 50, cause::timer,
               "Rollout step 4/6 completed (pause: 30s)");
  expect_event(s_.events[7], t1 + 30s, phase::progressing, phase::progressing, 5, 80, cause::step,
               "Rollout step 5/6 completed (setWeight: 80)");
  expect_event(s_.events[8], t1 + 30s, phase::progressing, phase::paused, 5, 80, cause::step,
               "Rollout is paused at step 6/6 (pause)");
  // An indefinite pause never ends by the timer.
  EXPECT_FALSE(tick(s_, route_, t1 + 1000h));
}

TEST_F(rollout_state, tick_late_after_restart_still_continues) {
  // A deadline that passed while the proxy was down continues the rollout at start.
  reach_timed_pause();
  EXPECT_TRUE(tick(s_, route_, t0 + 48h));
  EXPECT_EQ(s_.step, 5u);
}

TEST_F(rollout_state, full_walk_ends_healthy_with_stable_swapped) {
  reach_timed_pause();
  ASSERT_TRUE(tick(s_, route_, t0 + 2min));
  const wall_time t3 = t0 + 3min;
  ASSERT_TRUE(promote(s_, route_, t3).ok);
  EXPECT_EQ(s_.stable, "green");
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.weight, 0);
  EXPECT_EQ(s_.step, 6u);
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_EQ(s_.message, "");
  EXPECT_EQ(s_.paused_by, paused_by::none);
  EXPECT_FALSE(s_.pause_deadline);
  EXPECT_FALSE(s_.aborted);
  EXPECT_FALSE(s_.in_progress());
  ASSERT_EQ(s_.events.size(), 11u);
  expect_event(s_.events[9], t3, phase::paused, phase::progressing, 6, 80, cause::api,
               "Rollout promoted: step 6/6 completed (pause)");
  expect_event(s_.events[10], t3, phase::progressing, phase::healthy, 6, 0, cause::step,
               "Rollout completed: green is now stable");
}

TEST_F(rollout_state, promote_while_progressing_skips_the_current_step) {
  // Progressing at rest is not reached by these steps; a restored state can hold it.
  start_green();
  s_.step = 2;
  s_.phase = phase::progressing;
  s_.paused_by = paused_by::none;
  ASSERT_TRUE(promote(s_, route_, t0 + 1min).ok);
  EXPECT_EQ(s_.step, 3u);
  EXPECT_EQ(s_.weight, 20);  // setWeight 50 was skipped
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.pause_deadline, t0 + 1min + 30s);
  expect_event(s_.events[s_.events.size() - 2], t0 + 1min, phase::progressing, phase::progressing,
               3, 20, cause::api, "Rollout promoted: step 3/6 skipped (setWeight: 50)");
}

TEST_F(rollout_state, promote_ends_a_manual_hold_on_a_timed_pause) {
  reach_timed_pause();
  ASSERT_TRUE(pause(s_, route_, t0 + 70s).ok);
  ASSERT_TRUE(promote(s_, route_, t0 + 80s).ok);
  EXPECT_EQ(s_.step, 5u);
  EXPECT_EQ(s_.weight, 80);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_FALSE(s_.pause_remaining);
  EXPECT_EQ(s_.events[s_.events.size() - 3].message,
            "Rollout promoted: step 4/6 completed (pause: 30s)");
}

TEST_F(rollout_state, promote_full_from_paused_completes_at_once) {
  start_green();
  ASSERT_TRUE(promote_full(s_, route_, t0 + 1min).ok);
  EXPECT_EQ(s_.stable, "green");
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_EQ(s_.weight, 0);
  EXPECT_EQ(s_.step, 6u);
  EXPECT_EQ(s_.paused_by, paused_by::none);
  ASSERT_EQ(s_.events.size(), 4u);
  expect_event(s_.events[3], t0 + 1min, phase::paused, phase::healthy, 6, 0, cause::api,
               "Rollout fully promoted: green is now stable");
}

TEST_F(rollout_state, promote_full_from_degraded_completes_and_clears_abort) {
  reach_timed_pause();
  ASSERT_TRUE(abort(s_, route_, t0 + 2min).ok);
  ASSERT_TRUE(promote_full(s_, route_, t0 + 3min).ok);
  EXPECT_EQ(s_.stable, "green");
  EXPECT_EQ(s_.canary, "");
  EXPECT_FALSE(s_.aborted);
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_EQ(s_.events.back().from, phase::degraded);
  EXPECT_EQ(s_.events.back().to, phase::healthy);
}

TEST_F(rollout_state, abort_zeroes_weight_resets_step_and_keeps_the_canary) {
  reach_timed_pause();
  const wall_time t2 = t0 + 70s;
  ASSERT_TRUE(abort(s_, route_, t2).ok);
  EXPECT_TRUE(s_.aborted);
  EXPECT_EQ(s_.weight, 0);
  EXPECT_EQ(s_.step, 0u);
  EXPECT_EQ(s_.phase, phase::degraded);
  EXPECT_EQ(s_.canary, "green");
  EXPECT_EQ(s_.stable, "blue");
  EXPECT_TRUE(s_.in_progress());
  EXPECT_FALSE(s_.canary_active());
  EXPECT_EQ(s_.paused_by, paused_by::none);
  EXPECT_FALSE(s_.pause_deadline);
  EXPECT_FALSE(s_.pause_remaining);
  EXPECT_EQ(s_.message, "RolloutAborted: Rollout aborted update to green");
  expect_event(s_.events.back(), t2, phase::paused, phase::degraded, 0, 0, cause::api,
               "RolloutAborted: Rollout aborted update to green");
  // The dead deadline no longer continues anything.
  EXPECT_FALSE(tick(s_, route_, t0 + 1h));
}

TEST_F(rollout_state, abort_during_a_manual_hold_clears_the_held_time) {
  reach_timed_pause();
  ASSERT_TRUE(pause(s_, route_, t0 + 70s).ok);
  ASSERT_TRUE(abort(s_, route_, t0 + 80s).ok);
  EXPECT_FALSE(s_.pause_remaining);
  EXPECT_EQ(s_.paused_by, paused_by::none);
  EXPECT_EQ(pause_remaining(s_, t0 + 80s), std::nullopt);
}

TEST_F(rollout_state, retry_restarts_the_steps_from_zero) {
  reach_timed_pause();
  ASSERT_TRUE(abort(s_, route_, t0 + 2min).ok);
  const wall_time t3 = t0 + 3min;
  ASSERT_TRUE(retry(s_, route_, t3).ok);
  EXPECT_FALSE(s_.aborted);
  EXPECT_EQ(s_.step, 1u);
  EXPECT_EQ(s_.weight, 20);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_TRUE(s_.canary_active());
  expect_event(s_.events[s_.events.size() - 3], t3, phase::degraded, phase::progressing, 0, 0,
               cause::api, "Retrying Rollout after abort");
}

TEST_F(rollout_state, pause_during_timed_pause_keeps_the_remaining_time) {
  reach_timed_pause();
  const wall_time t = t0 + 1min;  // the pause started here: deadline t + 30s
  ASSERT_TRUE(pause(s_, route_, t + 10s).ok);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::user);
  EXPECT_EQ(s_.message, "manually paused");
  EXPECT_FALSE(s_.pause_deadline);
  EXPECT_EQ(s_.pause_remaining, 20s);
  EXPECT_EQ(pause_remaining(s_, t + 90s), 20s);  // the clock is stopped
  expect_event(s_.events.back(), t + 10s, phase::paused, phase::paused, 3, 50, cause::api,
               "Rollout is paused by user (20s left on the pause at step 4/6)");

  EXPECT_FALSE(tick(s_, route_, t + 100s));
  EXPECT_EQ(s_.step, 3u);

  ASSERT_TRUE(resume(s_, route_, t + 200s).ok);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.message, "CanaryPauseStep");
  EXPECT_EQ(s_.pause_deadline, t + 220s);
  EXPECT_FALSE(s_.pause_remaining);
  expect_event(s_.events.back(), t + 200s, phase::paused, phase::paused, 3, 50, cause::api,
               "Rollout is resumed (the pause at step 4/6 continues: 20s left)");
  EXPECT_FALSE(tick(s_, route_, t + 219s));
  EXPECT_TRUE(tick(s_, route_, t + 220s));
  EXPECT_EQ(s_.step, 5u);
}

TEST_F(rollout_state, pause_after_the_deadline_passed_keeps_zero) {
  reach_timed_pause();
  ASSERT_TRUE(pause(s_, route_, t0 + 5min).ok);
  EXPECT_EQ(s_.pause_remaining, 0ms);
  ASSERT_TRUE(resume(s_, route_, t0 + 6min).ok);
  EXPECT_TRUE(tick(s_, route_, t0 + 6min));
}

TEST_F(rollout_state, pause_and_resume_at_an_indefinite_pause_returns_to_the_step) {
  start_green();
  ASSERT_TRUE(pause(s_, route_, t0 + 1s).ok);
  EXPECT_EQ(s_.paused_by, paused_by::user);
  EXPECT_FALSE(s_.pause_remaining);
  EXPECT_EQ(s_.events.back().message, "Rollout is paused by user");
  ASSERT_TRUE(resume(s_, route_, t0 + 2s).ok);
  EXPECT_EQ(s_.step, 1u);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_EQ(s_.message, "CanaryPauseStep");
  EXPECT_FALSE(s_.pause_deadline);
  expect_event(s_.events.back(), t0 + 2s, phase::paused, phase::paused, 1, 20, cause::api,
               "Rollout is resumed (step 2/6 waits for promote)");
}

TEST_F(rollout_state, pause_while_progressing_then_resume_runs_the_steps) {
  start_green();
  s_.step = 2;  // restored Progressing at setWeight 50
  s_.phase = phase::progressing;
  s_.paused_by = paused_by::none;
  ASSERT_TRUE(pause(s_, route_, t0 + 1s).ok);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::user);
  expect_event(s_.events.back(), t0 + 1s, phase::progressing, phase::paused, 2, 20, cause::api,
               "Rollout is paused by user");
  ASSERT_TRUE(resume(s_, route_, t0 + 2s).ok);
  EXPECT_EQ(s_.step, 3u);
  EXPECT_EQ(s_.weight, 50);
  EXPECT_EQ(s_.pause_deadline, t0 + 2s + 30s);
  expect_event(s_.events[s_.events.size() - 3], t0 + 2s, phase::paused, phase::progressing, 2, 20,
               cause::api, "Rollout is resumed");
}

TEST_F(rollout_state, set_weight_overrides_until_the_next_set_weight_step) {
  start_green();
  ASSERT_TRUE(set_weight(s_, route_, 35, t0 + 1s).ok);
  EXPECT_EQ(s_.weight, 35);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  EXPECT_EQ(s_.step, 1u);
  expect_event(s_.events.back(), t0 + 1s, phase::paused, phase::paused, 1, 35, cause::api,
               "Traffic weight updated from 20 to 35");
  // The same weight again changes nothing and records nothing.
  const auto events = s_.events.size();
  ASSERT_TRUE(set_weight(s_, route_, 35, t0 + 2s).ok);
  EXPECT_EQ(s_.events.size(), events);
  EXPECT_EQ(s_.updated_at, t0 + 1s);

  ASSERT_TRUE(promote(s_, route_, t0 + 3s).ok);
  EXPECT_EQ(s_.weight, 50);
}

TEST_F(rollout_state, desired_equal_to_stable_cancels_the_rollout) {
  reach_timed_pause();
  const wall_time t2 = t0 + 70s;
  set_desired(s_, route_, "blue", cause::api, t2);
  EXPECT_EQ(s_.stable, "blue");
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.weight, 0);
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_EQ(s_.message, "rolled back");
  EXPECT_EQ(s_.step, 6u);
  EXPECT_EQ(s_.paused_by, paused_by::none);
  EXPECT_FALSE(s_.pause_deadline);
  expect_event(s_.events.back(), t2, phase::paused, phase::healthy, 6, 0, cause::api,
               "Rolled back to blue: update to green cancelled");
}

TEST_F(rollout_state, desired_equal_to_stable_cancels_an_aborted_rollout) {
  start_green();
  ASSERT_TRUE(abort(s_, route_, t0 + 1s).ok);
  set_desired(s_, route_, "blue", cause::config, t0 + 2s);
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_FALSE(s_.aborted);
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.events.back().from, phase::degraded);
  EXPECT_EQ(s_.events.back().cause, cause::config);
}

TEST_F(rollout_state, desired_equal_to_stable_with_nothing_in_progress_changes_nothing) {
  const route_state before = s_;
  set_desired(s_, route_, "blue", cause::api, t0 + 1s);
  expect_same_fields(s_, before);
}

TEST_F(rollout_state, desired_equal_to_canary_changes_nothing) {
  reach_timed_pause();
  route_state before = s_;
  set_desired(s_, route_, "green", cause::api, t0 + 70s);
  expect_same_fields(s_, before);

  ASSERT_TRUE(abort(s_, route_, t0 + 80s).ok);
  before = s_;
  set_desired(s_, route_, "green", cause::config, t0 + 90s);
  expect_same_fields(s_, before);
  EXPECT_EQ(s_.phase, phase::degraded);
}

TEST_F(rollout_state, new_desired_during_a_rollout_restarts_at_step_zero) {
  reach_timed_pause();
  const wall_time t2 = t0 + 70s;
  set_desired(s_, route_, "yellow", cause::api, t2);
  EXPECT_EQ(s_.stable, "blue");
  EXPECT_EQ(s_.canary, "yellow");
  EXPECT_EQ(s_.step, 1u);
  EXPECT_EQ(s_.weight, 20);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_FALSE(s_.pause_deadline);
  expect_event(s_.events[s_.events.size() - 3], t2, phase::paused, phase::progressing, 0, 0,
               cause::api, "Update to yellow started, replacing update to green");
}

TEST_F(rollout_state, new_desired_after_abort_clears_the_abort) {
  start_green();
  ASSERT_TRUE(abort(s_, route_, t0 + 1s).ok);
  set_desired(s_, route_, "yellow", cause::api, t0 + 2s);
  EXPECT_FALSE(s_.aborted);
  EXPECT_EQ(s_.canary, "yellow");
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.weight, 20);
}

TEST(rollout_state_no_steps, new_desired_is_promoted_at_once) {
  const route_config route = make_route({});
  route_state s = initial_state(route, t0);
  EXPECT_EQ(s.step, 0u);
  set_desired(s, route, "green", cause::api, t0 + 1s);
  EXPECT_EQ(s.stable, "green");
  EXPECT_EQ(s.canary, "");
  EXPECT_EQ(s.phase, phase::healthy);
  EXPECT_EQ(s.weight, 0);
  EXPECT_EQ(s.step, 0u);
  ASSERT_EQ(s.events.size(), 2u);
  expect_event(s.events[0], t0 + 1s, phase::healthy, phase::progressing, 0, 0, cause::api,
               "Update to green started");
  expect_event(s.events[1], t0 + 1s, phase::progressing, phase::healthy, 0, 0, cause::step,
               "Rollout completed: green is now stable");
}

TEST(rollout_state_durations, pause_steps_read_like_go_durations) {
  const route_config route = make_route({pause_step(90min), pause_step(2500ms)});
  route_state s = initial_state(route, t0);
  set_desired(s, route, "green", cause::api, t0);
  EXPECT_EQ(s.events.back().message, "Rollout is paused at step 1/2 (pause: 1h30m)");
  ASSERT_TRUE(promote(s, route, t0 + 1s).ok);
  EXPECT_EQ(s.events.back().message, "Rollout is paused at step 2/2 (pause: 2.5s)");
  EXPECT_EQ(s.pause_deadline, t0 + 1s + 2500ms);
}

TEST_F(rollout_state, config_load_with_unchanged_upstream_changes_nothing) {
  reach_timed_pause();
  const route_state before = s_;
  on_config_load(s_, route_, t0 + 1h);  // a restart with an unchanged file
  expect_same_fields(s_, before);

  route_state idle = initial_state(route_, t0);
  const route_state idle_before = idle;
  on_config_load(idle, route_, t0 + 1h);
  expect_same_fields(idle, idle_before);
}

TEST_F(rollout_state, config_load_with_a_changed_upstream_starts_a_rollout) {
  route_.upstream = "green";
  on_config_load(s_, route_, t0 + 1s);
  EXPECT_EQ(s_.seen_upstream, "green");
  EXPECT_EQ(s_.canary, "green");
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.weight, 20);
  EXPECT_EQ(s_.events.front().cause, cause::config);
  EXPECT_EQ(s_.events.front().message, "Update to green started");

  // The file going back to the stable version rolls back.
  route_.upstream = "blue";
  on_config_load(s_, route_, t0 + 2s);
  EXPECT_EQ(s_.seen_upstream, "blue");
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.message, "rolled back");
  EXPECT_EQ(s_.events.back().cause, cause::config);
}

TEST_F(rollout_state, config_load_keeps_an_api_choice_until_the_file_changes) {
  set_desired(s_, route_, "green", cause::api, t0);  // PUT .../upstream
  const auto events = s_.events.size();
  on_config_load(s_, route_, t0 + 1s);  // the file still says blue
  EXPECT_EQ(s_.canary, "green");
  EXPECT_EQ(s_.events.size(), events);

  route_.upstream = "green";  // the file now agrees with the API: nothing restarts
  on_config_load(s_, route_, t0 + 2s);
  EXPECT_EQ(s_.seen_upstream, "green");
  EXPECT_EQ(s_.canary, "green");
  EXPECT_EQ(s_.step, 1u);
  EXPECT_EQ(s_.events.size(), events);
  EXPECT_EQ(s_.updated_at, t0 + 2s);
}

TEST_F(rollout_state, config_load_clamps_to_shorter_steps_and_completes) {
  reach_timed_pause();
  ASSERT_TRUE(tick(s_, route_, t0 + 2min));
  ASSERT_EQ(s_.step, 5u);
  route_.steps = {set_weight_step(20), pause_step(), set_weight_step(50)};
  const wall_time t = t0 + 3min;
  on_config_load(s_, route_, t);
  EXPECT_EQ(s_.stable, "green");
  EXPECT_EQ(s_.canary, "");
  EXPECT_EQ(s_.phase, phase::healthy);
  EXPECT_EQ(s_.step, 3u);
  expect_event(s_.events[s_.events.size() - 2], t, phase::paused, phase::progressing, 3, 80,
               cause::config, "Rollout steps changed: step index clamped from 5 to 3");
  expect_event(s_.events.back(), t, phase::progressing, phase::healthy, 3, 0, cause::step,
               "Rollout completed: green is now stable");
}

TEST_F(rollout_state, config_load_keeps_the_position_within_the_new_steps) {
  start_green();  // paused at index 1
  route_.steps = {set_weight_step(20), pause_step(), set_weight_step(40), pause_step()};
  on_config_load(s_, route_, t0 + 1s);
  EXPECT_EQ(s_.step, 1u);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.events.size(), 3u);
}

TEST_F(rollout_state, config_load_continues_when_the_pause_step_became_a_set_weight) {
  start_green();  // paused at index 1
  route_.steps = {set_weight_step(20), set_weight_step(40), pause_step()};
  on_config_load(s_, route_, t0 + 1s);
  EXPECT_EQ(s_.step, 2u);
  EXPECT_EQ(s_.weight, 40);
  EXPECT_EQ(s_.phase, phase::paused);
  EXPECT_EQ(s_.paused_by, paused_by::step);
  expect_event(s_.events[s_.events.size() - 3], t0 + 1s, phase::paused, phase::progressing, 1, 20,
               cause::config, "Rollout steps changed: step 2/3 is no longer a pause");
}

TEST_F(rollout_state, config_load_aligns_the_pause_kind_with_the_step) {
  reach_timed_pause();  // index 3: pause 30s with a deadline
  route_.steps[3] = pause_step();
  on_config_load(s_, route_, t0 + 70s);
  EXPECT_FALSE(s_.pause_deadline);
  EXPECT_FALSE(tick(s_, route_, t0 + 1h));
  EXPECT_EQ(s_.events.back().message, "Rollout steps changed: step 4/6 waits for promote");

  route_.steps[3] = pause_step(1min);
  on_config_load(s_, route_, t0 + 80s);
  EXPECT_EQ(s_.pause_deadline, t0 + 80s + 1min);
  EXPECT_EQ(s_.events.back().message,
            "Rollout steps changed: step 4/6 is now a timed pause (pause: 1m)");
}

TEST_F(rollout_state, config_load_keeps_complete_and_aborted_positions_valid) {
  route_.steps.push_back(set_weight_step(90));
  on_config_load(s_, route_, t0 + 1s);
  EXPECT_EQ(s_.step, 7u);  // complete == step count
  EXPECT_TRUE(s_.events.empty());

  start_green();
  ASSERT_TRUE(abort(s_, route_, t0 + 2s).ok);
  route_.steps = {set_weight_step(10)};
  on_config_load(s_, route_, t0 + 3s);
  EXPECT_EQ(s_.step, 0u);
  EXPECT_EQ(s_.phase, phase::degraded);
  EXPECT_TRUE(s_.aborted);
}

TEST_F(rollout_state, config_load_rescales_the_weight_to_a_new_weight_total) {
  start_green();  // weight 20 of 100
  ASSERT_EQ(s_.weight_total, 100);
  route_.canary.weight_total = 1000;
  on_config_load(s_, route_, t0 + 1s);
  EXPECT_EQ(s_.weight, 200);
  EXPECT_EQ(s_.weight_total, 1000);
  EXPECT_EQ(s_.step, 1u);
  expect_event(s_.events.back(), t0 + 1s, phase::paused, phase::paused, 1, 200, cause::config,
               "Traffic weight rescaled from 20/100 to 200/1000 (weight_total changed)");

  // Down again: rounded down, so the canary never gets more than its share.
  s_.weight = 205;
  route_.canary.weight_total = 10;
  on_config_load(s_, route_, t0 + 2s);
  EXPECT_EQ(s_.weight, 2);
  EXPECT_EQ(s_.weight_total, 10);
}

TEST_F(rollout_state, config_load_clamps_a_weight_of_unknown_weight_total) {
  start_green();
  s_.weight_total = 0;  // a state file of a build that did not store it
  s_.weight = 20;
  route_.canary.weight_total = 10;
  on_config_load(s_, route_, t0 + 1s);
  EXPECT_EQ(s_.weight, 10);
  EXPECT_EQ(s_.weight_total, 10);
  EXPECT_EQ(s_.events.back().message,
            "Traffic weight rescaled from 20/? to 10/10 (weight_total changed)");

  route_state unchanged = initial_state(route_, t0);  // weight 0: nothing to record
  unchanged.weight_total = 0;
  const auto events = unchanged.events.size();
  on_config_load(unchanged, route_, t0 + 1s);
  EXPECT_EQ(unchanged.weight_total, 10);
  EXPECT_EQ(unchanged.events.size(), events);
}

TEST_F(rollout_state, events_are_bounded_and_drop_the_oldest) {
  start_green();
  for (int i = 0; i < int(max_events) + 10; ++i)
    ASSERT_TRUE(set_weight(s_, route_, i % 2 == 0 ? 30 : 40, t0 + std::chrono::seconds(i)).ok);
  ASSERT_EQ(s_.events.size(), max_events);
  const int total = int(max_events) + 10;
  EXPECT_EQ(s_.events.back().time, t0 + std::chrono::seconds(total - 1));
  // 3 start events + total weight events; the oldest 13 are gone.
  EXPECT_EQ(s_.events.front().time, t0 + std::chrono::seconds(13 - 3));
  EXPECT_EQ(s_.updated_at, t0 + std::chrono::seconds(total - 1));
}

TEST(rollout_pause_remaining, running_held_and_none) {
  route_state s;
  EXPECT_EQ(pause_remaining(s, t0), std::nullopt);
  s.pause_deadline = t0 + 30s;
  EXPECT_EQ(pause_remaining(s, t0 + 10s), 20s);
  EXPECT_EQ(pause_remaining(s, t0 + 40s), 0ms);
  EXPECT_EQ(pause_remaining(s, t0 + 10s + std::chrono::microseconds(1)), 20s);  // rounds up
  s.pause_deadline.reset();
  s.pause_remaining = 5s;
  EXPECT_EQ(pause_remaining(s, t0 + 1h), 5s);
}

// ---- every operation in every phase: valid ones succeed, the others give the 409 reason ----

enum class at { healthy, progressing, paused_by_step, paused_by_user, degraded };

route_state state_at(at where, const route_config& route) {
  route_state s = initial_state(route, t0);
  if (where == at::healthy) return s;
  set_desired(s, route, "green", cause::api, t0);  // paused by step at index 1
  switch (where) {
    case at::progressing:
      s.step = 2;
      s.phase = phase::progressing;
      s.paused_by = paused_by::none;
      break;
    case at::paused_by_user:
      EXPECT_TRUE(pause(s, route, t0).ok);
      break;
    case at::degraded:
      EXPECT_TRUE(abort(s, route, t0).ok);
      break;
    default:
      break;
  }
  return s;
}

struct op_case {
  const char* name;
  std::function<op_result(route_state&, const route_config&)> run;
  // One entry per `at`, in order: "" = valid, else the exact refusal.
  std::vector<std::string> expected;
};

TEST(rollout_operations, each_operation_in_each_phase) {
  const route_config route = six_steps();
  const wall_time t = t0 + 1s;
  const std::vector<op_case> cases = {
      {"promote",
       [&](route_state& s, const route_config& r) { return promote(s, r, t); },
       {"cannot promote: rollout is Healthy (promote is valid when Progressing or Paused)", "", "",
        "", "cannot promote: rollout is Degraded (promote is valid when Progressing or Paused)"}},
      {"promote full",
       [&](route_state& s, const route_config& r) { return promote_full(s, r, t); },
       {"cannot promote full: rollout is Healthy (promote full is valid when Progressing, "
        "Paused or Degraded)",
        "", "", "", ""}},
      {"abort",
       [&](route_state& s, const route_config& r) { return abort(s, r, t); },
       {"cannot abort: rollout is Healthy (abort is valid when Progressing or Paused)", "", "", "",
        "cannot abort: rollout is Degraded (abort is valid when Progressing or Paused)"}},
      {"retry",
       [&](route_state& s, const route_config& r) { return retry(s, r, t); },
       {"cannot retry: rollout is Healthy (retry is valid when Degraded after an abort)",
        "cannot retry: rollout is Progressing (retry is valid when Degraded after an abort)",
        "cannot retry: rollout is Paused by step (retry is valid when Degraded after an abort)",
        "cannot retry: rollout is Paused by user (retry is valid when Degraded after an abort)",
        ""}},
      {"pause",
       [&](route_state& s, const route_config& r) { return pause(s, r, t); },
       {"cannot pause: rollout is Healthy (pause is valid when Progressing or Paused by step, "
        "analysis or webhook)",
        "", "",
        "cannot pause: rollout is Paused by user (pause is valid when Progressing or Paused by "
        "step, analysis or webhook)",
        "cannot pause: rollout is Degraded (pause is valid when Progressing or Paused by "
        "step, analysis or webhook)"}},
      {"resume",
       [&](route_state& s, const route_config& r) { return resume(s, r, t); },
       {"cannot resume: rollout is Healthy (resume is valid when Paused by user or analysis)",
        "cannot resume: rollout is Progressing (resume is valid when Paused by user or analysis)",
        "cannot resume: rollout is Paused by step (resume is valid when Paused by user or "
        "analysis; promote ends a step's pause)",
        "",
        "cannot resume: rollout is Degraded (resume is valid when Paused by user or analysis)"}},
      {"set weight",
       [&](route_state& s, const route_config& r) { return set_weight(s, r, 33, t); },
       {"cannot set weight: rollout is Healthy (set weight is valid when Progressing or Paused)",
        "", "", "",
        "cannot set weight: rollout is Degraded (set weight is valid when Progressing or "
        "Paused)"}},
  };
  const at phases[] = {at::healthy, at::progressing, at::paused_by_step, at::paused_by_user,
                       at::degraded};
  for (const auto& c : cases) {
    ASSERT_EQ(c.expected.size(), std::size(phases)) << c.name;
    for (std::size_t i = 0; i < std::size(phases); ++i) {
      SCOPED_TRACE(std::string(c.name) + " in case " + std::to_string(i));
      route_state s = state_at(phases[i], route);
      const route_state before = s;
      const op_result r = c.run(s, route);
      if (c.expected[i].empty()) {
        EXPECT_TRUE(r.ok) << r.error;
        EXPECT_EQ(r.error, "");
        EXPECT_GT(s.events.size(), before.events.size());  // each valid call changes something
        EXPECT_EQ(s.updated_at, t);
      } else {
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error, c.expected[i]);
        expect_same_fields(s, before);
      }
    }
  }
}

}  // namespace
}  // namespace canary::rollout
