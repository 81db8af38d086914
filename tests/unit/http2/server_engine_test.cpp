// The HTTP/2 server engine without sockets (http2/server_engine.h): an nghttp2 client session
// talks to it through memory; the abuse guards with an injected clock; the routing inputs of
// an HTTP/2 request (http/request_inputs.h).
#include "http2/server_engine.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "http/header_rules.h"
#include "http/request_inputs.h"

namespace canary::http2 {
namespace {

constexpr std::int64_t ms = 1'000'000;

TEST(reset_guard, more_than_100_resets_in_a_second_trip_it) {
  reset_guard g;
  for (int i = 0; i < 100000; ++i) g.stream_opened();  // the share rule stays quiet
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(g.reset(5 * ms)) << i;
  EXPECT_TRUE(g.reset(900 * ms));
}

TEST(reset_guard, resets_spread_over_seconds_pass_while_under_a_tenth_of_the_streams) {
  reset_guard g;
  std::int64_t t = 0;
  for (int i = 0; i < 2000; ++i) {
    for (int k = 0; k < 10; ++k) g.stream_opened();
    EXPECT_FALSE(g.reset(t)) << i;  // one reset per ten streams: exactly 10 %, allowed
    t += 20 * ms;                   // 50 per second
  }
}

TEST(reset_guard, a_connection_resetting_most_of_its_streams_trips_it_past_the_floor) {
  reset_guard g;
  std::int64_t t = 0;
  int tripped_at = -1;
  for (int i = 0; i < 1000 && tripped_at < 0; ++i) {
    g.stream_opened();
    if (g.reset(t)) tripped_at = i;
    t += 50 * ms;  // 20 per second: under the rate bound
  }
  EXPECT_EQ(tripped_at, 100);  // the 101st reset
}

TEST(control_guard, a_thousand_per_second_pass_and_the_next_trips) {
  control_guard g;
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(g.frame(i * ms / 2)) << i;
  EXPECT_TRUE(g.frame(999 * ms));
  control_guard h;
  for (int s = 0; s < 5; ++s)
    for (int i = 0; i < 900; ++i) EXPECT_FALSE(h.frame(s * 1000 * ms + i * ms));
}

// A handler that answers every request at once with its path as the body, or refuses.
struct echo_handler : stream_handler {
  server_engine* engine = nullptr;
  std::vector<std::shared_ptr<stream>> requests;
  bool refuse = false;
  bool on_request(const std::shared_ptr<stream>& s) override {
    requests.push_back(s);
    if (refuse) return false;
    if (!s->request_ended) return true;  // answered when the body ends
    answer(*s);
    return true;
  }
  void on_stream_event(const std::shared_ptr<stream>& s) override {
    if (s->request_ended && !s->responded && !s->closed && s->headers_done) answer(*s);
  }
  void answer(stream& s) {
    if (s.header_too_large) return engine->respond(s, 431, {}, false);
    const std::string body = s.path + " " + std::to_string(s.body.size());
    engine->consumed(s, s.body.size());
    engine->respond(s, 200, {{"content-type", "text/plain"}}, true);
    engine->send_body(s, body.data(), body.size(), true);
  }
};

// An nghttp2 client whose bytes go to the engine and back.
struct client {
  nghttp2_session* session = nullptr;
  std::map<std::int32_t, std::string> bodies;
  std::map<std::int32_t, std::string> status;
  std::map<std::int32_t, std::uint32_t> closed;
  std::uint32_t goaway = 0xffffffff;

  client() {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
          if (std::string_view(reinterpret_cast<const char*>(n), nl) == ":status")
            static_cast<client*>(u)->status[f->hd.stream_id] =
                std::string(reinterpret_cast<const char*>(v), vl);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d,
                std::size_t n, void* u) {
          static_cast<client*>(u)->bodies[id].append(reinterpret_cast<const char*>(d), n);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, std::int32_t id, std::uint32_t code, void* u) {
          static_cast<client*>(u)->closed[id] = code;
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          if (f->hd.type == NGHTTP2_GOAWAY) static_cast<client*>(u)->goaway = f->goaway.error_code;
          return 0;
        });
    nghttp2_session_client_new(&session, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~client() { nghttp2_session_del(session); }

  std::int32_t get(const std::string& path, std::vector<std::pair<std::string, std::string>> extra = {},
                   nghttp2_data_provider* body = nullptr) {
    std::vector<std::pair<std::string, std::string>> h = {
        {":method", body ? "POST" : "GET"}, {":scheme", "http"}, {":authority", "a.test"},
        {":path", path}};
    h.insert(h.end(), extra.begin(), extra.end());
    std::vector<nghttp2_nv> nv;
    for (auto& [n, v] : h)
      nv.push_back({reinterpret_cast<std::uint8_t*>(n.data()),
                    reinterpret_cast<std::uint8_t*>(v.data()), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    return nghttp2_submit_request(session, nullptr, nv.data(), nv.size(), body, nullptr);
  }

  // Moves bytes both ways until neither side has any.
  void exchange(server_engine& e) {
    for (int round = 0; round < 1000; ++round) {
      std::string to_server;
      const std::uint8_t* p = nullptr;
      for (ssize_t n; (n = nghttp2_session_mem_send(session, &p)) > 0;)
        to_server.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
      if (!to_server.empty()) e.receive(to_server.data(), to_server.size());
      std::string to_client;
      e.take_output(to_client);
      if (!to_client.empty())
        nghttp2_session_mem_recv(session, reinterpret_cast<const std::uint8_t*>(to_client.data()),
                                 to_client.size());
      if (to_server.empty() && to_client.empty()) return;
    }
    FAIL() << "no quiescence";
  }
};

struct engine_fixture : ::testing::Test {
  std::int64_t now = 0;
  echo_handler handler;
  engine_settings settings;
  std::unique_ptr<server_engine> engine;
  void start() {
    engine = std::make_unique<server_engine>(settings, handler, [this] { return now; });
    handler.engine = engine.get();
  }
};

TEST_F(engine_fixture, streams_of_one_connection_are_answered_each) {
  start();
  client c;
  const auto a = c.get("/one", {{"cookie", "a=1"}, {"cookie", "b=2"}, {"x-canary", "always"}});
  const auto b = c.get("/two");
  c.exchange(*engine);
  EXPECT_EQ(c.status[a], "200");
  EXPECT_EQ(c.bodies[a], "/one 0");
  EXPECT_EQ(c.bodies[b], "/two 0");
  ASSERT_EQ(handler.requests.size(), 2u);
  const auto& s = *handler.requests[0];
  EXPECT_EQ(s.method, "GET");
  EXPECT_EQ(s.authority, "a.test");
  // The router's view: the cookie fields joined (RFC 9113 §8.2.3), X-Canary found by any case.
  routing::canary_rule rule;
  rule.by_header = "X-Canary";
  rule.by_cookie = "canary";
  std::string join;
  const auto in = http::gather_inputs(
      rule,
      [&](std::string_view name) -> std::optional<std::string_view> {
        for (const auto& [n, v] : s.fields)
          if (http::iequals(n, name)) return std::string_view(v);
        return std::nullopt;
      },
      [&](auto&& f) {
        for (const auto& [n, v] : s.fields)
          if (n == "cookie") f(std::string_view(v));
      },
      join, "10.0.0.1");
  EXPECT_EQ(in.cookies, "a=1; b=2");
  EXPECT_EQ(in.canary_header, std::optional<std::string_view>("always"));
  EXPECT_EQ(in.client_ip, "10.0.0.1");
  EXPECT_EQ(engine->open_streams(), 0u);
}

TEST_F(engine_fixture, a_body_arrives_as_the_window_is_returned) {
  settings.initial_window = 16384;
  start();
  client c;
  static std::string payload(200000, 'x');
  static std::size_t offset;
  offset = 0;
  nghttp2_data_provider body{};
  body.read_callback = [](nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len,
                          std::uint32_t* flags, nghttp2_data_source*, void*) -> ssize_t {
    const std::size_t n = std::min(len, payload.size() - offset);
    std::memcpy(buf, payload.data() + offset, n);
    offset += n;
    if (offset == payload.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  };
  c.exchange(*engine);  // the SETTINGS first: until then the client may send 65535 (§6.9.2)
  const auto id = c.get("/up", {}, &body);
  // The handler returns the window only at the end: the body stalls at one window...
  c.exchange(*engine);
  ASSERT_EQ(handler.requests.size(), 1u);
  auto& s = *handler.requests[0];
  EXPECT_EQ(s.body.size(), 16384u);
  EXPECT_FALSE(s.request_ended);
  // ...and moves on as the forwarder takes it.
  for (int i = 0; i < 100 && !s.request_ended; ++i) {
    const auto n = s.body.size();
    s.body.clear();
    engine->consumed(s, n);
    c.exchange(*engine);
  }
  EXPECT_TRUE(s.request_ended);
  EXPECT_EQ(s.body_received, payload.size());
  EXPECT_EQ(c.status[id], "200");
}

TEST_F(engine_fixture, a_field_section_over_the_limit_is_flagged_not_stored) {
  settings.max_header_bytes = 1000;
  start();
  client c;
  const auto id = c.get("/big", {{"x-big", std::string(2000, 'b')}});
  c.exchange(*engine);
  ASSERT_EQ(handler.requests.size(), 1u);
  EXPECT_TRUE(handler.requests[0]->header_too_large);
  EXPECT_TRUE(handler.requests[0]->fields.empty());
  EXPECT_EQ(c.status[id], "431");
}

TEST_F(engine_fixture, a_refused_request_is_reset_with_refused_stream) {
  start();
  handler.refuse = true;
  client c;
  const auto id = c.get("/no");
  c.exchange(*engine);
  EXPECT_EQ(c.closed[id], static_cast<std::uint32_t>(NGHTTP2_REFUSED_STREAM));
}

TEST_F(engine_fixture, shut_down_sends_goaway_no_error) {
  start();
  client c;
  c.get("/a");
  c.exchange(*engine);
  engine->shut_down();
  c.exchange(*engine);
  EXPECT_EQ(c.goaway, static_cast<std::uint32_t>(NGHTTP2_NO_ERROR));
  EXPECT_TRUE(engine->finished());
}

TEST_F(engine_fixture, garbage_ends_the_connection_with_goaway) {
  start();
  // DATA on stream 0: a connection error (RFC 9113 §6.1).
  const std::string junk =
      std::string(client_preface) + std::string("\x00\x00\x04\x00\x00\x00\x00\x00\x00" "abcd", 13);
  engine->receive(junk.data(), junk.size());
  std::string out;
  engine->take_output(out);
  ASSERT_GE(out.size(), 9u);
  bool goaway = false;
  for (std::size_t i = 0; i + 9 <= out.size();) {
    const std::size_t n = (static_cast<unsigned char>(out[i]) << 16) |
                          (static_cast<unsigned char>(out[i + 1]) << 8) |
                          static_cast<unsigned char>(out[i + 2]);
    goaway |= out[i + 3] == 0x7;
    i += 9 + n;
  }
  EXPECT_TRUE(goaway);
  EXPECT_TRUE(engine->finished());
}

}  // namespace
}  // namespace canary::http2
