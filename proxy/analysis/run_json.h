// JSON views of an analysis run (boost::json): the status block of GET /api/v1/rollouts/{name},
// the measurement list of GET .../analysis, and the state file's round trip. Pure functions of
// their arguments, any thread holding the data; the control API and rollout/state_file.cpp call
// them on the control thread.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>

#include "analysis/run.h"
#include "config/analysis_config.h"

namespace canary::analysis {

// {run, phase, metrics: [{name, kind, min, max, phase, successful, failed, inconclusive, errors,
//  last: {time, phase, value, stable_value, canary_requests, stable_requests, message} | null}]}
// min/max in the metric's unit: fractions, milliseconds, the ratio bound 1 + max_increase for
// sequential metrics (max; min is pass_margin's bound 1 + pass_margin when set, else null).
// run == nullptr (no run yet): run and phase null, every configured metric Pending.
boost::json::object status_json(const run_state* run, const config::analysis_config& cfg);

boost::json::object measurement_json(const measurement& m);
// {run, measurements: [oldest first]}
boost::json::object history_json(const run_state& run);

// The state file's form (times as RFC 3339 strings, the sequential tests' sufficient
// statistics, not the strata). from_json returns nullopt and sets `error` naming the problem.
boost::json::object to_json(const run_state& run);
std::optional<run_state> run_state_from_json(const boost::json::value& v, std::string& error);

}  // namespace canary::analysis
