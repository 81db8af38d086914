// canary-proxy: argv -> load and validate the config -> the start checks -> run (or, with
// --check, exit after the checks). The one top-level try/catch.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "config/load.h"
#include "core/proxy_server.h"
#include "core/snapshot_builder.h"
#include "metrics/registry.h"
#include "rollout/engine.h"
#include "rollout/state_file.h"
#include "upstream/endpoint.h"
#include "util/text.h"

namespace {

constexpr const char* usage =
    "canary-proxy: HTTP/1.1 reverse proxy that runs canary releases\n"
    "\n"
    "Usage: canary-proxy --config FILE [--check]\n"
    "       canary-proxy --version | --help\n"
    "\n"
    "Options:\n"
    "  --config FILE, --config=FILE\n"
    "                 the YAML config (keys: docs/config-reference.md; example:\n"
    "                 config/canary-demo.yaml); relative paths in it are resolved against\n"
    "                 its directory\n"
    "  --check        validate the config and exit: 0 and \"FILE: ok\", or 1 with every error\n"
    "                 listed as FILE:LINE:COL: key.path: message (like nginx -t)\n"
    "  --version      print the version and exit\n"
    "  -h, --help     print this help and exit\n"
    "\n"
    "Signals:\n"
    "  SIGHUP         reload the config (refused, with the errors logged, if it has errors)\n"
    "  SIGTERM, SIGINT\n"
    "                 drain: stop accepting, finish in-flight requests up to timeouts.drain,\n"
    "                 exit 0; a second signal stops at once\n"
    "  SIGUSR1        reopen the access log file (after log rotation)\n"
    "  SIGUSR2        binary upgrade: start this binary again (same path and arguments), hand\n"
    "                 it every listening socket, then drain and exit 0 once it is ready; if it\n"
    "                 fails to start, keep serving\n"
    "\n"
    "Logs go to standard error; the access log (access_log.path \"-\") to standard output.\n"
    "The control API, /metrics and the dashboard are on admin.listen (default\n"
    "127.0.0.1:9901): see canaryctl --help.\n"
    "\n"
    "Exit codes: 0 ok (and after a drain); 1 config errors or a start-up failure; 2 usage error.\n";

// admin.token_file's content, trimmed; "" without one. Throws std::runtime_error naming the
// file when it cannot be read or holds no token.
std::string read_admin_token(const canary::config::proxy_config& cfg) {
  const auto& tf = cfg.admin.token_file;
  if (tf.empty()) return {};
  std::ifstream in(tf);
  if (!in) throw std::runtime_error("cannot read admin.token_file " + tf + ": " +
                                    std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string token(canary::util::trim(ss.str()));
  if (token.empty()) throw std::runtime_error("admin.token_file " + tf + " is empty");
  return token;
}

// A start opens access_log.path for appending (creating it); this asks the same question
// without creating or touching the file.
void check_access_log(const canary::config::access_log_config& cfg) {
  if (!cfg.enabled || cfg.path == "-") return;
  std::string dir = std::filesystem::path(cfg.path).parent_path().string();
  if (dir.empty()) dir = ".";
  const bool exists = ::access(cfg.path.c_str(), F_OK) == 0;
  if (exists ? ::access(cfg.path.c_str(), W_OK) != 0
             : ::access(dir.c_str(), W_OK | X_OK) != 0)
    throw std::runtime_error("access_log.path " + cfg.path + ": cannot open for appending: " +
                             std::strerror(errno));
}

// Everything a start refuses for, short of binding the listeners, run read-only: the admin
// token, the state file checked against the config (the rollout engine's own restore), and the
// first snapshot built from both (as the engine builds it). Throws std::runtime_error with the
// message a start would print.
void check_start(const std::shared_ptr<const canary::config::proxy_config>& cfg) {
  read_admin_token(*cfg);
  canary::rollout::file_state_store store(cfg->state_file);
  const auto states = canary::rollout::restore_states(*cfg, store.load(), store.describe(),
                                                      canary::rollout::wall_clock::now());
  canary::upstream::endpoint_registry endpoints;
  canary::metrics::series_registry series;
  canary::core::build_snapshot(canary::core::compile_config(cfg, endpoints, series), states,
                               series, 1);
  check_access_log(cfg->access_log);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_file;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--version") {
      std::printf("canary-proxy %s\n", CANARY_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (a == "--check") {
      check = true;
    } else if (a == "--config" && i + 1 < argc) {
      config_file = argv[++i];
    } else if (a.starts_with("--config=")) {
      config_file = std::string(a.substr(9));
    } else {
      std::fprintf(stderr, "canary-proxy: unknown argument '%s'\n%s", argv[i], usage);
      return 2;
    }
  }
  if (config_file.empty()) {
    std::fprintf(stderr, "canary-proxy: --config FILE is required\n%s", usage);
    return 2;
  }

  auto loaded = canary::config::load_file(config_file);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    std::fprintf(stderr, "canary-proxy: %zu error%s in %s\n", loaded.errors.size(),
                 loaded.errors.size() == 1 ? "" : "s", config_file.c_str());
    return 1;
  }
  // Logs go to stderr: stdout belongs to the access log ("-") and to --check's "FILE: ok".
  spdlog::set_default_logger(spdlog::stderr_color_mt("canary-proxy"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  try {
    auto cfg = std::make_shared<const canary::config::proxy_config>(std::move(*loaded.config));
    if (check) {
      check_start(cfg);
      std::printf("%s: ok\n", config_file.c_str());
      return 0;
    }
    canary::core::run_options options;
    options.admin_token = read_admin_token(*cfg);
    options.self = canary::core::upgrade::resolve_self(argc, argv);
    canary::core::serve_until_drained(cfg, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "canary-proxy: %s\n", e.what());
    return 1;
  }
}
