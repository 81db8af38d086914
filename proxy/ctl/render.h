// canaryctl's text output: the control API's JSON (a status, the rollout list, events, the
// analysis measurements) rendered like `kubectl argo rollouts`, and pretty-printed JSON for
// `-o json`. Pure. Tolerates missing or mistyped fields (printed as "-"): the server may be newer
// or older than the client.
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
// The analysis part of `get` from the status's `analysis` block: a heading with the run's phase
// and a table of metrics (phase, counts, last value against its bound); "" when the block is
// missing or null (a route without analysis, or an older server).
std::string render_analysis(const boost::json::value& analysis);
// The `analysis NAME` table from GET .../analysis (`{"route", "run", "measurements"}`). The
// status's `analysis` block (or null) tells each metric's kind and bounds, which decide the unit
// values are shown in.
std::string render_measurements(const boost::json::value& reply,
                                const boost::json::value& status_analysis);

// How a metric's values read: rates as percentages, latencies in milliseconds, provider results
// as plain numbers.
enum class value_unit { fraction, milliseconds, number };
// From a status metric (`kind`, `min`, `max`, `last`): sequential metrics compare bad-request
// rates; a threshold metric is a latency when a bound or its value exceeds 1 (a rate cannot),
// a rate otherwise; provider and webhook metrics are numbers.
value_unit unit_of_metric(const boost::json::value& metric);
// "2.1 %", "0.05 %", "312 ms", "4.5 ms", "0.93".
std::string format_value(double v, value_unit unit);
// A metric's last value against its bound: "2.1 % > 1.0x stable 0.9 %" (sequential: the canary's
// bad rate against max times the stable's), "97.2 % < min 99.0 %", "312 ms > max 250 ms",
// "99.5 % >= min 99.0 %"; "-" without a value (none yet, an Error, or no canary request).
std::string render_bound(const boost::json::value& metric);
// Analysis phase icons: ✔ Successful, ◌ Running, ✖ Failed, ⚠ Error, ? Inconclusive, • DryRun,
// ◷ Pending (a metric not measured yet).
std::string_view analysis_icon(std::string_view phase);

// The `list` table from the `rollouts` array.
std::string render_list(const boost::json::value& rollouts);
// The `events NAME` table from the `events` array.
std::string render_events(const boost::json::value& events);
// The `cluster` view from GET /api/v1/cluster (`{"replica", "leader", "store": {"type",
// "state", "revision"}, "replicas": [{"id", "incarnation", "last_seen", "config_drift"}]}`): a
// store line, then one row per replica, the leader marked with "*" and the answering replica
// with "(this)"; CONFIG DRIFT lists the routes whose file differs from the shared state ("-":
// none).
std::string render_cluster(const boost::json::value& cluster);
// One line (no newline): "NAME: ॥ Paused - CanaryPauseStep (step 1/6, weight 20, actual 20,
// stable blue, canary green)".
std::string render_status_line(const boost::json::value& status);
// Pretty-printed JSON (2-space indent) with a trailing newline, for `-o json`.
std::string pretty_json(const boost::json::value& v);
// The same for JSON text, every token (numbers included) kept as written.
std::string pretty_json(std::string_view text);
// Terminal column count of UTF-8 text (one per code point: enough for the icons used here).
std::size_t display_width(std::string_view text);

// Field access shared with the commands: the member `key` of an object, or nullptr.
const boost::json::value* field(const boost::json::value& v, std::string_view key);
// Any JSON value as a table cell: strings bare, null or missing as "-".
std::string text_of(const boost::json::value* v);
std::string text_of(const boost::json::value& obj, std::string_view key);

}  // namespace canary::ctl
