// Unit tests of setMirror in the rollout state machine (proxy/rollout/state.cpp) and the state
// file: the step completes at once and records the mirror; mirroring ends at percent 0, the next
// setWeight, abort, completion and rollback; retry starts clean. Time is injected.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rollout/state.h"
#include "rollout/state_file.h"

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;
using config::route_config;
using config::step_config;

const wall_time t0 = wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 9h;

step_config weight(int w) {
  step_config s;
  s.what = step_config::kind::set_weight;
  s.weight = w;
  return s;
}

step_config pause() {
  step_config s;
  s.what = step_config::kind::pause;
  return s;
}

step_config mirror(int percent, std::vector<std::string> methods = {"GET", "HEAD"}) {
  step_config s;
  s.what = step_config::kind::set_mirror;
  s.mirror.percent = percent;
  s.mirror.methods = std::move(methods);
  s.mirror.max_body_bytes = 1024;
  return s;
}

route_config route(std::vector<step_config> steps) {
  route_config r;
  r.name = "web";
  r.upstream = "blue";
  r.steps = std::move(steps);
  return r;
}

// 0 setMirror 20, 1 pause, 2 setWeight 10, 3 pause.
route_config mirror_then_weight() { return route({mirror(20), pause(), weight(10), pause()}); }

route_state started(const route_config& r) {
  route_state s = initial_state(r, t0);
  set_desired(s, r, "green", cause::config, t0);
  return s;
}

TEST(rollout_mirror, set_mirror_completes_at_once_and_records_the_mirror) {
  const auto r = mirror_then_weight();
  const route_state s = started(r);
  EXPECT_EQ(s.phase, phase::paused);
  EXPECT_EQ(s.step, 1u);
  EXPECT_EQ(s.weight, 0);
  ASSERT_TRUE(s.mirror);
  EXPECT_EQ(s.mirror->percent, 20);
  EXPECT_EQ(s.mirror->methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(s.mirror->max_body_bytes, 1024u);
  ASSERT_GE(s.events.size(), 2u);
  EXPECT_EQ(s.events[s.events.size() - 2].message, "Rollout step 1/4 completed (setMirror: 20)");
}

TEST(rollout_mirror, the_next_set_weight_ends_it) {
  const auto r = mirror_then_weight();
  route_state s = started(r);
  ASSERT_TRUE(promote(s, r, t0 + 1s).ok);
  EXPECT_EQ(s.weight, 10);
  EXPECT_FALSE(s.mirror);
}

TEST(rollout_mirror, percent_zero_ends_it) {
  const auto r = route({mirror(50), pause(), mirror(0), pause()});
  route_state s = started(r);
  ASSERT_TRUE(s.mirror);
  ASSERT_TRUE(promote(s, r, t0 + 1s).ok);
  EXPECT_EQ(s.step, 3u);
  EXPECT_FALSE(s.mirror);
}

TEST(rollout_mirror, a_later_set_mirror_replaces_it) {
  const auto r = route({mirror(50), pause(), mirror(10, {"GET"}), pause()});
  route_state s = started(r);
  ASSERT_TRUE(promote(s, r, t0 + 1s).ok);
  ASSERT_TRUE(s.mirror);
  EXPECT_EQ(s.mirror->percent, 10);
  EXPECT_EQ(s.mirror->methods, (std::vector<std::string>{"GET"}));
}

TEST(rollout_mirror, abort_ends_it_and_retry_starts_clean) {
  const auto r = mirror_then_weight();
  route_state s = started(r);
  ASSERT_TRUE(abort(s, r, t0 + 1s).ok);
  EXPECT_FALSE(s.mirror);
  ASSERT_TRUE(retry(s, r, t0 + 2s).ok);
  // The steps run again from the first, which mirrors again.
  ASSERT_TRUE(s.mirror);
  EXPECT_EQ(s.step, 1u);

  // Retry on steps that start with a weight: no mirror survives from before.
  const auto w = route({weight(5), pause()});
  route_state t = started(w);
  t.mirror = mirror_state{30, {"GET"}, 10};  // as a state file of another step list may hold
  ASSERT_TRUE(abort(t, w, t0 + 1s).ok);
  ASSERT_TRUE(retry(t, w, t0 + 2s).ok);
  EXPECT_FALSE(t.mirror);
}

TEST(rollout_mirror, completion_ends_it) {
  const auto r = route({mirror(20)});
  route_state s = started(r);
  EXPECT_EQ(s.phase, phase::healthy);
  EXPECT_EQ(s.stable, "green");
  EXPECT_FALSE(s.mirror);

  const auto p = mirror_then_weight();
  route_state u = started(p);
  ASSERT_TRUE(promote_full(u, p, t0 + 1s).ok);
  EXPECT_FALSE(u.mirror);
}

TEST(rollout_mirror, rollback_and_a_new_canary_end_it) {
  const auto r = mirror_then_weight();
  route_state s = started(r);
  set_desired(s, r, "blue", cause::api, t0 + 1s);  // back to stable
  EXPECT_FALSE(s.mirror);

  route_state t = started(r);
  t.mirror = mirror_state{70, {"GET"}, 10};
  set_desired(t, route({weight(5), pause()}), "red", cause::api, t0 + 1s);
  EXPECT_FALSE(t.mirror);
}

TEST(rollout_mirror, the_state_file_keeps_it) {
  const auto r = mirror_then_weight();
  state_map states{{"web", started(r)}};
  const std::string text = serialize_state(states);
  EXPECT_NE(text.find("\"mirror\": {\"percent\":20,\"methods\":[\"GET\",\"HEAD\"],"
                      "\"max_body_bytes\":1024}"),
            std::string::npos)
      << text;
  const parsed_state back = parse_state(text);
  ASSERT_TRUE(back.ok) << back.error;
  ASSERT_TRUE(back.states.at("web").mirror);
  EXPECT_EQ(*back.states.at("web").mirror, *states.at("web").mirror);

  // Not mirroring: no key, and a file without it loads with none.
  states.at("web").mirror.reset();
  const std::string plain = serialize_state(states);
  EXPECT_EQ(plain.find("mirror"), std::string::npos);
  EXPECT_FALSE(parse_state(plain).states.at("web").mirror);

  // A wrong type names the route and field.
  std::string bad = text;
  bad.replace(bad.find("\"percent\":20"), 12, "\"percent\":\"x\"");
  const parsed_state refused = parse_state(bad);
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("mirror"), std::string::npos) << refused.error;
}

}  // namespace
}  // namespace canary::rollout
