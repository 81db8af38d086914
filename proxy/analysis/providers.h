// Prometheus and web metric providers as pure functions: a metric's config and the run's template
// variables make an http_request (sent by http_client), and the http_response makes a
// provider_result (value / empty = Inconclusive / error = Error). Also the two checks the config
// loader runs on templates and json paths. Pure: any thread.
// Interface note: expand_template gained an optional escape mode (values substituted into a URL
// are percent-encoded there).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "analysis/http_client.h"
#include "analysis/provider.h"
#include "config/analysis_config.h"

namespace canary::analysis {

struct template_vars {
  std::string route, stable, canary;
  std::chrono::milliseconds interval{0};
};

enum class template_escape {
  none,  // values as they are (a PromQL query, encoded as a whole afterwards)
  url,   // values percent-encoded (RFC 3986 §2.1) as they land in a URL
};

// Replaces {{route}} {{stable}} {{canary}} {{interval}} (whole seconds, rounded up, at least 1, so
// that "[{{interval}}s]" stays a valid range); spaces inside the braces are allowed. Unknown names
// stay as written (the loader refuses them first).
std::string expand_template(std::string_view text, const template_vars& vars,
                            template_escape escape = template_escape::none);

// The first {{name}} that is not one of the four variables, for the loader's error message.
std::optional<std::string> unknown_template_variable(std::string_view text);

// RFC 3986 percent-encoding of everything but unreserved characters (§2.3).
std::string url_encode(std::string_view text);

// GET <address>/api/v1/query?query=<urlencoded expanded query> (Prometheus HTTP API, instant query).
http_request prometheus_request(const config::metric_config& metric, const template_vars& vars);

// status "success" with resultType scalar or a one-element vector -> value; an empty vector, NaN or
// an infinity -> empty; more elements, status "error", another resultType, non-2xx, bad JSON,
// timeout, connection failure -> error with a message naming it.
provider_result prometheus_result(const http_response& response);

// GET of the metric's URL (templated, values percent-encoded) with its headers.
http_request web_request(const config::metric_config& metric, const template_vars& vars);

// The 2xx body's value at `json_path` ("" = the whole body is the number): a JSON number or a
// numeric string -> value; missing, null, NaN -> empty; anything else -> error.
provider_result web_result(const http_response& response, std::string_view json_path);

// The json_path subset: "$" followed by .key, ['key'] / ["key"] and [index] segments. nullopt when
// valid (or ""), else what is wrong and where.
std::optional<std::string> json_path_error(std::string_view path);

}  // namespace canary::analysis
