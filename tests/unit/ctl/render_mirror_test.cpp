// canaryctl's rendering of shadow traffic: a setMirror step and the status' mirror share.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "ctl/canaryctl.h"

namespace canary::ctl {
namespace {

namespace json = boost::json;

json::value status(const char* mirror) {
  return json::parse(std::string(R"({
    "name": "shop", "phase": "Paused", "message": "CanaryPauseStep",
    "stable": "blue", "canary": "green", "weight": 0, "actual_weight": 0, "weight_total": 100,
    "step": 1, "steps": [{"setMirror": {"percent": 20, "methods": ["GET", "HEAD"],
                                        "max_body_bytes": 65536}}, {"pause": {}}],
    "paused_by": "step", "pause_remaining_s": null,
    "updated_at": "2026-12-06T09:00:00.000Z", "mirror": )") +
                     mirror + "}");
}

TEST(RenderMirror, StepAndShare) {
  EXPECT_EQ(render_step(json::parse(R"({"setMirror": {"percent": 5, "methods": ["GET"]}})")),
            "setMirror: 5 % of GET");
  const std::string out = render_get(status(R"({"percent": 20, "methods": ["GET", "HEAD"]})"));
  EXPECT_NE(out.find("  ActualWeight:  0\n  Mirror:        20 % of GET, HEAD\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  ✔ 1  setMirror: 20 % of GET, HEAD\n"), std::string::npos) << out;
  EXPECT_EQ(render_get(status("null")).find("\n  Mirror:"), std::string::npos);
}

}  // namespace
}  // namespace canary::ctl
