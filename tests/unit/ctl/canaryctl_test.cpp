// Unit tests for canaryctl's pure parts: argument parsing (--timeout bounds included), server
// URLs, the text rendering of status/list/events/analysis JSON, the `wait` decision and the SSE
// parser (fed in every possible split). No sockets.
#include "ctl/canaryctl.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace canary::ctl {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;

parse_result parse(std::vector<std::string> args, std::string_view env = {}) {
  return parse_args(args, env);
}

// ---------------------------------------------------------------------------------------------
// Arguments

TEST(ParseArgs, GetWithDefaults) {
  auto r = parse({"get", "canary-demo"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->command, "get");
  EXPECT_EQ(r.opts->args, std::vector<std::string>{"canary-demo"});
  EXPECT_EQ(r.opts->server, "http://127.0.0.1:9901");
  EXPECT_EQ(r.opts->output, output_format::human);
  EXPECT_FALSE(r.opts->watch);
  EXPECT_TRUE(r.opts->token_file.empty());
}

TEST(ParseArgs, OptionsBeforeAndAfterTheCommand) {
  auto r = parse({"--server", "http://h:1", "get", "x", "-o", "json", "--token-file=/t", "-w"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->server, "http://h:1");
  EXPECT_EQ(r.opts->output, output_format::json);
  EXPECT_EQ(r.opts->token_file, "/t");
  EXPECT_TRUE(r.opts->watch);
  EXPECT_EQ(r.opts->args, std::vector<std::string>{"x"});
}

TEST(ParseArgs, OutputForms) {
  for (std::vector<std::string> args : {std::vector<std::string>{"-ojson", "list"},
                                        {"--output=json", "list"},
                                        {"list", "--output", "json"}}) {
    auto r = parse(args);
    ASSERT_TRUE(r.opts) << r.error;
    EXPECT_EQ(r.opts->output, output_format::json);
  }
  EXPECT_FALSE(parse({"-o", "yaml", "list"}).opts);
  EXPECT_FALSE(parse({"list", "-o"}).opts);
}

TEST(ParseArgs, EnvironmentServerUnlessFlagGiven) {
  EXPECT_EQ(parse({"list"}, "http://env:7").opts->server, "http://env:7");
  EXPECT_EQ(parse({"--server=http://flag:8", "list"}, "http://env:7").opts->server,
            "http://flag:8");
}

TEST(ParseArgs, PromoteFull) {
  auto r = parse({"promote", "r", "--full"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_TRUE(r.opts->full);
  EXPECT_FALSE(parse({"promote", "r"}).opts->full);
  auto bad = parse({"abort", "r", "--full"});
  EXPECT_FALSE(bad.opts);
  EXPECT_EQ(bad.error, "flag --full is not valid for 'abort'");
  EXPECT_FALSE(parse({"promote", "r", "--full=yes"}).opts);
}

TEST(ParseArgs, WatchOnlyForGet) {
  EXPECT_FALSE(parse({"list", "--watch"}).opts);
  EXPECT_TRUE(parse({"get", "r", "--watch"}).opts->watch);
}

TEST(ParseArgs, SetWeight) {
  auto r = parse({"set-weight", "r", "30"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->weight, 30);
  auto neg = parse({"set-weight", "r", "-5"});
  EXPECT_FALSE(neg.opts);
  EXPECT_EQ(neg.error, "weight must be a non-negative integer, not '-5'");
  EXPECT_FALSE(parse({"set-weight", "r", "3x"}).opts);
  EXPECT_FALSE(parse({"set-weight", "r", "12345678901"}).opts);
  EXPECT_FALSE(parse({"set-weight", "r"}).opts);
}

TEST(ParseArgs, SetUpstream) {
  auto r = parse({"set-upstream", "r", "green"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->args, (std::vector<std::string>{"r", "green"}));
}

TEST(ParseArgs, Wait) {
  auto r = parse({"wait", "r", "--for=healthy"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->wait_for, wait_target::healthy);
  EXPECT_EQ(r.opts->timeout, std::chrono::minutes(10));

  r = parse({"wait", "r", "--for", "Paused", "--timeout", "90s"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->wait_for, wait_target::paused);
  EXPECT_EQ(r.opts->timeout, std::chrono::seconds(90));

  r = parse({"--timeout=1m30s", "--for=degraded", "wait", "r"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->wait_for, wait_target::degraded);
  EXPECT_EQ(r.opts->timeout, std::chrono::seconds(90));
}

TEST(ParseArgs, WaitErrors) {
  EXPECT_EQ(parse({"wait", "r"}).error, "wait needs --for=healthy|paused|degraded");
  EXPECT_EQ(parse({"wait", "r", "--for=done"}).error,
            "unknown phase 'done' for --for (want healthy, paused or degraded)");
  EXPECT_EQ(parse({"wait", "r", "--for=healthy", "--timeout", "soon"}).error,
            "bad duration 'soon' for --timeout (use 30s, 1m30s, 1.5h, 250ms or an integer number "
            "of seconds)");
  EXPECT_EQ(parse({"get", "r", "--for=healthy"}).error, "flag --for is not valid for 'get'");
}

// --timeout takes the config's duration grammar (util/duration.h) and is bounded in the unit of
// the clock `wait` adds it to, so it can never wrap the deadline into the past.
TEST(ParseArgs, WaitTimeoutGrammarAndBounds) {
  auto timeout_of = [](const std::string& text) {
    return parse({"wait", "r", "--for=healthy", "--timeout", text});
  };
  auto r = timeout_of("1.5s");
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->timeout, milliseconds(1500));
  r = timeout_of("250ms");
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->timeout, milliseconds(250));
  r = timeout_of("1.5h");
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->timeout, std::chrono::minutes(90));
  r = timeout_of("8760h");  // the bound itself
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->timeout, max_wait_timeout);

  // What the config file refuses, --timeout refuses: repeated or out-of-order units, a bare
  // fraction (it used to wait 1.5 s and then say "timed out after 1s").
  for (std::string bad : {"1h1h", "30s1m", "1.5", "-1s", "1d", "10 s", ""}) {
    r = timeout_of(bad);
    EXPECT_FALSE(r.opts) << bad;
    EXPECT_EQ(r.error, "bad duration '" + bad +
                           "' for --timeout (use 30s, 1m30s, 1.5h, 250ms or an integer number of "
                           "seconds)");
  }
  // Too long for steady_clock's nanoseconds (9e15 ms = 9e21 ns), or so close to its end that
  // now() + timeout would wrap (2562047h = 9.2e18 ns): a usage error, not an instant timeout.
  for (std::string huge : {"2562047h", "9000000000000000ms", "8760h1ms", "9223372036854775807ms",
                           "9223372036854775"}) {
    r = timeout_of(huge);
    EXPECT_FALSE(r.opts) << huge;
    EXPECT_EQ(r.error, "--timeout " + huge + " is too long (at most 8760h)");
  }
  // Past int64 milliseconds: the grammar itself refuses it.
  EXPECT_FALSE(timeout_of("9223372036854775808ms").opts);
  // Every accepted timeout fits the clock from any point of a long uptime.
  EXPECT_LT(max_wait_timeout, std::chrono::steady_clock::duration::max() / 2);
}

TEST(ParseArgs, UsageErrors) {
  EXPECT_EQ(parse({}).error, "missing command");
  EXPECT_EQ(parse({"frobnicate"}).error, "unknown command 'frobnicate'");
  EXPECT_EQ(parse({"get"}).error, "missing arguments; usage: canaryctl get NAME [--watch]");
  EXPECT_EQ(parse({"abort", "a", "b"}).error, "too many arguments; usage: canaryctl abort NAME");
  EXPECT_EQ(parse({"list", "--bogus"}).error, "unknown flag: --bogus");
  EXPECT_EQ(parse({"list", "--server"}).error, "flag --server needs a URL");
  EXPECT_EQ(parse({"get", ""}).error, "empty argument");
}

TEST(ParseArgs, Analysis) {
  auto r = parse({"analysis", "canary-demo", "-o", "json"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->command, "analysis");
  EXPECT_EQ(r.opts->args, std::vector<std::string>{"canary-demo"});
  EXPECT_EQ(r.opts->output, output_format::json);
  EXPECT_EQ(parse({"analysis"}).error, "missing arguments; usage: canaryctl analysis NAME");
  EXPECT_EQ(parse({"analysis", "a", "b"}).error,
            "too many arguments; usage: canaryctl analysis NAME");
  EXPECT_EQ(parse({"analysis", "a", "--watch"}).error, "flag --watch is not valid for 'analysis'");
  EXPECT_NE(usage().find("  analysis NAME\n"), std::string::npos);
}

TEST(ParseArgs, Cluster) {
  auto r = parse({"cluster", "-o", "json"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->command, "cluster");
  EXPECT_TRUE(r.opts->args.empty());
  EXPECT_EQ(r.opts->output, output_format::json);
  EXPECT_EQ(parse({"cluster", "x"}).error, "too many arguments; usage: canaryctl cluster");
  EXPECT_NE(usage().find("  cluster\n"), std::string::npos);
}

TEST(ParseArgs, HelpWins) {
  EXPECT_EQ(parse({"help"}).opts->command, "help");
  EXPECT_EQ(parse({"-h"}).opts->command, "help");
  EXPECT_EQ(parse({"get", "--help"}).opts->command, "help");
  EXPECT_EQ(parse({"--version"}).opts->command, "version");
  EXPECT_NE(usage().find("wait NAME --for=healthy|paused|degraded"), std::string::npos);
}

TEST(ParseArgs, DoubleDashEndsOptions) {
  auto r = parse({"get", "--", "-weird-name"});
  ASSERT_TRUE(r.opts) << r.error;
  EXPECT_EQ(r.opts->args, std::vector<std::string>{"-weird-name"});
}

TEST(ParseArgs, ServerUrlIsValidated) {
  EXPECT_NE(parse({"--server", "https://h", "list"}).error.find("https is not supported"),
            std::string::npos);
  EXPECT_NE(parse({"list"}, "ftp://h").error.find("must start with http://"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Server URLs

TEST(ServerUrl, HostPortAndPath) {
  auto r = parse_server_url("http://127.0.0.1:9901");
  ASSERT_TRUE(r.url) << r.error;
  EXPECT_EQ(r.url->host, "127.0.0.1");
  EXPECT_EQ(r.url->port, "9901");
  EXPECT_EQ(r.url->base_path, "");
  EXPECT_EQ(r.url->host_header, "127.0.0.1:9901");

  r = parse_server_url("HTTP://admin.local/canary/");
  ASSERT_TRUE(r.url) << r.error;
  EXPECT_EQ(r.url->host, "admin.local");
  EXPECT_EQ(r.url->port, "80");
  EXPECT_EQ(r.url->base_path, "/canary");
  EXPECT_EQ(r.url->host_header, "admin.local");
}

TEST(ServerUrl, Ipv6) {
  auto r = parse_server_url("http://[::1]:9901");
  ASSERT_TRUE(r.url) << r.error;
  EXPECT_EQ(r.url->host, "::1");
  EXPECT_EQ(r.url->port, "9901");
  EXPECT_EQ(r.url->host_header, "[::1]:9901");
  EXPECT_FALSE(parse_server_url("http://[::1").url);
}

TEST(ServerUrl, Errors) {
  EXPECT_FALSE(parse_server_url("https://127.0.0.1:9901").url);
  EXPECT_FALSE(parse_server_url("127.0.0.1:9901").url);
  EXPECT_FALSE(parse_server_url("http://:9901").url);
  EXPECT_FALSE(parse_server_url("http://h:0").url);
  EXPECT_FALSE(parse_server_url("http://h:65536").url);
  EXPECT_FALSE(parse_server_url("http://h:9x").url);
  EXPECT_FALSE(parse_server_url("http://user:pw@h:1").url);
}

TEST(EncodePathSegment, ReservedCharactersEscaped) {
  EXPECT_EQ(encode_path_segment("canary-demo_1.x~"), "canary-demo_1.x~");
  EXPECT_EQ(encode_path_segment("a/b c?"), "a%2Fb%20c%3F");
}

// ---------------------------------------------------------------------------------------------
// Durations

// canaryctl prints durations with the one formatter (util/duration.h), as the config writes them.
TEST(Duration, RenderedLikeTheConfig) {
  EXPECT_EQ(render_step(json::parse(R"({"pause": {"duration": 1.5}})")), "pause: 1.5s");
  EXPECT_EQ(render_step(json::parse(R"({"pause": {"duration": 600}})")), "pause: 10m");
  EXPECT_EQ(render_step(json::parse(R"({"pause": {"duration": 3605}})")), "pause: 1h5s");
}

// ---------------------------------------------------------------------------------------------
// Rendering

json::value paused_status() {
  return json::parse(R"({
    "name": "canary-demo", "phase": "Paused", "message": "CanaryPauseStep",
    "stable": "blue", "canary": "green", "weight": 20, "actual_weight": 20, "weight_total": 100,
    "step": 1,
    "steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}},
              {"setWeight": 70}, {"pause": {"duration": "30s"}}],
    "paused_by": "step", "pause_remaining_s": null, "updated_at": "2026-11-26T13:02:16Z"})");
}

TEST(RenderGet, PausedAtManualStep) {
  EXPECT_EQ(render_get(paused_status()),
            "Name:            canary-demo\n"
            "Status:          ॥ Paused\n"
            "Message:         CanaryPauseStep\n"
            "Strategy:        Canary\n"
            "  Step:          1/6\n"
            "  SetWeight:     20\n"
            "  ActualWeight:  20\n"
            "Stable:          blue\n"
            "Canary:          green\n"
            "Paused by:       step\n"
            "Updated:         2026-11-26T13:02:16Z\n"
            "\n"
            "Steps:\n"
            "  ✔ 1  setWeight: 20\n"
            "  ▶ 2  pause: {}\n"
            "    3  setWeight: 50\n"
            "    4  pause: 30s\n"
            "    5  setWeight: 70\n"
            "    6  pause: 30s\n");
}

TEST(RenderGet, TimedPauseShowsTimeLeft) {
  json::value s = paused_status();
  s.as_object()["step"] = 3;
  s.as_object()["weight"] = 50;
  s.as_object()["actual_weight"] = 50;
  s.as_object()["pause_remaining_s"] = 24.2;
  std::string out = render_get(s);
  EXPECT_NE(out.find("Paused by:       step\nPause left:      25s\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  ✔ 3  setWeight: 50\n  ▶ 4  pause: 30s\n    5"), std::string::npos) << out;

  // A manual hold on a timed pause keeps (does not count down) the time left.
  s.as_object()["paused_by"] = "user";
  s.as_object()["pause_remaining_s"] = 90;
  out = render_get(s);
  EXPECT_NE(out.find("Paused by:       user\nPause left:      1m30s (on hold)\n"),
            std::string::npos)
      << out;
}

TEST(RenderGet, HealthyCompletedRollout) {
  json::value s = json::parse(R"({
    "name": "r", "phase": "Healthy", "message": "", "stable": "green", "canary": null,
    "weight": 0, "actual_weight": 0, "weight_total": 100, "step": 2,
    "steps": [{"setWeight": 50}, {"pause": {"duration": 10}}],
    "paused_by": null, "pause_remaining_s": null, "updated_at": "2026-11-26T13:05:00Z"})");
  EXPECT_EQ(render_get(s),
            "Name:            r\n"
            "Status:          ✔ Healthy\n"
            "Strategy:        Canary\n"
            "  Step:          2/2\n"
            "  SetWeight:     0\n"
            "  ActualWeight:  0\n"
            "Stable:          green\n"
            "Canary:          -\n"
            "Updated:         2026-11-26T13:05:00Z\n"
            "\n"
            "Steps:\n"
            "  ✔ 1  setWeight: 50\n"
            "  ✔ 2  pause: 10s\n");
}

TEST(RenderGet, NoRolloutYetMarksNothing) {
  json::value s = json::parse(R"({"name": "r", "phase": "Healthy", "stable": "blue",
    "canary": null, "weight": 0, "actual_weight": 0, "step": 0, "steps": [{"setWeight": 5}],
    "paused_by": null, "pause_remaining_s": null, "updated_at": "t"})");
  EXPECT_NE(render_get(s).find("Steps:\n    1  setWeight: 5\n"), std::string::npos);
}

TEST(RenderGet, DegradedAndFineWeights) {
  json::value s = json::parse(R"({"name": "r", "phase": "Degraded", "message": "RolloutAborted",
    "stable": "blue", "canary": "green", "weight": 0, "actual_weight": 0, "weight_total": 1000,
    "step": 0, "steps": [], "paused_by": null, "pause_remaining_s": null,
    "updated_at": "2026-11-26T13:05:00Z"})");
  std::string out = render_get(s);
  EXPECT_NE(out.find("Status:          ✖ Degraded\nMessage:         RolloutAborted\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  SetWeight:     0/1000\n  ActualWeight:  0/1000\n"), std::string::npos);
  EXPECT_NE(out.find("Steps:\n  (none)\n"), std::string::npos);
}

TEST(RenderGet, ToleratesMissingFields) {
  std::string out = render_get(json::parse(R"({"name": "r", "phase": "Rebooting"})"));
  EXPECT_NE(out.find("Status:          ? Rebooting\n"), std::string::npos) << out;
  EXPECT_NE(out.find("  Step:          -/0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Canary:          -\n"), std::string::npos) << out;
  EXPECT_FALSE(render_get(json::value()).empty());
}

TEST(RenderStep, Forms) {
  EXPECT_EQ(render_step(json::parse(R"({"setWeight": 20})")), "setWeight: 20");
  EXPECT_EQ(render_step(json::parse(R"({"pause": {}})")), "pause: {}");
  EXPECT_EQ(render_step(json::parse(R"({"pause": {"duration": "1m30s"}})")), "pause: 1m30s");
  EXPECT_EQ(render_step(json::parse(R"({"pause": {"duration": 90}})")), "pause: 1m30s");
  EXPECT_EQ(render_step(json::parse(R"({"analysis": {"x": 1}})")), R"({"analysis":{"x":1}})");
  EXPECT_EQ(render_step(json::parse(R"({"analysis": {"duration": "2m"}})")), "analysis: 2m");
  EXPECT_EQ(render_step(json::parse(R"({"analysis": {"duration": 90, "metrics": null}})")),
            "analysis: 1m30s");
  EXPECT_EQ(
      render_step(json::parse(R"({"analysis": {"duration": "2m", "metrics": ["errors", "ok"]}})")),
      "analysis: 2m (errors, ok)");
  EXPECT_EQ(render_step(json::parse(R"({"analysis": {"metrics": ["errors"]}})")),
            "analysis (errors)");
  EXPECT_EQ(render_step(json::parse(R"({"analysis": {}})")), "analysis");
  EXPECT_EQ(render_step(json::parse(R"({"analysis": {"duration": true}})")),
            R"({"analysis":{"duration":true}})");
  EXPECT_EQ(render_step(json::parse(R"({"setMirror": {"percent": 10}})")), "setMirror: 10 %");
  EXPECT_EQ(render_step(json::parse(R"({"setWeight": 5, "pause": {}})")),
            R"({"setWeight":5,"pause":{}})");
}

// ---------------------------------------------------------------------------------------------
// Analysis

// A status as the proxy reports it mid-run: a sequential metric failing, a success-rate
// threshold below its minimum, a latency threshold above its maximum, a provider metric, one
// metric not measured yet.
json::value analysis_status() {
  json::value s = paused_status();
  s.as_object()["analysis"] = json::parse(R"({
    "run": "r7", "phase": "Failed", "metrics": [
      {"name": "errors", "kind": "sequential", "min": null, "max": 1.0, "phase": "Failed",
       "successful": 3, "failed": 1, "inconclusive": 2, "errors": 0,
       "last": {"time": "2026-11-26T13:03:00Z", "phase": "Failed", "value": 0.021,
                "stable_value": 0.009, "canary_requests": 1000, "stable_requests": 4000,
                "message": "errors: canary 2.1 % (21/1000) vs stable 0.9 % (36/4000), p < 0.01"}},
      {"name": "success", "kind": "threshold", "min": 0.99, "max": null, "phase": "Failed",
       "successful": 5, "failed": 1, "inconclusive": 0, "errors": 0,
       "last": {"time": "2026-11-26T13:03:00Z", "phase": "Failed", "value": 0.972,
                "stable_value": null, "canary_requests": 250, "stable_requests": 1000,
                "message": ""}},
      {"name": "p99", "kind": "threshold", "min": null, "max": 250, "phase": "Running",
       "successful": 4, "failed": 2, "inconclusive": 0, "errors": 0,
       "last": {"time": "2026-11-26T13:03:00Z", "phase": "Failed", "value": 312,
                "stable_value": null, "canary_requests": 250, "stable_requests": 1000,
                "message": ""}},
      {"name": "apdex", "kind": "prometheus", "min": 0.9, "max": null, "phase": "Error",
       "successful": 0, "failed": 0, "inconclusive": 0, "errors": 5,
       "last": {"time": "2026-11-26T13:03:00Z", "phase": "Error", "value": null,
                "stable_value": null, "canary_requests": 0, "stable_requests": 0,
                "message": "connect: connection refused"}},
      {"name": "slow", "kind": "sequential", "min": null, "max": 1.5, "phase": "Pending",
       "successful": 0, "failed": 0, "inconclusive": 0, "errors": 0, "last": null}]})");
  return s;
}

TEST(RenderGet, AnalysisTableAfterTheSteps) {
  std::string out = render_get(analysis_status());
  EXPECT_NE(out.find("    6  pause: 30s\n"
                     "\n"
                     "Analysis:        ✖ Failed (run r7)\n"
                     "  METRIC   KIND        PHASE      SUCCESSFUL  FAILED  INCONCLUSIVE  ERRORS  "
                     "LAST\n"
                     "  errors   sequential  ✖ Failed   3           1       2             0       "
                     "2.1 % > 1.0x stable 0.9 %\n"
                     "  success  threshold   ✖ Failed   5           1       0             0       "
                     "97.2 % < min 99.0 %\n"
                     "  p99      threshold   ◌ Running  4           2       0             0       "
                     "312 ms > max 250 ms\n"
                     "  apdex    prometheus  ⚠ Error    0           0       0             5       "
                     "-\n"
                     "  slow     sequential  ◷ Pending  0           0       0             0       "
                     "-\n"),
            std::string::npos)
      << out;
}

TEST(RenderGet, NoAnalysisBlockWhenAbsentOrNull) {
  std::string plain = render_get(paused_status());
  json::value s = paused_status();
  s.as_object()["analysis"] = nullptr;
  EXPECT_EQ(render_get(s), plain);
  EXPECT_EQ(plain.find("Analysis"), std::string::npos);
}

TEST(RenderAnalysis, BeforeTheFirstRunAndWithoutMetrics) {
  EXPECT_EQ(render_analysis(json::parse(R"({"run": null, "phase": null, "metrics": []})")),
            "\nAnalysis:        - (no run)\n  (no metrics)\n");
  EXPECT_EQ(render_analysis(json::parse(R"({"run": "a1", "phase": "DryRun"})")),
            "\nAnalysis:        • DryRun (run a1)\n  (no metrics)\n");
  EXPECT_EQ(render_analysis(json::value()), "");
  // Steps missing entirely: the analysis still shows.
  json::value s = json::parse(R"({"name": "r", "phase": "Paused",
    "analysis": {"run": "a2", "phase": "Inconclusive", "metrics": []}})");
  EXPECT_NE(render_get(s).find("Steps:\n  (none)\n\nAnalysis:        ? Inconclusive (run a2)\n"),
            std::string::npos)
      << render_get(s);
}

TEST(RenderBound, EachKindAgainstItsBound) {
  auto metric = [](std::string_view text) { return json::parse(text); };
  // Sequential: the canary's bad rate against the ratio bound times the stable's.
  EXPECT_EQ(render_bound(metric(R"({"kind": "sequential", "max": 1.5,
    "last": {"value": 0.012, "stable_value": 0.01}})")),
            "1.2 % <= 1.5x stable 1.0 %");
  EXPECT_EQ(render_bound(metric(R"({"kind": "sequential", "max": 1.25,
    "last": {"value": 0.0004, "stable_value": 0}})")),
            "0.04 % > 1.25x stable 0.0 %");
  EXPECT_EQ(render_bound(metric(R"({"kind": "sequential", "max": 1,
    "last": {"value": 0.02, "stable_value": null}})")),
            "2.0 % vs stable -");
  // Thresholds: rates as percentages, latencies (a bound above 1) in milliseconds.
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 0.99, "last": {"value": 0.995}})")),
            "99.5 % >= min 99.0 %");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "max": 0.01, "last": {"value": 0.002}})")),
            "0.2 % <= max 1.0 %");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "max": 250, "last": {"value": 4.25}})")),
            "4.25 ms <= max 250 ms");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 10, "max": 250,
    "last": {"value": 31.25}})")),
            "10.0 ms <= 31.2 ms <= 250 ms");
  // Providers: plain numbers.
  EXPECT_EQ(render_bound(metric(R"({"kind": "web", "max": 3, "last": {"value": 3.5}})")),
            "3.5 > max 3");
  EXPECT_EQ(render_bound(metric(R"({"kind": "prometheus", "min": 0.9, "last": {"value": 0.93}})")),
            "0.93 >= min 0.9");
  EXPECT_EQ(render_bound(metric(R"({"kind": "webhook", "last": {"value": 200}})")), "200");
  // Nothing measured yet, or no value (Inconclusive, Error).
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 0.99, "last": null})")), "-");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 0.99})")), "-");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 0.99, "last": {"value": "x"}})")),
            "-");
  // The server's 0 for "nothing to measure" is no value: an Error, or no canary request.
  EXPECT_EQ(render_bound(metric(R"({"kind": "prometheus", "min": 0.9,
    "last": {"phase": "Error", "value": 0, "canary_requests": 0}})")),
            "-");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 0.99,
    "last": {"phase": "Inconclusive", "value": 0, "canary_requests": 0}})")),
            "-");
  EXPECT_EQ(render_bound(metric(R"({"kind": "sequential", "max": 1,
    "last": {"phase": "Inconclusive", "value": 0, "stable_value": 0, "canary_requests": 0}})")),
            "-");
  EXPECT_EQ(render_bound(metric(R"({"kind": "threshold", "min": 0.99,
    "last": {"phase": "Inconclusive", "value": 1, "canary_requests": 3}})")),
            "100.0 % >= min 99.0 %");
  EXPECT_EQ(render_bound(metric(R"({"kind": "web", "max": 3,
    "last": {"phase": "Successful", "value": 2, "canary_requests": 0}})")),
            "2 <= max 3");
}

TEST(FormatValue, Units) {
  EXPECT_EQ(format_value(0.021, value_unit::fraction), "2.1 %");
  EXPECT_EQ(format_value(0, value_unit::fraction), "0.0 %");
  EXPECT_EQ(format_value(1, value_unit::fraction), "100.0 %");
  EXPECT_EQ(format_value(0.00042, value_unit::fraction), "0.042 %");
  EXPECT_EQ(format_value(312.4, value_unit::milliseconds), "312 ms");
  EXPECT_EQ(format_value(42.25, value_unit::milliseconds), "42.2 ms");
  EXPECT_EQ(format_value(0.5, value_unit::milliseconds), "0.50 ms");
  EXPECT_EQ(format_value(1234.5, value_unit::number), "1234.5");
  EXPECT_EQ(format_value(0.9, value_unit::number), "0.9");
}

TEST(UnitOfMetric, FromKindAndBounds) {
  EXPECT_EQ(unit_of_metric(json::parse(R"({"kind": "sequential", "max": 1.5})")),
            value_unit::fraction);
  EXPECT_EQ(unit_of_metric(json::parse(R"({"kind": "threshold", "min": 0.99})")),
            value_unit::fraction);
  EXPECT_EQ(unit_of_metric(json::parse(R"({"kind": "threshold", "max": 250})")),
            value_unit::milliseconds);
  // A latency bound of at most 1 ms still reads as one once a value above 1 comes in.
  EXPECT_EQ(unit_of_metric(json::parse(R"({"kind": "threshold", "max": 1, "last": {"value": 3}})")),
            value_unit::milliseconds);
  EXPECT_EQ(unit_of_metric(json::parse(R"({"kind": "prometheus", "min": 0.5})")),
            value_unit::number);
  EXPECT_EQ(unit_of_metric(json::parse(R"({"kind": "web", "max": 300})")), value_unit::number);
  EXPECT_EQ(unit_of_metric(json::value()), value_unit::number);
}

TEST(AnalysisIcon, Phases) {
  EXPECT_EQ(analysis_icon("Successful"), "✔");
  EXPECT_EQ(analysis_icon("Running"), "◌");
  EXPECT_EQ(analysis_icon("Failed"), "✖");
  EXPECT_EQ(analysis_icon("Error"), "⚠");
  EXPECT_EQ(analysis_icon("Inconclusive"), "?");
  EXPECT_EQ(analysis_icon("DryRun"), "•");
  EXPECT_EQ(analysis_icon("Pending"), "◷");
}

TEST(RenderMeasurements, TableInEachMetricsUnit) {
  json::value reply = json::parse(R"({"route": "canary-demo", "run": "r7", "measurements": [
    {"time": "2026-11-26T13:02:50Z", "metric": "errors", "phase": "Successful", "value": 0.008,
     "stable_value": 0.009, "canary_requests": 800, "stable_requests": 3200, "message": ""},
    {"time": "2026-11-26T13:02:50Z", "metric": "p99", "phase": "Failed", "value": 312,
     "stable_value": null, "canary_requests": 200, "stable_requests": 800,
     "message": "p99 312 ms > max 250 ms"},
    {"time": "2026-11-26T13:03:00Z", "metric": "apdex", "phase": "Error", "value": 0,
     "stable_value": 0, "canary_requests": 0, "stable_requests": 0,
     "message": "connect: connection refused"},
    {"time": "2026-11-26T13:03:00Z", "metric": "gone", "phase": "Inconclusive", "value": 0.5,
     "stable_value": null, "canary_requests": 3, "stable_requests": 9, "message": ""}]})");
  json::value status = analysis_status();
  const json::value& block = status.as_object().at("analysis");
  EXPECT_EQ(render_measurements(reply, block),
            "TIME                  METRIC  PHASE           VALUE   STABLE  CANARY-REQ  STABLE-REQ  "
            "MESSAGE\n"
            "2026-11-26T13:02:50Z  errors  ✔ Successful    0.8 %   0.9 %   800         3200\n"
            "2026-11-26T13:02:50Z  p99     ✖ Failed        312 ms  -       200         800         "
            "p99 312 ms > max 250 ms\n"
            "2026-11-26T13:03:00Z  apdex   ⚠ Error         -       -       0           0           "
            "connect: connection refused\n"
            "2026-11-26T13:03:00Z  gone    ? Inconclusive  0.5     -       3           9\n");
  // Without the status block, values are plain numbers.
  EXPECT_NE(render_measurements(reply, json::value()).find("  0.008  0.009   "), std::string::npos)
      << render_measurements(reply, json::value());
}

TEST(RenderMeasurements, NoneYet) {
  EXPECT_EQ(render_measurements(json::parse(R"({"route": "r", "run": null, "measurements": []})"),
                                json::value()),
            "No measurements.\n");
  EXPECT_EQ(render_measurements(json::value(), json::value()), "No measurements.\n");
}

TEST(PhaseIcon, KubectlArgoRolloutsIcons) {
  EXPECT_EQ(phase_icon("Healthy"), "✔");
  EXPECT_EQ(phase_icon("Progressing"), "◌");
  EXPECT_EQ(phase_icon("Paused"), "॥");
  EXPECT_EQ(phase_icon("Degraded"), "✖");
  EXPECT_EQ(phase_icon("Whatever"), "?");
}

TEST(RenderList, AlignedTable) {
  json::value other = paused_status();
  auto& o = other.as_object();
  o["name"] = "shop-api";
  o["phase"] = "Healthy";
  o["canary"] = nullptr;
  o["step"] = 6;
  o["weight"] = 0;
  o["actual_weight"] = 0;
  json::array rollouts{paused_status(), other};
  EXPECT_EQ(render_list(rollouts),
            "NAME         STATUS     STEP  SETWEIGHT  ACTUALWEIGHT  STABLE  CANARY\n"
            "canary-demo  ॥ Paused   1/6   20         20            blue    green\n"
            "shop-api     ✔ Healthy  6/6   0          0             blue    -\n");
  EXPECT_EQ(render_list(json::array()), "No rollouts found.\n");
}

TEST(RenderEvents, AlignedTable) {
  json::value events = json::parse(R"([
    {"time": "2026-11-26T13:02:10Z", "from": "Healthy", "to": "Progressing", "step": 0,
     "weight": 0, "cause": "config", "message": "canary green"},
    {"time": "2026-11-26T13:02:10Z", "from": "Progressing", "to": "Paused", "step": 1,
     "weight": 20, "cause": "step", "message": "CanaryPauseStep"}])");
  EXPECT_EQ(render_events(events),
            "TIME                  FROM         TO           STEP  WEIGHT  CAUSE   MESSAGE\n"
            "2026-11-26T13:02:10Z  Healthy      Progressing  0     0       config  canary green\n"
            "2026-11-26T13:02:10Z  Progressing  Paused       1     20      step    "
            "CanaryPauseStep\n");
  EXPECT_EQ(render_events(json::array()), "No events.\n");
}

TEST(RenderCluster, StoreLineThenReplicasWithLeaderAndDrift) {
  json::value cluster = json::parse(R"({
    "replica": "r2", "leader": "r1",
    "store": {"type": "etcd", "state": "connected", "revision": 42},
    "replicas": [
      {"id": "r1", "incarnation": "1733480000-311", "last_seen": "2026-12-06T11:40:02Z",
       "config_drift": []},
      {"id": "r2", "incarnation": "1733480007-9", "last_seen": "2026-12-06T11:40:03Z",
       "config_drift": ["canary-demo", "shop"]},
      {"id": "r3", "incarnation": 7, "last_seen": null}]})");
  EXPECT_EQ(render_cluster(cluster),
            "Replica:  r2\n"
            "Leader:   r1\n"
            "Store:    etcd, connected, revision 42\n"
            "\n"
            "REPLICA    INCARNATION     LAST SEEN             LEADER  CONFIG DRIFT\n"
            "r1         1733480000-311  2026-12-06T11:40:02Z  *       -\n"
            "r2 (this)  1733480007-9    2026-12-06T11:40:03Z          canary-demo,shop\n"
            "r3         7               -                             -\n");
}

TEST(RenderCluster, NoLeaderDisconnectedAndNoReplicas) {
  json::value cluster = json::parse(R"({"replica": "r1", "leader": null,
    "store": {"type": "etcd", "state": "disconnected", "revision": null}, "replicas": []})");
  EXPECT_EQ(render_cluster(cluster),
            "Replica:  r1\n"
            "Leader:   none\n"
            "Store:    etcd, disconnected\n"
            "\n"
            "No replicas registered.\n");
  // An older server's 404 body or anything unexpected: dashes, no crash.
  EXPECT_EQ(render_cluster(json::value()),
            "Replica:  -\nLeader:   none\nStore:    -, -\n\nNo replicas registered.\n");
}

TEST(RenderStatusLine, OneLine) {
  EXPECT_EQ(render_status_line(paused_status()),
            "canary-demo: ॥ Paused - CanaryPauseStep (step 1/6, weight 20, actual 20, stable "
            "blue, canary green)");
}

TEST(PrettyJson, IndentsNestedValues) {
  EXPECT_EQ(pretty_json(json::parse(R"({"a": [1, {"b": null}], "c": {}, "d": [], "e": "x\"y"})")),
            "{\n"
            "  \"a\": [\n"
            "    1,\n"
            "    {\n"
            "      \"b\": null\n"
            "    }\n"
            "  ],\n"
            "  \"c\": {},\n"
            "  \"d\": [],\n"
            "  \"e\": \"x\\\"y\"\n"
            "}\n");
}

TEST(PrettyJson, KeepsTheServersNumbersAndStringsAsWritten) {
  // Boost.JSON 1.81 may parse this double one unit off in the last place; -o json must not.
  EXPECT_EQ(pretty_json(std::string_view(R"({"v":0.49942987457240595,"s":"a, {b}: [c]\\","n":[ ]})")),
            "{\n"
            "  \"v\": 0.49942987457240595,\n"
            "  \"s\": \"a, {b}: [c]\\\\\",\n"
            "  \"n\": []\n"
            "}\n");
}

TEST(DisplayWidth, CountsCodePoints) {
  EXPECT_EQ(display_width("abc"), 3u);
  EXPECT_EQ(display_width("॥ Paused"), 8u);
  EXPECT_EQ(display_width("✔"), 1u);
}

// ---------------------------------------------------------------------------------------------
// wait

TEST(DecideWait, EveryPhaseForEveryTarget) {
  using enum wait_decision;
  struct row {
    wait_target target;
    std::string_view phase;
    wait_decision expected;
  };
  const row rows[] = {
      {wait_target::healthy, "Healthy", reached},
      {wait_target::healthy, "Progressing", keep_waiting},
      {wait_target::healthy, "Paused", keep_waiting},
      {wait_target::healthy, "Degraded", degraded},
      {wait_target::paused, "Healthy", keep_waiting},
      {wait_target::paused, "Progressing", keep_waiting},
      {wait_target::paused, "Paused", reached},
      {wait_target::paused, "Degraded", degraded},
      {wait_target::degraded, "Healthy", keep_waiting},
      {wait_target::degraded, "Progressing", keep_waiting},
      {wait_target::degraded, "Paused", keep_waiting},
      {wait_target::degraded, "Degraded", reached},
      {wait_target::healthy, "-", keep_waiting},
  };
  for (const auto& r : rows) {
    EXPECT_EQ(decide_wait(r.target, r.phase), r.expected) << to_string(r.target) << " " << r.phase;
  }
}

// ---------------------------------------------------------------------------------------------
// Server-sent events

std::vector<sse_event> feed_all(std::string_view stream) {
  sse_parser p;
  std::vector<sse_event> out;
  EXPECT_TRUE(p.feed(stream, out));
  return out;
}

TEST(SseParser, StatusEventsAndPings) {
  auto events = feed_all(
      "event: status\ndata: {\"name\":\"a\"}\n\n: ping\n\nevent: status\ndata: "
      "{\"name\":\"b\"}\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, "status");
  EXPECT_EQ(events[0].data, R"({"name":"a"})");
  EXPECT_EQ(events[1].data, R"({"name":"b"})");
}

TEST(SseParser, EveryTwoWaySplitGivesTheSameEvents) {
  const std::string stream =
      "\xEF\xBB\xBF: hello\r\nevent: status\r\ndata: {\"x\":1}\r\n\r\n"
      ": ping\n\n"
      "event:status\rdata:line1\rdata: line2\r\r"
      "id: 7\nretry: 100\nfoo: bar\ndata\n\n"
      "event: ignored-without-data\n\n";
  auto whole = feed_all(stream);
  ASSERT_EQ(whole.size(), 3u);
  EXPECT_EQ(whole[0].type, "status");
  EXPECT_EQ(whole[0].data, "{\"x\":1}");
  EXPECT_EQ(whole[1].type, "status");
  EXPECT_EQ(whole[1].data, "line1\nline2");
  EXPECT_EQ(whole[2].type, "message");
  EXPECT_EQ(whole[2].data, "");
  EXPECT_EQ(whole[2].id, "7");

  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    sse_parser p;
    std::vector<sse_event> out;
    ASSERT_TRUE(p.feed(std::string_view(stream).substr(0, cut), out));
    ASSERT_TRUE(p.feed(std::string_view(stream).substr(cut), out));
    ASSERT_EQ(out.size(), whole.size()) << "cut at " << cut;
    for (std::size_t i = 0; i < out.size(); ++i) {
      EXPECT_EQ(out[i].type, whole[i].type) << "cut at " << cut;
      EXPECT_EQ(out[i].data, whole[i].data) << "cut at " << cut;
    }
  }
}

TEST(SseParser, ByteByByte) {
  const std::string stream = "event: status\r\ndata: {}\r\n\r\nevent: status\r\ndata: []\r\n\r\n";
  sse_parser p;
  std::vector<sse_event> out;
  for (char c : stream) ASSERT_TRUE(p.feed(std::string_view(&c, 1), out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].data, "{}");
  EXPECT_EQ(out[1].data, "[]");
}

TEST(SseParser, CrLfSplitAcrossFeedsIsOneLineEnd) {
  sse_parser p;
  std::vector<sse_event> out;
  ASSERT_TRUE(p.feed("data: a\r", out));
  ASSERT_TRUE(p.feed("\ndata: b\r", out));
  EXPECT_TRUE(out.empty());  // "\r" + "\n" must not count as an empty line
  ASSERT_TRUE(p.feed("\n\r\n", out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data, "a\nb");
}

TEST(SseParser, EventTypeDoesNotLeakIntoTheNextEvent) {
  auto events = feed_all("event: status\ndata: 1\n\ndata: 2\n\n");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type, "message");
}

TEST(SseParser, IncompleteEventIsNotDispatched) {
  EXPECT_TRUE(feed_all("event: status\ndata: {}\n").empty());
}

TEST(SseParser, OverlongLineFails) {
  sse_parser p(16);
  std::vector<sse_event> out;
  EXPECT_TRUE(p.feed("data: 0123456789\n", out));  // exactly 16 bytes
  EXPECT_FALSE(p.feed("data: 01234567890\n", out));
}

}  // namespace
}  // namespace canary::ctl
