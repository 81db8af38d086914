// admin::reloader: the load runs off the calling thread, the result is applied and answered on
// the io_context's thread, a file with errors answers 422, and requests made during a load share
// the next load.
#include "admin/reloader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "config/load.h"

namespace canary::admin {
namespace {

namespace net = boost::asio;

std::string config_text(const std::string& upstream) {
  return "state_file: s.json\n"
         "upstreams: {blue: {endpoints: [\"127.0.0.1:9\"]}, green: {endpoints: "
         "[\"127.0.0.1:9\"]}}\n"
         "routes: [{name: r, upstream: " +
         upstream + ", steps: [{setWeight: 20}, {pause: {}}]}]\n";
}

class ReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("canary-reloader-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    file_ = (dir_ / "c.yaml").string();
    write(config_text("blue"));
    auto loaded = config::load_file(file_);
    ASSERT_TRUE(loaded.config);
    engine_ = std::make_unique<rollout::engine>(
        std::make_shared<const config::proxy_config>(*loaded.config),
        [] { return rollout::wall_clock::now(); }, nullptr);
  }
  void TearDown() override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  void write(const std::string& text) { std::ofstream(file_) << text; }
  // Runs the io_context until `pending` callbacks have run (bounded).
  void run_until_done(int& pending) {
    auto guard = net::make_work_guard(ioc_);
    for (int i = 0; i < 500 && pending > 0; ++i) ioc_.run_for(std::chrono::milliseconds(20));
    ASSERT_EQ(pending, 0) << "the reload did not answer";
  }

  std::filesystem::path dir_;
  std::string file_;
  net::io_context ioc_;
  std::unique_ptr<rollout::engine> engine_;
};

TEST_F(ReloaderTest, AppliesTheFileAndAnswersOnTheControlThread) {
  write(config_text("green"));
  reloader r(ioc_, *engine_);
  std::optional<rollout::api_result> got;
  std::thread::id answered_on;
  int pending = 1;
  r.request([&](const rollout::api_result& res) {
    got = res;
    answered_on = std::this_thread::get_id();
    --pending;
  });
  EXPECT_FALSE(got) << "never answered from inside request()";
  EXPECT_TRUE(r.loading());
  run_until_done(pending);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(answered_on, std::this_thread::get_id());
  EXPECT_FALSE(r.loading());
  EXPECT_EQ(engine_->status("r")->state->canary, "green");
  EXPECT_EQ(engine_->reloads_ok(), 1u);
}

TEST_F(ReloaderTest, AFileWithErrorsIs422AndKeepsTheOldConfig) {
  write("routes: [\n");
  reloader r(ioc_, *engine_);
  std::optional<rollout::api_result> got;
  int pending = 1;
  r.request([&](const rollout::api_result& res) {
    got = res;
    --pending;
  });
  run_until_done(pending);
  EXPECT_EQ(got->status, 422);
  EXPECT_NE(got->error.find("has errors; the old config keeps serving"), std::string::npos);
  EXPECT_FALSE(got->errors.empty());
  EXPECT_EQ(r.load_failures(), 1u);
  EXPECT_EQ(engine_->status("r")->state->stable, "blue");
}

TEST_F(ReloaderTest, RequestsDuringALoadShareTheNextLoad) {
  write(config_text("green"));
  reloader r(ioc_, *engine_);
  std::vector<int> order;
  bool next_running_at_first_answer = false;
  int pending = 3;
  r.request([&](const rollout::api_result& res) {
    EXPECT_EQ(res.status, 200);
    next_running_at_first_answer = r.loading();
    order.push_back(1);
    --pending;
  });
  for (int i = 2; i <= 3; ++i)
    r.request([&, i](const rollout::api_result& res) {
      EXPECT_EQ(res.status, 200);
      order.push_back(i);
      --pending;
    });
  run_until_done(pending);
  EXPECT_TRUE(next_running_at_first_answer) << "the waiting requests get a load of their own";
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(engine_->reloads_ok(), 2u) << "two loads for three requests";
  EXPECT_FALSE(r.loading());
}

}  // namespace
}  // namespace canary::admin
