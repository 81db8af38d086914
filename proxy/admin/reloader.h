// Config reloads without blocking the control thread: the file is read, validated and its host
// names resolved (getaddrinfo, which may wait for a slow DNS server) on a loader thread of its
// own; the result is posted back to the control io_context and applied there with
// engine::reload(config). Control thread only (the loader thread never touches the engine);
// lives as long as the control io_context runs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "rollout/engine.h"

namespace canary::admin {

class reloader {
 public:
  using done_fn = std::function<void(const rollout::api_result&)>;

  reloader(boost::asio::io_context& control, rollout::engine& engine);
  // Waits for a load in progress to end (its result is dropped).
  ~reloader();
  reloader(const reloader&) = delete;
  reloader& operator=(const reloader&) = delete;

  // Reloads engine.config().file; `done` runs on the control thread with what
  // engine::reload() would answer: 200, or 422 with the config errors (the old config keeps
  // serving). One load runs at a time. A request made while a load runs joins the next load,
  // which starts when the running one ends and reads the file as it is then: every caller gets
  // the outcome of a load that started after its request, so an edit made just before a reload
  // is never answered with an older read. All requests waiting meanwhile share that one load.
  void request(done_fn done);

  bool loading() const;
  // Loads refused because the file had errors, or that could not run (engine::reload(config)
  // counts the rest: successes and configs it refuses).
  std::uint64_t load_failures() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace canary::admin
