// canaryctl's commands (list, get, events, analysis, reload, cluster, the mutations, wait) and run(): the
// program.
// Single-threaded; no state outlives run().
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "ctl/canaryctl.h"
#include "ctl/client.h"
#include "util/duration.h"
#include "util/text.h"

#ifndef CANARY_VERSION
#define CANARY_VERSION "dev"
#endif

namespace canary::ctl {

namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// A 2xx answer of the API: parsed for the text renderings, and its text for `-o json`.
struct api_json {
  json::value value;
  std::string text;
};

// Delay before re-opening a dropped watch, so a restarting proxy is not hammered.
constexpr auto reconnect_delay = std::chrono::seconds(1);

class cli {
 public:
  cli(const options& opts, api_client& client) : opts_(opts), client_(client) {}

  int dispatch() {
    const std::string& cmd = opts_.command;
    if (cmd == "list") return list();
    if (cmd == "get") return opts_.watch ? watch_get() : get();
    if (cmd == "events") return events();
    if (cmd == "analysis") return analysis();
    if (cmd == "wait") return wait();
    if (cmd == "reload") return reload();
    if (cmd == "cluster") return cluster();
    return mutate();
  }

 private:
  std::string rollout_path() const {
    return "/api/v1/rollouts/" + encode_path_segment(opts_.args.at(0));
  }
  const std::string& name() const { return opts_.args.at(0); }

  // Prints why a call failed: transport problems, or the API's {"error", "errors"}.
  static void print_http_error(const http_reply& reply) {
    std::error_code ignored;
    json::value body = json::parse(reply.body, ignored);
    if (!ignored && field(body, "error") && field(body, "error")->is_string()) {
      std::cerr << "error: " << field(body, "error")->as_string().c_str() << "\n";
      if (const json::value* errors = field(body, "errors"); errors && errors->is_array()) {
        for (const auto& e : errors->as_array()) std::cerr << text_of(&e) << "\n";
      }
      return;
    }
    std::cerr << "error: HTTP " << reply.status << " " << reply.reason;
    std::string_view text = util::trim(reply.body);
    if (!text.empty() && text.size() < 500) std::cerr << ": " << text;
    std::cerr << "\n";
  }

  // One API call; returns the parsed JSON of a 2xx answer, or prints the error and returns
  // nullopt.
  std::optional<api_json> call(http_method method, const std::string& path,
                                  std::optional<std::string> body = std::nullopt) {
    call_result r = client_.call(method, path, std::move(body));
    if (r.fail != failure::none) {
      std::cerr << "error: " << r.message << "\n";
      return std::nullopt;
    }
    if (r.reply.status < 200 || r.reply.status >= 300) {
      print_http_error(r.reply);
      return std::nullopt;
    }
    std::error_code ec;
    json::value v = json::parse(r.reply.body, ec);
    if (ec) {
      std::cerr << "error: the server's answer is not JSON (" << ec.message() << ")\n";
      return std::nullopt;
    }
    return api_json{std::move(v), std::move(r.reply.body)};
  }

  // `-o json` prints the server's own text, re-indented: numbers exactly as it wrote them.
  static void print_json(const api_json& a) { std::cout << pretty_json(a.text) << std::flush; }

  int list() {
    auto v = call(http_method::get, "/api/v1/rollouts");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      const json::value* rollouts = field(v->value, "rollouts");
      std::cout << render_list(rollouts ? *rollouts : json::value()) << std::flush;
    }
    return 0;
  }

  int get() {
    auto v = call(http_method::get, rollout_path());
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      std::cout << render_get(v->value) << std::flush;
    }
    return 0;
  }

  int events() {
    auto v = call(http_method::get, rollout_path() + "/events");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      const json::value* list = field(v->value, "events");
      std::cout << render_events(list ? *list : json::value()) << std::flush;
    }
    return 0;
  }

  // The measurements of the current run. The status comes too: its metrics' kinds and bounds
  // decide how values read (%, ms or plain numbers).
  int analysis() {
    auto v = call(http_method::get, rollout_path() + "/analysis");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
      return 0;
    }
    auto status = call(http_method::get, rollout_path());
    if (!status) return 1;
    const json::value* block = field(status->value, "analysis");
    std::cout << render_measurements(v->value, block ? *block : json::value()) << std::flush;
    return 0;
  }

  int reload() {
    auto v = call(http_method::post, "/api/v1/config/reload");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
      return 0;
    }
    std::cout << "config reloaded\n";
    if (const json::value* warnings = field(v->value, "warnings"); warnings && warnings->is_array()) {
      for (const auto& w : warnings->as_array()) std::cerr << "warning: " << text_of(&w) << "\n";
    }
    std::cout << std::flush;
    return 0;
  }

  // The replicas sharing the state store, their leader and the store's state.
  int cluster() {
    auto v = call(http_method::get, "/api/v1/cluster");
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      std::cout << render_cluster(v->value) << std::flush;
    }
    return 0;
  }

  int mutate() {
    const std::string& cmd = opts_.command;
    http_method method = http_method::post;
    std::string path = rollout_path();
    std::optional<std::string> body;
    std::string done;
    if (cmd == "promote") {
      path += "/promote";
      if (opts_.full) body = R"({"full": true})";
      done = opts_.full ? "fully promoted" : "promoted";
    } else if (cmd == "abort" || cmd == "retry" || cmd == "pause" || cmd == "resume") {
      path += "/" + cmd;
      done = cmd == "abort"   ? "aborted"
             : cmd == "retry" ? "retried"
             : cmd == "pause" ? "paused"
                              : "resumed";
    } else if (cmd == "undo") {
      path += "/undo";
      done = "undone";
    } else if (cmd == "set-weight") {
      method = http_method::put;
      path += "/weight";
      body = json::serialize(json::object{{"weight", opts_.weight}});
      done = "weight set to " + std::to_string(opts_.weight);
    } else if (cmd == "set-upstream") {
      method = http_method::put;
      path += "/upstream";
      body = json::serialize(json::object{{"upstream", opts_.args.at(1)}});
      done = "upstream set to '" + opts_.args.at(1) + "'";
    } else {
      std::cerr << "error: unknown command '" << cmd << "'\n";
      return exit_usage;
    }
    auto v = call(method, path, std::move(body));
    if (!v) return 1;
    if (opts_.output == output_format::json) {
      print_json(*v);
    } else {
      std::cout << "rollout '" << name() << "' " << done << "\n"
                << render_status_line(v->value) << "\n"
                << std::flush;
    }
    return 0;
  }

  // Events for other routes (on a shared stream) or of other types are skipped.
  std::optional<json::value> status_of(const sse_event& e) {
    if (e.type != "status") return std::nullopt;
    std::error_code ec;
    json::value v = json::parse(e.data, ec);
    if (ec || !v.is_object()) return std::nullopt;
    if (const json::value* n = field(v, "name"); n && n->is_string() && n->as_string() != name()) {
      return std::nullopt;
    }
    return v;
  }

  int report_watch_failure(const watch_result& r) {
    switch (r.end) {
      case watch_end::http_error:
        print_http_error(r.reply);
        break;
      case watch_end::unreachable:
        std::cerr << "error: " << r.message << "\n";
        break;
      default:
        std::cerr << "error: watch of rollout '" << name() << "' ended: " << r.message << "\n";
        break;
    }
    return 1;
  }

  int watch_get() {
    bool tty = ::isatty(STDOUT_FILENO) == 1;
    bool first = true;
    watch_result r =
        client_.watch(rollout_path() + "/watch", std::nullopt, [&](const sse_event& e) {
          auto status = status_of(e);
          if (!status) return true;
          if (opts_.output == output_format::json) {
            std::cout << util::trim(e.data) << "\n";
          } else if (tty) {
            std::cout << "\x1b[H\x1b[2J" << render_get(*status);
          } else {
            if (!first) std::cout << "---\n";
            std::cout << render_get(*status);
          }
          first = false;
          std::cout << std::flush;
          return true;
        });
    return report_watch_failure(r);
  }

  void print_final(const api_json& status) {
    if (opts_.output == output_format::json) {
      print_json(status);
    } else {
      std::cout << render_status_line(status.value) << "\n" << std::flush;
    }
  }

  int finish_wait(wait_decision d, const api_json& last) {
    print_final(last);
    const json::value& status = last.value;
    if (d == wait_decision::reached) return 0;
    std::cerr << "error: rollout '" << name() << "' is Degraded";
    if (std::string m = text_of(status, "message"); m != "-" && !m.empty()) std::cerr << ": " << m;
    std::cerr << "\n";
    return 1;
  }

  int wait() {
    auto deadline = steady::now() + opts_.timeout;
    // A plain GET first: it answers "already there" at once and turns a wrong name into a clean
    // 404 before any streaming starts.
    auto first = call(http_method::get, rollout_path());
    if (!first) return 1;
    api_json last = std::move(*first);
    auto decision = decide_wait(opts_.wait_for, text_of(last.value, "phase"));
    if (decision != wait_decision::keep_waiting) return finish_wait(decision, last);

    std::string last_problem;
    while (steady::now() < deadline) {
      watch_result r = client_.watch(rollout_path() + "/watch", deadline, [&](const sse_event& e) {
        auto status = status_of(e);
        if (!status) return true;
        last = api_json{std::move(*status), e.data};
        decision = decide_wait(opts_.wait_for, text_of(last.value, "phase"));
        return decision == wait_decision::keep_waiting;
      });
      if (r.end == watch_end::stopped) return finish_wait(decision, last);
      if (r.end == watch_end::deadline) break;
      if (r.end == watch_end::http_error) return report_watch_failure(r);
      // Dropped or unreachable: the proxy may be restarting; try again within the timeout.
      last_problem = r.message;
      auto left = deadline - steady::now();
      if (left <= steady::duration::zero()) break;
      std::this_thread::sleep_for(std::min<steady::duration>(reconnect_delay, left));
    }
    std::cerr << "error: timed out after "
              << util::format_duration(std::chrono::duration_cast<milliseconds>(opts_.timeout))
              << " waiting for rollout '" << name() << "' to be " << to_string(opts_.wait_for);
    if (!last_problem.empty()) std::cerr << " (last problem: " << last_problem << ")";
    std::cerr << "\n";
    print_final(last);
    return exit_timeout;
  }

  const options& opts_;
  api_client& client_;
};

}  // namespace

int run(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  const char* env = std::getenv("CANARYCTL_SERVER");
  parse_result parsed = parse_args(args, env ? env : "");
  if (!parsed.opts) {
    std::cerr << "canaryctl: " << parsed.error << "\nRun 'canaryctl help' for usage.\n";
    return exit_usage;
  }
  const options& opts = *parsed.opts;
  if (opts.command == "help") {
    std::cout << usage();
    return 0;
  }
  if (opts.command == "version") {
    if (opts.output == output_format::json) {
      std::cout << pretty_json(json::object{{"client", CANARY_VERSION}});
    } else {
      std::cout << "canaryctl " CANARY_VERSION "\n";
    }
    return 0;
  }
  std::string token;
  if (!opts.token_file.empty()) {
    std::ifstream in(opts.token_file, std::ios::binary);
    if (!in) {
      std::cerr << "error: cannot read token file '" << opts.token_file
                << "': " << std::strerror(errno) << "\n";
      return 1;
    }
    std::stringstream content;
    content << in.rdbuf();
    token = std::string(util::trim(content.str()));
    if (token.empty()) {
      std::cerr << "error: token file '" << opts.token_file << "' is empty\n";
      return 1;
    }
  }
  url_result url = parse_server_url(opts.server);  // validated by parse_args
  std::string display = opts.server;
  while (display.size() > 7 && display.back() == '/') display.pop_back();
  try {
    api_client client(*url.url, display, token);
    cli c(opts, client);
    return c.dispatch();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace canary::ctl
