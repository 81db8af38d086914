// The rollout state file: JSON, one object per route, written atomically (temp file, fsync,
// rename, fsync of the directory) on every change and read once at start; file_state_store is
// the engine's state_store over it. Control thread only; the store lives as long as the engine.
#pragma once

#include <array>
#include <string>

#include "rollout/state.h"
#include "rollout/state_store.h"

namespace canary::rollout {

// The newest version this build reads (it reads 1 too). Version 1 readers ignore fields they do
// not know, so optional fields (a route's "weight_total") were added without a new version;
// version 2 adds a route's "analysis" run (and the analysis/webhook pauses and causes) and is
// written only when one is in use.
inline constexpr int state_format_version = 2;

// {"version": 1|2, "routes": {"name": {...route_state..., "events": [...], "analysis": {...}}}}
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

// Descriptors held open on /dev/null so that a state write still gets its descriptors when
// client sockets have used up RLIMIT_NOFILE: released just before a retried open(), taken back
// after the write.
class fd_reserve {
 public:
  fd_reserve();
  ~fd_reserve();
  fd_reserve(const fd_reserve&) = delete;
  fd_reserve& operator=(const fd_reserve&) = delete;

  // Closes every held descriptor; false when none was held.
  bool release();
  // Reopens the missing ones (best effort: another thread may have taken the numbers).
  void refill();
  int held() const;

 private:
  std::array<int, 2> fds_{-1, -1};
};

// Writes atomically: a temp file beside the target, fsync, rename over the target, fsync of the
// directory. A symlink at `path` is followed (at each write) and the file it points to replaced,
// so the link stays. An open() failing with EMFILE/ENFILE is retried once with `reserve`'s
// descriptors released. Returns "" on success, else the error naming the file and errno text.
std::string write_state_file(const std::string& path, const std::string& contents,
                             fd_reserve* reserve = nullptr);

class file_state_store final : public state_store {
 public:
  explicit file_state_store(std::string path) : path_(std::move(path)) {}

  loaded_state load() override;
  std::string save(const state_map& states) override;
  std::string describe() const override { return "state file " + path_; }

 private:
  std::string path_;
  fd_reserve reserve_;
};

}  // namespace canary::rollout
