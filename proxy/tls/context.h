// The server-side TLS contexts of one loaded config: one OpenSSL SSL_CTX per configured
// certificate, SNI choosing among them and ALPN choosing the application protocol. Built by the
// config loader (on the loading thread); immutable afterwards and shared by every worker through
// the config snapshot. A session keeps the set alive (shared_ptr) for as long as its connection
// lives, so a reload swaps the set for new handshakes while open connections keep theirs.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace canary::tls {

struct certificate_files {
  std::string cert;  // PEM: the certificate, then its chain
  std::string key;   // PEM private key
};

class context_set {
 public:
  // Loads every certificate and key. On failure: nullptr, and `error` names the file and gives
  // OpenSSL's reason. `min_tls13`: refuse TLS 1.2 too. `http2`: ALPN offers h2.
  static std::shared_ptr<const context_set> load(const std::vector<certificate_files>& files,
                                                 bool min_tls13, bool http2, std::string& error);

  context_set(const context_set&) = delete;
  context_set& operator=(const context_set&) = delete;
  ~context_set();

  // The context a new connection starts with (the first certificate's); the SNI callback moves
  // the connection to another one during the handshake. Non-const: Asio's ssl::stream takes a
  // context&, although nothing mutates it after load.
  boost::asio::ssl::context& initial() const { return *entries_.front().ctx; }
  // The DNS names each certificate answers for (SAN, else CN), in configuration order.
  std::vector<std::vector<std::string>> names() const;

 private:
  context_set() = default;
  struct entry {
    std::unique_ptr<boost::asio::ssl::context> ctx;
    std::vector<std::string> names;
  };
  static int on_servername(SSL* ssl, int* alert, void* arg);
  std::vector<entry> entries_;
  std::vector<std::vector<std::string>> names_;
};

// The application protocols the TLS listener offers through ALPN (RFC 7301), most preferred
// first, in ALPN wire format: h2 before http/1.1 when HTTP/2 is served (RFC 9113 §3.2).
std::string_view offered_protocols(bool http2 = false) noexcept;

// Whether the handshake of `ssl` chose h2 through ALPN.
bool negotiated_h2(const SSL* ssl) noexcept;

// The server's choice among the client's ALPN list `client` (wire format): the first of ours
// the client also offers, or empty when there is none in common.
std::string_view select_protocol(std::string_view ours, std::string_view client) noexcept;

}  // namespace canary::tls
