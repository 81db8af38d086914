// Tests for name resolution at load (config/resolve.h, load_options::resolve): every name of one
// load is resolved concurrently within timeouts.resolve, with an injected resolver so no test
// needs DNS. A resolver that blocks proves the bound; one that is released after the load has
// returned proves the abandoned thread touches only memory it co-owns (run under ASan).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/load.h"

namespace canary::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using steady = std::chrono::steady_clock;

constexpr const char* kFile = "/etc/canary/proxy.yaml";

std::string at(int line, int col, const std::string& rest) {
  return std::string(kFile) + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + rest;
}

std::vector<std::string> messages(const load_result& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

// A gate the fake resolver waits on. Shared (not a test local captured by reference): resolver
// threads may outlive the load, and the test.
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> calls{0};
  std::atomic<int> finished{0};
  std::multiset<std::string> names;  // guarded by m

  void release() {
    std::lock_guard lock(m);
    open = true;
    cv.notify_all();
  }
};

// Answers "10.0.0.N" for "hostN" at once; blocks on the gate for names starting with "slow".
resolve_function fake(std::shared_ptr<gate> g) {
  return [g](const std::string& host) -> resolved_name {
    ++g->calls;
    {
      std::unique_lock lock(g->m);
      g->names.insert(host);
      if (host.rfind("slow", 0) == 0) g->cv.wait(lock, [&] { return g->open; });
    }
    ++g->finished;
    if (host.rfind("bad", 0) == 0) return {"", "Name or service not known"};
    if (host == "junk") return {"not-an-address", ""};
    return {"10.0.0." + std::to_string(host.size()), ""};
  };
}

TEST(ResolveAtLoad, InjectedResolverFillsEveryAddressOncePerName) {
  auto g = std::make_shared<gate>();
  load_result r = load_string(
      "listen: \"front:8080\"\n"
      "admin: {listen: \"adm:9901\"}\n"
      "upstreams:\n"
      "  blue: {endpoints: [\"host1:9001\", \"host1:9002\", \"127.0.0.1:9003\"]}\n"
      "  green: {endpoints: [\"host22:9001\", \"[::1]:9002\"]}\n"
      "routes:\n"
      "  - {name: r, upstream: blue}\n",
      kFile, {fake(g)});
  // adm resolves to 10.0.0.3, not loopback, without a token file: that check runs on the
  // resolved address.
  EXPECT_THAT(messages(r), ElementsAre(at(2, 17, "admin.listen: admin listens on a non-loopback "
                                                 "address without admin.token_file: anyone who "
                                                 "can reach it could shift traffic")));
  // Each distinct name once; numeric hosts never reach the resolver.
  EXPECT_EQ(g->calls, 4);
  EXPECT_EQ(g->names, (std::multiset<std::string>{"adm", "front", "host1", "host22"}));

  r = load_string(
      "listen: \"front:8080\"\n"
      "upstreams:\n"
      "  blue: {endpoints: [\"host1:9001\", \"host1:9002\", \"127.0.0.1:9003\"]}\n"
      "  green: {endpoints: [\"host22:9001\", \"[::1]:9002\"]}\n"
      "routes:\n"
      "  - {name: r, upstream: blue}\n",
      kFile, {fake(g)});
  ASSERT_TRUE(r.config) << testing::PrintToString(messages(r));
  const auto& c = *r.config;
  EXPECT_EQ(c.listen.host, "10.0.0.5");
  EXPECT_EQ(c.listen.text, "front:8080");
  const auto& blue = c.upstreams.at(0).endpoints;
  ASSERT_EQ(blue.size(), 3u);
  EXPECT_EQ(blue[0].address, "10.0.0.5");
  EXPECT_EQ(blue[0].host, "host1");
  EXPECT_EQ(blue[1].address, "10.0.0.5");
  EXPECT_EQ(blue[2].address, "127.0.0.1");
  const auto& green = c.upstreams.at(1).endpoints;
  EXPECT_EQ(green[0].address, "10.0.0.6");
  EXPECT_EQ(green[1].address, "::1");
}

TEST(ResolveAtLoad, ResolverErrorsNameTheHostAtItsPosition) {
  auto g = std::make_shared<gate>();
  load_result r = load_string(
      "upstreams:\n"
      "  blue: {endpoints: [\"bad1:9001\", \"junk:9002\"]}\n"
      "routes:\n"
      "  - {name: r, upstream: blue}\n",
      kFile, {fake(g)});
  EXPECT_THAT(messages(r),
              ElementsAre(at(2, 22, "upstreams.blue.endpoints[0]: cannot resolve \"bad1\": Name "
                                    "or service not known"),
                          at(2, 35, "upstreams.blue.endpoints[1]: cannot resolve \"junk\": the "
                                    "resolver answered \"not-an-address\", not an IP address")));
}

// N slow names cost one timeout, not N: they are all in flight at once under one deadline, and
// the load returns while every one of them is still blocked (the fake never answers a "slow"
// name until released, so a load that waited for any of them would never return).
TEST(ResolveAtLoad, SlowNamesCostOneTimeoutInTotal) {
  auto g = std::make_shared<gate>();
  const auto t0 = steady::now();
  load_result r = load_string(
      "timeouts: {resolve: 300ms}\n"                                             // 1
      "listen: \"slow-front:8080\"\n"                                            // 2
      "upstreams:\n"                                                             // 3
      "  blue: {endpoints: [\"slow1:9001\", \"host1:9002\", \"slow2:9003\"]}\n"  // 4
      "  green: {endpoints: [\"slow3:9001\", \"slow1:9009\"]}\n"                 // 5
      "routes:\n"                                                                // 6
      "  - {name: r, upstream: blue}\n",                                         // 7
      kFile, {fake(g)});
  // The deadline is only ever waited for, never cut short (a lower bound cannot flake).
  EXPECT_GE(steady::now() - t0, 300ms);
  // All five names were started (each once) and the four slow ones are still blocked: the load
  // did not wait for them, one after the other or at all.
  EXPECT_EQ(g->calls, 5);
  EXPECT_EQ(g->finished, 1);  // host1
  const std::string late = ": no answer within 300ms (timeouts.resolve)";
  EXPECT_THAT(messages(r),
              ElementsAre(at(2, 9, "listen: cannot resolve \"slow-front\"" + late),
                          at(4, 22, "upstreams.blue.endpoints[0]: cannot resolve \"slow1\"" + late),
                          at(4, 50, "upstreams.blue.endpoints[2]: cannot resolve \"slow2\"" + late),
                          at(5, 23,
                             "upstreams.green.endpoints[0]: cannot resolve \"slow3\"" + late),
                          at(5, 37,
                             "upstreams.green.endpoints[1]: cannot resolve \"slow1\"" + late)));
  // Releasing the abandoned threads after the load has returned must be harmless: they write into
  // state they co-own, never into the finished load's memory (ASan would see it).
  g->release();
  for (int i = 0; i < 1000 && g->finished < 5; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(g->finished, 5);
}

TEST(ResolveAtLoad, DefaultTimeoutIsFiveSecondsAndConfigurable) {
  EXPECT_EQ(timeouts_config{}.resolve, 5s);
  auto g = std::make_shared<gate>();
  load_result r = load_string(
      "timeouts: {resolve: 1m30s}\n"
      "upstreams: {blue: {endpoints: [\"127.0.0.1:9001\"]}}\n"
      "routes: [{name: r, upstream: blue}]\n",
      kFile, {fake(g)});
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->timeouts.resolve, 90s);
  r = load_string(
      "timeouts: {resolve: 0s}\n"
      "upstreams: {blue: {endpoints: [\"127.0.0.1:9001\"]}}\n"
      "routes: [{name: r, upstream: blue}]\n",
      kFile, {fake(g)});
  EXPECT_THAT(messages(r), ElementsAre(at(1, 21, "timeouts.resolve: must be greater than 0")));
  EXPECT_EQ(g->calls, 0);  // numeric endpoints only: no resolver call, no thread
}

// The timeout is read from the file wherever it stands, also after the addresses it bounds.
TEST(ResolveAtLoad, TimeoutBelowTheAddresses) {
  auto g = std::make_shared<gate>();
  const auto t0 = steady::now();
  load_result r = load_string(
      "upstreams: {blue: {endpoints: [\"slow9:9001\"]}}\n"
      "routes: [{name: r, upstream: blue}]\n"
      "timeouts: {resolve: 100ms}\n",
      kFile, {fake(g)});
  EXPECT_GE(steady::now() - t0, 100ms);
  EXPECT_EQ(g->finished, 0);  // returned while the name was still blocked
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].message, HasSubstr("no answer within 100ms (timeouts.resolve)"));
  g->release();
  for (int i = 0; i < 1000 && g->finished < 1; ++i) std::this_thread::sleep_for(5ms);
}

// load_string/load_file keep no shared state: loads on several threads at once all succeed.
TEST(ResolveAtLoad, LoadsRunConcurrentlyOnAnyThread) {
  auto g = std::make_shared<gate>();
  const std::string yaml =
      "upstreams:\n"
      "  blue: {endpoints: [\"host1:9001\", \"host333:9002\"]}\n"
      "routes:\n"
      "  - {name: r, upstream: blue, canary: {by_header_pattern: \"^a+$\"}}\n";
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        load_result r = load_string(yaml, kFile, {fake(g)});
        if (r.config && r.config->upstreams.at(0).endpoints.at(1).address == "10.0.0.7") ++ok;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 160);
}

}  // namespace
}  // namespace canary::config
