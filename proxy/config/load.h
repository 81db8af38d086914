// YAML -> proxy_config, with every validation error at once. The only place that includes
// yaml-cpp. Control thread (or main) only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace canary::config {

struct config_error {
  std::string file;
  int line = 0;  // 1-based; 0 when the error has no position (file unreadable)
  int col = 0;
  std::string key_path;  // e.g. "routes[0].canary.weight_total"
  std::string message;
  // "FILE:LINE:COL: key.path: message"
  std::string to_string() const;
};

struct load_result {
  std::optional<proxy_config> config;  // set iff errors is empty
  std::vector<config_error> errors;
};

// Reads and validates `path`. Relative paths inside (state_file, token_file, access_log.path)
// are resolved against the file's directory.
load_result load_file(const std::string& path);
// The same from text; `file` names it in errors and its directory resolves relative paths.
load_result load_string(std::string_view yaml, const std::string& file);

// "30s", "1m30s", "1.5h", "250ms", or an integer (seconds). nullopt if malformed or negative.
std::optional<duration> parse_duration(std::string_view text);
// Renders like "30s", "1m30s", "250ms".
std::string format_duration(duration d);

}  // namespace canary::config
