// A client of etcd's v3 API through its JSON gateway (HTTP/1.1 + JSON, base64 keys and values,
// 64-bit integers as strings): range, put, delete, transactions with compares, leases and a
// watch stream. Coroutines on one executor (the fleet thread's io_context): every call is made
// and awaited there, never on the control or worker threads. Unary calls share one keep-alive
// connection, made on demand to the first endpoint that answers (a failed endpoint moves to
// the back); each watch has a connection of its own. Every call is bounded by its timeout.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace canary::fleet {

struct etcd_endpoint {
  std::string host;  // name or numeric address
  std::string port;
  std::string text;  // as configured: "http://127.0.0.1:2379"
};

// "http://host:port" (the only scheme this client speaks). nullopt when malformed.
std::optional<etcd_endpoint> parse_etcd_endpoint(std::string_view url);

struct key_value {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

// Every call answers with the store's revision at the time of the answer, or an error.
struct etcd_error {
  enum class kind {
    none,
    unavailable,  // no endpoint answered (connect, timeout, broken connection)
    rejected,     // an endpoint answered with an error (HTTP status or gRPC error body)
    compacted,    // watch: the start revision was compacted (re-read, then watch again)
  };
  kind what = kind::none;
  std::string message;
  std::int64_t compact_revision = 0;  // compacted: the oldest revision still available
  explicit operator bool() const { return what != kind::none; }
};

struct range_result {
  etcd_error error;
  std::int64_t revision = 0;
  std::vector<key_value> kvs;
};

struct compare {
  enum class target { create, mod, version, value, lease };
  enum class op { equal, greater, less, not_equal };
  std::string key;
  target what = target::mod;
  op how = op::equal;
  std::int64_t number = 0;  // create / mod / version / lease
  std::string value;        // value
};

struct txn_op {
  enum class kind { put, del, range };
  kind what = kind::put;
  std::string key;
  std::string value;      // put
  std::int64_t lease = 0;  // put: 0 = none
  std::string range_end;  // del / range: "" = the key alone
};

struct txn_result {
  etcd_error error;
  std::int64_t revision = 0;
  bool succeeded = false;
  std::vector<range_result> ranges;  // one per range op of the branch taken, in order
};

struct lease_result {
  etcd_error error;
  std::int64_t revision = 0;
  std::int64_t id = 0;
  std::int64_t ttl = 0;  // keepalive: 0 = the lease has expired
};

struct watch_event {
  enum class type { put, del };
  type what = type::put;
  key_value kv;  // del: key and mod_revision only
};

// The end of the range that holds every key starting with `prefix` (etcd's prefix convention).
std::string prefix_end(std::string_view prefix);

class etcd_client {
 public:
  using duration = std::chrono::milliseconds;

  etcd_client(boost::asio::any_io_executor ex, std::vector<etcd_endpoint> endpoints,
              duration dial_timeout, duration call_timeout);
  ~etcd_client();
  etcd_client(const etcd_client&) = delete;
  etcd_client& operator=(const etcd_client&) = delete;

  boost::asio::awaitable<range_result> range(std::string key, std::string range_end = {});
  boost::asio::awaitable<txn_result> txn(std::vector<compare> compares,
                                         std::vector<txn_op> success,
                                         std::vector<txn_op> failure = {});
  // A put and a delete as one-operation transactions with no compare.
  boost::asio::awaitable<txn_result> put(std::string key, std::string value,
                                         std::int64_t lease = 0);
  boost::asio::awaitable<txn_result> del(std::string key, std::string range_end = {});

  boost::asio::awaitable<lease_result> grant(std::int64_t ttl_seconds);
  boost::asio::awaitable<lease_result> keepalive(std::int64_t id);
  boost::asio::awaitable<lease_result> revoke(std::int64_t id);

  // Watches [key, range_end) from `start_revision` (0 = from now), calling on_events for each
  // batch with the revision it brings the watcher to, until on_events returns false (the
  // result's error is none), the stream breaks (unavailable), etcd cancels the watch
  // (compacted or rejected), or close() is called. A watch that connected answers its first
  // batch (possibly empty, "created") through on_events too, so the caller knows it is live.
  boost::asio::awaitable<etcd_error> watch(
      std::string key, std::string range_end, std::int64_t start_revision,
      std::function<bool(std::int64_t revision, std::vector<watch_event>& events)> on_events);

  // Cancels every call in flight (they complete with unavailable) and closes the connections.
  void close();

  // The endpoint the last successful call used ("" before any).
  const std::string& current_endpoint() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace canary::fleet
