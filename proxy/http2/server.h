// HTTP/2 to clients (RFC 9113): one client connection that chose h2 through ALPN (TLS) or sent
// the prior-knowledge preface (plain listener, http2.h2c). The HTTP/1.1 session hands its
// stream over; each request stream is then routed on its own, exactly as an HTTP/1.1 request,
// and forwarded to its upstream. Lives on its worker's thread, owned by the session whose
// coroutine awaits run(); the session forwards the worker's sweep (on_tick), drain and close.
#pragma once

#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_stream.hpp>
#include <cstdint>
#include <memory>
#include <string_view>

#include "core/types.h"

namespace canary::core {
class worker;
}

namespace canary::http2 {

// The TLS client stream, as the session declares it.
using tls_stream = boost::beast::flat_stream<boost::asio::ssl::stream<socket_type>>;

class connection {
 public:
  virtual ~connection() = default;
  // Serves the connection until it closes. `initial`: bytes already read (the preface, ...).
  virtual awaitable<void> run(std::string_view initial) = 0;
  virtual void on_tick(std::int64_t now_ns) = 0;
  // Drain: GOAWAY, open streams finish, then the connection closes.
  virtual void on_drain() = 0;
  virtual void close() = 0;
};

// `client_ip` must outlive the connection (the session's). `lowest` is the TCP socket under
// the stream.
std::unique_ptr<connection> make_connection(core::worker& worker, socket_type& sock,
                                            std::string_view client_ip);
std::unique_ptr<connection> make_connection(core::worker& worker, tls_stream& sock,
                                            socket_type& lowest, std::string_view client_ip);

}  // namespace canary::http2
