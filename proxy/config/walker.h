// Walking the YAML tree: every value with its key path and position, and typed readers that
// record an error (FILE:LINE:COL: key.path: message) instead of throwing, so one pass reports
// all of them. Internal to the loader (config/*.cpp); the only header that includes yaml-cpp.
// One walker per load, on the loading thread; it lives as long as that load.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <functional>
#include <map>
#include <vector>

#include "config/config.h"
#include "config/load.h"

namespace canary::config {

source_pos to_pos(const YAML::Mark& m);
std::string child_path(std::string_view parent, std::string_view key);
std::string index_path(std::string_view parent, std::size_t i);

// A value in the document, with what an error about it should point at.
struct item {
  YAML::Node node;
  std::string path;
  YAML::Mark mark;
};

struct entry {
  std::string key;
  YAML::Mark key_mark;
  item value;
};

// The keys of one mapping, each once: duplicates and unknown keys were reported and dropped.
// Looked up through an index: the `upstreams` mapping may hold thousands of keys.
class mapping_view {
 public:
  explicit mapping_view(item self) : self_(std::move(self)) {}
  // False (and nothing added) when the key is already there.
  bool add(entry e);
  const item* get(std::string_view key) const;
  const std::vector<entry>& entries() const { return entries_; }
  const item& self() const { return self_; }

 private:
  item self_;
  std::vector<entry> entries_;
  std::map<std::string, std::size_t, std::less<>> index_;  // key -> position in entries_
};

class walker {
 public:
  walker(const std::string& file, std::vector<config_error>& errors)
      : file_(file), errors_(errors) {}

  void error(const YAML::Mark& mark, std::string path, std::string message);
  void error(const item& at, std::string message) { error(at.mark, at.path, std::move(message)); }
  void error(source_pos p, std::string path, std::string message);

  // Accepts a mapping with string keys; any key when `allowed` is empty (names), else only those.
  std::optional<mapping_view> mapping(const item& at,
                                      std::initializer_list<std::string_view> allowed);
  // Reports every required key missing from `m`, at the mapping itself.
  void require(const mapping_view& m, std::initializer_list<std::string_view> keys);
  std::optional<std::vector<item>> sequence(const item& at);
  std::optional<std::string> string(const item& at);
  std::optional<std::int64_t> integer(const item& at, std::int64_t min, std::int64_t max);
  std::optional<std::uint64_t> unsigned_integer(const item& at, std::uint64_t min,
                                                std::uint64_t max);
  std::optional<bool> boolean(const item& at);
  // A duration (util/duration.h): a string like "1m30s" or an integer number of seconds.
  std::optional<duration> duration_value(const item& at, bool allow_zero);

 private:
  std::optional<std::string> integer_text(const item& at);

  const std::string& file_;
  std::vector<config_error>& errors_;
};

}  // namespace canary::config
