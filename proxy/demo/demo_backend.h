// demo-backend: a stand-in for argoproj/rollouts-demo. Serves its colour at /color (with
// injectable errors and latency), the demo page at /, /healthz, and /echo (what the proxy
// forwarded, for tests). The pure parts are declared here for tests; run() is the program:
// one thread, one io_context, one coroutine per connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canary::demo {

struct options {
  std::string host = "127.0.0.1";
  std::string port = "8080";  // "0" = any free port
  std::string color;
  double error_rate = 0;                 // 0..1: the share of /color answers that are 500
  std::chrono::milliseconds latency{0};  // before every /color answer
};

struct parse_result {
  std::optional<options> opts;  // set iff error is empty
  std::string error;
  bool help = false;  // -h/--help: print usage() and exit 0
};

// Accepts argv without the program name: --listen ADDR --color NAME [--error-rate 0..1]
// [--latency DURATION]; also as --flag=value.
parse_result parse_args(const std::vector<std::string>& args);
std::string usage();

// Whether the n-th /color answer (counted from 0) is a 500 under --error-rate `rate`: those whose
// count crosses the next multiple of 1/rate (0.5: every other one, 0.05: one in 20). Counted,
// not drawn: the share is exact over any 1/rate answers and the same on every run, so a test or
// the demo's analysis sees the configured rate and not a random walk around it.
bool error_due(std::uint64_t n, double rate);

// What the rollouts-demo page asks of this colour in its POST body
// `[{"color": "blue", "return500": N, "delayLength": F}, ...]`. Zero values mean "no override",
// as in rollouts-demo.
struct color_override {
  double return500_percent = 0;
  double delay_s = 0;
};
// nullopt when the body is empty, malformed or has no entry for `color`.
std::optional<color_override> find_override(std::string_view body, std::string_view color);

// The demo page: self-contained HTML, relative URLs only (it is served through the proxy).
std::string_view demo_page();

// The whole program: returns the exit code (0 after SIGINT/SIGTERM, 1 on startup failure, 2 on
// a usage error).
int run(int argc, char** argv);

}  // namespace canary::demo
