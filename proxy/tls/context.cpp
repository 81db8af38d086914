// TLS contexts from certificate files; see context.h.
#include "tls/context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/names.h"

namespace canary::tls {

namespace net = boost::asio;

namespace {

// Mozilla's "intermediate" TLS 1.2 list: ECDHE only (forward secrecy), AEAD only (no RC4, 3DES,
// CBC). TLS 1.3 suites are OpenSSL's defaults, all AEAD.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr std::string_view alpn_http11 = "\x08http/1.1";
constexpr std::string_view alpn_h2_http11 = "\x02h2\x08http/1.1";

// The reason of the most recent OpenSSL error (the queue is emptied).
std::string openssl_reason() {
  unsigned long last = 0;
  while (const unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  if (const char* r = ERR_reason_error_string(last)) return std::string(r) + " (" + buf + ")";
  return buf;
}

// The DNS names a certificate answers for: its subjectAltName dNSName entries, else (only when
// there is no SAN of that type, RFC 6125 §6.4.4) its subject's Common Name.
std::vector<std::string> certificate_names(X509* cert) {
  std::vector<std::string> out;
  auto* sans = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const auto* s = n->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (!out.empty()) return out;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at >= 0) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void* arg) {
  const auto chosen = select_protocol(
      offered_protocols(arg != nullptr), std::string_view(reinterpret_cast<const char*>(in), inlen));
  if (chosen.empty()) return SSL_TLSEXT_ERR_NOACK;  // no ALPN: the client speaks HTTP/1.1
  *out = reinterpret_cast<const unsigned char*>(chosen.data());
  *outlen = static_cast<unsigned char>(chosen.size());
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string_view offered_protocols(bool http2) noexcept {
  return http2 ? alpn_h2_http11 : alpn_http11;
}

bool negotiated_h2(const SSL* ssl) noexcept {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl, &p, &n);
  return n == 2 && p[0] == 'h' && p[1] == '2';
}

std::string_view select_protocol(std::string_view ours, std::string_view client) noexcept {
  // Wire format: a length byte, then that many bytes, repeated.
  for (std::size_t i = 0; i < ours.size();) {
    const std::size_t n = static_cast<unsigned char>(ours[i]);
    const auto mine = ours.substr(i + 1, n);
    for (std::size_t j = 0; j < client.size();) {
      const std::size_t m = static_cast<unsigned char>(client[j]);
      if (j + 1 + m > client.size()) break;  // malformed: ignore the rest
      if (client.substr(j + 1, m) == mine) return mine;
      j += 1 + m;
    }
    i += 1 + n;
  }
  return {};
}

context_set::~context_set() = default;

std::vector<std::vector<std::string>> context_set::names() const { return names_; }

int context_set::on_servername(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const context_set*>(arg);
  const char* host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const auto i = pick_certificate(self->names_, host ? std::string_view(host) : std::string_view());
  if (i != 0) SSL_set_SSL_CTX(ssl, self->entries_[i].ctx->native_handle());
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<const context_set> context_set::load(const std::vector<certificate_files>& files,
                                                     bool min_tls13, bool http2, std::string& error) {
  std::shared_ptr<context_set> set(new context_set());
  ERR_clear_error();
  for (const auto& f : files) {
    auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    if (SSL_CTX_use_certificate_chain_file(native, f.cert.c_str()) != 1) {
      error = f.cert + ": cannot load the certificate: " + openssl_reason();
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(native, f.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      error = f.key + ": cannot load the private key: " + openssl_reason();
      return nullptr;
    }
    if (SSL_CTX_check_private_key(native) != 1) {
      error = f.key + ": the key does not match the certificate " + f.cert + ": " +
              openssl_reason();
      return nullptr;
    }
    SSL_CTX_set_min_proto_version(native, min_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_NO_COMPRESSION);
    if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) {
      error = f.cert + ": cipher list refused: " + openssl_reason();
      return nullptr;
    }
    // TLS 1.2 session-ID resumption needs an id context; tickets (both versions) use the
    // context's ticket keys: random per SSL_CTX, in memory only, so a reload rotates them.
    static constexpr unsigned char sid_ctx[] = "canary-proxy";
    SSL_CTX_set_session_id_context(native, sid_ctx, sizeof sid_ctx - 1);
    // The callback's argument only says whether h2 is offered (non-null: yes).
    SSL_CTX_set_alpn_select_cb(native, on_alpn, http2 ? set.get() : nullptr);
    SSL_CTX_set_tlsext_servername_callback(native, &context_set::on_servername);
    SSL_CTX_set_tlsext_servername_arg(native, set.get());
    X509* leaf = SSL_CTX_get0_certificate(native);
    set->names_.push_back(leaf ? certificate_names(leaf) : std::vector<std::string>{});
    set->entries_.push_back({std::move(ctx), set->names_.back()});
  }
  if (set->entries_.empty()) {
    error = "no certificate";
    return nullptr;
  }
  return set;
}

}  // namespace canary::tls
