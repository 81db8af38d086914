// Active health checks; see health_checker.h. A probe is one HTTP/1.1 request on a fresh
// connection with `Connection: close`; a 2xx or 3xx status line within `timeout` is a success.
#include "upstream/health_checker.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "core/types.h"

namespace canary::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;

namespace {
constexpr auto tick = std::chrono::milliseconds(100);
}  // namespace

bool health_state::record(bool ok, const config::health_check_config& cfg) {
  if (ok) {
    failures = 0;
    if (++successes >= cfg.healthy && down) {
      down = false;
      return true;
    }
  } else {
    successes = 0;
    if (++failures >= cfg.unhealthy && !down) {
      down = true;
      return true;
    }
  }
  return false;
}

struct health_checker::probe_state {
  health_target target;
  health_state state;
  steady::time_point next{};
  bool in_flight = false;
  bool retired = false;  // removed by a reload while a probe ran
};

health_checker::health_checker(net::io_context& ioc) : ioc_(ioc), timer_(ioc) {}

health_checker::~health_checker() = default;

void health_checker::set_targets(std::vector<health_target> targets) {
  std::map<std::string, std::shared_ptr<probe_state>> next;
  for (auto& t : targets) {
    const auto key = t.upstream + "/" + t.ep->text;
    auto it = probes_.find(key);
    if (it != probes_.end() && it->second->target.ep == t.ep) {
      it->second->target.cfg = t.cfg;
      next.emplace(key, it->second);
    } else {
      auto p = std::make_shared<probe_state>();
      p->target = std::move(t);
      next.emplace(key, std::move(p));
    }
  }
  for (auto& [key, p] : probes_) {
    if (!next.count(key)) {
      p->retired = true;
      // Nothing probes it any more: it must not stay down because of a stale result.
      if (p->state.down) p->target.ep->health_down.store(false, std::memory_order_relaxed);
    }
  }
  probes_ = std::move(next);
}

void health_checker::start() { schedule(); }

void health_checker::stop() {
  stopped_ = true;
  timer_.cancel();
}

void health_checker::schedule() {
  timer_.expires_after(tick);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopped_) return;
    on_tick();
    schedule();
  });
}

void health_checker::on_tick() {
  const auto now = steady::now();
  for (auto& [key, p] : probes_) {
    if (p->in_flight || now < p->next) continue;
    p->in_flight = true;
    p->next = now + p->target.cfg.interval;
    probe(p);
  }
}

namespace {
// A coroutine's parameters live in its frame (a lambda's captures would not: the closure is gone
// once co_spawn returns), so the probe is a function taking its state.
template <class State>
canary::awaitable<void> run_probe(std::shared_ptr<State> p) {
  const auto& t = p->target;
  beast::basic_stream<tcp, executor, beast::unlimited_rate_policy> stream(
      co_await net::this_coro::executor);
  stream.expires_after(t.cfg.timeout);
  bool ok = false;
  std::string detail;
  auto [cec] = co_await stream.async_connect(t.ep->address, use_tuple);
  if (cec) {
    detail = "connect: " + cec.message();
  } else {
    std::string req = "GET " + t.cfg.path + " HTTP/1.1\r\nHost: " + t.ep->text +
                      "\r\nUser-Agent: canary-proxy-health-check\r\n"
                      "Connection: close\r\n\r\n";
    auto [wec, wn] = co_await net::async_write(stream, net::buffer(req), use_tuple);
    std::string line;
    if (!wec) {
      auto [rec, rn] = co_await net::async_read_until(stream, net::dynamic_buffer(line, 4096),
                                                      "\r\n", use_tuple);
      // "HTTP/1.1 200 OK": the status is characters 9-11.
      if (!rec && line.size() >= 12 && line.starts_with("HTTP/1.") &&
          (line[9] == '2' || line[9] == '3'))
        ok = true;
      else
        detail = rec ? "read: " + rec.message() : "status: " + line.substr(0, line.find('\r'));
    } else {
      detail = "write: " + wec.message();
    }
  }
  p->in_flight = false;
  if (p->retired) co_return;
  if (p->state.record(ok, t.cfg)) {
    t.ep->health_down.store(p->state.down, std::memory_order_relaxed);
    if (p->state.down)
      spdlog::warn("health check: upstream {} endpoint {} is down ({})", t.upstream, t.ep->text,
                   detail);
    else
      spdlog::info("health check: upstream {} endpoint {} is up again", t.upstream, t.ep->text);
  }
}
}  // namespace

void health_checker::probe(std::shared_ptr<probe_state> p) {
  net::co_spawn(ioc_.get_executor(), run_probe(std::move(p)), net::detached);
}

}  // namespace canary::upstream
