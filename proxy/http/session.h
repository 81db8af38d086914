// One downstream client connection: reads requests, routes each, exchanges it with an upstream
// and relays the response, until close. Lives on its worker's thread; owned by its own
// coroutine. Timeouts are deadlines checked by the worker's sweep (on_tick), not per-operation
// timers: the sweep cancels or closes the socket the session is blocked on.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "core/types.h"

namespace canary::core {
class worker;
}

namespace canary::http {

enum class session_phase : std::uint8_t {
  idle,               // keep-alive, waiting for a request's first byte
  header,             // reading a request head
  connecting,         // connecting to an upstream
  upstream_response,  // waiting for the response head
  client_body,        // reading the request body
  upstream_body,      // reading the response body
  writing,            // writing to the client or the upstream
};

class session {
 public:
  session(core::worker& worker, socket_type sock, const tcp::endpoint& peer);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // The coroutine that owns the session.
  static awaitable<void> run(std::unique_ptr<session> self);

  // Worker thread, from the sweep: act on an expired deadline.
  void on_tick(std::int64_t now_ns);
  // Worker thread, on drain: close if idle between requests.
  void on_drain();
  // The worker's thread or, once it has stopped, its destructor: close both sockets at once, so
  // the coroutine ends at its next resumption.
  void close();

  std::list<session*>::iterator self_in_worker;

 private:
  struct state;
  std::unique_ptr<state> st_;
};

// Sends "503 + close" on a connection over max_connections and closes it.
awaitable<void> reject_over_limit(socket_type sock);

}  // namespace canary::http
