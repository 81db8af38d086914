// The control API of docs/control-api.md as a pure request -> response function over the engine:
// auth, Origin and content-type rules, routing of paths, JSON in and out. The socket side (and the
// SSE streams) live in admin/server. Control thread only.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "rollout/engine.h"

namespace canary::admin {

struct request {
  std::string_view method;  // "GET", "POST", ...
  std::string_view target;  // "/api/v1/rollouts?x=y"
  std::optional<std::string_view> authorization;
  std::optional<std::string_view> origin;
  std::optional<std::string_view> host;  // the Host header
  std::optional<std::string_view> content_type;
  bool has_body = false;  // Content-Length > 0 or chunked
  std::string_view body;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // for 405
  // Set for a valid watch request: the route to follow ("" = all routes).
  std::optional<std::string> watch;
  // Set for a valid POST /api/v1/config/reload: the caller runs the reload (admin::reloader,
  // off the control thread) and answers with reload_response().
  bool reload = false;
};

struct api_options {
  std::string token;        // "" = no token
  std::string listen_host;  // admin listener, for the Origin rule
  std::uint16_t listen_port = 0;
  std::function<bool()> draining;
  // Non-empty while a binary upgrade hands over: why mutating calls get 503.
  std::function<std::string()> upgrading;
  std::function<std::string()> metrics;  // Prometheus text
  std::function<std::string()> dashboard;
  std::function<std::string()> stats;  // GET /api/v1/stats body (admin/stats.h)
  std::function<std::string()> cluster;  // GET /api/v1/cluster body (docs/fleet.md)
};

class api {
 public:
  api(rollout::engine& engine, api_options options);
  response handle(const request& req);

  // The answer to a reload: {"result": "ok", "file": ...}, or the error with its list (422).
  response reload_response(const rollout::api_result& result) const;

  // Status JSON of docs/control-api.md (also what watch streams send).
  std::string status_json(const rollout::route_status& s) const;
  void set_listen_port(std::uint16_t port) { options_.listen_port = port; }

 private:
  bool origin_allowed(std::string_view origin, std::optional<std::string_view> host) const;
  response rollout_call(std::string_view method, std::string_view name, std::string_view action,
                        const request& req);

  rollout::engine& engine_;
  api_options options_;
};

// The first key that appears twice in one object of a JSON text (at any depth), if any.
std::optional<std::string> duplicate_json_key(std::string_view text);

// `in` as valid UTF-8: each byte that does not start a well-formed sequence becomes U+FFFD.
std::string valid_utf8(std::string_view in);

// Constant-time equality (the token must not leak through timing).
bool constant_time_equals(std::string_view a, std::string_view b);

// JSON for one step: {"setWeight": 20} | {"pause": {}} | {"pause": {"duration": "30s"}}.
std::string step_json(const config::step_config& s);

}  // namespace canary::admin
