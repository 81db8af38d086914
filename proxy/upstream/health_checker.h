// Active health checks (see `health_check` in docs/config-reference.md): the control thread probes
// every endpoint of an upstream that configures them with `GET path` every interval; `unhealthy`
// failures in a row mark it down for routing, `healthy` successes in a row bring it back. Endpoints
// start up. Control thread only; endpoints' health_down flags are read by workers (atomics).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.h"
#include "upstream/endpoint.h"

namespace canary::upstream {

// Consecutive-result thresholds; pure.
struct health_state {
  int successes = 0;
  int failures = 0;
  bool down = false;
  // Returns true when `down` changed.
  bool record(bool ok, const config::health_check_config& cfg);
};

struct health_target {
  std::string upstream;
  std::shared_ptr<endpoint> ep;
  config::health_check_config cfg;
};

class health_checker {
 public:
  explicit health_checker(boost::asio::io_context& ioc);
  ~health_checker();
  // The endpoints to probe now (after each config load); state of kept endpoints carries over.
  void set_targets(std::vector<health_target> targets);
  void start();
  void stop();

 private:
  struct probe_state;
  void schedule();
  void on_tick();
  void probe(std::shared_ptr<probe_state> p);

  boost::asio::io_context& ioc_;
  boost::asio::steady_timer timer_;
  std::map<std::string, std::shared_ptr<probe_state>> probes_;  // by upstream/endpoint
  bool stopped_ = false;
};

}  // namespace canary::upstream
