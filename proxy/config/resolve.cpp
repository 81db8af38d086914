// Name resolution of a load; see resolve.h and load.h.
#include "config/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

namespace canary::config {

resolved_name system_resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0) {
    // Not strerror(): it may share a buffer between threads. gai_strerror returns constants.
    return {"", rc == EAI_SYSTEM ? std::generic_category().message(errno) : gai_strerror(rc)};
  }
  // IPv4 is preferred because demo backends and most sidecar set-ups listen on 127.0.0.1 even
  // where "localhost" also maps to ::1.
  const addrinfo* pick = nullptr;
  for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
    if (a->ai_family == AF_INET6 && pick == nullptr) pick = a;
  }
  resolved_name out;
  char buf[INET6_ADDRSTRLEN] = {};
  if (pick != nullptr && pick->ai_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(pick->ai_addr)->sin_addr, buf,
              sizeof buf);
    out.address = buf;
  } else if (pick != nullptr) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(pick->ai_addr)->sin6_addr, buf,
              sizeof buf);
    out.address = buf;
  } else {
    out.error = "no IPv4 or IPv6 address";
  }
  freeaddrinfo(list);
  return out;
}

namespace {

// Everything the resolver threads use. Owned jointly by the loader and each thread: a thread
// still blocked when the loader gives up keeps it alive until it returns.
struct batch {
  batch(std::vector<std::string> h, resolve_function f)
      : hosts(std::move(h)), resolve(std::move(f)), results(hosts.size()) {}

  const std::vector<std::string> hosts;  // never changed after construction: read without lock
  const resolve_function resolve;
  std::mutex mutex;
  std::condition_variable done_cv;
  std::vector<std::optional<resolved_name>> results;  // guarded by mutex
  std::size_t next = 0;                               // next host to start; guarded by mutex
  std::size_t done = 0;                               // guarded by mutex
  bool abandoned = false;  // the loader stopped waiting: start nothing more; guarded by mutex
};

void work(const std::shared_ptr<batch>& b) {
  for (;;) {
    std::size_t i = 0;
    {
      std::lock_guard lock(b->mutex);
      if (b->abandoned || b->next == b->hosts.size()) return;
      i = b->next++;
    }
    resolved_name r;
    try {
      r = b->resolve(b->hosts[i]);
    } catch (const std::exception& e) {
      r = {"", e.what()};
    } catch (...) {
      r = {"", "resolver failed"};
    }
    if (r.address.empty() && r.error.empty()) r.error = "no address";
    std::lock_guard lock(b->mutex);
    b->results[i] = std::move(r);
    ++b->done;
    b->done_cv.notify_all();
  }
}

}  // namespace

std::vector<std::optional<resolved_name>> resolve_all(const std::vector<std::string>& hosts,
                                                      const resolve_function& resolve,
                                                      std::chrono::milliseconds timeout) {
  if (hosts.empty()) return {};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto b = std::make_shared<batch>(hosts, resolve ? resolve : resolve_function(system_resolve));
  const std::size_t threads = std::min(hosts.size(), max_resolver_threads);
  std::size_t started = 0;
  for (std::size_t t = 0; t < threads; ++t) {
    try {
      std::thread([b] { work(b); }).detach();  // the lambda's copy of `b` keeps the batch alive
      ++started;
    } catch (const std::system_error&) {
      break;  // out of threads: the ones running work through the queue
    }
  }
  std::unique_lock lock(b->mutex);
  if (started == 0) {
    // Not even one thread: fail the names rather than block on a resolver without a bound.
    for (auto& r : b->results)
      r = resolved_name{"", "cannot start a resolver thread"};
    return b->results;
  }
  b->done_cv.wait_until(lock, deadline, [&] { return b->done == b->hosts.size(); });
  b->abandoned = true;
  return b->results;  // a copy: late answers land in the batch, not in what the caller reads
}

}  // namespace canary::config
