// A fleet replica's wiring; see node.h and docs/fleet.md.
#include "fleet/node.h"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <future>
#include <random>

#include <spdlog/spdlog.h>

#include "util/rfc3339.h"

namespace canary::fleet {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

cached_etcd_store::cached_etcd_store(std::shared_ptr<etcd_state_store> etcd,
                                     std::string cache_file, runtime& rt, etcd_client& client,
                                     std::string seen_key, std::chrono::milliseconds bound)
    : etcd_(std::move(etcd)),
      cache_file_(cache_file),
      cache_(std::make_unique<rollout::file_state_store>(std::move(cache_file))),
      rt_(rt),
      client_(client),
      seen_key_(std::move(seen_key)),
      bound_(bound) {}

std::optional<std::map<std::string, std::string>> cached_etcd_store::load_replica_seen() {
  std::map<std::string, std::string> out;
  auto f = asio::co_spawn(rt_.io(), client_.range(seen_key_), asio::use_future);
  if (f.wait_for(bound_) != std::future_status::ready) return out;
  auto r = f.get();
  if (r.error || r.kvs.empty()) return out;
  boost::system::error_code ec;
  auto v = json::parse(r.kvs[0].value, ec);
  if (ec || !v.is_object()) return out;
  for (const auto& [route, upstream] : v.as_object())
    if (upstream.is_string()) out.emplace(std::string(route), std::string(upstream.as_string()));
  return out;
}

void cached_etcd_store::save_replica_seen(const std::map<std::string, std::string>& seen) {
  json::object o;
  for (const auto& [route, upstream] : seen) o[route] = upstream;
  auto f = asio::co_spawn(rt_.io(), client_.put(seen_key_, json::serialize(o)), asio::use_future);
  // Lost (etcd down): the next load finds the older record and treats its file as changed.
  if (f.wait_for(bound_) != std::future_status::ready || f.get().error)
    spdlog::warn("fleet: cannot record this replica's config upstreams in {}", seen_key_);
}

rollout::loaded_state cached_etcd_store::load() {
  auto loaded = etcd_->load();
  if (loaded.error.empty()) {
    committed_revision_ = std::max(committed_revision_, etcd_->revision());
    return loaded;
  }
  if (!loaded.error.starts_with(rollout::store_unavailable_prefix)) return loaded;
  auto cached = cache_->load();
  if (!cached.exists || !cached.error.empty()) {
    rollout::loaded_state out;
    out.exists = true;
    out.error = "state store unavailable and no cached state in " + cache_file_ + " (" +
                loaded.error + (cached.error.empty() ? "" : "; cache: " + cached.error) + ")";
    return out;
  }
  spdlog::warn("{} ({}): serving the cached rollout state from {}", describe(), loaded.error,
               cache_file_);
  cached.from_cache = true;
  return cached;
}

std::string cached_etcd_store::save(const rollout::state_map& states) {
  auto err = etcd_->save(states);
  if (!err.empty()) return err;
  committed_revision_ = etcd_->revision();
  write_cache(states);
  return {};
}

void cached_etcd_store::write_cache(const rollout::state_map& states) {
  if (auto err = cache_->save(states); !err.empty())
    spdlog::warn("rollout state cache: {} (etcd holds the state; a start while etcd is down "
                 "would serve an older one)",
                 err);
}

struct node::shared {
  mutable std::mutex mutex;
  // Written by the registration loop (runtime thread), read by cluster_json (control thread).
  json::array replicas;
  std::vector<std::string> config_drift;  // written by the control thread
  fleet_counters counters;                // written by the leader's read loop
};

namespace {

std::string default_replica_id(std::uint16_t admin_port) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof host, "replica");
  return std::string(host) + "-" + std::to_string(admin_port);
}

std::vector<etcd_endpoint> endpoints_of(const config::state_store_config& c) {
  std::vector<etcd_endpoint> out;
  for (const auto& text : c.endpoints)
    if (auto e = parse_etcd_endpoint(text)) out.push_back(*e);
  return out;
}

}  // namespace

std::string standalone_cluster_json(std::uint16_t admin_port) {
  static const std::string incarnation = std::to_string(::getpid()) + "-" +
                                         std::to_string(std::random_device{}());
  const auto id = default_replica_id(admin_port);
  json::object me{{"id", id},
                  {"incarnation", incarnation},
                  {"last_seen", util::format_rfc3339(rollout::wall_clock::now())},
                  {"config_drift", json::array{}}};
  json::object o{{"replica", id},
                 {"leader", id},
                 {"store", json::object{{"type", "file"}, {"state", "connected"},
                                        {"revision", nullptr}}},
                 {"replicas", json::array{std::move(me)}}};
  return json::serialize(o);
}

node::node(asio::io_context& control, const config::proxy_config& cfg)
    : control_(control),
      cfg_(cfg.state_store),
      cache_file_(cfg.state_file),
      shared_(std::make_shared<shared>()),
      stale_timer_(control),
      grace_timer_(control) {
  etcd_store_options o;
  o.endpoints = endpoints_of(cfg_);
  o.prefix = cfg_.prefix;
  o.dial_timeout = cfg_.dial_timeout;
  // A write waits for etcd's raft: losing its leader member stalls writes for an election
  // (about a second by default) before the survivors answer.
  o.call_timeout = std::max<std::chrono::milliseconds>(2 * cfg_.dial_timeout,
                                                       std::chrono::seconds(3));
  etcd_ = std::make_shared<etcd_state_store>(rt_, o);
  client_ = std::make_unique<etcd_client>(rt_.io().get_executor(), o.endpoints, o.dial_timeout,
                                          o.call_timeout);
  // Named before the admin listener is bound: with admin port 0 (tests), set replica_id.
  replica_id_ = cfg_.replica_id.empty() ? default_replica_id(cfg.admin.listen.port)
                                        : cfg_.replica_id;
  store_ = std::make_shared<cached_etcd_store>(
      etcd_, cache_file_, rt_, *client_, cfg_.prefix + "replicas/" + replica_id_ + "/seen",
      o.dial_timeout * static_cast<int>(std::max<std::size_t>(o.endpoints.size(), 1)) +
          o.call_timeout + std::chrono::milliseconds(1000));
  // A process start id: a restarted replica (same id) counts its requests afresh.
  std::random_device rd;
  incarnation_ = std::to_string(::getpid()) + "-" + std::to_string(rd());
}

node::~node() {
  // The coroutines hold the election and the client: end them on their thread first.
  std::promise<void> done;
  asio::post(rt_.io(), [this, &done] {
    if (election_) election_->abandon();
    client_->close();
    done.set_value();
  });
  done.get_future().wait();
}

void node::start(rollout::engine& engine, std::uint16_t admin_port) {
  engine_ = &engine;
  if (cfg_.replica_id.empty() && replica_id_.ends_with("-0"))
    replica_id_ = default_replica_id(admin_port);
  spdlog::info("fleet: replica \"{}\" (incarnation {}) on {}", replica_id_, incarnation_,
               etcd_->describe());
  // Until the watch connects, a replica started from the cache writes nothing.
  if (store_->committed_revision() == 0) {
    down_since_ = std::chrono::steady_clock::now();
    engine.set_store_down(std::string(rollout::store_unavailable_prefix) + etcd_->describe() +
                          ": not connected yet");
  }
  engine.set_leader(false);

  std::weak_ptr<int> alive = alive_;
  auto store = store_;
  auto etcd = etcd_;
  etcd_->watch(
      [this, alive, store, etcd](const etcd_state_store::remote_states& seen) {
        asio::post(control_, [this, alive, store, etcd, seen] {
          if (alive.expired()) return;
          // A batch older than this replica's own last commit would undo it for a moment;
          // the batch that carries the commit follows.
          if (seen.revision < store->committed_revision()) return;
          auto changed = engine_->adopt_remote(seen.states);
          etcd->adopted(seen);
          if (!changed.empty()) store->write_cache(engine_->states());
        });
      },
      [this, alive](bool connected, const std::string& why) {
        asio::post(control_, [this, alive, connected, why] {
          if (!alive.expired()) on_connection(connected, why);
        });
      });

  election_ = std::make_unique<leader_election>(
      rt_.io().get_executor(), *client_, cfg_.prefix + "leader", replica_id_,
      std::chrono::duration_cast<std::chrono::seconds>(cfg_.lease_ttl),
      [this, alive](const election_status& st) {
        asio::post(control_, [this, alive, st] {
          if (!alive.expired()) on_leader(st);
        });
      });
  asio::co_spawn(rt_.io(), election_->run(), asio::detached);

  // This replica's key under its lease: who it is, since when, and what it last saw.
  auto sh = shared_;
  const auto period = std::max<std::chrono::milliseconds>(cfg_.lease_ttl / 3, 100ms);
  asio::co_spawn(
      rt_.io(),
      [this, sh, period, alive]() -> asio::awaitable<void> {
        const std::string prefix = cfg_.prefix + "replicas/";
        asio::steady_timer t(rt_.io());
        while (!alive.expired()) {
          const auto lease = election_->status().lease;
          // Registered as soon as the lease is granted, not a period later.
          const auto next = lease == 0 ? std::chrono::milliseconds(100) : period;
          if (lease != 0) {
            json::array drift;
            {
              std::lock_guard lock(sh->mutex);
              for (const auto& r : sh->config_drift) drift.push_back(json::value(r));
            }
            json::object me{{"id", replica_id_},
                            {"incarnation", incarnation_},
                            {"last_seen", util::format_rfc3339(rollout::wall_clock::now())},
                            {"config_drift", std::move(drift)}};
            co_await client_->put(prefix + replica_id_, json::serialize(me), lease);
          }
          auto r = co_await client_->range(prefix, prefix_end(prefix));
          if (!r.error) {
            json::array all;
            for (const auto& kv : r.kvs) {
              // <prefix>replicas/<id>/seen lives beside the registrations.
              if (kv.key.find('/', prefix.size()) != std::string::npos) continue;
              boost::system::error_code ec;
              auto v = json::parse(kv.value, ec);
              if (!ec && v.is_object()) all.push_back(std::move(v));
            }
            std::lock_guard lock(sh->mutex);
            sh->replicas = std::move(all);
          }
          if (alive.expired()) break;
          t.expires_after(next);
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
      },
      asio::detached);

  // The leader reads every replica's published counters (followers do not measure).
  asio::co_spawn(
      rt_.io(),
      [this, sh, alive]() -> asio::awaitable<void> {
        const std::string prefix = cfg_.prefix + "counters/";
        asio::steady_timer t(rt_.io());
        while (!alive.expired()) {
          if (election_->status().leader) {
            auto r = co_await client_->range(prefix, prefix_end(prefix));
            if (!r.error) {
              std::lock_guard lock(sh->mutex);
              for (const auto& kv : r.kvs)
                if (auto c = decode_counters(kv.value))
                  sh->counters.update(kv.key.substr(prefix.size()), *c);
            }
          }
          if (alive.expired()) break;
          t.expires_after(std::chrono::seconds(1));
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        }
      },
      asio::detached);

  stale_check();
}

void node::publish_counters() {
  if (!local_ || !engine_) return;
  std::map<std::string, analysis::interval_sample> mine;
  for (const auto& r : engine_->config().routes)
    if (r.analysis) mine.emplace(r.name, local_(r.name));
  if (mine.empty()) return;
  auto text = encode_counters(mine);
  const std::string key = cfg_.prefix + "counters/" + replica_id_ + "/" + incarnation_;
  std::weak_ptr<int> alive = alive_;
  asio::co_spawn(
      rt_.io(),
      [this, alive, key, text = std::move(text)]() -> asio::awaitable<void> {
        if (alive.expired()) co_return;
        // Under the lease: a dead replica's key goes, the leader keeps what it read.
        const auto lease = election_->status().lease;
        if (lease != 0) co_await client_->put(key, text, lease);
      },
      asio::detached);
}

analysis::interval_sample node::fleet_sample(const std::string& route,
                                             analysis::interval_sample local) const {
  std::lock_guard lock(shared_->mutex);
  local += shared_->counters.others(route, replica_id_ + "/" + incarnation_);
  return local;
}

void node::resign() {
  if (!election_ || !engine_) return;
  engine_->set_leader(false);
  asio::co_spawn(rt_.io(), election_->resign(), asio::detached);
}

void node::on_connection(bool connected, const std::string& why) {
  if (connected) {
    if (engine_->store_down()) spdlog::info("fleet: connected to {}", etcd_->describe());
    down_since_.reset();
    if (grace_armed_) {
      grace_timer_.cancel();
      grace_armed_ = false;
    }
    engine_->set_store_down(std::nullopt);
    engine_->set_stale(false);
    return;
  }
  if (!down_since_) down_since_ = std::chrono::steady_clock::now();
  down_reason_ = std::string(rollout::store_unavailable_prefix) + etcd_->describe() + ": " + why;
  if (engine_->store_down()) {
    engine_->set_store_down(down_reason_);
    return;
  }
  // One member of several lost breaks the watch stream, which then moves to another member:
  // until it had the time to (a dial), changes still try etcd (the client fails over too).
  if (grace_armed_) return;
  grace_armed_ = true;
  grace_timer_.expires_after(cfg_.dial_timeout + std::chrono::milliseconds(200));
  std::weak_ptr<int> alive = alive_;
  grace_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    grace_armed_ = false;
    if (!down_since_) return;  // reconnected meanwhile
    spdlog::error("fleet: {}: routing stays as it is; changes answer 503 and timers wait until "
                  "it is back",
                  down_reason_);
    engine_->set_store_down(down_reason_);
  });
}

void node::on_leader(const election_status& st) {
  leader_id_ = st.leader_id;
  if (st.leader)
    etcd_->set_fence(compare{cfg_.prefix + "leader", compare::target::create, compare::op::equal,
                             st.fence, {}});
  else
    etcd_->set_fence(std::nullopt);
  engine_->set_leader(st.leader);
}

void node::stale_check() {
  if (++publish_ticks_ % 2 == 0) publish_counters();  // every second
  auto drift = engine_->config_drift();
  bool changed = false;
  {
    std::lock_guard lock(shared_->mutex);
    if (drift != shared_->config_drift) {
      shared_->config_drift = drift;
      changed = true;
    }
  }
  if (changed)
    for (const auto& route : drift)
      spdlog::warn("config drift: route \"{}\": this replica's config differs from the fleet's "
                   "rollout state; it never cancels or restarts that rollout",
                   route);
  if (down_since_ && std::chrono::steady_clock::now() - *down_since_ >= cfg_.stale_canary_after)
    engine_->set_stale(true);
  stale_timer_.expires_after(std::chrono::milliseconds(500));
  std::weak_ptr<int> alive = alive_;
  stale_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (!ec && !alive.expired()) stale_check();
  });
}

std::string node::cluster_json() const {
  json::array replicas;
  {
    std::lock_guard lock(shared_->mutex);
    replicas = shared_->replicas;
  }
  json::object o{
      {"replica", replica_id_},
      {"leader", leader_id_.empty() ? json::value(nullptr) : json::value(leader_id_)},
      {"store", json::object{{"type", "etcd"},
                             {"state", engine_ && engine_->store_down() ? "disconnected"
                                                                        : "connected"},
                             {"revision", etcd_->revision()}}},
      {"replicas", std::move(replicas)},
  };
  return json::serialize(o);
}

}  // namespace canary::fleet
