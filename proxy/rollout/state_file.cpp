// The rollout state file (see docs/rollouts.md#persistence): route_state <-> JSON with Boost.JSON,
// and the atomic write (temp file, fsync, rename, fsync of the directory) that makes a crash leave
// either the old or the new file, never a torn one. Control thread only. Parsing is strict and
// names the exact problem, because the caller refuses to start on a bad file rather than guess.
#include "rollout/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <system_error>

#include "analysis/run_json.h"
#include "util/rfc3339.h"

namespace canary::rollout {

namespace json = boost::json;

namespace {

// ---- timestamps: RFC 3339, UTC, milliseconds ("2026-11-26T13:02:16.123Z") ----

std::string format_time(wall_time t) { return util::format_rfc3339(t); }

// ---- writing ----

json::value time_or_null(const std::optional<wall_time>& t) {
  return t ? json::value(format_time(*t)) : json::value(nullptr);
}

json::object to_json(const event& e) {
  json::object o;
  o["time"] = format_time(e.time);
  o["from"] = to_string(e.from);
  o["to"] = to_string(e.to);
  o["step"] = std::uint64_t(e.step);
  o["weight"] = e.weight;
  o["cause"] = to_string(e.cause);
  o["message"] = e.message;
  return o;
}

json::object to_json(const route_state& s) {
  json::object o;
  o["stable"] = s.stable;
  o["canary"] = s.canary.empty() ? json::value(nullptr) : json::value(s.canary);
  o["step"] = std::uint64_t(s.step);
  o["weight"] = s.weight;
  if (s.weight_total > 0) o["weight_total"] = s.weight_total;
  o["phase"] = to_string(s.phase);
  o["message"] = s.message;
  o["paused_by"] =
      s.paused_by == paused_by::none ? json::value(nullptr) : json::value(to_string(s.paused_by));
  o["pause_deadline"] = time_or_null(s.pause_deadline);
  o["pause_remaining_ms"] = s.pause_remaining
                                ? json::value(std::int64_t(s.pause_remaining->count()))
                                : json::value(nullptr);
  o["aborted"] = s.aborted;
  o["seen_upstream"] = s.seen_upstream;
  o["updated_at"] = format_time(s.updated_at);
  json::array events;
  events.reserve(s.events.size());
  for (const auto& e : s.events) events.push_back(to_json(e));
  o["events"] = std::move(events);
  o["previous_stable"] =
      s.previous_stable.empty() ? json::value(nullptr) : json::value(s.previous_stable);
  if (s.analysis.run || s.analysis.runs > 0) {
    json::object a;
    a["active"] = s.analysis.active;
    a["canary"] = s.analysis.canary;
    a["runs"] = s.analysis.runs;
    a["run"] = s.analysis.run ? json::value(analysis::to_json(*s.analysis.run)) : nullptr;
    o["analysis"] = std::move(a);
  }
  // Only while a gate holds the canary: an older reader ignores the key.
  if (s.gate != rollout_gate::none) o["gate"] = to_string(s.gate);
  // Only while mirroring: an older reader ignores the key, and files stay as they were otherwise.
  if (s.mirror) {
    json::object m;
    m["percent"] = s.mirror->percent;
    json::array methods;
    for (const auto& name : s.mirror->methods) methods.emplace_back(name);
    m["methods"] = std::move(methods);
    m["max_body_bytes"] = s.mirror->max_body_bytes;
    o["mirror"] = std::move(m);
  }
  return o;
}

// Version 2 only when something a version 1 reader refuses is in use (an analysis run, the
// analysis/webhook pause and causes), so an older binary can still read what this one wrote.
int version_needed(const state_map& states) {
  for (const auto& [name, s] : states) {
    if (s.analysis.run || s.analysis.runs > 0) return 2;
    if (s.paused_by == paused_by::analysis || s.paused_by == paused_by::webhook) return 2;
    for (const auto& e : s.events)
      if (e.cause == cause::analysis || e.cause == cause::webhook) return 2;
  }
  return 1;
}

// Indented down to the route objects, then one event per line: readable by an operator who opens
// the file, and diff-friendly, without one line per event field.
void pretty(std::string& out, const json::value& v, int depth) {
  const std::string pad(std::size_t(depth) * 2, ' ');
  if (v.is_object() && depth < 3 && !v.get_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& kv : v.get_object()) {
      if (!first) out += ",\n";
      first = false;
      out += pad + "  " + json::serialize(json::string(kv.key())) + ": ";
      pretty(out, kv.value(), depth + 1);
    }
    out += "\n" + pad + "}";
  } else if (v.is_array() && !v.get_array().empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& item : v.get_array()) {
      if (!first) out += ",\n";
      first = false;
      out += pad + "  ";
      pretty(out, item, depth + 1);
    }
    out += "\n" + pad + "]";
  } else {
    out += json::serialize(v);
  }
}

// ---- reading ----

// Thrown inside the parser only; parse_state turns it into parsed_state::error.
struct bad_state : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Field access for one JSON object; `where` prefixes every error (e.g. `route "web": `).
class fields {
 public:
  fields(const json::object& o, std::string where) : object_(o), where_(std::move(where)) {}

  const json::value& get(std::string_view key) const {
    const auto* v = object_.if_contains(key);
    if (v == nullptr) throw bad_state(where_ + "missing field " + in_quotes(key));
    return *v;
  }

  const json::value* find(std::string_view key) const { return object_.if_contains(key); }

  [[noreturn]] void fail(std::string_view key, std::string_view what) const {
    throw bad_state(where_ + "field " + in_quotes(key) + " " + std::string(what));
  }

  std::string string(std::string_view key) const {
    const auto& v = get(key);
    if (!v.is_string()) fail(key, "must be a string");
    return std::string(v.get_string());
  }

  std::optional<std::string> string_or_null(std::string_view key) const {
    const auto& v = get(key);
    if (v.is_null()) return std::nullopt;
    if (!v.is_string()) fail(key, "must be a string or null");
    return std::string(v.get_string());
  }

  // Any JSON integer in [0, max]; 3.0 is refused so that a hand edit cannot slip a fraction in.
  std::uint64_t unsigned_int(std::string_view key, std::uint64_t max, const json::value& v) const {
    if (v.is_uint64() && v.get_uint64() <= max) return v.get_uint64();
    if (v.is_int64() && v.get_int64() >= 0 && std::uint64_t(v.get_int64()) <= max)
      return std::uint64_t(v.get_int64());
    fail(key, "must be a non-negative integer");
  }
  std::uint64_t unsigned_int(std::string_view key, std::uint64_t max) const {
    return unsigned_int(key, max, get(key));
  }

  bool boolean(std::string_view key) const {
    const auto& v = get(key);
    if (!v.is_bool()) fail(key, "must be true or false");
    return v.get_bool();
  }

  wall_time time(std::string_view key) const {
    const auto& v = get(key);
    if (!v.is_string()) fail(key, "must be an RFC 3339 timestamp string");
    const auto t = util::parse_rfc3339(v.get_string());
    if (!t) fail(key, "is not an RFC 3339 timestamp: " + in_quotes(v.get_string()));
    return *t;
  }

  std::optional<wall_time> time_or_null(std::string_view key) const {
    if (get(key).is_null()) return std::nullopt;
    return time(key);
  }

  enum phase phase(std::string_view key) const {
    const auto text = string(key);
    const auto p = phase_from_string(text);
    if (!p) fail(key, "must be Healthy, Progressing, Paused or Degraded, not " + in_quotes(text));
    return *p;
  }

 private:
  const json::object& object_;
  std::string where_;
};

const json::object& as_object(const json::value& v, const std::string& what) {
  if (!v.is_object()) throw bad_state(what + " must be a JSON object");
  return v.get_object();
}

event event_from_json(const json::value& v, const std::string& where) {
  const fields f(as_object(v, where), where + ": ");
  event e;
  e.time = f.time("time");
  e.from = f.phase("from");
  e.to = f.phase("to");
  e.step = f.unsigned_int("step", std::numeric_limits<std::size_t>::max());
  e.weight = int(f.unsigned_int("weight", std::numeric_limits<int>::max()));
  const auto c = f.string("cause");
  const auto parsed = cause_from_string(c);
  if (!parsed)
    f.fail("cause",
           "must be step, api, config, timer, analysis or webhook, not " + in_quotes(c));
  e.cause = *parsed;
  e.message = f.string("message");
  return e;
}

route_state route_from_json(const json::value& v, const std::string& name) {
  const std::string where = "route " + in_quotes(name);
  const fields f(as_object(v, where), where + ": ");
  route_state s;
  s.stable = f.string("stable");
  s.canary = f.string_or_null("canary").value_or("");
  s.step = f.unsigned_int("step", std::numeric_limits<std::size_t>::max());
  s.weight = int(f.unsigned_int("weight", std::numeric_limits<int>::max()));
  // Optional: a file from a build that did not write it leaves 0 (unknown).
  if (const auto* wt = f.find("weight_total"))
    s.weight_total = int(f.unsigned_int("weight_total", std::numeric_limits<int>::max(), *wt));
  s.phase = f.phase("phase");
  s.message = f.string("message");
  if (const auto by = f.string_or_null("paused_by")) {
    const auto p = paused_by_from_string(*by);
    if (!p || *p == paused_by::none)
      f.fail("paused_by", "must be \"step\", \"user\", \"analysis\", \"webhook\" or null, not " +
                              in_quotes(*by));
    s.paused_by = *p;
  }
  s.pause_deadline = f.time_or_null("pause_deadline");
  if (const auto& rem = f.get("pause_remaining_ms"); !rem.is_null())
    s.pause_remaining = std::chrono::milliseconds(
        f.unsigned_int("pause_remaining_ms", std::numeric_limits<std::int64_t>::max(), rem));
  s.aborted = f.boolean("aborted");
  s.seen_upstream = f.string("seen_upstream");
  s.updated_at = f.time("updated_at");
  const auto& events = f.get("events");
  if (!events.is_array()) f.fail("events", "must be an array");
  std::size_t i = 0;
  for (const auto& e : events.get_array())
    s.events.push_back(event_from_json(e, where + ": event " + std::to_string(i++)));
  // A file edited by hand may hold more; the newest are the ones worth keeping.
  while (s.events.size() > max_events) s.events.pop_front();
  // Optional: a file from a build without undo has none.
  if (f.find("previous_stable"))
    s.previous_stable = f.string_or_null("previous_stable").value_or("");
  if (const auto* a = f.find("analysis")) {
    const std::string in = where + ": analysis";
    const fields af(as_object(*a, in), in + ": ");
    s.analysis.active = af.boolean("active");
    s.analysis.canary = af.string("canary");
    s.analysis.runs = af.unsigned_int("runs", std::numeric_limits<std::int64_t>::max());
    if (const auto& run = af.get("run"); !run.is_null()) {
      std::string error;
      s.analysis.run = analysis::run_state_from_json(run, error);
      if (!s.analysis.run) af.fail("run", error);
    }
  }
  if (const auto* g = f.find("gate"); g != nullptr && !g->is_null()) {
    const auto parsed = g->is_string() ? gate_from_string(std::string(g->get_string()))
                                       : std::optional<rollout_gate>();
    if (!parsed || *parsed == rollout_gate::none)
      f.fail("gate", "must be \"confirm-rollout\", \"pre-rollout\" or null");
    s.gate = *parsed;
  }
  if (const auto* m = f.find("mirror"); m != nullptr && !m->is_null()) {
    const std::string in = where + ": mirror";
    const fields mf(as_object(*m, in), in + ": ");
    mirror_state ms;
    ms.percent = int(mf.unsigned_int("percent", 100));
    ms.max_body_bytes = mf.unsigned_int("max_body_bytes", std::numeric_limits<std::int64_t>::max());
    const auto& methods = mf.get("methods");
    if (!methods.is_array()) mf.fail("methods", "must be an array of strings");
    for (const auto& name : methods.get_array()) {
      if (!name.is_string()) mf.fail("methods", "must be an array of strings");
      ms.methods.emplace_back(name.get_string());
    }
    if (ms.percent > 0) s.mirror = std::move(ms);
  }
  return s;
}

// "line L, column C" (1-based) of byte `offset`, for an error a person can find in an editor.
std::string position(const std::string& text, std::size_t offset) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

std::string errno_text(int err) { return std::system_category().message(err); }

// Writes all of `data`, retrying short writes and EINTR; returns 0 or the errno.
int write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += std::size_t(n);
  }
  return 0;
}

}  // namespace

std::string serialize_state(const state_map& states) {
  json::object routes;
  for (const auto& [name, s] : states) routes[name] = to_json(s);
  json::object root;
  root["version"] = version_needed(states);
  root["routes"] = std::move(routes);
  std::string out;
  pretty(out, root, 0);
  out += '\n';
  return out;
}

parsed_state parse_state(const std::string& text) {
  parsed_state result;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
    result.error = "empty file";
    return result;
  }
  try {
    json::stream_parser parser;
    boost::system::error_code ec;
    // write() stops at the first bad byte and says how far it got (all of it when it succeeds:
    // then finish() can fail only on a truncated document, whose problem is at the end).
    const std::size_t where = parser.write(text.data(), text.size(), ec);
    if (!ec) parser.finish(ec);
    if (ec) {
      result.error = "invalid JSON: " + ec.message() + " at " + position(text, where);
      return result;
    }
    const json::value root = parser.release();
    if (!root.is_object()) throw bad_state("the file must hold a JSON object");
    const auto& top = root.get_object();
    const auto* version = top.if_contains("version");
    if (version == nullptr) throw bad_state("missing \"version\"");
    if (!version->is_int64() && !version->is_uint64())
      throw bad_state("\"version\" must be an integer");
    if (!version->is_int64() || version->get_int64() < 1 ||
        version->get_int64() > state_format_version)
      throw bad_state("unknown format version " + json::serialize(*version) +
                      " (this build reads " + std::to_string(state_format_version) + ")");
    const auto* routes = top.if_contains("routes");
    if (routes == nullptr) throw bad_state("missing \"routes\"");
    for (const auto& kv : as_object(*routes, "\"routes\"")) {
      std::string name(kv.key());
      result.states.emplace(name, route_from_json(kv.value(), name));
    }
    result.ok = true;
  } catch (const bad_state& e) {
    result.error = e.what();
    result.states.clear();
  } catch (const std::exception& e) {
    // Boost.JSON throws only on allocation failure here; still never let it escape.
    result.error = std::string("cannot parse state: ") + e.what();
    result.states.clear();
  }
  return result;
}

read_result read_state_file(const std::string& path) {
  read_result result;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return result;  // a first start
    result.exists = true;
    result.state.error = "cannot read: " + errno_text(errno);
    return result;
  }
  result.exists = true;
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      result.state.error = "cannot read: " + errno_text(errno);
      ::close(fd);
      return result;
    }
    if (n == 0) break;
    text.append(buf, std::size_t(n));
  }
  ::close(fd);
  result.state = parse_state(text);
  return result;
}

fd_reserve::fd_reserve() { refill(); }

fd_reserve::~fd_reserve() { release(); }

bool fd_reserve::release() {
  bool any = false;
  for (auto& fd : fds_) {
    if (fd < 0) continue;
    ::close(fd);
    fd = -1;
    any = true;
  }
  return any;
}

void fd_reserve::refill() {
  for (auto& fd : fds_)
    if (fd < 0) fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

int fd_reserve::held() const {
  int n = 0;
  for (int fd : fds_) n += fd >= 0 ? 1 : 0;
  return n;
}

namespace {

// open(2), retried once with the reserve released when the process is out of descriptors.
int open_reserved(const char* file, int flags, mode_t mode, fd_reserve* reserve) {
  int fd = ::open(file, flags, mode);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE) && reserve && reserve->release())
    fd = ::open(file, flags, mode);
  return fd;
}

// The file a write to `path` must replace: `path` itself, or where its symlink chain ends (a
// relative link target counts from the link's directory). Renaming over the link itself would
// turn it into a plain file and leave the file it pointed to stale. Returns "" on success.
std::string resolve_links(const std::string& path, std::string& target) {
  namespace fs = std::filesystem;
  fs::path p = path;
  for (int hops = 0;; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;  // missing: created
    if (hops == 40) return "resolve " + path + ": " + errno_text(ELOOP);
    std::error_code ec;
    const fs::path next = fs::read_symlink(p, ec);
    if (ec) return "read link " + p.string() + ": " + ec.message();
    p = next.is_absolute() ? next : p.parent_path() / next;
  }
  target = p.lexically_normal().string();
  return "";
}

}  // namespace

std::string write_state_file(const std::string& path, const std::string& contents,
                             fd_reserve* reserve) {
  std::string target;
  auto failed = [&](std::string_view step, const std::string& file, int err) {
    return "cannot write state file " + path + ": " + std::string(step) + " " + file + ": " +
           errno_text(err);
  };
  if (auto err = resolve_links(path, target); !err.empty())
    return "cannot write state file " + path + ": " + err;
  // Descriptors released for this write are taken back whatever its outcome.
  struct refill_at_exit {
    fd_reserve* r;
    ~refill_at_exit() {
      if (r) r->refill();
    }
  } refill{reserve};
  const std::string tmp = target + ".tmp";
  const int fd = open_reserved(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, reserve);
  if (fd < 0) return failed("open", tmp, errno);
  int err = write_all(fd, contents);
  const char* step = "write";
  // fsync before rename: otherwise a crash may leave the new name pointing at empty data.
  if (err == 0 && ::fsync(fd) != 0) err = errno, step = "fsync";
  if (::close(fd) != 0 && err == 0) err = errno, step = "close";
  if (err != 0) {
    ::unlink(tmp.c_str());
    return failed(step, tmp, err);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    err = errno;
    ::unlink(tmp.c_str());
    return failed("rename", tmp, err);
  }
  // The rename is durable only once the directory entry is on disk.
  std::string dir = std::filesystem::path(target).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = open_reserved(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, reserve);
  if (dfd < 0) return failed("open directory", dir, errno);
  // Some file systems cannot fsync a directory (EINVAL); the rename is then as durable as it gets.
  if (::fsync(dfd) != 0 && errno != EINVAL) {
    err = errno;
    ::close(dfd);
    return failed("fsync directory", dir, err);
  }
  ::close(dfd);
  return "";
}

loaded_state file_state_store::load() {
  auto read = read_state_file(path_);
  loaded_state out;
  out.exists = read.exists;
  if (!read.exists) return out;
  if (!read.state.ok) {
    out.error = read.state.error;
    return out;
  }
  out.states = std::move(read.state.states);
  return out;
}

std::string file_state_store::save(const state_map& states) {
  return write_state_file(path_, serialize_state(states), &reserve_);
}

}  // namespace canary::rollout
