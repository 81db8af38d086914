// The config reader's passes and relative paths; see reader.h.
#include "config/reader.h"

namespace canary::config {

namespace {

std::filesystem::path base_dir_of(const std::string& file) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(std::filesystem::path(file), ec);
  if (ec) return std::filesystem::path(file).parent_path();
  return abs.parent_path();
}

}  // namespace

config_reader::config_reader(const std::string& file, std::vector<config_error>& errors,
                             const load_options& options)
    : w_(file, errors), options_(options), base_dir_(base_dir_of(file)) {}

proxy_config config_reader::read(const YAML::Node& root, const std::string& file) {
  proxy_config cfg;
  cfg.file = file;
  read_root(item{root, "", root.Mark()}, cfg);
  cfg.state_file = resolve_path(cfg.state_file);
  if (!cfg.admin.token_file.empty()) cfg.admin.token_file = resolve_path(cfg.admin.token_file);
  if (cfg.access_log.path != "-") cfg.access_log.path = resolve_path(cfg.access_log.path);
  load_tls(cfg);
  // After the whole file: timeouts.resolve may stand below the addresses it bounds.
  resolve_names(cfg);
  check_admin_exposure(cfg);
  check_routes(cfg);
  return cfg;
}

std::string config_reader::resolve_path(const std::string& p) const {
  std::filesystem::path path(p);
  if (path.is_relative()) path = base_dir_ / path;
  return path.lexically_normal().string();
}

}  // namespace canary::config
