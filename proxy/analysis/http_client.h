// The outgoing HTTP(S) client of the analysis side (prometheus and web metrics, webhooks): one
// thread of its own with its own io_context, so that name resolution, connects and TLS handshakes
// never run on a worker or on the control thread. send() may be called from any thread and never
// blocks; results come back through `deliver` (the engine posts them onto the control thread).
// Destroying the client cancels the calls in flight (each gets an error) and joins its thread.
// Interface note: send() gained an optional `delay` (webhook retry backoff without a timer on the
// caller's side); everything else is as agreed with the rollout engine.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace canary::analysis {

struct http_request {
  std::string method = "GET";
  std::string url;  // http://host[:port]/path?query or https://...
  std::map<std::string, std::string> headers;
  std::string body;
  // Bounds the whole call: resolve, connect, TLS handshake, write and read.
  std::chrono::milliseconds timeout{5000};
  std::string ca_file;  // https: trusted beside the system store; "" = the system store only
};

struct http_response {
  enum class outcome { ok, timeout, error } result = outcome::error;
  int status = 0;  // ok: the HTTP status (any, 2xx or not)
  std::string body;
  std::string error;  // timeout / error: "connect: Connection refused", "timeout after 5s"
};

class http_client {
 public:
  using deliver_fn = std::function<void(std::function<void()>)>;

  // Beyond this many calls in flight (including those waiting out a delay), send() answers at once
  // with an error: a provider that stops answering must not pile up sockets without bound.
  static constexpr std::size_t max_in_flight = 64;
  // A provider answer is one number or a small JSON document; more is a misconfigured URL.
  static constexpr std::size_t max_body = 1024 * 1024;

  explicit http_client(deliver_fn deliver);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // Starts the call after `delay` (its timeout starts after the delay); `done` runs through
  // `deliver`, exactly once, never inside send().
  void send(http_request request, std::function<void(http_response)> done,
            std::chrono::milliseconds delay = std::chrono::milliseconds(0));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace canary::analysis
