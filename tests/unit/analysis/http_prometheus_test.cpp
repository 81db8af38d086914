// The prometheus provider against a real Prometheus server (Debian's `prometheus` package, or
// CANARY_PROMETHEUS): its answers to instant queries (scalar, one-element and longer vectors,
// empty vector, NaN, a bad query) go through prometheus_request, http_client and
// prometheus_result. The queries need no scraped data. Skipped when the binary is missing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "analysis/providers.h"
#include "http_client_harness.h"

namespace canary::analysis {
namespace {

using st = enum provider_result::status;
using testing::control_thread;

std::string prometheus_binary() {
  const char* env = std::getenv("CANARY_PROMETHEUS");
  return env && *env ? env : "/usr/bin/prometheus";
}

unsigned short free_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// The server process and its temp dir; killed and removed however the test ends.
struct prometheus_process {
  std::filesystem::path dir;
  pid_t pid = -1;
  unsigned short port = 0;

  prometheus_process() {
    dir = std::filesystem::temp_directory_path() / ("canary-prom-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "data");
    std::ofstream(dir / "prometheus.yml") << "global:\n  scrape_interval: 1m\n";
    port = free_port();
    const std::string bin = prometheus_binary();
    const std::string config = "--config.file=" + (dir / "prometheus.yml").string();
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port);
    const std::string data = "--storage.tsdb.path=" + (dir / "data").string();
    const std::string log = (dir / "log").string();
    pid = ::fork();
    if (pid == 0) {
      if (std::freopen(log.c_str(), "w", stdout) && std::freopen(log.c_str(), "a", stderr))
        ::execl(bin.c_str(), bin.c_str(), config.c_str(), listen.c_str(), data.c_str(),
                "--log.level=warn", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
  }
  ~prometheus_process() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  bool alive() const { return pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0; }
};

class PrometheusServer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(prometheus_binary().c_str(), X_OK) != 0)
      GTEST_SKIP() << prometheus_binary() << " missing: install Debian's prometheus package";
    prom_.emplace();
    // Readiness poll, bounded: Prometheus answers /-/ready with 200 once its TSDB is open.
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      ASSERT_TRUE(prom_->alive()) << "prometheus exited; see its log";
      http_request r;
      r.url = base() + "/-/ready";
      r.timeout = std::chrono::seconds(2);
      const auto answer = testing::call(client_, ctl_, r);
      if (answer.result == http_response::outcome::ok && answer.status == 200) break;
      ASSERT_LT(std::chrono::steady_clock::now(), limit) << "prometheus not ready in 30 s";
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::string base() const { return "http://127.0.0.1:" + std::to_string(prom_->port); }

  provider_result query(const std::string& q) {
    config::metric_config m;
    m.what = config::metric_config::kind::prometheus;
    m.query = q;
    m.target.url = base();
    const template_vars vars{"checkout", "v1", "v2", std::chrono::seconds(30)};
    return prometheus_result(testing::call(client_, ctl_, prometheus_request(m, vars)));
  }

  control_thread ctl_;
  http_client client_{ctl_.deliver()};
  std::optional<prometheus_process> prom_;
};

TEST_F(PrometheusServer, AnswersBecomeProviderResults) {
  auto r = query("1 + 1");
  EXPECT_EQ(r.status, st::value) << r.message;
  EXPECT_DOUBLE_EQ(r.value, 2);

  r = query("vector({{interval}} / 4)");
  EXPECT_EQ(r.status, st::value) << r.message;
  EXPECT_DOUBLE_EQ(r.value, 7.5);

  r = query(R"(sum(rate(http_requests_total{version="{{canary}}"}[1m])))");
  EXPECT_EQ(r.status, st::empty) << r.message;

  r = query("0 / 0");
  EXPECT_EQ(r.status, st::empty) << r.message;

  r = query(R"(vector(1) or label_replace(vector(2), "a", "b", "", ""))");
  EXPECT_EQ(r.status, st::error);
  EXPECT_NE(r.message.find("vector of 2 elements"), std::string::npos) << r.message;

  r = query("sum(");
  EXPECT_EQ(r.status, st::error);
  EXPECT_NE(r.message.find("HTTP 400: bad_data"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace canary::analysis
