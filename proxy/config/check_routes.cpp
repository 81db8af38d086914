// Checks that need every route: upstream references, duplicate route names, and routes with the
// same hosts and path_prefix as an earlier one (which could never match). Linear in the number
// of routes (hash and tree lookups), not one comparison per pair: --check of 20 000 routes must
// not take minutes. See reader.h.
#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "config/reader.h"
#include "config/syntax.h"

namespace canary::config {

void config_reader::check_routes(const proxy_config& cfg) {
  std::unordered_set<std::string_view> defined;
  std::vector<std::string> defined_list;
  for (const auto& u : cfg.upstreams) {
    defined.insert(u.name);
    defined_list.push_back(u.name);
  }
  for (const item& ref : upstream_refs_) {
    const std::string& name = ref.node.Scalar();
    if (defined.count(name) == 0)
      w_.error(ref, "unknown upstream " + quote(name) + " (defined: " +
                        (defined_list.empty() ? std::string("none") : join(defined_list, ", ")) +
                        ")");
  }

  // route_marks_ and cfg.routes are parallel: one entry per list item.
  std::unordered_map<std::string_view, std::size_t> first_by_name;
  // (path_prefix, the set of hosts: sorted, without repeats) -> the first route with them.
  std::map<std::pair<std::string_view, std::vector<std::string_view>>, std::size_t> first_by_match;
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const route_config& r = cfg.routes[i];
    if (!r.name.empty()) {
      auto [it, inserted] = first_by_name.emplace(r.name, i);
      if (!inserted)
        w_.error(route_marks_[i].name_pos, route_marks_[i].path + ".name",
                 "duplicate route name " + quote(r.name) + " (first at " +
                     route_marks_[it->second].path + ")");
    }
    std::vector<std::string_view> hosts(r.hosts.begin(), r.hosts.end());
    std::sort(hosts.begin(), hosts.end());
    hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
    auto [it, inserted] =
        first_by_match.emplace(std::pair(std::string_view(r.path_prefix), std::move(hosts)), i);
    if (!inserted) {
      const std::size_t j = it->second;
      w_.error(r.pos, route_marks_[i].path,
               "same hosts and path_prefix as " + route_marks_[j].path + " (" +
                   quote(cfg.routes[j].name) + "): this route could never match");
    }
  }
}

}  // namespace canary::config
