// The config reader: one pass over the YAML tree that fills a proxy_config and records every
// error, then the checks that need the whole file (name resolution, references between routes
// and upstreams, overlapping routes). Internal to the loader; one instance per load, used on the
// loading thread only (resolver threads get copies, never the reader).
//   reader.cpp          read(): the order of the passes; relative paths
//   read_root.cpp       top-level keys: listen, workers, admin, limits, timeouts, access_log
//   read_upstreams.cpp  upstreams, endpoints, health checks, outlier detection
//   read_routes.cpp     routes, canary overrides, stickiness, steps
//   read_analysis.cpp   a route's analysis, webhooks and `- analysis:` steps
//   resolve_names.cpp   resolving every host name of the file within timeouts.resolve
//   check_routes.cpp    upstream references, duplicate names, routes that could never match
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/address.h"
#include "config/config.h"
#include "config/load.h"
#include "config/walker.h"

namespace canary::config {

class config_reader {
 public:
  config_reader(const std::string& file, std::vector<config_error>& errors,
                const load_options& options);

  proxy_config read(const YAML::Node& root, const std::string& file);

 private:
  // Where a route's name stood, for the cross-route checks that run after the whole file is read.
  struct route_marks {
    std::string path;
    source_pos name_pos;
  };

  // A host name to resolve once the whole file is read (timeouts.resolve may come after it).
  struct pending_name {
    enum class slot { listen, admin_listen, endpoint, tls_listen };
    slot where = slot::endpoint;
    std::size_t upstream = 0;  // slot::endpoint: cfg.upstreams[upstream].endpoints[endpoint]
    std::size_t endpoint = 0;
    std::string host;
    item at;  // the address as written: where an error points
  };

  std::string resolve_path(const std::string& p) const;

  // read_root.cpp
  void read_root(const item& at, proxy_config& cfg);
  void read_listen(const item& at, listen_config& out, pending_name::slot where);
  void read_admin(const item& at, admin_config& out);
  void read_tls(const item& at, proxy_config& cfg);
  void load_tls(proxy_config& cfg);
  void read_state_store(const item& at, state_store_config& out);
  void read_limits(const item& at, limits_config& out);
  void read_timeouts(const item& at, timeouts_config& out);
  void read_access_log(const item& at, access_log_config& out);

  // read_upstreams.cpp
  void read_upstreams(const item& at, std::vector<upstream_config>& out);
  void read_upstream(const item& at, std::size_t index, upstream_config& out);
  std::optional<endpoint_config> read_endpoint(const item& at, std::size_t upstream,
                                               std::size_t endpoint);
  void read_health_check(const item& at, health_check_config& out);
  void read_outlier(const item& at, outlier_config& out);

  // read_routes.cpp
  void read_routes(const item& at, std::vector<route_config>& out);
  void read_route(const item& at, route_config& out, route_marks& marks);
  std::optional<std::string> read_route_host(const item& at);
  void read_canary(const item& at, canary_config& out);
  void read_sticky(const item& at, const std::string& s, sticky_config& out);
  void read_steps(const item& at, int weight_total, std::vector<step_config>& out);
  void read_pause(const item& at, std::vector<step_config>& out);
  void read_mirror_step(const item& at, std::vector<step_config>& out);

  // read_analysis.cpp
  void read_analysis(const item& at, analysis_config& out);
  const item* read_metric(const item& at, metric_config& out);  // returns its `name` item
  void read_http_target(const mapping_view& m, const char* url_key, http_target_config& out);
  void read_webhooks(const item& at, std::vector<webhook_config>& out);
  void read_analysis_step(const item& at, std::vector<step_config>& out);
  void check_analysis_steps(const route_config& route);
  void check_template(const item& at, const std::string& text);
  std::optional<double> read_number(const item& at);

  // resolve_names.cpp: fills every address of `cfg` that names a host, then checks what needs
  // the admin listener's address.
  void resolve_names(proxy_config& cfg);
  void check_admin_exposure(const proxy_config& cfg);

  // check_routes.cpp
  void check_routes(const proxy_config& cfg);

  walker w_;
  const load_options& options_;
  std::filesystem::path base_dir_;
  std::vector<pending_name> pending_names_;
  std::optional<item> admin_listen_;
  std::optional<item> tls_at_;        // tls: as written, where certificate errors point  // admin.listen as written, for check_admin_exposure
  std::vector<item> upstream_refs_;   // each route's `upstream` value, checked at the end
  std::vector<route_marks> route_marks_;
  std::vector<item> analysis_step_refs_;  // this route's `- analysis:` steps
  std::vector<item> step_metric_refs_;    // the metric names they list
  std::vector<item> rollout_hook_refs_;   // its `type: rollout` webhooks (judged per interval)
};

}  // namespace canary::config
