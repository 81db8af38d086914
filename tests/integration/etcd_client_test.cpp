// Integration: fleet::etcd_client against a real etcd (Debian's etcd-server) started by the test
// on 127.0.0.1 with free ports and a temporary data directory, stopped at the end. Checks what
// the fleet relies on: compare-and-swap transactions, leases that expire, a watch that sees
// every change in order from a revision, compaction reported, failover across endpoints, and
// a bounded "unavailable" when no endpoint answers.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "fleet/election.h"
#include "fleet/etcd_client.h"
#include "fleet/etcd_store.h"


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

// One etcd member on loopback for the whole suite.
class etcd_server {
 public:
  etcd_server() {
    dir_ = fs::temp_directory_path() / ("canary-etcd-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    client_port_ = free_port();
    const auto peer = free_port();
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> args = {"etcd",
                                     "--name=t",
                                     "--data-dir=" + (dir_ / "data").string(),
                                     "--listen-client-urls=" + client,
                                     "--advertise-client-urls=" + client,
                                     "--listen-peer-urls=" + peer_url,
                                     "--initial-advertise-peer-urls=" + peer_url,
                                     "--initial-cluster=t=" + peer_url,
                                     "--logger=zap",
                                     "--log-outputs=" + (dir_ / "etcd.log").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const char* bin = fs::exists("/usr/bin/etcd") ? "/usr/bin/etcd" : "etcd";
    // fork + exec rather than posix_spawn: the child dies with this process (PR_SET_PDEATHSIG),
    // even when a failed assertion or a sanitizer aborts it, and holds none of its output
    // pipes (ctest waits for those to close).
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execvp(bin, argv.data());
      ::_exit(127);
    }
  }
  ~etcd_server() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }
  bool started() const { return pid_ > 0; }
  bool exited() {
    if (pid_ <= 0) return true;
    if (::waitpid(pid_, nullptr, WNOHANG) != pid_) return false;
    pid_ = -1;
    return true;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(client_port_); }

 private:
  fs::path dir_;
  std::uint16_t client_port_ = 0;
  pid_t pid_ = -1;
};

template <class T>
T run(asio::io_context& io, asio::awaitable<T> aw) {
  auto f = asio::co_spawn(io, std::move(aw), asio::use_future);
  io.restart();
  while (f.wait_for(0s) != std::future_status::ready) io.run_one_for(100ms);
  return f.get();
}

class etcd_client_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new etcd_server();
    ASSERT_TRUE(server_->started()) << "cannot start etcd (Debian package etcd-server)";
    // Ready when a range answers (bounded: 20 s).
    asio::io_context io;
    etcd_client c(io.get_executor(), {*parse_etcd_endpoint(server_->url())}, 500ms, 2s);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline && !server_->exited()) {
      if (!run(io, c.range("ready")).error) return;
      std::this_thread::sleep_for(100ms);
    }
    FAIL() << "etcd exited or did not answer within 20 s";
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  etcd_client make(std::vector<std::string> urls = {}) {
    if (urls.empty()) urls.push_back(server_->url());
    std::vector<etcd_endpoint> eps;
    for (const auto& u : urls) eps.push_back(*parse_etcd_endpoint(u));
    return etcd_client(io_.get_executor(), std::move(eps), 500ms, 3s);
  }

  asio::io_context io_;
  static etcd_server* server_;
};
etcd_server* etcd_client_test::server_ = nullptr;

TEST(etcd_endpoint, parses_http_urls_only) {
  auto ep = parse_etcd_endpoint("http://127.0.0.1:2379");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, "2379");
  EXPECT_EQ(parse_etcd_endpoint("http://[::1]:23")->host, "::1");
  EXPECT_EQ(parse_etcd_endpoint("http://etcd")->port, "2379");
  EXPECT_FALSE(parse_etcd_endpoint("https://x:1"));
  EXPECT_FALSE(parse_etcd_endpoint("http://x:0"));
  EXPECT_FALSE(parse_etcd_endpoint("http://x:1/path"));
  EXPECT_FALSE(parse_etcd_endpoint("127.0.0.1:2379"));
}

TEST(etcd_prefix, end_is_the_next_key_after_the_prefix) {
  EXPECT_EQ(prefix_end("/a/"), "/a0");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
}

TEST_F(etcd_client_test, put_range_and_binary_values) {
  auto c = make();
  const std::string value("bin\0ary\xff", 8);
  auto p = run(io_, c.put("/t/put/a", value));
  ASSERT_FALSE(p.error) << p.error.message;
  ASSERT_TRUE(p.succeeded);
  run(io_, c.put("/t/put/b", "2"));
  auto r = run(io_, c.range("/t/put/", prefix_end("/t/put/")));
  ASSERT_FALSE(r.error) << r.error.message;
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[0].key, "/t/put/a");
  EXPECT_EQ(r.kvs[0].value, value);
  EXPECT_GE(r.revision, r.kvs[1].mod_revision);
}

TEST_F(etcd_client_test, compare_and_swap_commits_once) {
  auto c = make();
  auto first = run(io_, c.put("/t/cas", "v1"));
  ASSERT_FALSE(first.error);
  const auto rev = run(io_, c.range("/t/cas")).kvs.at(0).mod_revision;
  const auto swap = [&](std::string v) {
    return c.txn({{"/t/cas", compare::target::mod, compare::op::equal, rev, {}}},
                 {{txn_op::kind::put, "/t/cas", std::move(v), 0, {}}},
                 {{txn_op::kind::range, "/t/cas", {}, 0, {}}});
  };
  auto a = run(io_, swap("v2"));
  ASSERT_FALSE(a.error) << a.error.message;
  EXPECT_TRUE(a.succeeded);
  auto b = run(io_, swap("v3"));  // same expected revision: must not commit
  ASSERT_FALSE(b.error) << b.error.message;
  EXPECT_FALSE(b.succeeded);
  ASSERT_EQ(b.ranges.size(), 1u);
  ASSERT_EQ(b.ranges[0].kvs.size(), 1u);
  EXPECT_EQ(b.ranges[0].kvs[0].value, "v2");
  // A compare on a key that must not exist (create revision 0).
  auto create = [&] {
    return c.txn({{"/t/once", compare::target::create, compare::op::equal, 0, {}}},
                 {{txn_op::kind::put, "/t/once", "x", 0, {}}});
  };
  EXPECT_TRUE(run(io_, create()).succeeded);
  EXPECT_FALSE(run(io_, create()).succeeded);
}

TEST_F(etcd_client_test, lease_keys_go_when_the_lease_expires) {
  auto c = make();
  auto g = run(io_, c.grant(1));
  ASSERT_FALSE(g.error) << g.error.message;
  ASSERT_GT(g.id, 0);
  ASSERT_FALSE(run(io_, c.put("/t/lease", "held", g.id)).error);
  auto k = run(io_, c.keepalive(g.id));
  ASSERT_FALSE(k.error) << k.error.message;
  EXPECT_GE(k.ttl, 1);
  EXPECT_EQ(run(io_, c.range("/t/lease")).kvs.size(), 1u);
  // Not kept alive: gone within a few TTLs (bounded poll).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!run(io_, c.range("/t/lease")).kvs.empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(run(io_, c.range("/t/lease")).kvs.empty());
  EXPECT_EQ(run(io_, c.keepalive(g.id)).ttl, 0);  // expired
}

TEST_F(etcd_client_test, watch_sees_every_change_in_order_from_a_revision) {
  auto c = make();
  const auto start = run(io_, c.put("/t/w/a", "1")).revision;
  run(io_, c.put("/t/w/a", "2"));
  run(io_, c.del("/t/w/a"));
  std::vector<std::string> seen;
  std::int64_t last = 0;
  auto err = run(io_, c.watch("/t/w/", prefix_end("/t/w/"), start,
                              [&](std::int64_t rev, std::vector<watch_event>& evs) {
                                last = rev;
                                for (auto& e : evs)
                                  seen.push_back(e.what == watch_event::type::del
                                                     ? "del"
                                                     : e.kv.value);
                                return seen.size() < 3;
                              }));
  EXPECT_FALSE(err) << err.message;
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2", "del"}));
  EXPECT_GE(last, start + 2);
}

TEST_F(etcd_client_test, watch_reports_a_compacted_start_revision) {
  auto c = make();
  const auto first = run(io_, c.put("/t/cmp", "1")).revision;
  const auto now = run(io_, c.put("/t/cmp", "2")).revision;
  // Compaction through the gateway: POST /v3/kv/compaction.
  // (No client call for it: the proxy never compacts; etcd's auto-compaction does.)
  {
    asio::io_context io;
    asio::ip::tcp::socket s(io);
    const auto ep = *parse_etcd_endpoint(server_->url());
    s.connect({asio::ip::make_address(ep.host),
               static_cast<unsigned short>(std::stoi(ep.port))});
    const std::string body = "{\"revision\":\"" + std::to_string(now) + "\"}";
    const std::string req = "POST /v3/kv/compaction HTTP/1.1\r\nHost: e\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    asio::write(s, asio::buffer(req));
    boost::system::error_code ec;
    std::string out(4096, '\0');
    s.read_some(asio::buffer(out), ec);
    ASSERT_NE(out.find("200 OK"), std::string::npos) << out;
  }
  auto err = run(io_, c.watch("/t/cmp", {}, first,
                              [](std::int64_t, std::vector<watch_event>&) { return true; }));
  EXPECT_EQ(err.what, etcd_error::kind::compacted) << err.message;
  EXPECT_EQ(err.compact_revision, now);
}

TEST_F(etcd_client_test, fails_over_to_the_next_endpoint) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  auto c = make({dead, server_->url()});
  auto r = run(io_, c.range("/t/none"));
  EXPECT_FALSE(r.error) << r.error.message;
  EXPECT_EQ(c.current_endpoint(), server_->url());
}

TEST_F(etcd_client_test, no_endpoint_is_unavailable_not_a_hang) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  auto c = make({dead});
  auto r = run(io_, c.range("/t/none"));
  EXPECT_EQ(r.error.what, etcd_error::kind::unavailable);
  EXPECT_NE(r.error.message.find(dead), std::string::npos) << r.error.message;
}

// Runs `io` until `done()` or `limit` passes; true when done.
template <class F>
bool run_until(asio::io_context& io, F done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  io.restart();
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_one_for(50ms);
  }
  return true;
}

struct replica {
  etcd_client client;
  leader_election election;
  replica(asio::io_context& io, const std::string& url, const std::string& key, std::string id)
      : client(io.get_executor(), {*parse_etcd_endpoint(url)}, 500ms, 2s),
        election(io.get_executor(), client, key, std::move(id), 2s, nullptr) {}
};

class election_test : public etcd_client_test {
 protected:
  std::vector<std::unique_ptr<replica>> start(const std::string& key, int n) {
    std::vector<std::unique_ptr<replica>> rs;
    for (int i = 0; i < n; ++i) {
      rs.push_back(std::make_unique<replica>(io_, server_->url(), key, "r" + std::to_string(i)));
      asio::co_spawn(io_, rs.back()->election.run(), asio::detached);
    }
    return rs;
  }
  static int leaders(const std::vector<std::unique_ptr<replica>>& rs) {
    int n = 0;
    for (const auto& r : rs) n += r->election.status().leader ? 1 : 0;
    return n;
  }
  static replica* leader(const std::vector<std::unique_ptr<replica>>& rs) {
    for (const auto& r : rs)
      if (r->election.status().leader) return r.get();
    return nullptr;
  }
  void stop_all(std::vector<std::unique_ptr<replica>>& rs) {
    for (auto& r : rs) {
      r->election.abandon();
      r->client.close();
    }
    run_until(io_, [] { return false; }, 0s);
    io_.run_for(200ms);
  }
};

TEST_F(election_test, one_leader_that_every_replica_names) {
  auto rs = start("/t/e1/leader", 3);
  ASSERT_TRUE(run_until(io_, [&] {
    if (leaders(rs) != 1) return false;
    const auto id = leader(rs)->election.status().leader_id;
    for (const auto& r : rs)
      if (r->election.status().leader_id != id) return false;
    return true;
  }, 10s));
  // Stays one for a few lease renewals.
  io_.restart();
  io_.run_for(3s);
  EXPECT_EQ(leaders(rs), 1);
  auto kv = run(io_, rs[0]->client.range("/t/e1/leader"));
  ASSERT_EQ(kv.kvs.size(), 1u);
  EXPECT_EQ(kv.kvs[0].value, leader(rs)->election.status().leader_id);
  EXPECT_EQ(kv.kvs[0].create_revision, leader(rs)->election.status().fence);
  stop_all(rs);
}

TEST_F(election_test, a_dead_leader_is_replaced_and_its_fenced_writes_fail) {
  auto rs = start("/t/e2/leader", 3);
  ASSERT_TRUE(run_until(io_, [&] { return leaders(rs) == 1; }, 10s));
  replica* old = leader(rs);
  const auto old_fence = old->election.fence_compare();
  // A fenced write while it leads commits.
  auto w = [&](const compare& fence, std::string v) {
    std::vector<compare> c{fence};
    std::vector<txn_op> ops(1);
    ops[0] = txn_op{txn_op::kind::put, "/t/e2/state", std::move(v), 0, {}};
    return run(io_, old->client.txn(std::move(c), std::move(ops)));
  };
  EXPECT_TRUE(w(old_fence, "by old").succeeded);
  old->election.abandon();  // as a crash: no resign, the lease runs out
  ASSERT_TRUE(run_until(io_, [&] {
    auto* l = leader(rs);
    return l != nullptr && l != old;
  }, 15s));
  EXPECT_EQ(leaders(rs), 1);
  EXPECT_NE(leader(rs)->election.status().fence, old_fence.number);
  // The deposed leader's write, fenced with its old create revision, is never committed.
  auto late = w(old_fence, "late");
  ASSERT_FALSE(late.error) << late.error.message;
  EXPECT_FALSE(late.succeeded);
  EXPECT_EQ(run(io_, old->client.range("/t/e2/state")).kvs.at(0).value, "by old");
  stop_all(rs);
}

TEST_F(election_test, a_resigning_leader_hands_over_without_waiting_for_the_lease) {
  auto rs = start("/t/e3/leader", 2);
  ASSERT_TRUE(run_until(io_, [&] { return leaders(rs) == 1; }, 10s));
  replica* old = leader(rs);
  asio::co_spawn(io_, old->election.resign(), asio::detached);
  ASSERT_TRUE(run_until(io_, [&] {
    auto* l = leader(rs);
    return l != nullptr && l != old;
  }, 10s));
  stop_all(rs);
}

rollout::route_state state_with(std::string stable, std::string canary = {}, int weight = 0) {
  rollout::route_state s;
  s.stable = std::move(stable);
  s.canary = std::move(canary);
  s.weight = weight;
  s.weight_total = 100;
  s.seen_upstream = s.canary.empty() ? s.stable : s.canary;
  s.phase = s.canary.empty() ? rollout::phase::healthy : rollout::phase::progressing;
  s.updated_at = rollout::wall_time(std::chrono::seconds(1'800'000'000));
  return s;
}

class etcd_store_test : public etcd_client_test {
 protected:
  etcd_store_options options(const std::string& prefix, std::string url = {}) {
    etcd_store_options o;
    o.endpoints.push_back(*parse_etcd_endpoint(url.empty() ? server_->url() : url));
    o.prefix = prefix;
    o.dial_timeout = 500ms;
    o.call_timeout = 2s;
    return o;
  }
  runtime rt_;
};

TEST_F(etcd_store_test, what_one_replica_saves_another_loads) {
  etcd_state_store a(rt_, options("/t/s1/"));
  etcd_state_store b(rt_, options("/t/s1/"));
  auto empty = a.load();
  EXPECT_FALSE(empty.exists);
  EXPECT_TRUE(empty.error.empty()) << empty.error;
  rollout::state_map states{{"web", state_with("blue", "green", 20)}, {"api", state_with("v1")}};
  ASSERT_EQ(a.save(states), "");
  auto got = b.load();
  ASSERT_TRUE(got.error.empty()) << got.error;
  EXPECT_EQ(got.states, states);
  // One key per route, readable by anyone with etcdctl.
  auto kv = run(io_, make().range("/t/s1/routes/web"));
  ASSERT_EQ(kv.kvs.size(), 1u);
  EXPECT_NE(kv.kvs[0].value.find("\"green\""), std::string::npos) << kv.kvs[0].value;
}

TEST_F(etcd_store_test, a_save_from_a_stale_picture_is_a_conflict_never_a_lost_update) {
  etcd_state_store a(rt_, options("/t/s2/"));
  etcd_state_store b(rt_, options("/t/s2/"));
  ASSERT_EQ(a.save({{"web", state_with("blue", "green", 20)}}), "");
  ASSERT_TRUE(a.load().error.empty());
  ASSERT_TRUE(b.load().error.empty());
  ASSERT_EQ(a.save({{"web", state_with("blue", "green", 50)}}), "");
  const auto lost = b.save({{"web", state_with("blue", "green", 30)}});
  EXPECT_EQ(lost.rfind(conflict_prefix, 0), 0u) << lost;
  auto now = b.load();
  EXPECT_EQ(now.states.at("web").weight, 50);  // a's write stands
  EXPECT_EQ(b.save({{"web", state_with("blue", "green", 30)}}), "");  // from the new picture
  EXPECT_EQ(a.load().states.at("web").weight, 30);
}

TEST_F(etcd_store_test, a_watcher_sees_each_change_and_saves_on_top_of_it) {
  // Before the stores: their watch callbacks write these until the stores are destroyed.
  std::mutex m;
  std::vector<etcd_state_store::remote_states> seen;
  bool connected = false;
  etcd_state_store a(rt_, options("/t/s3/"));
  etcd_state_store b(rt_, options("/t/s3/"));
  ASSERT_EQ(a.save({{"web", state_with("blue")}}), "");
  ASSERT_TRUE(b.load().error.empty());
  b.watch(
      [&](const etcd_state_store::remote_states& r) {
        std::lock_guard lock(m);
        seen.push_back(r);
      },
      [&](bool up, const std::string&) {
        std::lock_guard lock(m);
        connected = up;
      });
  ASSERT_EQ(a.save({{"web", state_with("blue", "green", 20)}}), "");
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  etcd_state_store::remote_states last;
  for (;;) {
    {
      std::lock_guard lock(m);
      // The change may come from the watch's first read, before its stream is up: wait for
      // both.
      if (connected && !seen.empty() && seen.back().states.at("web").weight == 20) {
        last = seen.back();
        break;
      }
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the change never reached b";
    std::this_thread::sleep_for(10ms);
  }
  // Without adopting, b's picture is stale: a conflict. Once adopted, its save applies.
  EXPECT_EQ(b.save({{"web", state_with("blue", "green", 40)}}).rfind(conflict_prefix, 0), 0u);
  b.adopted(last);
  EXPECT_EQ(b.save({{"web", state_with("blue", "green", 40)}}), "");
}

TEST_F(etcd_store_test, a_deposed_leaders_fenced_save_is_refused) {
  etcd_state_store a(rt_, options("/t/s4/"));
  auto c = make();
  const auto won = run(io_, c.put("/t/s4/leader", "a")).revision;
  a.set_fence(compare{"/t/s4/leader", compare::target::create, compare::op::equal, won, {}});
  ASSERT_EQ(a.save({{"web", state_with("blue")}}), "");
  run(io_, c.del("/t/s4/leader"));
  run(io_, c.put("/t/s4/leader", "b"));  // someone else won it since
  const auto refused = a.save({{"web", state_with("blue", "green", 10)}});
  EXPECT_EQ(refused, std::string(conflict_prefix) + "this replica is no longer the leader");
  etcd_state_store reader(rt_, options("/t/s4/"));
  EXPECT_EQ(reader.load().states.at("web").weight, 0);
}

TEST_F(etcd_store_test, no_etcd_means_unavailable_within_the_timeouts) {
  etcd_state_store a(rt_, options("/t/s5/", "http://127.0.0.1:" + std::to_string(free_port())));
  const auto saved = a.save({{"web", state_with("blue")}});
  EXPECT_EQ(saved.rfind("state store unavailable: ", 0), 0u) << saved;
  const auto loaded = a.load();
  EXPECT_EQ(loaded.error.rfind("state store unavailable: ", 0), 0u) << loaded.error;
}

}  // namespace
}  // namespace canary::fleet
