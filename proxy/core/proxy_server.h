// The process: workers (data plane), the control thread (admin API, rollout timers, signals,
// reloads, persistence) and the drain on SIGTERM. Built by main from a validated config.
#pragma once

#include <memory>

#include "config/config.h"
#include "core/upgrade.h"

namespace canary::core {

struct run_options {
  std::string admin_token;  // "" = none
  upgrade::exec_target self;  // what SIGUSR2 execs
};

// Serves until SIGTERM / SIGINT and a drain (or a binary upgrade handed everything over, SIGUSR2),
// then ends the process with exit code 0: it never returns. Started by an upgrading process, it
// accepts on the listeners that one hands over and binds none. Throws std::runtime_error for start-up failures (state file, bind) with a message for
// the user.
[[noreturn]] void serve_until_drained(std::shared_ptr<const config::proxy_config> cfg,
                                      const run_options& options);

}  // namespace canary::core
