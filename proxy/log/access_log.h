// Access log: one line per request (JSON by default), formatted into a per-worker buffer and
// written with one write(2) when the buffer passes a size or on a 1 s flush — the nginx
// `access_log ... buffer= flush=` model: no mutex, no blocking queue, no allocation per request
// in steady state. One access_log per worker, used only on that worker's thread; reopen() (log
// rotation, SIGUSR1) is posted to each worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.h"

namespace canary::log {

struct access_record {
  std::chrono::system_clock::time_point time;  // when the request head was complete
  std::string_view client_ip;
  std::string_view method;
  std::string_view target;  // path and query as received
  unsigned version = 11;    // 10, 11 or 20 (HTTP/2)
  std::string_view route;     // "" when no route matched
  std::string_view variant;   // "stable" | "canary" | ""
  std::string_view reason;    // routing reason ("header", "weight", ...) or ""
  std::string_view upstream;  // upstream name or ""
  std::string_view endpoint;  // "127.0.0.1:9001" or ""
  unsigned status = 0;
  bool local = false;             // the proxy answered itself (4xx/5xx of docs/architecture.md)
  std::uint64_t bytes_received = 0;  // request body bytes from the client
  std::uint64_t bytes_sent = 0;      // response bytes to the client (head + body)
  std::uint64_t upstream_us = 0;     // request head complete -> upstream response head
  std::uint64_t total_us = 0;        // request head complete -> last response byte written
};

class access_log {
 public:
  // Opens `cfg.path` ("-" = stdout) for appending when cfg.enabled. Throws std::runtime_error
  // naming the path when it cannot be opened.
  explicit access_log(const config::access_log_config& cfg);
  ~access_log();  // flushes
  access_log(const access_log&) = delete;
  access_log& operator=(const access_log&) = delete;

  bool enabled() const { return fd_ >= 0; }
  // Formats into the buffer; writes when the buffer passes flush_bytes.
  void write(const access_record& r);
  // Writes what is buffered (the worker calls this every second).
  void flush();
  // Reopens the file (after rotation); flushes first.
  void reopen();

  static constexpr std::size_t flush_bytes = 32 * 1024;

 private:
  config::access_log_config cfg_;
  int fd_ = -1;
  bool owns_fd_ = false;
  std::string buffer_;
};

}  // namespace canary::log
