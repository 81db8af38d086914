// Integration: the data plane in-process. A real core::worker (its own io_context thread and
// acceptor on 127.0.0.1 port 0) fed by a real rollout::engine (config from YAML, state file in a
// temporary directory), in front of two small Beast HTTP servers on 127.0.0.1 port 0 that answer
// with their colour. Clients are Beast over real sockets. Checks what the processes' e2e tests
// cannot see from outside: the snapshot the engine publishes is what the worker routes with, and
// a refused connect holds the endpoint object off (and fails over to the stable side).
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/load.h"
#include "core/worker.h"
#include "rollout/engine.h"

namespace canary {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// An HTTP/1.1 server on 127.0.0.1:0 that answers every request with `color`, keep-alive.
class fake_upstream {
 public:
  explicit fake_upstream(std::string color) : color_(std::move(color)) {
    acceptor_.open(tcp::v4());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind({net::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(ioc_, accept_loop(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~fake_upstream() {
    ioc_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return port_; }
  int requests() const { return requests_.load(); }

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, s] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      net::co_spawn(ioc_, serve(std::move(s)), net::detached);
    }
  }
  net::awaitable<void> serve(tcp::socket s) {
    beast::flat_buffer buf;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      auto [ec, n] = co_await bhttp::async_read(s, buf, req, net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++requests_;
      if (req.target() == "/split") {
        // The body in two writes, apart: the proxy relays it with one of its relay buffers.
        const std::string body(4096, 'x');
        std::string first = "HTTP/1.1 200 OK\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body.substr(0, 100);
        auto [e1, n1] = co_await net::async_write(s, net::buffer(first),
                                                  net::as_tuple(net::use_awaitable));
        net::steady_timer t(s.get_executor(), 50ms);
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        auto [e2, n2] = co_await net::async_write(
            s, net::buffer(body.data() + 100, body.size() - 100), net::as_tuple(net::use_awaitable));
        if (e1 || e2) co_return;
        continue;
      }
      bhttp::response<bhttp::string_body> res(bhttp::status::ok, 11);
      res.set(bhttp::field::content_type, "application/json");
      res.body() = "\"" + color_ + "\"";
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, m] = co_await bhttp::async_write(s, res, net::as_tuple(net::use_awaitable));
      if (wec || !req.keep_alive()) co_return;
    }
  }

  std::string color_;
  net::io_context ioc_;
  tcp::acceptor acceptor_{ioc_};
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// A port nothing listens on: bound, then closed.
std::uint16_t closed_port() {
  net::io_context ioc;
  tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// A keep-alive client connection to the proxy.
class client {
 public:
  explicit client(std::uint16_t port) : sock_(ioc_) {
    sock_.connect({net::ip::make_address("127.0.0.1"), port});
  }
  bhttp::response<bhttp::string_body> get(const std::string& target,
                                          const std::map<std::string, std::string>& headers = {}) {
    bhttp::request<bhttp::empty_body> req(bhttp::verb::get, target, 11);
    req.set(bhttp::field::host, "app.example");
    for (const auto& [k, v] : headers) req.set(k, v);
    bhttp::write(sock_, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::read(sock_, buf_, res);
    return res;
  }
  // Colour -> count over n requests.
  std::map<std::string, int> colors(int n, const std::map<std::string, std::string>& headers = {}) {
    std::map<std::string, int> out;
    for (int i = 0; i < n; ++i) {
      auto r = get("/color", headers);
      out[r.result_int() == 200 ? r.body() : std::to_string(r.result_int())]++;
    }
    return out;
  }

 private:
  net::io_context ioc_;
  tcp::socket sock_;
  beast::flat_buffer buf_;
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "canary-integration-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (worker_) {
      // The test's clients are closed: their sessions end by themselves (a session left open
      // here would be a connection the worker failed to close after its client did).
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (worker_->open_sessions() != 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
      EXPECT_EQ(worker_->open_sessions(), 0u) << "sessions still open at the end of the test";
      worker_->stop();
      thread_.join();
    }
    worker_.reset();
    engine_.reset();
    fs::remove_all(dir_);
  }

  // Loads the config (blue and green endpoints given), starts the engine and one worker.
  void start(std::uint16_t blue_port, std::uint16_t green_port) {
    const std::string yaml =
        "listen: \"127.0.0.1:0\"\n"
        "workers: 1\n"
        "admin: { listen: \"127.0.0.1:0\" }\n"
        "state_file: state.json\n"
        "timeouts: { upstream_connect: 1s }\n"
        "upstreams:\n"
        "  blue: { endpoints: [\"127.0.0.1:" + std::to_string(blue_port) + "\"] }\n"
        "  green: { endpoints: [\"127.0.0.1:" + std::to_string(green_port) + "\"] }\n"
        "routes:\n"
        "  - name: app\n"
        "    path_prefix: /\n"
        "    upstream: blue\n"
        "    steps: [{ setWeight: 20 }, { pause: {} }]\n";
    auto loaded = config::load_string(yaml, (dir_ / "proxy.yaml").string());
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
    auto cfg = std::make_shared<const config::proxy_config>(std::move(*loaded.config));
    engine_ = std::make_unique<rollout::engine>(
        cfg, [] { return rollout::wall_clock::now(); },
        [this](std::shared_ptr<const core::snapshot> s) {
          if (worker_) worker_->install(std::move(s));
        });
    worker_ = std::make_unique<core::worker>(0, shared_, engine_->snapshot());
    port_ = worker_->listen({net::ip::make_address("127.0.0.1"), 0});
    ASSERT_NE(port_, 0);
    thread_ = std::thread([this] { worker_->run(); });
  }

  // The worker's count of free relay buffers, read on its own thread.
  std::size_t free_buffers() {
    std::promise<std::size_t> p;
    auto f = p.get_future();
    net::post(worker_->context(), [&] { p.set_value(worker_->free_buffer_count()); });
    return f.get();
  }

  rollout::api_result apply(rollout::operation op, const std::string& upstream = "") {
    return engine_->apply("app", op, 0, upstream);
  }

  fs::path dir_;
  core::worker_shared shared_;
  std::unique_ptr<rollout::engine> engine_;
  std::unique_ptr<core::worker> worker_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

using counts = std::map<std::string, int>;

TEST_F(WorkerTest, TheEnginesSnapshotsDecideWhereRequestsGo) {
  fake_upstream blue("blue"), green("green");
  start(blue.port(), green.port());
  client c(port_);
  EXPECT_EQ(c.colors(20), (counts{{"\"blue\"", 20}}));
  EXPECT_EQ(c.colors(5, {{"X-Canary", "always"}}), (counts{{"\"blue\"", 5}}))
      << "no canary yet: the override has nothing to pick";

  ASSERT_EQ(apply(rollout::operation::set_upstream, "green").status, 200);
  // setWeight 20, smooth weighted round-robin: exactly one in five.
  EXPECT_EQ(c.colors(100), (counts{{"\"blue\"", 80}, {"\"green\"", 20}}));
  EXPECT_EQ(c.colors(10, {{"X-Canary", "always"}}), (counts{{"\"green\"", 10}}));
  EXPECT_EQ(c.colors(10, {{"X-Canary", "never"}}), (counts{{"\"blue\"", 10}}));

  ASSERT_EQ(apply(rollout::operation::promote_full).status, 200);
  EXPECT_EQ(c.colors(20), (counts{{"\"green\"", 20}}));
  EXPECT_EQ(blue.requests() + green.requests(), 20 + 5 + 100 + 10 + 10 + 20);
}

TEST_F(WorkerTest, AbortSendsEveryRequestBackToStable) {
  fake_upstream blue("blue"), green("green");
  start(blue.port(), green.port());
  ASSERT_EQ(apply(rollout::operation::set_upstream, "green").status, 200);
  client c(port_);
  EXPECT_EQ(c.colors(5, {{"X-Canary", "always"}}), (counts{{"\"green\"", 5}}));
  ASSERT_EQ(apply(rollout::operation::abort).status, 200);
  EXPECT_EQ(c.colors(5, {{"X-Canary", "always"}}), (counts{{"\"blue\"", 5}}));
  EXPECT_EQ(c.colors(20), (counts{{"\"blue\"", 20}}));
}

TEST_F(WorkerTest, ARefusedCanaryConnectFailsOverToStableAndHoldsTheEndpointOff) {
  fake_upstream blue("blue");
  const auto dead = closed_port();
  start(blue.port(), dead);
  ASSERT_EQ(apply(rollout::operation::set_upstream, "green").status, 200);
  const auto& green_ep = engine_->snapshot()->upstreams.at(1).endpoints.at(0);
  ASSERT_EQ(green_ep->address.port(), dead);
  EXPECT_TRUE(green_ep->up(upstream::steady::now()));

  client c(port_);
  auto r = c.get("/color", {{"X-Canary", "always"}});
  EXPECT_EQ(r.result_int(), 200) << r;
  EXPECT_EQ(r.body(), "\"blue\"") << "no failover to the stable side";
  EXPECT_TRUE(green_ep->held_off(upstream::steady::now()))
      << "the refused endpoint would be tried again at once";
  // Held off: the next ones go to blue without a connect attempt.
  EXPECT_EQ(c.colors(5, {{"X-Canary", "always"}}), (counts{{"\"blue\"", 5}}));
  EXPECT_EQ(blue.requests(), 6);
}

TEST_F(WorkerTest, RelayBuffersOfABurstAreFreedWhenNoLongerUsed) {
  fake_upstream blue("blue"), green("green");
  start(blue.port(), green.port());
  // Concurrent responses whose bodies arrive after their heads: each takes a relay buffer.
  constexpr int concurrent = 8;
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < concurrent; ++i)
    clients.emplace_back([&] {
      client c(port_);
      auto r = c.get("/split");
      if (r.result_int() == 200 && r.body().size() == 4096) ++ok;
    });
  for (auto& t : clients) t.join();
  ASSERT_EQ(ok.load(), concurrent);
  ASSERT_GE(free_buffers(), 1u) << "the responses were not relayed through relay buffers";
  // Unused for a whole trim interval, they go (polled; bounded by three intervals).
  const auto deadline = std::chrono::steady_clock::now() + 3 * core::worker::buffer_trim_interval;
  while (free_buffers() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_EQ(free_buffers(), 0u) << "idle relay buffers are kept for the life of the worker";
}

// A worker may be destroyed while clients still hold keep-alive connections: it ends their
// sessions itself, while its members are alive (before, the io_context's shutdown destroyed the
// session coroutines after the session list they detach from: a crash).
TEST_F(WorkerTest, AWorkerDestroyedWithOpenSessionsEndsThemFirst) {
  fake_upstream blue("blue"), green("green");
  start(blue.port(), green.port());
  client c(port_);
  EXPECT_EQ(c.colors(3), (counts{{"\"blue\"", 3}}));
  // The connection stays open (keep-alive) while the worker stops and is destroyed.
  ASSERT_EQ(worker_->open_sessions(), 1u);
  worker_->stop();
  thread_.join();
  worker_.reset();  // must not crash (ASan: no use after free)
}

}  // namespace
}  // namespace canary
