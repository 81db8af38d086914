// Endpoint registry: one endpoint object per address:port while any snapshot uses it.
#include "upstream/endpoint.h"

namespace canary::upstream {

std::shared_ptr<endpoint> endpoint_registry::get(const std::string& address,
                                                 std::uint16_t port) {
  auto addr = boost::asio::ip::make_address(address);
  std::string key = addr.is_v6() ? "[" + address + "]:" + std::to_string(port)
                                 : address + ":" + std::to_string(port);
  if (auto e = by_key_[key].lock()) return e;
  auto e = std::make_shared<endpoint>();
  e->id = next_id_++;
  e->text = key;
  e->address = {addr, port};
  by_key_[key] = e;
  return e;
}

}  // namespace canary::upstream
