// "host:port" addresses; see address.h.
#include "config/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

#include "config/syntax.h"

namespace canary::config {

std::optional<host_port> split_host_port(std::string_view text, std::string& why,
                                         bool allow_port_zero) {
  constexpr std::string_view example = " (expected host:port, e.g. 127.0.0.1:9001 or [::1]:9001)";
  host_port out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      why = "missing \"]\"" + std::string(example);
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    if (!is_ipv6_literal(out.host)) {
      why = quote(out.host) + " is not an IPv6 address";
      return std::nullopt;
    }
    out.ipv6_literal = true;
    std::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') {
      why = "missing \":port\"" + std::string(example);
      return std::nullopt;
    }
    port = rest.substr(1);
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      why = "missing \":port\"" + std::string(example);
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      why = "IPv6 addresses need brackets, e.g. [::1]:9001";
      return std::nullopt;
    }
    if (out.host.empty()) {
      why = "missing host" + std::string(example);
      return std::nullopt;
    }
    if (!is_host_name(out.host)) {
      why = quote(out.host) + " is not a host name or IP address";
      return std::nullopt;
    }
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() ||
      value < (allow_port_zero ? 0 : 1) || value > 65535) {
    why = allow_port_zero ? "port must be 0-65535" : "port must be 1-65535";
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

std::optional<std::string> numeric_address(const std::string& host) {
  char buf[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1 &&
      inet_ntop(AF_INET, &v4, buf, sizeof buf) != nullptr)
    return std::string(buf);
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1 &&
      inet_ntop(AF_INET6, &v6, buf, sizeof buf) != nullptr)
    return std::string(buf);
  return std::nullopt;
}

bool is_loopback(const std::string& numeric) {
  in_addr v4{};
  if (inet_pton(AF_INET, numeric.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, numeric.c_str(), &v6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}

}  // namespace canary::config
