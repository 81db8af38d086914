#include "fleet/etcd_store.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <future>

#include "rollout/state_file.h"

namespace canary::fleet {

namespace asio = boost::asio;
using namespace std::chrono_literals;

runtime::runtime() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

runtime::~runtime() {
  work_.reset();
  io_.stop();
  thread_.join();
}

namespace {

// A route's value: the state file's JSON holding that route alone, so the format, its version
// and its checks are the state file's.
std::string encode_route(const std::string& name, const rollout::route_state& s) {
  rollout::state_map one;
  one.emplace(name, s);
  return rollout::serialize_state(one);
}

std::optional<rollout::route_state> decode_route(const std::string& name, const std::string& text,
                                                 std::string& error) {
  auto parsed = rollout::parse_state(text);
  if (!parsed.ok) {
    error = "route " + name + ": " + parsed.error;
    return std::nullopt;
  }
  auto it = parsed.states.find(name);
  if (it == parsed.states.end() || parsed.states.size() != 1) {
    error = "route " + name + ": the key does not hold that route alone";
    return std::nullopt;
  }
  return std::move(it->second);
}

}  // namespace

struct etcd_state_store::impl : std::enable_shared_from_this<impl> {
  runtime& rt;
  etcd_store_options opt;
  etcd_client client;
  std::string routes_prefix;
  // Control thread: what this replica's states derive from (value, mod revision per route).
  struct known_route {
    std::string value;
    std::int64_t mod_revision = 0;
  };
  std::map<std::string, known_route> known;
  std::optional<compare> fence;
  std::mutex revision_mutex;
  std::int64_t revision = 0;
  bool stopped = false;  // runtime thread

  impl(runtime& r, etcd_store_options o)
      : rt(r),
        opt(std::move(o)),
        client(r.io().get_executor(), opt.endpoints, opt.dial_timeout, opt.call_timeout),
        routes_prefix(opt.prefix + "routes/") {}

  // Waits for a coroutine on the runtime thread. The client bounds every call; the wait is a
  // second bound in case it does not (every endpoint's dial, then the call, plus a second).
  template <class T>
  std::optional<T> block_on(asio::awaitable<T> aw) {
    auto f = asio::co_spawn(rt.io(), std::move(aw), asio::use_future);
    const auto bound = opt.dial_timeout * static_cast<int>(opt.endpoints.size()) +
                       opt.call_timeout + std::chrono::milliseconds(1000);
    if (f.wait_for(bound) != std::future_status::ready) return std::nullopt;
    return f.get();
  }

  void set_revision(std::int64_t r) {
    std::lock_guard lock(revision_mutex);
    revision = std::max(revision, r);
  }

  std::string name_of(const std::string& key) const { return key.substr(routes_prefix.size()); }
};

etcd_state_store::etcd_state_store(runtime& rt, etcd_store_options options)
    : impl_(std::make_shared<impl>(rt, std::move(options))) {}

etcd_state_store::~etcd_state_store() {
  auto self = impl_;
  std::promise<void> done;
  asio::post(self->rt.io(), [self, &done] {
    self->stopped = true;
    self->client.close();
    done.set_value();
  });
  done.get_future().wait();
}

std::string etcd_state_store::describe() const {
  std::string eps;
  for (const auto& e : impl_->opt.endpoints) eps += (eps.empty() ? "" : ",") + e.text;
  return "etcd " + eps + " prefix " + impl_->opt.prefix;
}

void etcd_state_store::set_fence(std::optional<compare> fence) { impl_->fence = std::move(fence); }

std::int64_t etcd_state_store::revision() const {
  std::lock_guard lock(impl_->revision_mutex);
  return impl_->revision;
}

rollout::loaded_state etcd_state_store::load() {
  auto& i = *impl_;
  rollout::loaded_state out;
  auto r = i.block_on(i.client.range(i.routes_prefix, prefix_end(i.routes_prefix)));
  if (!r || r->error) {
    out.exists = true;
    out.error = "state store unavailable: " +
                (r ? r->error.message : std::string("no answer in time"));
    return out;
  }
  i.set_revision(r->revision);
  std::map<std::string, impl::known_route> known;
  for (auto& kv : r->kvs) {
    const auto name = i.name_of(kv.key);
    std::string error;
    auto s = decode_route(name, kv.value, error);
    if (!s) {
      out.exists = true;
      out.error = error;
      return out;
    }
    out.states.emplace(name, std::move(*s));
    known[name] = {std::move(kv.value), kv.mod_revision};
  }
  out.exists = !out.states.empty();
  i.known = std::move(known);
  return out;
}

std::string etcd_state_store::save(const rollout::state_map& states) {
  auto& i = *impl_;
  std::vector<compare> compares;
  std::vector<txn_op> ops;
  std::map<std::string, std::string> written;
  if (i.fence) compares.push_back(*i.fence);
  for (const auto& [name, s] : states) {
    auto value = encode_route(name, s);
    const auto it = i.known.find(name);
    if (it != i.known.end() && it->second.value == value) continue;
    const std::string key = i.routes_prefix + name;
    if (it == i.known.end())
      compares.push_back({key, compare::target::create, compare::op::equal, 0, {}});
    else
      compares.push_back({key, compare::target::mod, compare::op::equal, it->second.mod_revision,
                          {}});
    ops.push_back({txn_op::kind::put, key, value, 0, {}});
    written[name] = std::move(value);
  }
  std::vector<std::string> removed;
  for (const auto& [name, k] : i.known)
    if (!states.contains(name)) {
      const std::string key = i.routes_prefix + name;
      compares.push_back({key, compare::target::mod, compare::op::equal, k.mod_revision, {}});
      ops.push_back({txn_op::kind::del, key, {}, 0, {}});
      removed.push_back(name);
    }
  if (ops.empty()) return {};
  std::vector<txn_op> failure;
  if (i.fence) failure.push_back({txn_op::kind::range, i.fence->key, {}, 0, {}});
  auto r = i.block_on(i.client.txn(compares, ops, failure));
  if (r && r->error.what == etcd_error::kind::unavailable) {
    // A member that lost its raft leader drops the proposal and answers only at its request
    // timeout; by now another member (or this one) knows the new leader. Sent again with the
    // same compares it commits at most once: if the first did land after all, this one is a
    // conflict, and the engine, re-reading, finds its own write (engine::apply).
    r = i.block_on(i.client.txn(std::move(compares), std::move(ops), std::move(failure)));
  }
  if (!r) return "state store unavailable: no answer in time";
  if (r->error) return "state store unavailable: " + r->error.message;
  i.set_revision(r->revision);
  if (!r->succeeded) {
    if (i.fence && !r->ranges.empty()) {
      const auto& kvs = r->ranges[0].kvs;
      if (kvs.empty() || kvs[0].create_revision != i.fence->number)
        return std::string(conflict_prefix) + "this replica is no longer the leader";
    }
    return std::string(conflict_prefix) + "another replica changed the rollout state first";
  }
  // Every key written in one transaction carries its revision.
  for (auto& [name, value] : written) i.known[name] = {std::move(value), r->revision};
  for (const auto& name : removed) i.known.erase(name);
  return {};
}

void etcd_state_store::adopted(const remote_states& seen) {
  auto& i = *impl_;
  std::map<std::string, impl::known_route> known;
  for (const auto& [name, s] : seen.states) {
    const auto rev = seen.mod_revisions.find(name);
    known[name] = {encode_route(name, s), rev == seen.mod_revisions.end() ? 0 : rev->second};
  }
  i.known = std::move(known);
}

void etcd_state_store::watch(std::function<void(const remote_states&)> on_change,
                             std::function<void(bool connected, const std::string& why)> on_conn) {
  auto self = impl_;
  const auto from = revision();
  asio::co_spawn(
      self->rt.io(),
      [self, on_change = std::move(on_change), on_conn = std::move(on_conn),
       from]() -> asio::awaitable<void> {
        // The watch's own picture of the shared states (runtime thread).
        remote_states mirror;
        std::int64_t next = from;
        bool need_read = true;
        auto backoff = 100ms;
        while (!self->stopped) {
          if (need_read) {
            auto r = co_await self->client.range(self->routes_prefix,
                                                 prefix_end(self->routes_prefix));
            if (self->stopped) break;
            if (r.error) {
              on_conn(false, r.error.message);
              asio::steady_timer t(self->rt.io(), backoff);
              co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
              backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2000ms);
              continue;
            }
            mirror = {};
            for (auto& kv : r.kvs) {
              const auto name = self->name_of(kv.key);
              std::string error;
              if (auto s = decode_route(name, kv.value, error)) {
                mirror.states.emplace(name, std::move(*s));
                mirror.mod_revisions[name] = kv.mod_revision;
              }
            }
            mirror.revision = r.revision;
            next = r.revision + 1;
            need_read = false;
            self->set_revision(r.revision);
            if (self->stopped) break;  // the store is gone: nobody to tell
            on_change(mirror);
          }
          bool live = false;
          auto err = co_await self->client.watch(
              self->routes_prefix, prefix_end(self->routes_prefix), next,
              [&](std::int64_t rev, std::vector<watch_event>& evs) {
                if (!live) {
                  live = true;
                  backoff = 100ms;
                  on_conn(true, {});
                }
                if (evs.empty()) return !self->stopped;
                for (auto& e : evs) {
                  const auto name = self->name_of(e.kv.key);
                  if (e.what == watch_event::type::del) {
                    mirror.states.erase(name);
                    mirror.mod_revisions.erase(name);
                  } else {
                    std::string error;
                    if (auto s = decode_route(name, e.kv.value, error)) {
                      mirror.states.insert_or_assign(name, std::move(*s));
                      mirror.mod_revisions[name] = e.kv.mod_revision;
                    }
                  }
                  next = std::max(next, e.kv.mod_revision + 1);
                }
                mirror.revision = rev;
                self->set_revision(rev);
                if (self->stopped) return false;  // the store is gone: nobody to tell
                on_change(mirror);
                return true;
              });
          if (self->stopped) break;
          if (err.what == etcd_error::kind::compacted) {
            need_read = true;
            continue;
          }
          on_conn(false, err ? err.message : std::string("watch ended"));
          // A broken stream may have missed nothing (resume from `next`), but after a long
          // outage the revision may be compacted: the next watch reports it and we re-read.
          asio::steady_timer t(self->rt.io(), backoff);
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
          backoff = std::min<std::chrono::milliseconds>(backoff * 2, 2000ms);
        }
      },
      asio::detached);
}

}  // namespace canary::fleet
