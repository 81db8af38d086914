// canaryctl's HTTP/1.1 client of the control API: one request per connection, or a followed
// text/event-stream. Blocking calls, each bounded by a timeout (Beast coroutines run to
// completion on a private io_context per call, so every read can carry a timeout: Beast's
// synchronous calls ignore tcp_stream expiries). Beast stays inside client.cpp. One client per
// run(), used by its one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ctl/args.h"
#include "ctl/sse.h"

namespace canary::ctl {

enum class http_method { get, post, put };

struct http_reply {
  unsigned status = 0;
  std::string reason;
  std::string body;
};

enum class failure { none, unreachable, timeout };

struct call_result {
  failure fail = failure::none;
  std::string message;  // for fail != none
  http_reply reply;
};

enum class watch_end { stopped, deadline, dropped, http_error, unreachable, bad_data };

struct watch_result {
  watch_end end = watch_end::dropped;
  std::string message;
  http_reply reply;  // for http_error
};

class api_client {
 public:
  api_client(server_url url, std::string display_url, std::string token);
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  // One request; `body` (if any) is sent as application/json.
  call_result call(http_method method, const std::string& path, std::optional<std::string> body);

  // Follows a text/event-stream at `path`, calling on_event for each event until it returns
  // false, the stream ends or `deadline` (if any) passes.
  watch_result watch(const std::string& path,
                     std::optional<std::chrono::steady_clock::time_point> deadline,
                     const std::function<bool(const sse_event&)>& on_event);

  const std::string& display_url() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace canary::ctl
