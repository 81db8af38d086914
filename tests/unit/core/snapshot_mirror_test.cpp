// Unit tests of the mirror part of core::build_snapshot: a route view carries the rollout's
// mirror (share, methods, body limit) and the canary upstream only while the canary is active.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "config/load.h"
#include "core/snapshot_builder.h"

namespace canary::core {
namespace {

struct fixture {
  fixture() {
    auto r = config::load_string(
        "upstreams:\n"
        "  blue: {endpoints: [\"127.0.0.1:9001\"]}\n"
        "  green: {endpoints: [\"127.0.0.1:9002\"]}\n"
        "routes:\n"
        "  - {name: web, upstream: blue, steps: [{setMirror: {percent: 30}}, {pause: {}}]}\n",
        "test.yaml");
    EXPECT_TRUE(r.config);
    cfg = std::make_shared<const config::proxy_config>(std::move(*r.config));
    compiled = compile_config(cfg, endpoints, series);
  }

  std::shared_ptr<const snapshot> build(const rollout::route_state& s) {
    return build_snapshot(compiled, {{"web", s}}, series, 1);
  }

  std::shared_ptr<const config::proxy_config> cfg;
  upstream::endpoint_registry endpoints;
  metrics::series_registry series;
  std::shared_ptr<const compiled_config> compiled;
};

rollout::route_state mirroring() {
  rollout::route_state s;
  s.stable = "blue";
  s.canary = "green";
  s.mirror = rollout::mirror_state{30, {"GET", "HEAD"}, 4096};
  return s;
}

TEST(snapshot_mirror, an_active_canary_carries_the_mirror) {
  fixture f;
  const auto snap = f.build(mirroring());
  const auto& v = snap->routes.at(0);
  EXPECT_EQ(v.mirror_percent, 30);
  EXPECT_EQ(v.mirror_methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(v.mirror_max_body, 4096u);
  EXPECT_EQ(snap->upstreams.at(static_cast<std::size_t>(v.canary)).name, "green");
}

TEST(snapshot_mirror, no_mirror_without_an_active_canary_or_a_mirror) {
  fixture f;
  auto aborted = mirroring();
  aborted.aborted = true;
  EXPECT_EQ(f.build(aborted)->routes.at(0).mirror_percent, 0);
  auto none = mirroring();
  none.mirror.reset();
  EXPECT_EQ(f.build(none)->routes.at(0).mirror_percent, 0);
}

}  // namespace
}  // namespace canary::core
