// Asio types bound to the concrete io_context executor (cheaper than any_io_executor on the
// request path) and shared by the worker, sessions and pools.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace canary {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using executor = net::io_context::executor_type;
using socket_type = net::basic_stream_socket<tcp, executor>;
using acceptor_type = net::basic_socket_acceptor<tcp, executor>;
using timer_type = net::basic_waitable_timer<std::chrono::steady_clock,
                                             net::wait_traits<std::chrono::steady_clock>, executor>;
template <class T = void>
using awaitable = net::awaitable<T, executor>;
inline constexpr auto use_awaitable = net::use_awaitable_t<executor>{};
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable_t<executor>{});

}  // namespace canary
