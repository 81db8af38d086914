// Webhook bodies, and the dispatcher against real receivers on 127.0.0.1: retries with backoff,
// result classes, event order with the bounded queue, and the counts behind
// canary_proxy_webhook_calls_total.
#include "analysis/webhooks.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "http_client_harness.h"
#include "http_test_server.h"

namespace canary::analysis {
namespace {

using testing::control_thread;
using testing::test_reply;
using testing::test_server;
namespace json = boost::json;

webhook_payload payload(std::string message = "weight 20") {
  webhook_payload p;
  p.route = "checkout";
  p.phase = "Progressing";
  p.stable = "v1";
  p.canary = "v2";
  p.step = 1;
  p.weight = 20;
  p.event = "step";
  p.message = std::move(message);
  return p;
}

config::webhook_config hook(std::string url, int retries = 0) {
  config::webhook_config h;
  h.name = "smoke";
  h.target.url = std::move(url);
  h.target.timeout = std::chrono::seconds(5);
  h.retries = retries;
  return h;
}

test_reply status(int code) {
  test_reply r;
  r.status = code;
  return r;
}

std::uint64_t count_of(const webhook_dispatcher& d, const std::string& result) {
  for (const auto& c : d.counts())
    if (c.route == "checkout" && c.webhook == "smoke" && c.result == result) return c.n;
  return 0;
}

TEST(WebhookBody, JsonCarriesEveryFieldAndMetadata) {
  auto h = hook("http://x/");
  h.metadata["team"] = "payments";
  const auto doc = json::parse(webhook_body(h, payload())).as_object();
  EXPECT_EQ(doc.at("route").as_string(), "checkout");
  EXPECT_EQ(doc.at("phase").as_string(), "Progressing");
  EXPECT_EQ(doc.at("stable").as_string(), "v1");
  EXPECT_EQ(doc.at("canary").as_string(), "v2");
  EXPECT_EQ(doc.at("step").to_number<int>(), 1);
  EXPECT_EQ(doc.at("weight").to_number<int>(), 20);
  EXPECT_EQ(doc.at("event").as_string(), "step");
  EXPECT_EQ(doc.at("message").as_string(), "weight 20");
  EXPECT_EQ(doc.at("metadata").as_object().at("team").as_string(), "payments");
  EXPECT_EQ(doc.size(), 9u);
}

TEST(WebhookBody, SlackIsOneReadableLine) {
  auto h = hook("http://x/");
  h.format = config::webhook_config::body_format::slack;
  const auto doc = json::parse(webhook_body(h, payload("quote \" ok"))).as_object();
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc.at("text").as_string(),
            "checkout: step - quote \" ok (phase Progressing, step 1, weight 20%, stable v1, "
            "canary v2)");
}

TEST(WebhookDispatcher, RetriesUntilA2xx) {
  test_server server([](const auto&, std::size_t i) { return status(i < 2 ? 503 : 200); });
  control_thread ctl;
  http_client client(ctl.deliver());
  webhook_dispatcher d(client);
  std::optional<webhook_result> r;
  d.call("checkout", hook(server.url("/smoke"), 2), payload(), [&](webhook_result x) { r = x; });
  ASSERT_TRUE(ctl.run_until([&] { return r.has_value(); }));
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(server.count(), 3u);
  const auto seen = server.requests();
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/smoke");
  EXPECT_EQ(seen[0].headers.at("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(seen[2].body).as_object().at("route").as_string(), "checkout");
  EXPECT_EQ(count_of(d, "success"), 1u);
  EXPECT_EQ(count_of(d, "failure"), 0u);
}

TEST(WebhookDispatcher, RetriesSpentGiveTheLastFailure) {
  test_server server([](const auto&, std::size_t) { return status(503); });
  control_thread ctl;
  http_client client(ctl.deliver());
  webhook_dispatcher d(client);
  std::optional<webhook_result> r;
  d.call("checkout", hook(server.url(), 1), payload(), [&](webhook_result x) { r = x; });
  ASSERT_TRUE(ctl.run_until([&] { return r.has_value(); }));
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->detail, "HTTP 503");
  EXPECT_EQ(server.count(), 2u);
  EXPECT_EQ(count_of(d, "failure"), 1u);
}

TEST(WebhookDispatcher, TimeoutAndConnectionErrorsAreCountedApart) {
  test_server silent([](const auto&, std::size_t) {
    test_reply r;
    r.what = test_reply::kind::hang;
    return r;
  });
  unsigned short closed_port = 0;
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  control_thread ctl;
  http_client client(ctl.deliver());
  webhook_dispatcher d(client);
  std::vector<webhook_result> rs;
  auto slow = hook(silent.url());
  slow.target.timeout = std::chrono::milliseconds(200);
  d.call("checkout", slow, payload(), [&](webhook_result x) { rs.push_back(x); });
  d.call("checkout", hook("http://127.0.0.1:" + std::to_string(closed_port) + "/"), payload(),
         [&](webhook_result x) { rs.push_back(x); });
  ASSERT_TRUE(ctl.run_until([&] { return rs.size() == 2; }));
  EXPECT_EQ(count_of(d, "timeout"), 1u);
  EXPECT_EQ(count_of(d, "error"), 1u);
  for (const auto& r : rs) {
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.detail == "timeout after 200ms" || r.detail == "connect: Connection refused")
        << r.detail;
  }
}

TEST(WebhookDispatcher, EventsKeepTheirOrderAndTheOldestWaitingAreDropped) {
  // The receiver holds the first event: the rest wait in the queue, which keeps the newest 100.
  test_server server([](const auto&, std::size_t i) {
    test_reply r;
    if (i == 0) r.what = test_reply::kind::hold;
    return r;
  });
  control_thread ctl;
  http_client client(ctl.deliver());
  webhook_dispatcher d(client);
  const auto h = hook(server.url());
  const std::size_t sent = 1 + webhook_dispatcher::max_queued_events + 50;
  for (std::size_t i = 0; i < sent; ++i) d.notify("checkout", h, payload(std::to_string(i)));
  ASSERT_TRUE(ctl.run_until([&] { return server.count() == 1; }));
  EXPECT_EQ(count_of(d, "dropped"), 50u);
  server.release_held();
  ASSERT_TRUE(ctl.run_until([&] { return count_of(d, "success") == sent - 50; }));
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), sent - 50);
  EXPECT_EQ(json::parse(seen[0].body).as_object().at("message").as_string(), "0");
  for (std::size_t i = 1; i < seen.size(); ++i)
    EXPECT_EQ(json::parse(seen[i].body).as_object().at("message").as_string(),
              std::to_string(50 + i))
        << "request " << i;
}

TEST(WebhookDispatcher, NothingRunsAfterTheDispatcherIsGone) {
  test_server server([](const auto&, std::size_t) { return status(200); });
  control_thread ctl;
  auto client = std::make_unique<http_client>(ctl.deliver());
  bool called = false;
  {
    webhook_dispatcher d(*client);
    d.call("checkout", hook(server.url()), payload(), [&](webhook_result) { called = true; });
  }
  ASSERT_TRUE(ctl.run_until([&] { return server.count() == 1; }));
  client.reset();  // every answer is delivered by now
  ctl.ioc.poll();
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace canary::analysis
