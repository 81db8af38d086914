// "host:port" addresses of the config: splitting, numeric hosts, loopback. Internal to the
// loader (config/*.cpp); pure functions, any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace canary::config {

struct host_port {
  std::string host;  // without brackets
  std::uint16_t port = 0;
  bool ipv6_literal = false;
};

// "host:port" or "[v6]:port"; on failure `why` says what is wrong.
// Listen addresses may use port 0 (any free port, logged at start: tests rely on it).
std::optional<host_port> split_host_port(std::string_view text, std::string& why,
                                         bool allow_port_zero = false);

// The canonical text of an IPv4 or IPv6 literal ("::FFFF:127.0.0.1" -> "::ffff:127.0.0.1"), or
// nullopt for a name that needs resolving.
std::optional<std::string> numeric_address(const std::string& host);

// 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: only local processes can reach these.
bool is_loopback(const std::string& numeric);

}  // namespace canary::config
