// http_client against real sockets on 127.0.0.1: plain and TLS servers made by the test, refused
// connections, silent servers, oversized and chunked bodies, the in-flight cap and destruction
// with calls in flight.
#include "analysis/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/ssl/context.hpp>

#include "http_client_harness.h"
#include "http_test_server.h"

namespace canary::analysis {
namespace {

using testing::call;
using testing::control_thread;
using testing::test_reply;
using testing::test_server;

test_reply hang() {
  test_reply r;
  r.what = test_reply::kind::hang;
  return r;
}

http_request get(std::string url, std::chrono::milliseconds timeout = std::chrono::seconds(5),
                 std::string ca_file = "") {
  http_request r;
  r.url = std::move(url);
  r.timeout = timeout;
  r.ca_file = std::move(ca_file);
  return r;
}

test_reply reply(int status, std::string body, bool chunked = false) {
  test_reply r;
  r.status = status;
  r.body = std::move(body);
  r.chunked = chunked;
  return r;
}

TEST(HttpClient, GetWithContentLengthSendsHeadersAndTarget) {
  test_server server([](const auto&, std::size_t) { return reply(200, "0.25"); });
  control_thread ctl;
  http_client client(ctl.deliver());
  http_request req;
  req.url = server.url("/score?v=2#frag");
  req.headers["Authorization"] = "Bearer t";
  const auto r = call(client, ctl, req);
  ASSERT_EQ(r.result, http_response::outcome::ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "0.25");
  const auto seen = server.requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].target, "/score?v=2");
  EXPECT_EQ(seen[0].headers.at("Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(seen[0].headers.at("Authorization"), "Bearer t");
}

TEST(HttpClient, PostSendsTheBody) {
  test_server server([](const auto&, std::size_t) { return reply(202, ""); });
  control_thread ctl;
  http_client client(ctl.deliver());
  http_request req;
  req.method = "POST";
  req.url = server.url("/hook");
  req.body = R"({"a":1})";
  const auto r = call(client, ctl, req);
  ASSERT_EQ(r.result, http_response::outcome::ok) << r.error;
  EXPECT_EQ(r.status, 202);
  ASSERT_EQ(server.count(), 1u);
  EXPECT_EQ(server.requests()[0].body, R"({"a":1})");
}

TEST(HttpClient, ChunkedAnswerIsJoined) {
  const std::string body(5500, 'x');
  test_server server([&](const auto&, std::size_t) { return reply(200, body, true); });
  control_thread ctl;
  http_client client(ctl.deliver());
  const auto r = call(client, ctl, get(server.url()));
  ASSERT_EQ(r.result, http_response::outcome::ok) << r.error;
  EXPECT_EQ(r.body, body);
}

TEST(HttpClient, ServerErrorIsAnAnswerWithItsStatus) {
  test_server server([](const auto&, std::size_t) { return reply(500, "boom"); });
  control_thread ctl;
  http_client client(ctl.deliver());
  const auto r = call(client, ctl, get(server.url()));
  ASSERT_EQ(r.result, http_response::outcome::ok) << r.error;
  EXPECT_EQ(r.status, 500);
}

TEST(HttpClient, BodyOverOneMebibyteIsRefused) {
  for (const bool chunked : {false, true}) {
    test_server server([&](const auto&, std::size_t) {
      return reply(200, std::string(http_client::max_body + 1, 'x'), chunked);
    });
    control_thread ctl;
    http_client client(ctl.deliver());
    const auto r = call(client, ctl, get(server.url()));
    EXPECT_EQ(r.result, http_response::outcome::error) << "chunked " << chunked;
    EXPECT_EQ(r.error, "response larger than 1 MiB") << "chunked " << chunked;
  }
}

TEST(HttpClient, BodyOfExactlyOneMebibyteIsRead) {
  test_server server(
      [](const auto&, std::size_t) { return reply(200, std::string(http_client::max_body, 'x')); });
  control_thread ctl;
  http_client client(ctl.deliver());
  const auto r = call(client, ctl, get(server.url()));
  ASSERT_EQ(r.result, http_response::outcome::ok) << r.error;
  EXPECT_EQ(r.body.size(), http_client::max_body);
}

TEST(HttpClient, SilentServerTimesOut) {
  test_server server([](const auto&, std::size_t) { return hang(); });
  control_thread ctl;
  http_client client(ctl.deliver());
  const auto r = call(client, ctl, get(server.url(), std::chrono::milliseconds(300)));
  EXPECT_EQ(r.result, http_response::outcome::timeout);
  EXPECT_EQ(r.error, "timeout after 300ms");
}

TEST(HttpClient, RefusedConnectionIsAnError) {
  unsigned short port = 0;
  {
    // A port that was just free: nothing listens on it once the acceptor is closed.
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a(
        ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  control_thread ctl;
  http_client client(ctl.deliver());
  const auto r = call(client, ctl, get("http://127.0.0.1:" + std::to_string(port) + "/"));
  EXPECT_EQ(r.result, http_response::outcome::error);
  EXPECT_EQ(r.error, "connect: Connection refused");
}

TEST(HttpClient, MalformedUrlIsAnError) {
  control_thread ctl;
  http_client client(ctl.deliver());
  EXPECT_EQ(call(client, ctl, get("ftp://x/")).error,
            "URL must start with http:// or https://");
  EXPECT_EQ(call(client, ctl, get("http://127.0.0.1:99999/")).error, "bad port in the URL");
}

TEST(HttpClient, CapsCallsInFlightAndAnswersThemWhenDestroyed) {
  test_server server([](const auto&, std::size_t) { return hang(); });
  control_thread ctl;
  std::vector<http_response> answers;
  {
    http_client client(ctl.deliver());
    for (std::size_t i = 0; i < http_client::max_in_flight + 1; ++i)
      client.send(get(server.url(), std::chrono::seconds(60)),
                  [&](http_response r) { answers.push_back(std::move(r)); });
    ASSERT_TRUE(ctl.run_until([&] { return answers.size() == 1; }));
    EXPECT_EQ(answers[0].error, "too many provider calls in flight");
    // Every call has reached the silent server: the destructor interrupts real exchanges.
    ASSERT_TRUE(ctl.run_until([&] { return server.count() == http_client::max_in_flight; }));
  }
  ASSERT_TRUE(ctl.run_until([&] { return answers.size() == http_client::max_in_flight + 1; }));
  for (std::size_t i = 1; i < answers.size(); ++i) {
    EXPECT_EQ(answers[i].result, http_response::outcome::error);
    EXPECT_EQ(answers[i].error, "http client stopped");
  }
}

TEST(HttpClient, DelayedCallRunsAfterItsDelay) {
  test_server server([](const auto&, std::size_t) { return reply(200, "1"); });
  control_thread ctl;
  http_client client(ctl.deliver());
  std::optional<http_response> r;
  client.send(get(server.url()), [&](http_response x) { r = std::move(x); },
              std::chrono::milliseconds(50));
  ASSERT_TRUE(ctl.run_until([&] { return r.has_value(); }));
  EXPECT_EQ(r->status, 200);
}

class HttpClientTls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.ok) << "openssl CLI failed";
    tls_.use_certificate_chain_file(pki_.leaf_cert.string());
    tls_.use_private_key_file(pki_.leaf_key.string(), boost::asio::ssl::context::pem);
  }
  std::string url() const { return "https://localhost:" + std::to_string(server_.port()) + "/"; }

  testing::test_pki pki_{"localhost"};
  boost::asio::ssl::context tls_{boost::asio::ssl::context::tls_server};
  test_server server_{[](const auto&, std::size_t) { return reply(200, "42"); }, &tls_};
  control_thread ctl_;
  http_client client_{ctl_.deliver()};
};

TEST_F(HttpClientTls, VerifiedWithCaFileAndSendsSni) {
  const auto r = call(client_, ctl_, get(url(), std::chrono::seconds(5), pki_.ca_cert.string()));
  ASSERT_EQ(r.result, http_response::outcome::ok) << r.error;
  EXPECT_EQ(r.body, "42");
  ASSERT_EQ(server_.count(), 1u);
  EXPECT_EQ(server_.requests()[0].sni, "localhost");
}

TEST_F(HttpClientTls, UnknownCaIsRefused) {
  const auto r = call(client_, ctl_, get(url()));
  EXPECT_EQ(r.result, http_response::outcome::error);
  EXPECT_NE(r.error.find("tls: "), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("unable to get local issuer certificate"), std::string::npos) << r.error;
  EXPECT_EQ(server_.count(), 0u);
}

TEST_F(HttpClientTls, WrongHostNameIsRefused) {
  // The certificate names "localhost" only; 127.0.0.1 is the same server under another name.
  const auto r = call(client_, ctl_,
                      get("https://127.0.0.1:" + std::to_string(server_.port()) + "/", std::chrono::seconds(5), pki_.ca_cert.string()));
  EXPECT_EQ(r.result, http_response::outcome::error);
  EXPECT_NE(r.error.find("IP address mismatch"), std::string::npos) << r.error;
  EXPECT_EQ(server_.count(), 0u);
}

TEST(HttpClientTlsName, CertificateForAnotherNameIsRefused) {
  testing::test_pki pki("canary.invalid");
  ASSERT_TRUE(pki.ok) << "openssl CLI failed";
  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_server);
  tls.use_certificate_chain_file(pki.leaf_cert.string());
  tls.use_private_key_file(pki.leaf_key.string(), boost::asio::ssl::context::pem);
  test_server server([](const auto&, std::size_t) { return reply(200, "42"); }, &tls);
  control_thread ctl;
  http_client client(ctl.deliver());
  const auto r = call(client, ctl,
                      get("https://localhost:" + std::to_string(server.port()) + "/", std::chrono::seconds(5), pki.ca_cert.string()));
  EXPECT_EQ(r.result, http_response::outcome::error);
  EXPECT_NE(r.error.find("hostname mismatch"), std::string::npos) << r.error;
  EXPECT_EQ(server.count(), 0u);
}

TEST_F(HttpClientTls, MissingCaFileIsAnError) {
  const auto r = call(client_, ctl_, get(url(), std::chrono::seconds(5), (pki_.dir / "nope.crt").string()));
  EXPECT_EQ(r.result, http_response::outcome::error);
  EXPECT_EQ(r.error.rfind("ca_file ", 0), 0u) << r.error;
}

}  // namespace
}  // namespace canary::analysis
