// Endpoint registry: one endpoint object per address:port while any snapshot uses it.
#include "upstream/endpoint.h"

#include <map>

namespace canary::upstream {

std::shared_ptr<endpoint> endpoint_registry::get(const std::string& address,
                                                 std::uint16_t port) {
  auto addr = boost::asio::ip::make_address(address);
  std::string key = addr.is_v6() ? "[" + address + "]:" + std::to_string(port)
                                 : address + ":" + std::to_string(port);
  auto& slot = by_key_[key];
  if (auto e = slot.lock()) return e;
  // A new endpoint (or one no snapshot used any more): forget the other addresses no snapshot
  // uses, so that a long run of reloads with changing addresses keeps no dead entries.
  std::erase_if(by_key_,
                [&slot](const auto& kv) { return &kv.second != &slot && kv.second.expired(); });
  auto e = std::make_shared<endpoint>();
  e->id = next_id_++;
  e->text = key;
  e->address = {addr, port};
  slot = e;
  return e;
}

}  // namespace canary::upstream
