// One direction of an upgraded connection (after a 101 Switching Protocols, RFC 9110 §15.2.2):
// raw bytes from one stream to the other, no HTTP in between. The session runs two of these at
// once (client to upstream, upstream to client) on its worker's thread; the streams and the
// buffer belong to the session and outlive both.
#pragma once

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>

#include "core/types.h"

namespace canary::http {

enum class pump_end : std::uint8_t {
  eof,    // the source closed its sending side cleanly
  error,  // a read or write failed (reset, closed under us by a deadline or the other pump)
};

// Copies from `from` to `to` until `from` ends or either fails. `progress()` runs after every
// read and write (the idle deadline); `moved` counts the bytes written.
template <class From, class To, class Progress>
awaitable<pump_end> pump(From& from, To& to, char* buf, std::size_t cap, Progress progress,
                         std::uint64_t& moved) {
  for (;;) {
    auto [rec, n] = co_await from.async_read_some(net::buffer(buf, cap), use_tuple);
    if (rec) {
      // A TLS peer that closes TCP without close_notify (stream_truncated) ends its direction
      // as cleanly as a plain FIN does: nothing it sent was lost.
      const bool clean = rec == net::error::eof || rec == net::ssl::error::stream_truncated;
      co_return clean ? pump_end::eof : pump_end::error;
    }
    progress();
    auto [wec, wn] = co_await net::async_write(to, net::buffer(buf, n), use_tuple);
    if (wec) co_return pump_end::error;
    moved += wn;
    progress();
  }
}

}  // namespace canary::http
