// Walking the YAML tree with key paths and positions; see walker.h.
#include "config/walker.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "config/syntax.h"
#include "util/duration.h"

namespace canary::config {

namespace {

// Where to point for a key's value: an empty value has no position of its own (yaml-cpp marks
// wherever the next token starts, often the next line), so point at its key instead.
YAML::Mark value_mark(const YAML::Node& k, const YAML::Node& v) {
  if (v.IsNull() && (v.Mark().is_null() || v.Mark().line != k.Mark().line)) return k.Mark();
  return v.Mark();
}

// A bound that is only the type's limit is not worth naming: "must be at least 1" reads better
// than "must be between 1 and 18446744073709551615".
std::string range_message(bool below, const std::string& min, const std::string& max,
                          bool bounded) {
  if (bounded) return "must be between " + min + " and " + max;
  return below ? "must be at least " + min : "must be at most " + max;
}

}  // namespace

source_pos to_pos(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string child_path(std::string_view parent, std::string_view key) {
  return parent.empty() ? std::string(key) : std::string(parent) + "." + std::string(key);
}

std::string index_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

// ---- mapping_view

bool mapping_view::add(entry e) {
  if (!index_.emplace(e.key, entries_.size()).second) return false;
  entries_.push_back(std::move(e));
  return true;
}

const item* mapping_view::get(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].value;
}

// ---- walker

void walker::error(const YAML::Mark& mark, std::string path, std::string message) {
  source_pos p = to_pos(mark);
  errors_.push_back({file_, p.line, p.col, std::move(path), std::move(message)});
}

void walker::error(source_pos p, std::string path, std::string message) {
  errors_.push_back({file_, p.line, p.col, std::move(path), std::move(message)});
}

std::optional<mapping_view> walker::mapping(const item& at,
                                            std::initializer_list<std::string_view> allowed) {
  if (!at.node.IsMap()) {
    error(at, "expected a mapping");
    return std::nullopt;
  }
  mapping_view view(at);
  // By value: yaml-cpp's iterator hands out a temporary pair, so references would dangle.
  for (const auto& kv : at.node) {
    const YAML::Node k = kv.first;
    const YAML::Node v = kv.second;
    if (!k.IsScalar()) {
      error(k.Mark(), at.path, "expected a string key");
      continue;
    }
    const std::string& key = k.Scalar();
    std::string path = child_path(at.path, key);
    if (allowed.size() != 0 && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      error(k.Mark(), path,
            "unknown key " + quote(key) + " (expected one of: " + join(allowed, ", ") + ")");
      continue;
    }
    // yaml-cpp keeps both entries of a repeated key; lookups would silently take the first.
    if (view.get(key) != nullptr) {
      error(k.Mark(), path, "duplicate key " + quote(key));
      continue;
    }
    view.add({key, k.Mark(), item{v, path, value_mark(k, v)}});
  }
  return view;
}

void walker::require(const mapping_view& m, std::initializer_list<std::string_view> keys) {
  for (std::string_view k : keys)
    if (m.get(k) == nullptr) error(m.self(), "missing required key " + quote(k));
}

std::optional<std::vector<item>> walker::sequence(const item& at) {
  if (!at.node.IsSequence()) {
    error(at, "expected a list");
    return std::nullopt;
  }
  std::vector<item> out;
  out.reserve(at.node.size());
  std::size_t i = 0;
  for (const auto& n : at.node) {
    YAML::Mark m = n.Mark().is_null() ? at.mark : n.Mark();
    out.push_back(item{n, index_path(at.path, i++), m});
  }
  return out;
}

std::optional<std::string> walker::string(const item& at) {
  if (!at.node.IsScalar()) {
    error(at, "expected a string");
    return std::nullopt;
  }
  return at.node.Scalar();
}

std::optional<std::int64_t> walker::integer(const item& at, std::int64_t min, std::int64_t max) {
  auto text = integer_text(at);
  if (!text) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size()) {
    error(at, quote(*text) + " is out of range");
    return std::nullopt;
  }
  if (v < min || v > max) {
    error(at, range_message(v < min, std::to_string(min), std::to_string(max),
                            max < std::numeric_limits<int>::max()));
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint64_t> walker::unsigned_integer(const item& at, std::uint64_t min,
                                                      std::uint64_t max) {
  auto text = integer_text(at);
  if (!text) return std::nullopt;
  if (text->front() == '-') {
    error(at, "must be at least " + std::to_string(min));
    return std::nullopt;
  }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size()) {
    error(at, quote(*text) + " is out of range");
    return std::nullopt;
  }
  if (v < min || v > max) {
    error(at, range_message(v < min, std::to_string(min), std::to_string(max),
                            max < static_cast<std::uint64_t>(std::numeric_limits<int>::max())));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> walker::boolean(const item& at) {
  // YAML 1.2 core schema only: yaml-cpp would also take yes/no/on/off, which YAML 1.2 (and
  // most other tools reading the same file) treat as strings.
  if (at.node.IsScalar() && at.node.Tag() != "!") {
    const std::string& s = at.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  error(at, "expected true or false");
  return std::nullopt;
}

std::optional<duration> walker::duration_value(const item& at, bool allow_zero) {
  if (!at.node.IsScalar()) {
    error(at, "expected a duration (" + std::string(util::duration_forms) + ")");
    return std::nullopt;
  }
  const std::string& s = at.node.Scalar();
  auto d = util::parse_duration(s);
  if (!d) {
    error(at, "bad duration " + quote(s) + " (" + std::string(util::duration_forms) + ")");
    return std::nullopt;
  }
  if (!allow_zero && d->count() == 0) {
    error(at, "must be greater than 0");
    return std::nullopt;
  }
  return d;
}

// The text of a plain scalar written as a decimal integer; quoted "5" is a string, not 5.
std::optional<std::string> walker::integer_text(const item& at) {
  if (at.node.IsScalar() && at.node.Tag() != "!") {
    const std::string& s = at.node.Scalar();
    std::string_view digits(s);
    if (!digits.empty() && digits.front() == '-') digits.remove_prefix(1);
    if (!digits.empty() &&
        std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return s;
  }
  error(at, "expected an integer");
  return std::nullopt;
}

}  // namespace canary::config
