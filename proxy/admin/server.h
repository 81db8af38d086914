// The admin listener: HTTP/1.1 on the control thread's io_context, serving admin::api, and the
// server-sent-event watch streams (status on connect, then on every change, ": ping" every 15 s).
// Control thread only; lives as long as the control io_context runs. Not on the request path:
// clarity over speed here.
#pragma once

#include <cstdint>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "admin/api.h"
#include "admin/reloader.h"

namespace canary::admin {

// How many descriptors the admin listener may hold at once.
struct connection_limits {
  std::size_t max_connections = 0;  // open admin connections, watch streams included
  std::size_t max_watchers = 0;     // open watch streams (a subset of the connections)
};

// Derived from the soft RLIMIT_NOFILE `nofile`: the admin listener gets an eighth of the
// descriptor table (at least 4, at most 1024), so the data plane (a client and an upstream
// descriptor per request), the listeners and the state file written on every change keep the
// rest. Watch streams get three quarters of that, so a full set of watchers never locks out a
// promote or an abort.
connection_limits limits_for_nofile(std::uint64_t nofile);
// The same for this process's RLIMIT_NOFILE.
connection_limits limits_for_this_process();

class server {
 public:
  server(boost::asio::io_context& ioc, rollout::engine& engine, api& handler, reloader& reloads,
         connection_limits limits = limits_for_this_process());
  ~server();
  // Binds; returns the bound port (for port 0).
  std::uint16_t listen(const boost::asio::ip::tcp::endpoint& where);
  // Instead of listen(): a listening socket handed over by the process this one replaces.
  std::uint16_t adopt(int fd);
  // The listening socket, to hand over.
  int listen_handle();
  // Closes this process's listener (a binary upgrade's new process keeps accepting on it);
  // open connections stay.
  void stop_accepting();
  void start();
  // Ends every watch stream (at the end of a drain).
  void close_streams();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace canary::admin
