// Process wiring; see proxy_server.h. The control thread is the main thread: it runs the admin
// server, the rollout engine, the timers and the signal handlers on one io_context.
#include "core/proxy_server.h"

#include <csignal>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "admin/api.h"
#include "admin/dashboard.h"
#include "admin/metrics_text.h"
#include "admin/server.h"
#include "core/worker.h"
#include "rollout/engine.h"

namespace canary::core {

namespace {

constexpr auto tick_interval = std::chrono::milliseconds(200);

tcp::endpoint resolve(net::io_context& ioc, const config::listen_config& l) {
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(l.host, std::to_string(l.port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive);
  return *results.begin();
}

// Re-arms itself every `every` and calls fn.
void every(boost::asio::steady_timer& t, std::chrono::milliseconds period,
           std::function<void()> fn) {
  t.expires_after(period);
  t.async_wait([&t, period, fn = std::move(fn)](boost::system::error_code ec) mutable {
    if (ec) return;
    fn();
    every(t, period, std::move(fn));
  });
}

}  // namespace

int run_proxy(std::shared_ptr<const config::proxy_config> cfg, const run_options& options) {
  net::io_context control;
  worker_shared shared;
  std::vector<std::unique_ptr<worker>> workers;

  rollout::engine engine(
      cfg, [] { return rollout::wall_clock::now(); },
      [&workers](std::shared_ptr<const snapshot> s) {
        for (auto& w : workers) w->install(s);
      });

  const int n = cfg->workers > 0 ? cfg->workers
                                 : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (int i = 0; i < n; ++i)
    workers.push_back(std::make_unique<worker>(i, shared, engine.snapshot()));

  auto data_ep = resolve(control, cfg->listen);
  std::uint16_t port = 0;
  for (auto& w : workers) {
    // Port 0: the first worker picks it, the others join it through SO_REUSEPORT.
    port = w->listen(tcp::endpoint(data_ep.address(), port ? port : data_ep.port()));
  }
  spdlog::info("proxy listening on {}:{} ({} workers)", data_ep.address().to_string(), port, n);

  bool draining = false;
  std::vector<const metrics::worker_cells*> cells;
  for (auto& w : workers) cells.push_back(&w->cells());
  admin::api_options api_opts;
  api_opts.token = options.admin_token;
  api_opts.listen_host = cfg->admin.listen.host;
  api_opts.draining = [&draining] { return draining; };
  api_opts.metrics = [&] { return admin::render_metrics(engine, cells); };
  api_opts.dashboard = [] { return std::string(admin::dashboard_html()); };
  admin::api api(engine, api_opts);
  admin::server admin_server(control, engine, api);
  auto admin_ep = resolve(control, cfg->admin.listen);
  const auto admin_port = admin_server.listen(admin_ep);
  api.set_listen_port(admin_port);
  admin_server.start();
  spdlog::info("admin listening on {}:{}", admin_ep.address().to_string(), admin_port);

  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  boost::asio::steady_timer ticker(control);
  every(ticker, tick_interval, [&] { engine.tick(); });

  boost::asio::steady_timer drain_timer(control);
  const auto drain_deadline_after = engine.config().timeouts.drain;
  std::chrono::steady_clock::time_point drain_deadline;

  std::function<void()> check_drained = [&] {
    std::size_t open = 0;
    for (auto& w : workers) open += w->open_sessions();
    if (open == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
      if (open) spdlog::warn("drain: deadline reached, cutting {} connections", open);
      for (auto& w : workers) w->stop();
      admin_server.close_streams();
      control.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(50));
    drain_timer.async_wait([&](boost::system::error_code ec) {
      if (!ec) check_drained();
    });
  };

  boost::asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
  std::function<void(boost::system::error_code, int)> on_signal =
      [&](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
          spdlog::info("SIGHUP: reloading {}", engine.config().file);
          engine.reload();
        } else if (!draining) {
          spdlog::info("{}: draining (up to {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                       engine.config().timeouts.drain.count());
          draining = true;
          drain_deadline = std::chrono::steady_clock::now() + drain_deadline_after;
          for (auto& w : workers) w->drain();
          check_drained();
        } else {
          spdlog::info("second signal: stopping now");
          drain_deadline = std::chrono::steady_clock::now();
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  for (;;) {
    try {
      control.run();
      break;
    } catch (const std::exception& e) {
      spdlog::error("control thread: unexpected exception: {}", e.what());
    }
  }
  for (auto& w : workers) w->stop();
  for (auto& t : threads) t.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace canary::core
