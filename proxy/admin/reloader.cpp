// Config loads off the control thread; see reloader.h.
#include "admin/reloader.h"

#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "config/load.h"

namespace canary::admin {

namespace net = boost::asio;

struct reloader::impl : std::enable_shared_from_this<impl> {
  impl(net::io_context& c, rollout::engine& e) : control_(c), engine_(e) {}

  void start_load();
  // `failure` set: the load could not run at all (no thread).
  void finish(const std::string& file, config::load_result loaded,
              std::optional<rollout::api_result> failure = std::nullopt);

  net::io_context& control_;
  rollout::engine& engine_;
  std::vector<done_fn> current_;  // waiting for the load in progress
  std::vector<done_fn> next_;     // arrived during it: wait for the next load
  bool loading_ = false;
  std::uint64_t load_failures_ = 0;
  // One thread per load, joined when its result is applied (it has ended by then, or is about
  // to: posting the result is the last thing it does).
  std::thread loader_;
};

void reloader::impl::start_load() {
  loading_ = true;
  if (loader_.joinable()) loader_.join();
  // The loader holds only a weak reference: if the reloader is gone when the load ends, the
  // result is dropped.
  const std::string file = engine_.config().file;
  try {
    loader_ = std::thread([weak = weak_from_this(), &control = control_, file] {
      auto loaded = config::load_file(file);
      net::post(control, [weak, file, loaded = std::move(loaded)]() mutable {
        if (auto self = weak.lock()) self->finish(file, std::move(loaded));
      });
    });
  } catch (const std::system_error& e) {
    // Out of threads: answer (later, as always) rather than load on the control thread.
    rollout::api_result failed{503, "cannot reload " + file + ": no thread to load it on (" +
                                        e.what() + "); the old config keeps serving",
                               {}};
    net::post(control_, [weak = weak_from_this(), file, failed] {
      if (auto self = weak.lock()) self->finish(file, {}, failed);
    });
  }
}

void reloader::impl::finish(const std::string& file, config::load_result loaded,
                            std::optional<rollout::api_result> failure) {
  if (loader_.joinable()) loader_.join();
  rollout::api_result result;
  if (failure) {
    ++load_failures_;
    result = std::move(*failure);
    spdlog::error("reload: {}", result.error);
  } else if (!loaded.config) {
    // The same answer and log lines as engine::reload() gives for a file with errors.
    ++load_failures_;
    result = {422, "config " + file + " has errors; the old config keeps serving", {}};
    for (const auto& e : loaded.errors) result.errors.push_back(e.to_string());
    for (const auto& e : result.errors) spdlog::error("reload: {}", e);
  } else {
    result = engine_.reload(*loaded.config);
  }
  auto waiting = std::move(current_);
  current_.clear();
  if (!next_.empty()) {
    current_ = std::move(next_);
    next_.clear();
    start_load();
  } else {
    loading_ = false;
  }
  for (auto& done : waiting)
    if (done) done(result);
}

reloader::reloader(net::io_context& control, rollout::engine& engine)
    : impl_(std::make_shared<impl>(control, engine)) {}

reloader::~reloader() {
  if (impl_->loader_.joinable()) impl_->loader_.join();
}

void reloader::request(done_fn done) {
  if (impl_->loading_) {
    impl_->next_.push_back(std::move(done));
    return;
  }
  impl_->current_.push_back(std::move(done));
  impl_->start_load();
}

bool reloader::loading() const { return impl_->loading_; }

std::uint64_t reloader::load_failures() const { return impl_->load_failures_; }

}  // namespace canary::admin
