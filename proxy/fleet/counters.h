// Fleet-wide analysis counts (docs/fleet.md): each replica publishes its cumulative
// per-route, per-variant decided counters under its lease (<prefix>counters/<id>/<incarnation>);
// the leader adds every other replica's increments since it first saw them to its own counts,
// so a measurement judges the whole fleet's traffic and a replica that died stays counted.
// Pure bookkeeping and JSON; the node feeds it on the fleet thread and reads it on the control
// thread under its own mutex.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "analysis/run.h"

namespace canary::fleet {

// {"<route>": {"stable": [...], "canary": [...]}} with each variant's counters as one array.
std::string encode_counters(const std::map<std::string, analysis::interval_sample>& routes);
std::optional<std::map<std::string, analysis::interval_sample>> decode_counters(
    const std::string& text);

// a - b per counter, 0 where b is larger (a restarted publisher).
analysis::interval_sample minus(const analysis::interval_sample& a,
                                const analysis::interval_sample& b);

class fleet_counters {
 public:
  // The latest cumulative counters of one publisher (`key`: "<id>/<incarnation>"). The first
  // value seen of each (publisher, route) is its baseline: only increments after it count.
  void update(const std::string& key, const std::map<std::string, analysis::interval_sample>& c);
  // Every publisher's increments for `route` except `self`'s (this replica counts its own
  // directly). Never decreases: a publisher that vanished keeps its last value.
  analysis::interval_sample others(const std::string& route, const std::string& self) const;

 private:
  struct seen {
    analysis::interval_sample first, last;
  };
  std::map<std::string, std::map<std::string, seen>> by_publisher_;  // key -> route -> counts
};

}  // namespace canary::fleet
