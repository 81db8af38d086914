// Unit tests of the access log (proxy/log/access_log.cpp): one JSON line per record with every
// field, JSON escaping (quotes, controls, invalid UTF-8), RFC 3339 UTC times with milliseconds,
// the text format, buffering until flush() or the size threshold, reopen() after a rotation,
// and the disabled / unopenable cases. Files live in a fresh temporary directory.
#include "log/access_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace canary::log {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "canary-access-log-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  config::access_log_config cfg(std::string format = "json") const {
    config::access_log_config c;
    c.enabled = true;
    c.path = (dir_ / "access.log").string();
    c.format = std::move(format);
    return c;
  }
  std::string read(const fs::path& p) const {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::vector<std::string> lines(const fs::path& p) const {
    std::vector<std::string> out;
    std::istringstream in(read(p));
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
  fs::path log_path() const { return dir_ / "access.log"; }

  fs::path dir_;
};

// 2024-02-29T23:59:58.007Z
const auto t_leap = std::chrono::sys_days(std::chrono::year(2024) / 2 / 29) + 23h + 59min + 58s +
                    7ms;

access_record sample() {
  access_record r;
  r.time = t_leap;
  r.client_ip = "127.0.0.1";
  r.method = "GET";
  r.target = "/color?x=1";
  r.version = 11;
  r.route = "canary-demo";
  r.variant = "canary";
  r.reason = "weight";
  r.upstream = "green";
  r.endpoint = "127.0.0.1:9002";
  r.status = 200;
  r.bytes_received = 0;
  r.bytes_sent = 152;
  r.upstream_us = 1234;
  r.total_us = 1500;
  return r;
}

TEST_F(AccessLogTest, OneJsonLinePerRequestWithEveryField) {
  {
    access_log log(cfg());
    ASSERT_TRUE(log.enabled());
    log.write(sample());
  }  // the destructor flushes
  auto ls = lines(log_path());
  ASSERT_EQ(ls.size(), 1u);
  auto v = boost::json::parse(ls[0]).as_object();
  EXPECT_EQ(v.at("time").as_string(), "2024-02-29T23:59:58.007Z");
  EXPECT_EQ(v.at("client").as_string(), "127.0.0.1");
  EXPECT_EQ(v.at("method").as_string(), "GET");
  EXPECT_EQ(v.at("path").as_string(), "/color?x=1");
  EXPECT_EQ(v.at("protocol").as_string(), "HTTP/1.1");
  EXPECT_EQ(v.at("status").as_int64(), 200);
  EXPECT_EQ(v.at("route").as_string(), "canary-demo");
  EXPECT_EQ(v.at("variant").as_string(), "canary");
  EXPECT_EQ(v.at("reason").as_string(), "weight");
  EXPECT_EQ(v.at("upstream").as_string(), "green");
  EXPECT_EQ(v.at("endpoint").as_string(), "127.0.0.1:9002");
  EXPECT_EQ(v.at("local").as_bool(), false);
  EXPECT_EQ(v.at("bytes_received").as_int64(), 0);
  EXPECT_EQ(v.at("bytes_sent").as_int64(), 152);
  EXPECT_DOUBLE_EQ(v.at("upstream_ms").to_number<double>(), 1.234);
  EXPECT_DOUBLE_EQ(v.at("duration_ms").to_number<double>(), 1.5);
}

TEST_F(AccessLogTest, LocalRepliesHaveNullRoutingFields) {
  {
    access_log log(cfg());
    access_record r;
    r.time = t_leap;
    r.client_ip = "::1";
    r.method = "GET";
    r.target = "/nowhere";
    r.version = 10;
    r.status = 404;
    r.local = true;
    r.bytes_sent = 90;
    r.total_us = 12;
    log.write(r);
  }
  auto v = boost::json::parse(lines(log_path()).at(0)).as_object();
  EXPECT_TRUE(v.at("route").is_null());
  EXPECT_TRUE(v.at("variant").is_null());
  EXPECT_TRUE(v.at("upstream").is_null());
  EXPECT_TRUE(v.at("endpoint").is_null());
  EXPECT_TRUE(v.at("upstream_ms").is_null());
  EXPECT_EQ(v.at("local").as_bool(), true);
  EXPECT_EQ(v.at("protocol").as_string(), "HTTP/1.0");
  EXPECT_DOUBLE_EQ(v.at("duration_ms").to_number<double>(), 0.012);
}

TEST_F(AccessLogTest, StringsAreJsonEscaped) {
  const std::string nasty = std::string("/a\"b\\c\td\x01\x7f") + "caf\xc3\xa9" + "\xff\xc3" + "x";
  {
    access_log log(cfg());
    auto r = sample();
    r.target = nasty;
    r.method = "GE\nT";
    log.write(r);
  }
  auto ls = lines(log_path());
  ASSERT_EQ(ls.size(), 1u) << "a control character broke the line";
  boost::system::error_code ec;
  auto v = boost::json::parse(ls[0], ec);
  ASSERT_FALSE(ec) << ls[0];
  // Valid UTF-8 passes through; the stray bytes 0xff and 0xc3 become U+00FF and U+00C3.
  EXPECT_EQ(v.at("path").as_string(),
            "/a\"b\\c\td\x01\x7f" "caf\xc3\xa9" "\xc3\xbf\xc3\x83x");
  EXPECT_EQ(v.at("method").as_string(), "GE\nT");
  EXPECT_THAT(ls[0], HasSubstr("\\u0001"));
}

TEST_F(AccessLogTest, TextFormatIsOneCombinedLikeLine) {
  {
    access_log log(cfg("text"));
    auto r = sample();
    r.target = "/q\"uote";
    log.write(r);
  }
  auto ls = lines(log_path());
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0],
            "127.0.0.1 - - [2024-02-29T23:59:58.007Z] \"GET /q\\x22uote HTTP/1.1\" 200 152 "
            "route=canary-demo variant=canary reason=weight upstream=green "
            "endpoint=127.0.0.1:9002 local=0 bytes_received=0 upstream_ms=1.234 "
            "duration_ms=1.500");
}

TEST_F(AccessLogTest, BuffersUntilFlushOrTheSizeThreshold) {
  access_log log(cfg());
  log.write(sample());
  EXPECT_EQ(read(log_path()), "") << "a small write went to the file at once";
  log.flush();
  EXPECT_EQ(lines(log_path()).size(), 1u);

  // Every line is as long as the first one. Lines stay in the buffer while it holds less than
  // flush_bytes; the write that takes it to flush_bytes writes them all, without flush().
  const std::size_t line = read(log_path()).size();
  ASSERT_GT(line, 0u);
  std::size_t written = 1, buffered = 0;
  while (buffered + line < access_log::flush_bytes) {
    log.write(sample());
    ++written;
    buffered += line;
    ASSERT_EQ(read(log_path()).size(), line)
        << "written with " << buffered << " bytes buffered, below flush_bytes";
  }
  log.write(sample());  // the buffer reaches flush_bytes
  ++written;
  EXPECT_EQ(read(log_path()).size(), line * written)
      << "the buffer reached flush_bytes and nothing was written";
  log.flush();
  auto ls = lines(log_path());
  EXPECT_EQ(ls.size(), written);
  for (const auto& l : ls) EXPECT_NO_THROW(boost::json::parse(l)) << l;
}

TEST_F(AccessLogTest, ReopenFollowsARotation) {
  access_log log(cfg());
  log.write(sample());
  log.flush();
  fs::rename(log_path(), dir_ / "access.log.1");
  log.write(sample());  // buffered: reopen() flushes it into the old (renamed) file first
  log.reopen();
  log.write(sample());
  log.flush();
  EXPECT_EQ(lines(dir_ / "access.log.1").size(), 2u);
  EXPECT_EQ(lines(log_path()).size(), 1u);
}

TEST_F(AccessLogTest, AppendsToAnExistingFile) {
  {
    std::ofstream(log_path()) << "earlier line\n";
    access_log log(cfg());
    log.write(sample());
  }
  auto ls = lines(log_path());
  ASSERT_EQ(ls.size(), 2u);
  EXPECT_EQ(ls[0], "earlier line");
}

TEST_F(AccessLogTest, DisabledWritesNothing) {
  auto c = cfg();
  c.enabled = false;
  {
    access_log log(c);
    EXPECT_FALSE(log.enabled());
    log.write(sample());
    log.flush();
    log.reopen();
  }
  EXPECT_FALSE(fs::exists(log_path()));
}

TEST_F(AccessLogTest, AnUnopenablePathThrowsNamingIt) {
  auto c = cfg();
  c.path = (dir_ / "missing-dir" / "access.log").string();
  try {
    access_log log(c);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(c.path));
  }
}

}  // namespace
}  // namespace canary::log
