// The admin listener: HTTP/1.1 on the control thread's io_context, serving admin::api, and the
// server-sent-event watch streams (status on connect, then on every change, ": ping" every 15 s).
// Control thread only. Not on the request path: clarity over speed here.
#pragma once

#include <cstdint>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "admin/api.h"

namespace canary::admin {

class server {
 public:
  server(boost::asio::io_context& ioc, rollout::engine& engine, api& handler);
  ~server();
  // Binds; returns the bound port (for port 0).
  std::uint16_t listen(const boost::asio::ip::tcp::endpoint& where);
  void start();
  // Ends every watch stream (at the end of a drain).
  void close_streams();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace canary::admin
