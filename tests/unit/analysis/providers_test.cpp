// Prometheus and web providers as pure functions: requests built from metric configs, answers
// (as the Prometheus HTTP API and web endpoints give them) turned into provider results.
#include "analysis/providers.h"

#include <gtest/gtest.h>

namespace canary::analysis {
namespace {

using st = enum provider_result::status;

http_response ok(std::string body, int code = 200) {
  http_response r;
  r.result = http_response::outcome::ok;
  r.status = code;
  r.body = std::move(body);
  return r;
}

template_vars vars() {
  return {"checkout", "v1", "v2 beta", std::chrono::milliseconds(10000)};
}

TEST(Templates, ExpandsTheFourVariables) {
  EXPECT_EQ(expand_template("{{route}}/{{stable}}/{{canary}}/[{{interval}}s]", vars()),
            "checkout/v1/v2 beta/[10s]");
  EXPECT_EQ(expand_template("{{ canary }}", vars()), "v2 beta");
  EXPECT_EQ(expand_template("v={{canary}}", vars(), template_escape::url), "v=v2%20beta");
  EXPECT_EQ(expand_template("no {{ closing", vars()), "no {{ closing");
}

TEST(Templates, IntervalIsWholeSecondsRoundedUp) {
  auto v = vars();
  v.interval = std::chrono::milliseconds(1500);
  EXPECT_EQ(expand_template("{{interval}}", v), "2");
  v.interval = std::chrono::milliseconds(0);
  EXPECT_EQ(expand_template("{{interval}}", v), "1");
}

TEST(Templates, UnknownVariableIsNamed) {
  EXPECT_EQ(unknown_template_variable("{{route}} {{canary}} {{ interval }}"), std::nullopt);
  EXPECT_EQ(unknown_template_variable("rate(x{v=\"{{canray}}\"}[1m]) {{nope}}"), "canray");
  EXPECT_EQ(unknown_template_variable("{{}}"), "");
}

TEST(Prometheus, RequestIsAnInstantQueryWithTheExpandedQueryEncoded) {
  config::metric_config m;
  m.what = config::metric_config::kind::prometheus;
  m.query = R"(sum(rate(ok{version="{{canary}}"}[{{interval}}s])))";
  m.target.url = "http://127.0.0.1:9090/";
  m.target.timeout = std::chrono::seconds(3);
  m.target.ca_file = "/ca.pem";
  m.target.headers["X-Scope-OrgID"] = "team";
  const auto r = prometheus_request(m, vars());
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.url,
            "http://127.0.0.1:9090/api/v1/query?query="
            "sum%28rate%28ok%7Bversion%3D%22v2%20beta%22%7D%5B10s%5D%29%29");
  EXPECT_EQ(r.timeout, std::chrono::seconds(3));
  EXPECT_EQ(r.ca_file, "/ca.pem");
  EXPECT_EQ(r.headers.at("X-Scope-OrgID"), "team");
}

TEST(Prometheus, ScalarAndOneElementVectorGiveTheValue) {
  auto r = prometheus_result(
      ok(R"({"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"0.97"]}})"));
  EXPECT_EQ(r.status, st::value);
  EXPECT_DOUBLE_EQ(r.value, 0.97);
  r = prometheus_result(ok(
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"12.5"]}]}})"));
  EXPECT_EQ(r.status, st::value);
  EXPECT_DOUBLE_EQ(r.value, 12.5);
}

TEST(Prometheus, EmptyVectorAndNaNAreEmpty) {
  auto r = prometheus_result(
      ok(R"({"status":"success","data":{"resultType":"vector","result":[]}})"));
  EXPECT_EQ(r.status, st::empty);
  EXPECT_EQ(r.message, "no data (empty vector)");
  r = prometheus_result(ok(
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}})"));
  EXPECT_EQ(r.status, st::empty);
  EXPECT_EQ(r.message, "value is NaN");
  r = prometheus_result(
      ok(R"({"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}})"));
  EXPECT_EQ(r.status, st::empty);
}

TEST(Prometheus, TwoElementsAreAnError) {
  const auto r = prometheus_result(ok(
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1,"1"]},{"metric":{"a":"2"},"value":[1,"2"]}]}})"));
  EXPECT_EQ(r.status, st::error);
  EXPECT_NE(r.message.find("vector of 2 elements"), std::string::npos) << r.message;
}

TEST(Prometheus, StatusErrorNamesPrometheusMessage) {
  const auto r = prometheus_result(ok(
      R"({"status":"error","errorType":"bad_data","error":"parse error at char 5"})", 400));
  EXPECT_EQ(r.status, st::error);
  EXPECT_EQ(r.message, "HTTP 400: bad_data: parse error at char 5");
}

TEST(Prometheus, NonJsonNon2xxTransportAndOtherTypesAreErrors) {
  auto r = prometheus_result(ok("<html>bad gateway</html>", 502));
  EXPECT_EQ(r.status, st::error);
  EXPECT_EQ(r.message, "HTTP 502");
  r = prometheus_result(ok("not json"));
  EXPECT_EQ(r.status, st::error);
  EXPECT_NE(r.message.find("not a JSON object"), std::string::npos) << r.message;
  r = prometheus_result(
      ok(R"({"status":"success","data":{"resultType":"matrix","result":[]}})"));
  EXPECT_EQ(r.status, st::error);
  EXPECT_NE(r.message.find("resultType matrix"), std::string::npos) << r.message;
  http_response timeout;
  timeout.result = http_response::outcome::timeout;
  timeout.error = "timeout after 5s";
  r = prometheus_result(timeout);
  EXPECT_EQ(r.status, st::error);
  EXPECT_EQ(r.message, "timeout after 5s");
}

TEST(Web, RequestExpandsTheUrlWithEncodedValues) {
  config::metric_config m;
  m.what = config::metric_config::kind::web;
  m.target.url = "https://tests.internal/score?v={{canary}}&r={{route}}";
  m.target.headers["Authorization"] = "Bearer x";
  const auto r = web_request(m, vars());
  EXPECT_EQ(r.url, "https://tests.internal/score?v=v2%20beta&r=checkout");
  EXPECT_EQ(r.headers.at("Authorization"), "Bearer x");
}

TEST(Web, JsonPathPicksNumbersAndNumericStrings) {
  const auto body = ok(R"({"score":2.5,"a":{"b":[{"c":"7"},{"c":8}]},"odd key":1,"n":null,
                          "t":true,"s":"abc","nan":"NaN"})");
  auto r = web_result(body, "$.score");
  EXPECT_EQ(r.status, st::value);
  EXPECT_DOUBLE_EQ(r.value, 2.5);
  r = web_result(body, "$.a.b[0].c");
  EXPECT_EQ(r.status, st::value);
  EXPECT_DOUBLE_EQ(r.value, 7);
  r = web_result(body, "$['a'][\"b\"][1]['c']");
  EXPECT_DOUBLE_EQ(r.value, 8);
  r = web_result(body, "$['odd key']");
  EXPECT_DOUBLE_EQ(r.value, 1);
  EXPECT_EQ(web_result(body, "$.missing").status, st::empty);
  EXPECT_EQ(web_result(body, "$.a.b[5]").status, st::empty);
  EXPECT_EQ(web_result(body, "$.n").status, st::empty);
  EXPECT_EQ(web_result(body, "$.nan").status, st::empty);
  EXPECT_EQ(web_result(body, "$.t").status, st::error);
  EXPECT_EQ(web_result(body, "$.s").status, st::error);
  EXPECT_EQ(web_result(body, "$.a").status, st::error);
}

TEST(Web, WholeBodyIsTheNumberWithoutJsonPath) {
  auto r = web_result(ok(" 0.93\n"), "");
  EXPECT_EQ(r.status, st::value);
  EXPECT_DOUBLE_EQ(r.value, 0.93);
  EXPECT_EQ(web_result(ok("ok"), "").status, st::error);
}

TEST(Web, Non2xxBadJsonAndTransportAreErrors) {
  auto r = web_result(ok(R"({"score":1})", 503), "$.score");
  EXPECT_EQ(r.status, st::error);
  EXPECT_EQ(r.message, "HTTP 503");
  EXPECT_EQ(web_result(ok("{"), "$.score").status, st::error);
  http_response refused;
  refused.error = "connect: Connection refused";
  r = web_result(refused, "$.score");
  EXPECT_EQ(r.status, st::error);
  EXPECT_EQ(r.message, "connect: Connection refused");
}

TEST(JsonPath, ValidatesTheSubset) {
  EXPECT_EQ(json_path_error(""), std::nullopt);
  EXPECT_EQ(json_path_error("$"), std::nullopt);
  EXPECT_EQ(json_path_error("$.a.b[0]['c d'][\"e\"]"), std::nullopt);
  EXPECT_EQ(json_path_error("a.b"), "must start with '$'");
  EXPECT_EQ(json_path_error("$.a..b"), "expected a key after '.' at offset 3");
  EXPECT_EQ(json_path_error("$.a[x]"), "expected [index], ['key'] or [\"key\"] at offset 3");
  EXPECT_EQ(json_path_error("$['a]"), "expected '] to close the key at offset 1");
  EXPECT_EQ(json_path_error("$.a[-1]"), "expected [index], ['key'] or [\"key\"] at offset 3");
  EXPECT_EQ(json_path_error("$a"), "expected '.' or '[' at offset 1");
}

}  // namespace
}  // namespace canary::analysis
