// Process wiring; see proxy_server.h. The control thread is the main thread: it runs the admin
// server, the rollout engine, the timers and the signal handlers on one io_context. A config
// reload reads the file on a thread of its own (admin/reloader.h) so that nothing here waits.
#include "core/proxy_server.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "admin/api.h"
#include "admin/dashboard.h"
#include "admin/metrics_text.h"
#include "admin/reloader.h"
#include "admin/stats.h"  // [observability]
#include "admin/server.h"
#include "core/upgrade.h"
#include "core/worker.h"
#include "fleet/node.h"
#include "analysis/http_client.h"
#include "rollout/engine.h"
#include "rollout/state_file.h"
#include "upstream/health_checker.h"

namespace canary::core {

namespace {

constexpr auto tick_interval = std::chrono::milliseconds(200);
// After a hand-over, how long a keep-alive connection idle at that moment may still send its
// next request to this process (answered with Connection: close) before it is closed.
constexpr auto upgrade_idle_grace = std::chrono::milliseconds(1000);

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
  // Started by SIGUSR2 of the process this one replaces: its listeners, before the state file is
  // read (that process has stopped writing it before it sends them).
  const auto inherited = upgrade::receive_listeners(std::chrono::seconds(10));
  net::io_context control;
  worker_shared shared;
  std::vector<std::unique_ptr<worker>> workers;

  upstream::health_checker checker(control);
  // state_store: etcd — the rollout states are shared by a fleet (docs/fleet.md).
  std::unique_ptr<fleet::node> fleet_node;
  if (cfg->state_store.type == config::state_store_config::kind::etcd)
    fleet_node = std::make_unique<fleet::node>(control, *cfg);
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
      fleet_node ? fleet_node->store()
                 : std::make_shared<rollout::file_state_store>(cfg->state_file));
  checker.start();

  int n = cfg->workers > 0 ? cfg->workers
                           : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const std::size_t handed_over =
      inherited ? std::max(inherited->data_fds.size(), inherited->tls_fds.size()) : 0;
  if (inherited && static_cast<std::size_t>(n) != handed_over) {
    // One worker per handed-over socket: closing one would reset the connections in its queue.
    spdlog::warn("upgrade: {} workers configured, {} listeners handed over: running {} (workers "
                 "change on a restart)",
                 n, handed_over, handed_over);
    n = static_cast<int>(handed_over);
  }
  for (int i = 0; i < n; ++i)
    workers.push_back(std::make_unique<worker>(i, shared, engine.snapshot()));

  // Listeners: bound here, or the ones a binary upgrade handed over (never bound anew: closing a
  // reuseport socket would reset the connections waiting in its queue).
  auto listen_all = [&](const config::listen_config& where, bool tls,
                        const std::vector<int>* handed, const char* what) {
    const auto ep = resolve(control, where);
    std::uint16_t port = 0;
    for (std::size_t i = 0; i < workers.size(); ++i) {
      if (handed) {
        port = tls ? workers[i]->adopt_tls((*handed)[i]) : workers[i]->adopt((*handed)[i]);
        continue;
      }
      // Port 0: the first worker picks it, the others join it through SO_REUSEPORT.
      const tcp::endpoint at(ep.address(), port ? port : ep.port());
      port = tls ? workers[i]->listen_tls(at) : workers[i]->listen(at);
    }
    if (handed && ep.port() != 0 && ep.port() != port)
      spdlog::warn("upgrade: {} {} differs from the handed-over port {}; it changes on a restart",
                   what, where.text, port);
    spdlog::info("proxy listening on {} ({}{} workers)", host_port(ep.address(), port),
                 tls ? "TLS, " : "", n);
  };
  const bool plain_on = !cfg->listen.text.empty();  // "": TLS only
  if (inherited) {
    // What the old process listened on is what this one serves until a restart.
    if (!inherited->data_fds.empty())
      listen_all(plain_on ? cfg->listen : config::listen_config{"0.0.0.0", 0, "(handed over)"},
                 false, &inherited->data_fds, "listen");
    if (!inherited->tls_fds.empty())
      listen_all(cfg->tls ? cfg->tls->listen
                          : config::listen_config{"0.0.0.0", 0, "(handed over)"},
                 true, &inherited->tls_fds, "tls.listen");
    if (plain_on != !inherited->data_fds.empty() || cfg->tls.has_value() != !inherited->tls_fds.empty())
      spdlog::warn("upgrade: the config's listeners differ from the handed-over ones; they "
                   "change on a restart");
  } else {
    if (plain_on) listen_all(cfg->listen, false, nullptr, "listen");
    if (cfg->tls) listen_all(cfg->tls->listen, true, nullptr, "tls.listen");
  }

  bool draining = false;
  pid_t successor = -1;  // from a SIGUSR2 hand-over on: the new process
  std::vector<const metrics::worker_cells*> cells;
  for (auto& w : workers) cells.push_back(&w->cells());
  // Provider metrics are asked on the client's own thread; answers come back to this one.
  analysis::http_client providers(
      [&control](std::function<void()> fn) { net::post(control, std::move(fn)); });
  analysis::webhook_dispatcher hooks(providers);
  engine.set_webhooks(&hooks);
  // The analysis reads the same cells as /metrics, on the control thread.
  engine.set_analysis_inputs(
      [&engine, &cells](const std::string& route) {
        const auto st = engine.status(route);
        if (!st) return analysis::interval_sample{};
        return admin::sample_route(engine.series(), cells, route, st->state->stable,
                                   st->state->canary);
      },
      rollout::http_provider(providers));
  admin::api_options api_opts;
  api_opts.token = options.admin_token;
  api_opts.listen_host = cfg->admin.listen.host;
  api_opts.draining = [&draining] { return draining; };
  api_opts.upgrading = [&successor] {
    return successor < 0 ? std::string()
                         : "upgrading: this process is handing over to pid " +
                               std::to_string(successor);
  };
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
  std::uint16_t cluster_port = 0;  // the admin port, once bound: names this replica
  api_opts.cluster = [&fleet_node, &cluster_port] {
    return fleet_node ? fleet_node->cluster_json() : fleet::standalone_cluster_json(cluster_port);
  };
  admin::api api(engine, api_opts);
  const auto admin_limits = admin::limits_for_this_process();
  admin::server admin_server(control, engine, api, reloads, admin_limits);
  auto admin_ep = resolve(control, cfg->admin.listen);
  const auto admin_port =
      inherited ? admin_server.adopt(inherited->admin_fd) : admin_server.listen(admin_ep);
  api.set_listen_port(admin_port);
  cluster_port = admin_port;
  if (fleet_node) fleet_node->start(engine, admin_port);
  admin_server.start();
  spdlog::info("admin listening on {} (at most {} connections, {} watch streams)",
               host_port(admin_ep.address(), admin_port), admin_limits.max_connections,
               admin_limits.max_watchers);

  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });

  // Ready: systemd learns the main pid from the new process of an upgrade (NotifyAccess=all),
  // and the old process starts its drain once told.
  if (inherited) {
    if (auto err = upgrade::notify_systemd("MAINPID=" + std::to_string(::getpid()) + "\nREADY=1");
        !err.empty())
      spdlog::warn("{}", err);
    if (auto err = upgrade::send_ready(inherited->channel); !err.empty())
      spdlog::warn("{}", err);
    spdlog::info("upgrade: pid {} serves on the handed-over listeners", ::getpid());
  } else if (auto err = upgrade::notify_systemd("READY=1"); !err.empty()) {
    spdlog::warn("{}", err);
  }

  boost::asio::steady_timer ticker(control);
  // Timed pauses write the state: not once a hand-over to a new process began.
  every(ticker, tick_interval, [&] {
    if (successor < 0) engine.tick();
  });

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

  auto start_drain = [&](std::chrono::milliseconds idle_grace) {
    draining = true;
    drain_deadline = std::chrono::steady_clock::now() + drain_deadline_after;
    for (auto& w : workers) w->drain(idle_grace);
    check_drained();
  };

  // SIGUSR2: the hand-over. From the moment it starts this process writes no state (the tick
  // above, and mutating API calls answer 503), so the new process reads a file no one writes.
  struct handover {
    handover(net::io_context& ioc) : channel(ioc), timer(ioc) {}
    net::local::stream_protocol::socket channel;
    boost::asio::steady_timer timer;
    boost::asio::streambuf reply;
    bool done = false;
  };
  auto upgrade_failed = [&](const std::shared_ptr<handover>& h, const std::string& why,
                            bool kill_it) {
    h->done = true;
    h->timer.cancel();
    boost::system::error_code ignored;
    h->channel.close(ignored);
    int status = 0;
    pid_t got = ::waitpid(successor, &status, WNOHANG);
    // Its end of the channel closes as it exits, a moment before it can be reaped.
    for (int i = 0; got == 0 && !kill_it && i < 100; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      got = ::waitpid(successor, &status, WNOHANG);
    }
    if (got == 0 || kill_it) {
      ::kill(successor, SIGKILL);
      got = ::waitpid(successor, &status, 0);
    }
    const std::string how = got == successor ? upgrade::describe_wait_status(status) : "is gone";
    spdlog::error("upgrade failed: {}; new process {} {}; this process keeps serving", why,
                  successor, how);
    successor = -1;
    engine.hold_writes(false);
  };
  auto start_upgrade = [&] {
    if (draining || successor >= 0) {
      spdlog::warn("SIGUSR2 ignored: {}", draining ? "draining" : "a hand-over is running");
      return;
    }
    if (reloads.loading()) {
      // Its result would be applied (and saved) here after the new process read the state.
      spdlog::warn("SIGUSR2 ignored: a config reload is running; send it again when it is done");
      return;
    }
    auto child = upgrade::spawn(options.self);
    if (!child.error.empty()) {
      spdlog::error("upgrade failed: cannot start {}: {}; this process keeps serving",
                    options.self.path, child.error);
      return;
    }
    successor = child.pid;
    engine.hold_writes(true);
    spdlog::info("SIGUSR2: handing over to pid {} ({})", child.pid, options.self.path);
    auto h = std::make_shared<handover>(control);
    h->channel.assign(net::local::stream_protocol(), child.channel);
    std::vector<int> data_fds;
    std::vector<int> tls_fds;
    for (auto& w : workers) {
      if (w->listen_handle() >= 0) data_fds.push_back(w->listen_handle());
      if (w->tls_listen_handle() >= 0) tls_fds.push_back(w->tls_listen_handle());
    }
    if (auto err = upgrade::send_listeners(child.channel, data_fds, tls_fds,
                                           admin_server.listen_handle());
        !err.empty()) {
      upgrade_failed(h, err, true);
      return;
    }
    h->timer.expires_after(upgrade::ready_timeout);
    h->timer.async_wait([&, h](boost::system::error_code ec) {
      if (ec || h->done) return;
      upgrade_failed(h, "not ready within " + std::to_string(upgrade::ready_timeout.count()) + "s",
                     true);
    });
    net::async_read_until(
        h->channel, h->reply, '\n',
        [&, h](boost::system::error_code ec, std::size_t) {
          if (h->done) return;
          std::string line;
          std::istream in(&h->reply);
          std::getline(in, line);
          if (ec || !line.starts_with("ready ")) {
            upgrade_failed(h,
                           ec ? "it ended before it was ready (" + ec.message() + ")"
                              : "unexpected answer \"" + line + "\"",
                           !ec);
            return;
          }
          h->done = true;
          h->timer.cancel();
          spdlog::info("upgrade: pid {} is ready; draining (up to {} ms), then exiting",
                       successor, drain_deadline_after.count());
          admin_server.stop_accepting();
          start_drain(std::min<std::chrono::milliseconds>(upgrade_idle_grace,
                                                          drain_deadline_after / 2));
        });
  };

  boost::asio::signal_set signals(control, SIGTERM, SIGINT, SIGHUP);
  signals.add(SIGUSR1);  // [observability] access log reopen
  signals.add(SIGUSR2);  // binary upgrade
  std::function<void(boost::system::error_code, int)> on_signal =
      [&](boost::system::error_code ec, int sig) {
        if (ec) return;
        if (sig == SIGUSR1) {  // [observability]
          spdlog::info("SIGUSR1: reopening access logs");
          if (reopen_access_logs) reopen_access_logs();
        } else if (sig == SIGUSR2) {
          start_upgrade();
        } else if (sig == SIGHUP && successor >= 0) {
          spdlog::warn("SIGHUP ignored: handing over to pid {}", successor);
        } else if (sig == SIGHUP) {
          spdlog::info("SIGHUP: reloading {}", engine.config().file);
          reloads.request([](const rollout::api_result& r) {
            if (r.status != 200) spdlog::error("SIGHUP: reload refused: {}", r.error);
          });
        } else if (!draining) {
          spdlog::info("{}: draining (up to {} ms)", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                       engine.config().timeouts.drain.count());
          start_drain(std::chrono::milliseconds(0));
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
