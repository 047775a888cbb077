#pragma once
// What a TLS context is built from. The config layer will fill these from [listener.tls] and
// [cluster.<name>.tls] (issue 18); until then tests build them directly. Plain data, no OpenSSL.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace needle::tls {

enum class TlsVersion { tls1_2, tls1_3 };

// "1.2" | "1.3"; nullopt for anything else (TLS 1.0 and 1.1 are never offered: RFC 8996).
std::optional<TlsVersion> parse_tls_version(std::string_view text);

// Mozilla "intermediate" (TLS 1.2 part): ECDHE and DHE with AEAD ciphers only.
inline constexpr std::string_view kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
// TLS 1.3 suites (RFC 8446 9.1 and ChaCha20), OpenSSL's default order.
inline constexpr std::string_view kDefaultCiphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// One certificate: `cert` is PEM with the leaf first, then any intermediates; `key` is PEM.
struct CertificateFiles {
  std::string cert;
  std::string key;
};

struct ServerTlsSettings {
  std::vector<CertificateFiles> certificates;  // the first is the default (no or unknown SNI)
  TlsVersion min_version = TlsVersion::tls1_2;
  std::string ciphers{kIntermediateCiphers};       // TLS 1.2
  std::string ciphersuites{kDefaultCiphersuites};  // TLS 1.3
  std::vector<std::string> alpn{"http/1.1"};       // server preference order
  std::string client_ca;    // PEM CA file; set = mTLS: a client certificate is required
  bool strict_sni = false;  // refuse a ClientHello whose SNI matches no certificate
};

struct ClientTlsSettings {
  bool verify = true;  // chain (against `ca` or the system store) and host name
  std::string ca;      // PEM CA file; empty = the system store
  std::string sni;     // name sent and verified; empty = the host name connected to
  std::string cert;    // client certificate (mTLS), with `key`
  std::string key;
  TlsVersion min_version = TlsVersion::tls1_2;
  std::string ciphers{kIntermediateCiphers};
  std::string ciphersuites{kDefaultCiphersuites};
  std::vector<std::string> alpn;  // empty = no ALPN extension
};

}  // namespace needle::tls
