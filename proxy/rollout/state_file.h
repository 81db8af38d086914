// The rollout state file: JSON, one object per route, written atomically (temp file, fsync,
// rename, fsync of the directory) on every change and read once at start. Control thread only.
#pragma once

#include <map>
#include <string>

#include "rollout/state.h"

namespace canary::rollout {

inline constexpr int state_format_version = 1;

using state_map = std::map<std::string, route_state>;  // by route name

// {"version": 1, "routes": {"name": {...route_state..., "events": [...]}}}
std::string serialize_state(const state_map& states);

struct parsed_state {
  bool ok = false;
  std::string error;  // why it cannot be used, e.g. "invalid JSON: ..." / "unknown format version 7"
  state_map states;
};
// Parses what serialize_state wrote. Empty text, invalid JSON, a missing or unknown version, or a
// field of the wrong type is an error (the caller refuses to start; never a silent fallback).
parsed_state parse_state(const std::string& text);

struct read_result {
  bool exists = false;  // false: no file (a first start)
  parsed_state state;   // meaningful when exists
};
// Reads and parses `path`. A file that exists but cannot be read is an error in state.error.
read_result read_state_file(const std::string& path);

// Writes atomically: `path`.tmp, fsync, rename over `path`, fsync the directory.
// Returns "" on success, else the error naming the file.
std::string write_state_file(const std::string& path, const std::string& contents);

}  // namespace canary::rollout
