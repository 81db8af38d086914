// The rollout states shared through etcd: one key per route (<prefix>routes/<name>, the same
// JSON as a state file holding that route alone), written with compare-and-swap transactions
// on each key's mod revision (and, for a leader's writes, the election fence), watched so that
// every replica learns every change. A `runtime` thread runs the etcd client's coroutines; the
// state_store calls (load, save) come from the control thread and wait for their transaction,
// bounded by the dial and call timeouts; watch callbacks run on the runtime thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fleet/etcd_client.h"
#include "rollout/state_store.h"

namespace canary::fleet {

// A thread running one io_context until destroyed (the fleet's coroutines live there).
class runtime {
 public:
  runtime();
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
};

struct etcd_store_options {
  std::vector<etcd_endpoint> endpoints;
  std::string prefix = "/canary-proxy/";
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds call_timeout{2000};
};

// What a save that lost a compare tells the engine: the stored states changed under it (another
// replica wrote first); the engine re-reads, re-applies its operation and saves again.
inline constexpr std::string_view conflict_prefix = "conflict: ";

class etcd_state_store final : public rollout::state_store {
 public:
  etcd_state_store(runtime& rt, etcd_store_options options);
  ~etcd_state_store() override;

  rollout::loaded_state load() override;
  // Writes the routes whose JSON differs from what this store last read or wrote, each with a
  // compare on the mod revision it knew (absent: create revision 0), plus the fence when set,
  // all in one transaction; deletes routes no longer in `states`. "" when committed;
  // "conflict: ..." when a compare failed (nothing written; the store now knows the newer
  // values); "state store unavailable: ..." when etcd could not be asked.
  std::string save(const rollout::state_map& states) override;
  std::string describe() const override;

  // A leader's writes carry its election fence; nullopt = none (tests, single writer).
  void set_fence(std::optional<compare> fence);

  // What the watch saw: every route's state at `revision`, and each route key's mod revision.
  struct remote_states {
    rollout::state_map states;
    std::map<std::string, std::int64_t> mod_revisions;
    std::int64_t revision = 0;
  };
  // Follows every change under the prefix from the revision this store last read, calling
  // on_change (runtime thread) with the complete states after each batch. Re-reads when the
  // start revision was compacted; reconnects with backoff when the stream breaks
  // (on_connection tells whether it is connected). Ends at destruction.
  void watch(std::function<void(const remote_states&)> on_change,
             std::function<void(bool connected, const std::string& why)> on_connection);
  // The engine took `seen` as its states (control thread): later saves compare against these
  // revisions, so a change the engine has not adopted is never overwritten.
  void adopted(const remote_states& seen);

  std::int64_t revision() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace canary::fleet
