// The control API's request rules (see docs/control-api.md), without sockets: authentication first,
// then the Origin rule, then content type, paths and methods.
#include "admin/api.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "config/load.h"

namespace canary::admin {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  void make(const std::string& admin_listen, const std::string& token) {
    dir_ = std::filesystem::temp_directory_path() /
           ("canary-api-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    const std::string yaml = "admin: {listen: \"" + admin_listen + "\"" +
                             (token.empty() ? "" : ", token_file: t") + "}\n" +
                             "state_file: s.json\n"
                             "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, "
                             "green: {endpoints: [\"127.0.0.1:9\"]}}\n"
                             "routes: [{name: r, upstream: blue, steps: [{setWeight: 20}, "
                             "{pause: {}}]}]\n";
    auto loaded = config::load_string(yaml, (dir_ / "c.yaml").string());
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    engine_ = std::make_unique<rollout::engine>(
        std::make_shared<const config::proxy_config>(*loaded.config),
        [] { return rollout::wall_clock::now(); }, nullptr);
    api_options o;
    o.token = token;
    o.listen_host = loaded.config->admin.listen.host;
    o.listen_port = 9901;
    o.draining = [] { return false; };
    o.metrics = [] { return std::string("m\n"); };
    o.dashboard = [] { return std::string("<html>"); };
    o.stats = [] { return std::string("{}"); };
    api_ = std::make_unique<api>(*engine_, o);
  }
  void TearDown() override {
    api_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  response call(std::string_view method, std::string_view target, request extra = {}) {
    extra.method = method;
    extra.target = target;
    return api_->handle(extra);
  }

  std::filesystem::path dir_;
  std::unique_ptr<rollout::engine> engine_;
  std::unique_ptr<api> api_;
};

TEST_F(ApiTest, TokenIsCheckedBeforeEverythingElse) {
  make("127.0.0.1:9901", "s3cret");
  request r;
  r.origin = "http://evil.example";
  EXPECT_EQ(call("POST", "/api/v1/rollouts/r/promote", r).status, 401);
  r.authorization = "Bearer wrong";
  EXPECT_EQ(call("POST", "/api/v1/rollouts/r/promote", r).status, 401);
  r.authorization = "Bearer s3cret";
  EXPECT_EQ(call("POST", "/api/v1/rollouts/r/promote", r).status, 403);  // then the Origin
  r.origin.reset();
  EXPECT_EQ(call("POST", "/api/v1/rollouts/r/promote", r).status, 409);  // Healthy
  EXPECT_EQ(call("GET", "/api/v1/rollouts/r").status, 200);              // reads need no token
}

TEST_F(ApiTest, LoopbackListenerAcceptsOnlyItsLoopbackOrigins) {
  make("127.0.0.1:9901", "");
  for (const char* ok : {"http://127.0.0.1:9901", "http://localhost:9901", "http://[::1]:9901"}) {
    request r;
    r.origin = ok;
    EXPECT_EQ(call("PUT", "/api/v1/rollouts/r/upstream",
                   [&] {
                     r.has_body = true;
                     r.content_type = "application/json";
                     r.body = R"({"upstream": "blue"})";
                     return r;
                   }())
                  .status,
              200)
        << ok;
  }
  for (const char* bad : {"null", "http://127.0.0.1:9902", "http://evil.example:9901",
                          "https://127.0.0.1:9901"}) {
    request r;
    r.origin = bad;
    r.host = "evil.example:9901";  // a rebound name must not help on loopback
    EXPECT_EQ(call("POST", "/api/v1/rollouts/r/abort", r).status, 403) << bad;
  }
}

TEST_F(ApiTest, NonLoopbackListenerAcceptsTheOriginOfTheHostItWasReachedBy) {
  make("0.0.0.0:9901", "tok");
  request r;
  r.authorization = "Bearer tok";
  r.origin = "http://proxy.internal:9901";
  r.host = "proxy.internal:9901";
  EXPECT_EQ(call("POST", "/api/v1/rollouts/r/abort", r).status, 409);  // past the Origin rule
  r.host = "other.internal:9901";
  EXPECT_EQ(call("POST", "/api/v1/rollouts/r/abort", r).status, 403);
}

TEST_F(ApiTest, BodiesMustBeJson) {
  make("127.0.0.1:9901", "");
  request r;
  r.has_body = true;
  r.body = R"({"weight": 5})";
  EXPECT_EQ(call("PUT", "/api/v1/rollouts/r/weight", r).status, 415);
  r.content_type = "application/json; charset=utf-8";
  EXPECT_EQ(call("PUT", "/api/v1/rollouts/r/weight", r).status, 409);  // Healthy: no rollout
  r.body = "{not json";
  EXPECT_EQ(call("PUT", "/api/v1/rollouts/r/weight", r).status, 400);
}

TEST_F(ApiTest, PathsAndMethods) {
  make("127.0.0.1:9901", "");
  EXPECT_EQ(call("GET", "/api/v1/rollouts/nope").status, 404);
  EXPECT_EQ(call("GET", "/api/v1/nothing/here").status, 404);
  auto r = call("GET", "/api/v1/rollouts/r/promote");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "POST");
  EXPECT_EQ(call("DELETE", "/api/v1/rollouts").status, 405);
  EXPECT_EQ(call("GET", "/healthz").body, "ok\n");
  EXPECT_TRUE(call("GET", "/api/v1/watch").watch.has_value());
  EXPECT_EQ(*call("GET", "/api/v1/rollouts/r/watch").watch, "r");
}

TEST_F(ApiTest, ReloadIsHandedToTheCallerAfterTheChecks) {
  make("127.0.0.1:9901", "s3cret");
  EXPECT_EQ(call("POST", "/api/v1/config/reload").status, 401);
  request r;
  r.authorization = "Bearer s3cret";
  auto res = call("POST", "/api/v1/config/reload", r);
  EXPECT_TRUE(res.reload);
  EXPECT_EQ(call("GET", "/api/v1/config/reload").status, 405);
  auto refused = api_->reload_response({422, "config c.yaml has errors", {"c.yaml:1:1: x: y"}});
  EXPECT_EQ(refused.status, 422);
  EXPECT_EQ(refused.body,
            "{\"error\":\"config c.yaml has errors\",\"errors\":[\"c.yaml:1:1: x: y\"]}\n");
  auto ok = api_->reload_response({});
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("\"result\":\"ok\""), std::string::npos);
}

TEST_F(ApiTest, BearerSchemeIsCaseInsensitive) {
  make("127.0.0.1:9901", "s3cret");
  for (const char* ok : {"bearer s3cret", "BEARER s3cret", "Bearer  s3cret"}) {
    request r;
    r.authorization = ok;
    EXPECT_EQ(call("POST", "/api/v1/rollouts/r/promote", r).status, 409) << ok;  // Healthy
  }
  for (const char* bad : {"bearer", "bearer ", "bearers3cret", "Basic s3cret", "bearer s3cre"}) {
    request r;
    r.authorization = bad;
    EXPECT_EQ(call("POST", "/api/v1/rollouts/r/promote", r).status, 401) << bad;
  }
}

TEST_F(ApiTest, WeightAboveInt64IsReportedAsGiven) {
  make("127.0.0.1:9901", "");
  request r;
  r.has_body = true;
  r.content_type = "application/json";
  r.body = R"({"upstream": "green"})";
  ASSERT_EQ(call("PUT", "/api/v1/rollouts/r/upstream", r).status, 200);
  r.body = R"({"weight": 18446744073709551615})";
  auto res = call("PUT", "/api/v1/rollouts/r/weight", r);
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find("weight 18446744073709551615 is outside 0..100"), std::string::npos)
      << res.body;
  r.body = R"({"weight": -1})";
  EXPECT_NE(call("PUT", "/api/v1/rollouts/r/weight", r).body.find("weight -1 is outside"),
            std::string::npos);
}

TEST_F(ApiTest, DuplicateKeysAreRefused) {
  make("127.0.0.1:9901", "");
  request r;
  r.has_body = true;
  r.content_type = "application/json";
  r.body = R"({"upstream": "green", "upstream": "blue"})";
  auto res = call("PUT", "/api/v1/rollouts/r/upstream", r);
  EXPECT_EQ(res.status, 400);
  EXPECT_NE(res.body.find(R"(duplicate key \"upstream\")"), std::string::npos) << res.body;
  EXPECT_EQ(engine_->status("r")->state->phase, rollout::phase::healthy);
}

TEST(DuplicateJsonKey, FindsTheFirstDuplicateAtAnyDepth) {
  EXPECT_EQ(duplicate_json_key(R"({"a": 1, "b": 2})"), std::nullopt);
  EXPECT_EQ(duplicate_json_key(R"({"a": 1, "a": 2})"), "a");
  EXPECT_EQ(duplicate_json_key(R"({"a": {"x": 1}, "b": {"x": 2}})"), std::nullopt);
  EXPECT_EQ(duplicate_json_key(R"({"a": [{"x": 1, "y": 1, "x": 2}]})"), "x");
  EXPECT_EQ(duplicate_json_key(R"({"ab": 1, "a\u0062": 2})"), "ab");  // after unescaping
}

TEST(ValidUtf8, ReplacesEachBadByte) {
  EXPECT_EQ(valid_utf8("plain /path"), "plain /path");
  EXPECT_EQ(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(valid_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(valid_utf8("\xC3"), "\xEF\xBF\xBD");                      // truncated
  EXPECT_EQ(valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");      // overlong
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80").size(), 12u);        // above U+10FFFF
}

TEST_F(ApiTest, NotFoundEchoesValidUtf8) {
  make("127.0.0.1:9901", "");
  auto res = call("GET", "/api/v1/\xFF\xFE");
  EXPECT_EQ(res.status, 404);
  EXPECT_EQ(valid_utf8(res.body), res.body);
  EXPECT_NE(res.body.find("/api/v1/\xEF\xBF\xBD\xEF\xBF\xBD"), std::string::npos);
}

TEST(ConstantTimeEquals, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "abcd"));
  EXPECT_FALSE(constant_time_equals("", "a"));
}

}  // namespace
}  // namespace canary::admin
