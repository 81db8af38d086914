// One replica of a fleet sharing its rollout states through etcd (docs/fleet.md): the etcd
// state store with the state file as its local cache, the store's watch feeding the engine,
// the leader election, this replica's registration under its lease and the fail-static clock.
// Built on the control thread before the engine (which takes store()); start() on the control
// thread once the engine exists; the etcd coroutines run on the node's own runtime thread and
// post what they learn to the control io_context. Lives until the process ends.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "fleet/election.h"
#include "fleet/etcd_store.h"
#include "rollout/engine.h"
#include "rollout/state_file.h"
#include "rollout/state_store.h"

namespace canary::fleet {

// The etcd store, its states also written to the state file so that a replica started while
// etcd is down serves what etcd last held. Control thread.
class cached_etcd_store final : public rollout::state_store {
 public:
  // `seen_key`: where this replica's "upstream seen at last load" lives (read and written
  // through `client` on `rt`, waited for here, bounded by `bound`).
  cached_etcd_store(std::shared_ptr<etcd_state_store> etcd, std::string cache_file,
                    runtime& rt, etcd_client& client, std::string seen_key,
                    std::chrono::milliseconds bound);
  // etcd's states; when it cannot be asked, the cache's (from_cache); with neither, an error
  // that refuses the start ("state store unavailable and no cached state in FILE").
  rollout::loaded_state load() override;
  // etcd's compare-and-swap; once committed, the cache too (a cache write failure is logged).
  std::string save(const rollout::state_map& states) override;
  std::string describe() const override { return etcd_->describe(); }
  // Keeps the cache in line with states adopted from the watch.
  void write_cache(const rollout::state_map& states);
  // This replica's record (an empty map when it has none yet, or etcd cannot be asked: a
  // replica that cannot tell treats its file as new to it).
  std::optional<std::map<std::string, std::string>> load_replica_seen() override;
  void save_replica_seen(const std::map<std::string, std::string>& seen) override;
  // The store's revision right after this replica's last commit (0 before any).
  std::int64_t committed_revision() const { return committed_revision_; }

 private:
  std::shared_ptr<etcd_state_store> etcd_;
  std::string cache_file_;
  std::unique_ptr<rollout::file_state_store> cache_;
  runtime& rt_;
  etcd_client& client_;
  std::string seen_key_;
  std::chrono::milliseconds bound_;
  std::int64_t committed_revision_ = 0;
};

// GET /api/v1/cluster of a replica on the file store: it is the whole fleet, and its leader.
std::string standalone_cluster_json(std::uint16_t admin_port);

class node {
 public:
  // The store and its runtime are made here; nothing is asked of etcd until the engine loads.
  node(boost::asio::io_context& control, const config::proxy_config& cfg);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  std::shared_ptr<rollout::state_store> store() { return store_; }

  // Watches the states into `engine`, campaigns, registers this replica (`admin_port` names it
  // when replica_id is ""), and runs the fail-static clock. `engine` must outlive the node.
  void start(rollout::engine& engine, std::uint16_t admin_port);

  // GET /api/v1/cluster (docs/fleet.md).
  std::string cluster_json() const;
  const std::string& replica_id() const { return replica_id_; }

 private:
  struct shared;  // what the runtime thread and the control thread both read, under a mutex
  void on_connection(bool connected, const std::string& why);
  void on_leader(const election_status& st);
  void stale_check();

  boost::asio::io_context& control_;
  config::state_store_config cfg_;
  std::string cache_file_;
  std::string replica_id_;
  std::string incarnation_;
  runtime rt_;  // destroyed first among the fleet members below it: stops the coroutines
  std::shared_ptr<etcd_state_store> etcd_;
  std::shared_ptr<cached_etcd_store> store_;
  std::unique_ptr<etcd_client> client_;  // election and registration
  std::unique_ptr<leader_election> election_;
  std::shared_ptr<shared> shared_;
  rollout::engine* engine_ = nullptr;
  boost::asio::steady_timer stale_timer_;
  std::optional<std::chrono::steady_clock::time_point> down_since_;  // control thread
  std::string leader_id_;                                            // control thread
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace canary::fleet
