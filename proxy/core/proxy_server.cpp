// Process wiring; see proxy_server.h. The control thread is the main thread: it runs the admin
// server, the rollout engine, the timers and the signal handlers on one io_context. A config
// reload reads the file on a thread of its own (admin/reloader.h) so that nothing here waits.
#include "core/proxy_server.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "admin/api.h"
#include "admin/dashboard.h"
#include "admin/metrics_text.h"
#include "admin/reloader.h"
#include "admin/stats.h"  // [observability]
#include "admin/server.h"
#include "core/worker.h"
#include "rollout/engine.h"
#include "rollout/state_file.h"
#include "upstream/health_checker.h"

namespace canary::core {

namespace {

constexpr auto tick_interval = std::chrono::milliseconds(200);

tcp::endpoint resolve(net::io_context& ioc, const config::listen_config& l) {
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(l.host, std::to_string(l.port),
                                  tcp::resolver::numeric_service | tcp::resolver::passive);
  return *results.begin();
}

// "[::1]:8080" for IPv6 (RFC 3986 §3.2.2: a literal IPv6 address in an authority is
// bracketed), "127.0.0.1:8080" otherwise.
std::string host_port(const net::ip::address& a, std::uint16_t port) {
  const auto host = a.to_string();
  return (a.is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(port);
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

void serve_until_drained(std::shared_ptr<const config::proxy_config> cfg,
                         const run_options& options) {
  net::io_context control;
  worker_shared shared;
  std::vector<std::unique_ptr<worker>> workers;

  upstream::health_checker checker(control);
  rollout::engine engine(
      cfg, [] { return rollout::wall_clock::now(); },
      [&workers, &checker](std::shared_ptr<const snapshot> s) {
        std::vector<upstream::health_target> targets;
        for (const auto& u : s->upstreams)
          if (u.health_check)
            for (const auto& e : u.endpoints) targets.push_back({u.name, e, *u.health_check});
        checker.set_targets(std::move(targets));
        for (auto& w : workers) w->install(s);
      },
      std::make_shared<rollout::file_state_store>(cfg->state_file));
  checker.start();

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
  spdlog::info("proxy listening on {} ({} workers)", host_port(data_ep.address(), port), n);

  bool draining = false;
  std::vector<const metrics::worker_cells*> cells;
  for (auto& w : workers) cells.push_back(&w->cells());
  // The analysis reads the same cells as /metrics, on the control thread.
  engine.set_analysis_inputs(
      [&engine, &cells](const std::string& route) {
        const auto st = engine.status(route);
        if (!st) return analysis::interval_sample{};
        return admin::sample_route(engine.series(), cells, route, st->state->stable,
                                   st->state->canary);
      },
      {});
  admin::api_options api_opts;
  api_opts.token = options.admin_token;
  api_opts.listen_host = cfg->admin.listen.host;
  api_opts.draining = [&draining] { return draining; };
  // [observability] /metrics from a prometheus-cpp Collectable over the cells; /api/v1/stats
  // from a ring of once-a-second samples of the same cells (stats_timer below).
  // Reloads (API and SIGHUP) load the file on a thread of their own: the control thread never
  // waits for the disk or a DNS server.
  admin::reloader reloads(control, engine);
  admin::metrics_exposition exposition(engine, cells,
                                       [&reloads] { return reloads.load_failures(); });
  api_opts.metrics = [&exposition] { return exposition.render(); };
  admin::stats_ring stats;
  auto route_names = [&engine] {
    std::vector<std::string> names;
    for (const auto& s : engine.statuses()) names.push_back(s.route->name);
    return names;
  };
  api_opts.stats = [&] { return stats.json(route_names()); };
  // [/observability]
  api_opts.dashboard = [] { return std::string(admin::dashboard_html()); };
  admin::api api(engine, api_opts);
  const auto admin_limits = admin::limits_for_this_process();
  admin::server admin_server(control, engine, api, reloads, admin_limits);
  auto admin_ep = resolve(control, cfg->admin.listen);
  const auto admin_port = admin_server.listen(admin_ep);
  api.set_listen_port(admin_port);
  admin_server.start();
  spdlog::info("admin listening on {} (at most {} connections, {} watch streams)",
               host_port(admin_ep.address(), admin_port), admin_limits.max_connections,
               admin_limits.max_watchers);

  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  boost::asio::steady_timer ticker(control);
  every(ticker, tick_interval, [&] { engine.tick(); });

  // [observability] one stats sample per second (admin/stats.h).
  boost::asio::steady_timer stats_timer(control);
  auto sample_stats = [&] {
    const double now_s = std::chrono::duration<double>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
    stats.push(admin::take_sample(now_s, engine.series(), cells));
  };
  sample_stats();
  every(stats_timer, std::chrono::seconds(1), sample_stats);
  // SIGUSR1 (log rotation): the data plane fills this to post access_log::reopen() to every
  // worker.
  std::function<void()> reopen_access_logs = [&workers] {
    for (auto& w : workers) w->reopen_access_log();
  };
  // [/observability]

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
  signals.add(SIGUSR1);  // [observability] access log reopen
  std::function<void(boost::system::error_code, int)> on_signal =
      [&](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGUSR1) {  // [observability]
          spdlog::info("SIGUSR1: reopening access logs");
          if (reopen_access_logs) reopen_access_logs();
        } else if (sig == SIGHUP) {
          spdlog::info("SIGHUP: reloading {}", engine.config().file);
          reloads.request([](const rollout::api_result& r) {
            if (r.status != 200) spdlog::error("SIGHUP: reload refused: {}", r.error);
          });
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
  spdlog::shutdown();
  // Everything durable is already on disk (the state file is written on every change). Tearing
  // the object graph down would destroy suspended coroutines (sessions, watch streams) after the
  // objects they refer to: exit here instead, as the process is ending anyway.
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace canary::core
