#include "fleet/election.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace canary::fleet {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct leader_election::impl : std::enable_shared_from_this<impl> {
  asio::any_io_executor ex;
  etcd_client& client;
  std::string key;
  std::string id;
  std::chrono::seconds ttl;
  std::function<void(const election_status&)> on_change;
  election_status st;
  bool stopped = false;
  std::uint64_t generation = 0;  // one per lease
  clock::time_point last_ok{};   // when the last successful keepalive (or the grant) was sent
  asio::cancellation_signal wait_cancel;  // ends a follower's watch or a leader's wait
  bool waiting = false;

  impl(asio::any_io_executor e, etcd_client& c) : ex(std::move(e)), client(c) {}

  // Steps down a little before the lease could have run out on the server: last_ok is when the
  // keepalive was sent, so the server's deadline is at least last_ok + ttl.
  clock::duration margin() const { return std::max<clock::duration>(ttl / 6, 200ms); }
  bool lease_alive() const {
    return st.lease != 0 && clock::now() + margin() < last_ok + ttl;
  }

  void publish(election_status next) {
    if (next == st) return;
    st = std::move(next);
    if (on_change) on_change(st);
  }

  void interrupt() {
    if (waiting) wait_cancel.emit(asio::cancellation_type::terminal);
  }

  asio::awaitable<void> sleep(clock::duration d) {
    asio::steady_timer t(ex, d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // Keeps the lease of `gen` alive every ttl/3; on expiry, on a lease etcd no longer knows, or
  // when no keepalive got through in time, marks it lost and wakes the campaign loop.
  asio::awaitable<void> keep_alive(std::uint64_t gen) {
    auto self = shared_from_this();
    const auto period = std::max<clock::duration>(ttl / 3, 100ms);
    while (!stopped && gen == generation) {
      co_await sleep(period);
      if (stopped || gen != generation) break;
      for (;;) {
        const auto sent = clock::now();
        auto r = co_await client.keepalive(st.lease);
        if (stopped || gen != generation) co_return;
        if (!r.error && r.ttl > 0) {
          last_ok = sent;
          break;
        }
        if (!r.error && r.ttl == 0) {  // expired on the server
          last_ok = {};
          break;
        }
        if (!lease_alive()) break;
        co_await sleep(200ms);
      }
      if (!lease_alive()) {
        auto next = st;
        next.connected = false;
        next.leader = false;
        next.fence = 0;
        next.lease = 0;
        publish(next);
        ++generation;
        interrupt();
        co_return;
      }
    }
  }

  // Waits until the election key is deleted (or the wait is interrupted, or the watch breaks).
  asio::awaitable<void> watch_key(std::int64_t from) {
    auto self = shared_from_this();
    waiting = true;
    auto w = asio::co_spawn(
        ex,
        client.watch(key, {}, from,
                     [](std::int64_t, std::vector<watch_event>& evs) {
                       for (const auto& e : evs)
                         if (e.what == watch_event::type::del) return false;
                       return true;
                     }),
        asio::bind_cancellation_slot(wait_cancel.slot(),
                                     asio::as_tuple(asio::use_awaitable)));
    co_await std::move(w);
    waiting = false;
  }

  // A leader waits here while its lease lives.
  asio::awaitable<void> hold(std::uint64_t gen) {
    while (!stopped && gen == generation && lease_alive()) co_await sleep(100ms);
  }
};

leader_election::leader_election(asio::any_io_executor ex, etcd_client& client, std::string key,
                                 std::string id, std::chrono::seconds ttl,
                                 std::function<void(const election_status&)> on_change)
    : impl_(std::make_shared<impl>(std::move(ex), client)) {
  impl_->key = std::move(key);
  impl_->id = std::move(id);
  impl_->ttl = ttl;
  impl_->on_change = std::move(on_change);
}

leader_election::~leader_election() {
  impl_->stopped = true;
  impl_->interrupt();
}

const election_status& leader_election::status() const { return impl_->st; }

compare leader_election::fence_compare() const {
  return compare{impl_->key, compare::target::create, compare::op::equal, impl_->st.fence, {}};
}

void leader_election::abandon() {
  impl_->stopped = true;
  ++impl_->generation;
  impl_->interrupt();
  auto next = impl_->st;
  next.leader = false;
  next.connected = false;
  impl_->publish(next);
}

asio::awaitable<void> leader_election::resign() {
  auto self = impl_;
  const auto lease = self->st.lease;
  abandon();
  if (lease != 0) co_await self->client.revoke(lease);
}

asio::awaitable<void> leader_election::run() {
  auto self = impl_;
  auto backoff = std::chrono::milliseconds(200);
  while (!self->stopped) {
    const auto sent = clock::now();
    auto g = co_await self->client.grant(self->ttl.count());
    if (self->stopped) break;
    if (g.error || g.id == 0) {
      auto next = self->st;
      next = election_status{};
      self->publish(next);
      co_await self->sleep(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      continue;
    }
    backoff = std::chrono::milliseconds(200);
    const auto gen = ++self->generation;
    self->last_ok = sent;
    {
      auto next = self->st;
      next.connected = true;
      next.lease = g.id;
      self->publish(next);
    }
    asio::co_spawn(self->ex, self->keep_alive(gen), asio::detached);

    while (!self->stopped && gen == self->generation && self->lease_alive()) {
      std::vector<compare> cmp(1);
      cmp[0] = compare{self->key, compare::target::create, compare::op::equal, 0, {}};
      std::vector<txn_op> ok(1);
      ok[0] = txn_op{txn_op::kind::put, self->key, self->id, g.id, {}};
      std::vector<txn_op> ko(1);
      ko[0] = txn_op{txn_op::kind::range, self->key, {}, 0, {}};
      auto t = co_await self->client.txn(std::move(cmp), std::move(ok), std::move(ko));
      if (self->stopped || gen != self->generation) break;
      if (t.error) {
        co_await self->sleep(200ms);
        continue;
      }
      if (t.succeeded) {
        auto next = self->st;
        next.leader = true;
        next.leader_id = self->id;
        next.fence = t.revision;  // the transaction's revision is the key's create revision
        // A grant or keepalive that took long may leave too little of the lease to lead on.
        if (!self->lease_alive()) break;
        self->publish(next);
        co_await self->hold(gen);
        break;
      }
      auto next = self->st;
      next.leader = false;
      next.fence = 0;
      next.leader_id.clear();
      if (!t.ranges.empty() && !t.ranges[0].kvs.empty()) {
        const auto& kv = t.ranges[0].kvs[0];
        next.leader_id = kv.value;
        // Our own key from an earlier lease of this process: it goes with that lease.
      }
      self->publish(next);
      co_await self->watch_key(t.revision + 1);
    }
    if (!self->stopped) {
      auto next = self->st;
      next.leader = false;
      next.fence = 0;
      self->publish(next);
    }
  }
}

}  // namespace canary::fleet
