// Integration: two rollout engines in one process, each with its own etcd_state_store on a real
// etcd (Debian's etcd-server, started on 127.0.0.1 with free ports, stopped at the end), wired
// as a fleet replica wires them (fleet/node.cpp): the store's watch posts the states to the
// engine's control io_context, which adopts them. Checks that a change made on one replica is
// routed by the other without a save there, and that an operation on a replica that has not
// yet seen the other's change is re-applied on top of it (never lost, never applied twice).
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/load.h"
#include "fleet/etcd_store.h"
#include "rollout/engine.h"

namespace canary::fleet {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::uint16_t free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// One etcd member on loopback for the suite; killed (and its directory removed) at the end.
class etcd_process {
 public:
  etcd_process() {
    dir_ = fs::temp_directory_path() / ("canary-fleet-etcd-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    port_ = free_port();
    const auto peer = "http://127.0.0.1:" + std::to_string(free_port());
    std::vector<std::string> args = {"etcd", "--name=f", "--data-dir=" + (dir_ / "d").string(),
                                     "--listen-client-urls=" + url(),
                                     "--advertise-client-urls=" + url(),
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=f=" + peer};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test, even on abort
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execvp(fs::exists("/usr/bin/etcd") ? "/usr/bin/etcd" : "etcd", argv.data());
      ::_exit(127);
    }
  }
  ~etcd_process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool exited() { return pid_ <= 0 || ::waitpid(pid_, nullptr, WNOHANG) == pid_; }

 private:
  fs::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

const rollout::wall_time t0 =
    rollout::wall_time(std::chrono::sys_days(std::chrono::year(2026) / 12 / 6)) + 5h;

const char* const kConfig =
    "state_file: /nonexistent/state.json\n"
    "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, green: {endpoints: [\"127.0.0.1:9\"]}}\n"
    "routes: [{name: web, upstream: blue, steps: [{setWeight: 20}, {pause: {}}, "
    "{setWeight: 50}, {pause: {}}]}]\n";

// One replica: its control io_context (run by the test), store, engine and watch.
struct replica {
  replica(runtime& rt, const std::string& url, const std::string& prefix) {
    etcd_store_options o;
    o.endpoints.push_back(*parse_etcd_endpoint(url));
    o.prefix = prefix;
    o.dial_timeout = 500ms;
    o.call_timeout = 2s;
    store = std::make_shared<etcd_state_store>(rt, o);
    auto loaded = config::load_string(kConfig, "/nonexistent/c.yaml");
    engine = std::make_unique<rollout::engine>(
        std::make_shared<const config::proxy_config>(*loaded.config), [] { return t0; },
        [this](std::shared_ptr<const core::snapshot>) { ++published; }, store);
    std::weak_ptr<int> alive = alive_;
    store->watch(
        [this, alive](const etcd_state_store::remote_states& seen) {
          asio::post(control, [this, alive, seen] {
            if (alive.expired()) return;
            engine->adopt_remote(seen.states);
            store->adopted(seen);
          });
        },
        [](bool, const std::string&) {});
  }
  const rollout::route_state& state() const { return *engine->status("web")->state; }
  // Runs the control thread's handlers until `done` (bounded: 10 s).
  template <class F>
  bool run_until(F done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      control.restart();
      control.run_for(20ms);
    }
    return done();
  }

  asio::io_context control;
  std::shared_ptr<etcd_state_store> store;
  std::unique_ptr<rollout::engine> engine;
  int published = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

class fleet_engine_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    etcd_ = new etcd_process();
    runtime rt;
    etcd_client c(rt.io().get_executor(), {*parse_etcd_endpoint(etcd_->url())}, 500ms, 2s);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline && !etcd_->exited()) {
      auto f = asio::co_spawn(rt.io(), c.range("ready"), asio::use_future);
      if (!f.get().error) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "etcd exited or did not answer within 20 s";
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  static etcd_process* etcd_;
  runtime rt_;
};

etcd_process* fleet_engine_test::etcd_ = nullptr;

TEST_F(fleet_engine_test, a_change_on_one_replica_is_routed_by_the_other_without_a_save) {
  replica a(rt_, etcd_->url(), "/f/1/");
  replica b(rt_, etcd_->url(), "/f/1/");
  const auto b_published = b.published;
  const auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(a.engine->apply("web", rollout::operation::set_upstream, 0, "green").status, 200);
  ASSERT_TRUE(b.run_until([&] { return b.state().canary == "green"; }));
  const auto took = std::chrono::steady_clock::now() - started;
  std::printf("adopted by the other replica after %.1f ms\n",
              std::chrono::duration<double, std::milli>(took).count());
  EXPECT_EQ(b.state(), a.state());
  EXPECT_EQ(b.engine->snapshot()->routes.at(0).weight, 20);
  EXPECT_GT(b.published, b_published);
  EXPECT_EQ(b.engine->state_write_errors(), 0u);
}

TEST_F(fleet_engine_test, an_operation_on_a_replica_behind_is_reapplied_on_the_newer_state) {
  replica a(rt_, etcd_->url(), "/f/2/");
  replica b(rt_, etcd_->url(), "/f/2/");
  ASSERT_EQ(a.engine->apply("web", rollout::operation::set_upstream, 0, "green").status, 200);
  ASSERT_TRUE(b.run_until([&] { return b.state().canary == "green"; }));
  // A promotes; B's control thread does not run, so B has not seen it when it sets a weight.
  ASSERT_EQ(a.engine->apply("web", rollout::operation::promote).status, 200);
  ASSERT_EQ(a.state().weight, 50);
  ASSERT_EQ(b.state().weight, 20);
  const auto res = b.engine->apply("web", rollout::operation::set_weight, 30);
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_EQ(b.state().weight, 30);
  EXPECT_EQ(b.state().step, 3u);  // A's promotion kept
  ASSERT_TRUE(a.run_until([&] { return a.state().weight == 30; }));
  EXPECT_EQ(a.state(), b.state());
  // And an operation the newer state no longer allows is refused with the state machine's reason.
  ASSERT_EQ(a.engine->apply("web", rollout::operation::abort).status, 200);
  const auto refused = b.engine->apply("web", rollout::operation::pause);
  EXPECT_EQ(refused.status, 409) << refused.error;
  EXPECT_TRUE(b.state().aborted);
}

}  // namespace
}  // namespace canary::fleet
