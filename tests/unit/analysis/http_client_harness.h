// The control-thread side of the analysis client tests: an io_context standing in for the control
// thread (the client delivers onto it) and a bounded wait for answers. Test thread only.
#pragma once

#include <chrono>
#include <optional>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "analysis/http_client.h"

namespace canary::analysis::testing {

struct control_thread {
  boost::asio::io_context ioc;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
      ioc.get_executor()};

  http_client::deliver_fn deliver() {
    return [this](std::function<void()> f) { boost::asio::post(ioc, std::move(f)); };
  }
  // Runs delivered callbacks until `done()` holds or 20 s pass (a hung client fails the test
  // instead of hanging it).
  template <class Pred>
  bool run_until(Pred done) {
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < limit)
      ioc.run_one_for(std::chrono::milliseconds(50));
    return done();
  }
};

inline http_response call(http_client& client, control_thread& ctl, http_request req) {
  std::optional<http_response> out;
  client.send(std::move(req), [&](http_response r) { out = std::move(r); });
  ctl.run_until([&] { return out.has_value(); });
  return out ? *out : http_response{http_response::outcome::error, 0, "", "no answer in 20 s"};
}

}  // namespace canary::analysis::testing
