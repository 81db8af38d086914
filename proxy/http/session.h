// One downstream client connection, plain or TLS: reads requests, routes each, exchanges it with
// an upstream and relays the response (or, after a 101, tunnels bytes both ways), until close.
// Lives on its worker's thread; owned by its own coroutine. Timeouts are deadlines checked by
// the worker's sweep (on_tick), not per-operation timers: the sweep cancels or closes the socket
// the session is blocked on.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "core/types.h"

namespace canary::core {
class worker;
}
namespace canary::tls {
class context_set;
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
  tunnel,             // upgraded (101): relaying bytes both ways under tunnel_idle
};

class session {
 public:
  session(core::worker& worker, socket_type sock, const tcp::endpoint& peer);
  // A connection on the TLS listener: the handshake (under timeouts.client_header) comes first.
  // `tls` (the config's contexts at accept) stays alive with the connection.
  session(core::worker& worker, socket_type sock, const tcp::endpoint& peer,
          std::shared_ptr<const tls::context_set> tls);
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

  struct state;  // session.cpp: one implementation per client stream type

 private:
  std::unique_ptr<state> st_;
};

// Sends "503 + close" on a connection over max_connections and closes it.
awaitable<void> reject_over_limit(socket_type sock);

}  // namespace canary::http
