// Unit tests of the rollout state file (proxy/rollout/state_file.cpp): exact round trip of every
// field, the precise error for each kind of bad file, and the atomic write on a real temp
// directory (created per test under the system temp dir and removed afterwards).
#include "rollout/state_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace canary::rollout {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

// 2026-11-26T13:02:16.123Z
const wall_time t0 =
    wall_time(std::chrono::sys_days(std::chrono::year(2026) / 11 / 26)) + 13h + 2min + 16s + 123ms;

event make_event(wall_time time, phase from, phase to, std::size_t step, int weight, cause why,
                 std::string message) {
  event e;
  e.time = time;
  e.from = from;
  e.to = to;
  e.step = step;
  e.weight = weight;
  e.cause = why;
  e.message = std::move(message);
  return e;
}

// Every field set, the optional ones both present (here) and absent (in idle_state).
route_state busy_state() {
  route_state s;
  s.stable = "blue";
  s.canary = "green";
  s.step = 3;
  s.weight = 50;
  s.weight_total = 1000;
  s.phase = phase::paused;
  s.message = "manually paused \"quoted\" \\ and \xc3\xa9";
  s.paused_by = paused_by::user;
  s.pause_deadline = t0 + 30s;
  s.pause_remaining = 20500ms;
  s.aborted = true;
  s.seen_upstream = "green";
  s.updated_at = t0 + 10s;
  s.events = {
      make_event(t0, phase::healthy, phase::progressing, 0, 0, cause::config, "Update started"),
      make_event(t0 + 1ms, phase::progressing, phase::paused, 1, 20, cause::step, "step"),
      make_event(t0 + 2s, phase::paused, phase::progressing, 2, 20, cause::api, "promoted"),
      make_event(t0 + 3s, phase::paused, phase::degraded, 0, 0, cause::timer, ""),
  };
  return s;
}

route_state idle_state() {
  route_state s;
  s.stable = "v1";
  s.step = 2;
  s.seen_upstream = "v1";
  s.updated_at = t0 - 24h * 365 * 10;
  return s;
}

void expect_equal(const route_state& a, const route_state& b) {
  EXPECT_EQ(a.stable, b.stable);
  EXPECT_EQ(a.canary, b.canary);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.weight_total, b.weight_total);
  EXPECT_EQ(a.phase, b.phase);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.paused_by, b.paused_by);
  EXPECT_EQ(a.pause_deadline, b.pause_deadline);
  EXPECT_EQ(a.pause_remaining, b.pause_remaining);
  EXPECT_EQ(a.aborted, b.aborted);
  EXPECT_EQ(a.seen_upstream, b.seen_upstream);
  EXPECT_EQ(a.updated_at, b.updated_at);
  ASSERT_EQ(a.events.size(), b.events.size());
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    SCOPED_TRACE("event " + std::to_string(i));
    EXPECT_EQ(a.events[i].time, b.events[i].time);
    EXPECT_EQ(a.events[i].from, b.events[i].from);
    EXPECT_EQ(a.events[i].to, b.events[i].to);
    EXPECT_EQ(a.events[i].step, b.events[i].step);
    EXPECT_EQ(a.events[i].weight, b.events[i].weight);
    EXPECT_EQ(a.events[i].cause, b.events[i].cause);
    EXPECT_EQ(a.events[i].message, b.events[i].message);
  }
}

state_map sample() { return {{"web", busy_state()}, {"api", idle_state()}}; }

TEST(state_file_format, round_trip_keeps_every_field) {
  const state_map original = sample();
  const parsed_state parsed = parse_state(serialize_state(original));
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_EQ(parsed.error, "");
  ASSERT_EQ(parsed.states.size(), 2u);
  expect_equal(parsed.states.at("web"), original.at("web"));
  expect_equal(parsed.states.at("api"), original.at("api"));
}

TEST(state_file_format, writes_the_documented_fields_and_formats) {
  const json::value v = json::parse(serialize_state(sample()));
  EXPECT_EQ(v.at("version").as_int64(), 1);
  const auto& web = v.at("routes").at("web").as_object();
  EXPECT_EQ(web.at("canary").as_string(), "green");
  EXPECT_EQ(web.at("phase").as_string(), "Paused");
  EXPECT_EQ(web.at("paused_by").as_string(), "user");
  EXPECT_EQ(web.at("pause_deadline").as_string(), "2026-11-26T13:02:46.123Z");
  EXPECT_EQ(web.at("pause_remaining_ms").to_number<std::int64_t>(), 20500);
  EXPECT_EQ(web.at("updated_at").as_string(), "2026-11-26T13:02:26.123Z");
  EXPECT_TRUE(web.at("aborted").as_bool());
  const auto& e = web.at("events").as_array().at(1).as_object();
  EXPECT_EQ(e.at("time").as_string(), "2026-11-26T13:02:16.124Z");
  EXPECT_EQ(e.at("from").as_string(), "Progressing");
  EXPECT_EQ(e.at("to").as_string(), "Paused");
  EXPECT_EQ(e.at("cause").as_string(), "step");
  EXPECT_EQ(e.at("step").to_number<int>(), 1);
  EXPECT_EQ(e.at("weight").to_number<int>(), 20);

  const auto& api = v.at("routes").at("api").as_object();
  EXPECT_TRUE(api.at("canary").is_null());
  EXPECT_TRUE(api.at("paused_by").is_null());
  EXPECT_TRUE(api.at("pause_deadline").is_null());
  EXPECT_TRUE(api.at("pause_remaining_ms").is_null());
  EXPECT_EQ(api.at("updated_at").as_string(), "2016-11-28T13:02:16.123Z");
  EXPECT_TRUE(api.at("events").as_array().empty());
}

TEST(state_file_format, times_are_written_to_the_millisecond) {
  route_state s = idle_state();
  s.updated_at = t0 + 999us;
  const json::value v = json::parse(serialize_state({{"r", s}}));
  EXPECT_EQ(v.at("routes").at("r").at("updated_at").as_string(), "2026-11-26T13:02:16.123Z");
}

// A valid file as a JSON value that a test can break one field at a time.
json::object valid_file() { return json::parse(serialize_state(sample())).as_object(); }

json::object& web(json::object& file) { return file["routes"].as_object()["web"].as_object(); }

std::string error_of(const json::object& file) {
  const parsed_state p = parse_state(json::serialize(file));
  EXPECT_FALSE(p.ok);
  EXPECT_TRUE(p.states.empty());
  return p.error;
}

std::string error_of(const std::string& text) {
  const parsed_state p = parse_state(text);
  EXPECT_FALSE(p.ok);
  EXPECT_TRUE(p.states.empty());
  return p.error;
}

TEST(state_file_parse, accepts_other_rfc3339_spellings) {
  json::object file = valid_file();
  web(file)["updated_at"] = "2026-11-26T14:02:26.1234567+01:00";
  web(file)["pause_deadline"] = "2026-11-26t13:02:46z";
  const parsed_state p = parse_state(json::serialize(file));
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.states.at("web").updated_at, t0 + 10s + 123456700ns - 123ms);
  EXPECT_EQ(p.states.at("web").pause_deadline, t0 + 30s - 123ms);
}

TEST(state_file_parse, empty_text_is_an_empty_file) {
  EXPECT_EQ(error_of(std::string()), "empty file");
  EXPECT_EQ(error_of(std::string(" \n\t\n")), "empty file");
}

TEST(state_file_parse, invalid_json_names_the_position) {
  const std::string bad = error_of(std::string("{\"version\": 1,\n  \"routes\": {]}"));
  EXPECT_EQ(bad.rfind("invalid JSON: ", 0), 0u) << bad;
  EXPECT_NE(bad.find(" at line 2, column 14"), std::string::npos) << bad;

  const std::string truncated = error_of(std::string("{\"version\": 1"));
  EXPECT_EQ(truncated.rfind("invalid JSON: ", 0), 0u) << truncated;
  EXPECT_NE(truncated.find(" at line 1, column 14"), std::string::npos) << truncated;

  const std::string trailing = error_of(std::string("{\"version\": 1, \"routes\": {}} x"));
  EXPECT_EQ(trailing.rfind("invalid JSON: ", 0), 0u) << trailing;
}

TEST(state_file_parse, version_problems) {
  EXPECT_EQ(error_of(std::string("[1, 2]")), "the file must hold a JSON object");
  EXPECT_EQ(error_of(std::string("{\"routes\": {}}")), "missing \"version\"");
  EXPECT_EQ(error_of(std::string("{\"version\": \"1\", \"routes\": {}}")),
            "\"version\" must be an integer");
  EXPECT_EQ(error_of(std::string("{\"version\": 7, \"routes\": {}}")),
            "unknown format version 7 (this build reads 2)");
  EXPECT_EQ(error_of(std::string("{\"version\": 1}")), "missing \"routes\"");
  EXPECT_EQ(error_of(std::string("{\"version\": 1, \"routes\": []}")),
            "\"routes\" must be a JSON object");
  const parsed_state none = parse_state("{\"version\": 1, \"routes\": {}}");
  EXPECT_TRUE(none.ok) << none.error;
  EXPECT_TRUE(none.states.empty());
}

TEST(state_file_parse, bad_phase) {
  json::object file = valid_file();
  web(file)["phase"] = "Running";
  EXPECT_EQ(error_of(file),
            "route \"web\": field \"phase\" must be Healthy, Progressing, Paused or Degraded, not "
            "\"Running\"");
}

TEST(state_file_parse, wrong_types_name_route_and_field) {
  struct bad_field {
    const char* key;
    json::value value;
    std::string error;
  };
  const std::vector<bad_field> cases = {
      {"step", -1, "route \"web\": field \"step\" must be a non-negative integer"},
      {"step", 1.5, "route \"web\": field \"step\" must be a non-negative integer"},
      {"step", "3", "route \"web\": field \"step\" must be a non-negative integer"},
      {"weight", 4294967296LL, "route \"web\": field \"weight\" must be a non-negative integer"},
      {"canary", 5, "route \"web\": field \"canary\" must be a string or null"},
      {"stable", nullptr, "route \"web\": field \"stable\" must be a string"},
      {"aborted", "yes", "route \"web\": field \"aborted\" must be true or false"},
      {"paused_by", "nobody",
       "route \"web\": field \"paused_by\" must be \"step\", \"user\" or null, not \"nobody\""},
      {"pause_remaining_ms", -5,
       "route \"web\": field \"pause_remaining_ms\" must be a non-negative integer"},
      {"updated_at", "yesterday",
       "route \"web\": field \"updated_at\" is not an RFC 3339 timestamp: \"yesterday\""},
      {"updated_at", "2026-02-30T00:00:00Z",
       "route \"web\": field \"updated_at\" is not an RFC 3339 timestamp: "
       "\"2026-02-30T00:00:00Z\""},
      {"pause_deadline", "2026-11-26 13:02:16Z",
       "route \"web\": field \"pause_deadline\" is not an RFC 3339 timestamp: "
       "\"2026-11-26 13:02:16Z\""},
      {"updated_at", 12,
       "route \"web\": field \"updated_at\" must be an RFC 3339 timestamp string"},
      {"events", json::object(), "route \"web\": field \"events\" must be an array"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.key);
    json::object file = valid_file();
    web(file)[c.key] = c.value;
    EXPECT_EQ(error_of(file), c.error);
  }
}

TEST(state_file_parse, missing_field_and_bad_route_or_event) {
  json::object file = valid_file();
  web(file).erase("weight");
  EXPECT_EQ(error_of(file), "route \"web\": missing field \"weight\"");

  file = valid_file();
  file["routes"].as_object()["web"] = 3;
  EXPECT_EQ(error_of(file), "route \"web\" must be a JSON object");

  file = valid_file();
  web(file)["events"].as_array()[2].as_object()["cause"] = "cron";
  EXPECT_EQ(error_of(file),
            "route \"web\": event 2: field \"cause\" must be step, api, config or timer, not "
            "\"cron\"");

  file = valid_file();
  web(file)["events"].as_array()[0].as_object().erase("time");
  EXPECT_EQ(error_of(file), "route \"web\": event 0: missing field \"time\"");
}

TEST(state_file_format, weight_total_is_optional_for_files_of_older_builds) {
  json::object file = json::parse(serialize_state(sample())).as_object();
  EXPECT_EQ(web(file).at("weight_total").to_number<int>(), 1000);
  EXPECT_FALSE(file["routes"].as_object()["api"].as_object().contains("weight_total"));
  web(file).erase("weight_total");
  web(file)["a_field_of_a_newer_build"] = 1;  // version 1 readers skip what they do not know
  const parsed_state p = parse_state(json::serialize(file));
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.states.at("web").weight_total, 0);
  EXPECT_EQ(p.states.at("web").weight, 50);
}

// A route with an analysis run (and the analysis pause and cause a version 1 reader refuses)
// makes the file version 2; the run comes back with its id and counts.
TEST(state_file_format, an_analysis_run_writes_version_2_and_round_trips) {
  config::analysis_config cfg;
  config::metric_config m;
  m.name = "errors";
  m.what = config::metric_config::kind::sequential;
  m.builtin = config::metric_config::builtin::error_rate_vs_stable;
  cfg.metrics.push_back(m);
  route_state s = busy_state();
  s.paused_by = paused_by::analysis;
  s.events.back().cause = cause::analysis;
  s.analysis.run = analysis::start_run(cfg, "web-3", t0);
  s.analysis.run->metrics[0].successful = 4;
  s.analysis.run->metrics[0].consecutive_inconclusive = 2;
  s.analysis.active = true;
  s.analysis.canary = "green";
  s.analysis.runs = 3;
  const state_map original{{"web", s}, {"api", idle_state()}};
  const std::string text = serialize_state(original);
  EXPECT_EQ(json::parse(text).at("version").as_int64(), 2);
  const parsed_state parsed = parse_state(text);
  ASSERT_TRUE(parsed.ok) << parsed.error;
  const auto& back = parsed.states.at("web");
  expect_equal(back, s);
  ASSERT_TRUE(back.analysis.run);
  EXPECT_EQ(back.analysis.run->id, "web-3");
  EXPECT_EQ(back.analysis.run->metrics[0].successful, 4);
  EXPECT_EQ(back.analysis.run->metrics[0].consecutive_inconclusive, 2);
  EXPECT_TRUE(back.analysis.active);
  EXPECT_EQ(back.analysis.canary, "green");
  EXPECT_EQ(back.analysis.runs, 3u);
}

// Without analysis the file stays version 1 (an older binary can read it), and version 1 files
// of older builds load.
TEST(state_file_format, without_analysis_the_file_stays_version_1_and_version_1_loads) {
  const std::string text = serialize_state(sample());
  EXPECT_EQ(json::parse(text).at("version").as_int64(), 1);
  const parsed_state parsed = parse_state(text);
  ASSERT_TRUE(parsed.ok) << parsed.error;
  EXPECT_FALSE(parsed.states.at("web").analysis.run);
  expect_equal(parsed.states.at("web"), busy_state());
}

TEST(state_file_parse, keeps_the_newest_events_of_an_overlong_history) {
  json::object file = valid_file();
  json::array events;
  for (std::size_t i = 0; i < max_events + 5; ++i) {
    json::object e = web(file)["events"].as_array()[0].as_object();
    e["message"] = std::to_string(i);
    events.push_back(std::move(e));
  }
  web(file)["events"] = std::move(events);
  const parsed_state p = parse_state(json::serialize(file));
  ASSERT_TRUE(p.ok) << p.error;
  ASSERT_EQ(p.states.at("web").events.size(), max_events);
  EXPECT_EQ(p.states.at("web").events.front().message, "5");
}

class state_file_disk : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("canary-state-test-" + std::to_string(::getpid()) + "-" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
};

TEST_F(state_file_disk, write_then_read_round_trips_and_leaves_no_temp_file) {
  const std::string path = (dir_ / "state.json").string();
  const std::string text = serialize_state(sample());
  ASSERT_EQ(write_state_file(path, "old contents"), "");
  ASSERT_EQ(write_state_file(path, text), "");  // replaces the previous file
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(slurp(path), text);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::owner_write, fs::perms::owner_write);

  const read_result r = read_state_file(path);
  EXPECT_TRUE(r.exists);
  ASSERT_TRUE(r.state.ok) << r.state.error;
  expect_equal(r.state.states.at("web"), sample().at("web"));
  expect_equal(r.state.states.at("api"), sample().at("api"));
}

TEST_F(state_file_disk, write_into_a_missing_directory_names_the_file) {
  const std::string path = (dir_ / "no-such-dir" / "state.json").string();
  EXPECT_EQ(write_state_file(path, "{}"), "cannot write state file " + path + ": open " + path +
                                              ".tmp: No such file or directory");
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(state_file_disk, rename_failure_removes_the_temp_file) {
  // A non-empty directory at the target makes rename(2) fail after the temp file is complete.
  const fs::path target = dir_ / "state.json";
  fs::create_directories(target / "inside");
  const std::string error = write_state_file(target.string(), "{}");
  EXPECT_EQ(error.rfind("cannot write state file " + target.string() + ": rename ", 0), 0u)
      << error;
  EXPECT_FALSE(fs::exists(target.string() + ".tmp"));
}

TEST_F(state_file_disk, a_symlink_is_followed_and_stays_a_link) {
  // state.json -> link2 -> persist/st.json, both links relative to their own directory.
  fs::create_directories(dir_ / "persist");
  fs::create_symlink("persist/st.json", dir_ / "link2");
  fs::create_symlink("link2", dir_ / "state.json");
  const std::string path = (dir_ / "state.json").string();
  ASSERT_EQ(write_state_file(path, "first"), "");
  ASSERT_EQ(write_state_file(path, "second"), "");
  EXPECT_TRUE(fs::is_symlink(dir_ / "state.json"));
  EXPECT_TRUE(fs::is_symlink(dir_ / "link2"));
  EXPECT_EQ(slurp(dir_ / "persist" / "st.json"), "second");
  EXPECT_FALSE(fs::exists(dir_ / "persist" / "st.json.tmp"));
  EXPECT_FALSE(fs::exists(dir_ / "state.json.tmp"));
}

TEST_F(state_file_disk, a_symlink_loop_is_an_error_naming_the_file) {
  fs::create_symlink("b", dir_ / "a");
  fs::create_symlink("a", dir_ / "b");
  const std::string path = (dir_ / "a").string();
  EXPECT_EQ(write_state_file(path, "x"),
            "cannot write state file " + path + ": resolve " + path +
                ": Too many levels of symbolic links");
}

TEST_F(state_file_disk, the_fd_reserve_lets_a_write_succeed_when_descriptors_ran_out) {
  fd_reserve reserve;
  ASSERT_EQ(reserve.held(), 2);
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  // A low soft limit, then every descriptor under it taken, as busy sockets would.
  const auto open_now = static_cast<rlim_t>(
      std::distance(fs::directory_iterator("/proc/self/fd"), fs::directory_iterator()));
  rlimit low = saved;
  low.rlim_cur = open_now + 8;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> taken;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) taken.push_back(fd);
  const int open_errno = errno;
  const std::string path = (dir_ / "state.json").string();
  const std::string without = write_state_file(path, "without");
  const std::string with = write_state_file(path, "with", &reserve);
  const int held_after = reserve.held();
  for (int fd : taken) ::close(fd);
  ::setrlimit(RLIMIT_NOFILE, &saved);

  EXPECT_EQ(open_errno, EMFILE);
  EXPECT_EQ(without, "cannot write state file " + path + ": open " + path +
                         ".tmp: Too many open files");
  EXPECT_EQ(with, "");
  EXPECT_EQ(slurp(path), "with");
  EXPECT_EQ(held_after, 2);  // taken back after the write
}

TEST_F(state_file_disk, the_file_store_saves_and_loads_the_map) {
  file_state_store store((dir_ / "state.json").string());
  EXPECT_FALSE(store.load().exists);
  ASSERT_EQ(store.save(sample()), "");
  const loaded_state loaded = store.load();
  EXPECT_TRUE(loaded.exists);
  EXPECT_EQ(loaded.error, "");
  EXPECT_EQ(loaded.states, sample());
  EXPECT_EQ(store.describe(), "state file " + (dir_ / "state.json").string());
}

TEST_F(state_file_disk, missing_file_is_a_first_start) {
  const read_result r = read_state_file((dir_ / "absent.json").string());
  EXPECT_FALSE(r.exists);
  EXPECT_EQ(r.state.error, "");
}

TEST_F(state_file_disk, unreadable_file_is_an_error) {
  const read_result r = read_state_file(dir_.string());  // a directory: read(2) gives EISDIR
  EXPECT_TRUE(r.exists);
  EXPECT_FALSE(r.state.ok);
  EXPECT_EQ(r.state.error, "cannot read: Is a directory");
}

TEST_F(state_file_disk, corrupt_file_exists_with_its_parse_error) {
  const std::string path = (dir_ / "state.json").string();
  ASSERT_EQ(write_state_file(path, ""), "");
  const read_result r = read_state_file(path);
  EXPECT_TRUE(r.exists);
  EXPECT_FALSE(r.state.ok);
  EXPECT_EQ(r.state.error, "empty file");
}

}  // namespace
}  // namespace canary::rollout
