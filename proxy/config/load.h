// YAML -> proxy_config, with every validation error at once. Safe to call from any thread, also
// from several at once: a load keeps no state outside its own call (no globals, no statics
// with state). Host names are resolved here, once per load, within timeouts.resolve.
#pragma once

#include <cstdint>
#include <functional>
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

// What resolving one host name gave.
struct resolved_name {
  std::string address;  // numeric, IPv6 without brackets; empty on failure
  std::string error;    // why not, e.g. "Name or service not known"
};

// Resolves one host name (never a numeric address). Runs on a thread of its own and may still
// be running after load_*() has returned: a name not resolved within timeouts.resolve is given
// up on, and its thread is left to finish (getaddrinfo cannot be cancelled). So it must own
// whatever it uses: capture by value or by shared_ptr, never a reference to a caller's local.
using resolve_function = std::function<resolved_name(const std::string& host)>;

// getaddrinfo, IPv4 preferred (demo backends and most sidecars listen on 127.0.0.1 even where
// "localhost" also maps to ::1).
resolved_name system_resolve(const std::string& host);

struct load_options {
  resolve_function resolve = system_resolve;  // empty = system_resolve
};

// A config file larger than this is refused before it is read (a config of 20 000 routes is
// about 2 MiB); so is anything but a regular file (/dev/zero, a FIFO, a directory).
inline constexpr std::uint64_t max_config_file_bytes = 64ull * 1024 * 1024;

// Reads and validates `path`. Relative paths inside (state_file, token_file, access_log.path)
// are resolved against the file's directory.
load_result load_file(const std::string& path, const load_options& options = {});
// The same from text; `file` names it in errors and its directory resolves relative paths.
load_result load_string(std::string_view yaml, const std::string& file,
                        const load_options& options = {});

}  // namespace canary::config
