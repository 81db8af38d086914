// Leader election on an etcd lease: each replica holds a lease it keeps alive and campaigns by
// creating the election key under it (a transaction that succeeds only while the key does not
// exist); the creator leads until its lease ends, then the key goes with it and the others, who
// watch the key, campaign again. The key's create revision is the leader's fence: every write a
// leader makes compares it, so a deposed leader (frozen, partitioned) can never commit one.
// Runs as coroutines on the fleet thread's executor, with the etcd_client it is given; its
// status is read on that thread (on_change tells other threads through their own posts).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "fleet/etcd_client.h"

namespace canary::fleet {

struct election_status {
  bool connected = false;  // the lease is alive as far as this replica can tell
  bool leader = false;     // this replica leads (and may write with `fence`)
  std::string leader_id;   // "" = unknown / none
  std::int64_t fence = 0;  // the election key's create revision while this replica leads
  std::int64_t lease = 0;  // this replica's lease id (0 = none)

  bool operator==(const election_status&) const = default;
};

class leader_election {
 public:
  using clock = std::chrono::steady_clock;

  // `key`: the election key (e.g. prefix + "leader"); `id`: this replica's id, stored as the
  // key's value; `ttl`: the lease's time to live, so a dead leader's duties move within it.
  leader_election(boost::asio::any_io_executor ex, etcd_client& client, std::string key,
                  std::string id, std::chrono::seconds ttl,
                  std::function<void(const election_status&)> on_change);
  ~leader_election();
  leader_election(const leader_election&) = delete;
  leader_election& operator=(const leader_election&) = delete;

  // Campaigns, leads, loses and campaigns again until stop(); never throws.
  boost::asio::awaitable<void> run();

  // Resigns: revokes the lease (the key goes at once, another replica takes over without waiting
  // for the TTL) and ends run().
  boost::asio::awaitable<void> resign();
  // Ends run() without telling etcd (as a crash would): the lease runs out on its own.
  void abandon();

  const election_status& status() const;

  // The compare a leader's write must carry: the election key still has the create revision
  // this replica won it with.
  compare fence_compare() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace canary::fleet
