// Label sets -> small integer ids, so the request path indexes cells instead of looking up
// labels. Ids are never reused (a series keeps its counts across reloads, as Prometheus expects).
// Control thread only (snapshot building and /metrics both run there).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace canary::metrics {

struct series_key {
  std::string route;
  std::string variant;  // "stable" | "canary"
  std::string upstream;
};

class series_registry {
 public:
  std::uint32_t series_id(const std::string& route, const std::string& variant,
                          const std::string& upstream);
  std::uint32_t route_id(const std::string& route);
  std::uint32_t upstream_id(const std::string& upstream);

  const std::vector<series_key>& series() const { return series_; }
  const std::vector<std::string>& routes() const { return routes_; }
  const std::vector<std::string>& upstreams() const { return upstreams_; }

 private:
  std::map<std::tuple<std::string, std::string, std::string>, std::uint32_t> series_ids_;
  std::map<std::string, std::uint32_t> route_ids_;
  std::map<std::string, std::uint32_t> upstream_ids_;
  std::vector<series_key> series_;
  std::vector<std::string> routes_;
  std::vector<std::string> upstreams_;
};

}  // namespace canary::metrics
