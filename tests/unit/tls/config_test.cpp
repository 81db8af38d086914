// The tls section and listen "" in the config loader (config/read_root.cpp): what is refused,
// and that certificate errors name the file. Certificates that load are covered end to end
// (tests/e2e/test_tls.py makes them with the openssl CLI).
#include <gtest/gtest.h>

#include <string>

#include "config/load.h"

namespace canary::config {
namespace {

const std::string kTail =
    "upstreams:\n  blue:\n    endpoints: [\"127.0.0.1:9001\"]\n"
    "routes:\n  - name: r\n    upstream: blue\n";

std::string all_errors(const std::string& yaml) {
  std::string out;
  for (const auto& e : load_string(yaml, "/etc/canary/proxy.yaml").errors)
    out += e.to_string() + "\n";
  return out;
}

TEST(tls_config, tls_listen_equal_to_listen_is_refused) {
  const auto errors = all_errors(
      "listen: \"127.0.0.1:8443\"\n"
      "tls: {listen: \"127.0.0.1:8443\", certificates: [{cert: a.pem, key: a.key}]}\n" + kTail);
  EXPECT_NE(errors.find("tls.listen is the same address as listen"), std::string::npos)
      << errors;
}

TEST(tls_config, an_empty_listen_needs_a_tls_listener) {
  const auto errors = all_errors("listen: \"\"\n" + kTail);
  EXPECT_NE(errors.find("nothing would serve requests"), std::string::npos) << errors;
}

TEST(tls_config, min_version_is_1_2_or_1_3) {
  const auto errors = all_errors(
      "tls: {listen: \"127.0.0.1:8443\", min_version: \"1.1\", "
      "certificates: [{cert: a.pem, key: a.key}]}\n" + kTail);
  EXPECT_NE(errors.find("unknown min_version \"1.1\""), std::string::npos) << errors;
}

TEST(tls_config, certificates_are_required_with_cert_and_key) {
  EXPECT_NE(all_errors("tls: {listen: \"127.0.0.1:8443\"}\n" + kTail)
                .find("missing required key \"certificates\""),
            std::string::npos);
  EXPECT_NE(all_errors("tls: {listen: \"127.0.0.1:8443\", certificates: []}\n" + kTail)
                .find("expected at least one"),
            std::string::npos);
  EXPECT_NE(all_errors("tls: {listen: \"127.0.0.1:8443\", certificates: [{cert: a.pem}]}\n" +
                       kTail)
                .find("missing required key \"key\""),
            std::string::npos);
}

TEST(tls_config, an_unreadable_certificate_is_an_error_naming_the_resolved_path) {
  const auto errors = all_errors(
      "tls: {listen: \"127.0.0.1:8443\", certificates: [{cert: missing.pem, key: k.key}]}\n" +
      kTail);
  // Relative to the config file's directory, and with OpenSSL's reason.
  EXPECT_NE(errors.find("/etc/canary/missing.pem: cannot load the certificate: "),
            std::string::npos)
      << errors;
}

TEST(tls_config, tunnel_idle_defaults_to_an_hour_and_is_read) {
  auto r = load_string("timeouts: {tunnel_idle: 90s}\n" + kTail, "/etc/canary/proxy.yaml");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  EXPECT_EQ(r.config->timeouts.tunnel_idle, std::chrono::seconds(90));
  EXPECT_FALSE(r.config->tls);
  EXPECT_EQ(timeouts_config{}.tunnel_idle, std::chrono::hours(1));
}

}  // namespace
}  // namespace canary::config
