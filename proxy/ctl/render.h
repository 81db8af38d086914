// canaryctl's text output: the control API's JSON (a status, the rollout list, events) rendered
// like `kubectl argo rollouts`, and pretty-printed JSON for `-o json`. Pure. Tolerates missing or
// mistyped fields (printed as "-"): the server may be newer or older than the client.
// Pure functions, any thread.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>

namespace canary::ctl {

// Status icons as `kubectl argo rollouts` prints them: ✔ Healthy, ◌ Progressing, ॥ Paused,
// ✖ Degraded, ? otherwise.
std::string_view phase_icon(std::string_view phase);
// One step as text: "setWeight: 20", "pause: {}", "pause: 30s"; anything else as compact JSON.
std::string render_step(const boost::json::value& step);
// The `get NAME` block (trailing newline included) from a status object.
std::string render_get(const boost::json::value& status);
// The `list` table from the `rollouts` array.
std::string render_list(const boost::json::value& rollouts);
// The `events NAME` table from the `events` array.
std::string render_events(const boost::json::value& events);
// One line (no newline): "NAME: ॥ Paused - CanaryPauseStep (step 1/6, weight 20, actual 20,
// stable blue, canary green)".
std::string render_status_line(const boost::json::value& status);
// Pretty-printed JSON (2-space indent) with a trailing newline, for `-o json`.
std::string pretty_json(const boost::json::value& v);
// Terminal column count of UTF-8 text (one per code point: enough for the icons used here).
std::size_t display_width(std::string_view text);

// Field access shared with the commands: the member `key` of an object, or nullptr.
const boost::json::value* field(const boost::json::value& v, std::string_view key);
// Any JSON value as a table cell: strings bare, null or missing as "-".
std::string text_of(const boost::json::value* v);
std::string text_of(const boost::json::value& obj, std::string_view key);

}  // namespace canary::ctl
