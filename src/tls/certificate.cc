#include "tls/certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>

namespace needle::tls {
namespace {

TlsError file_error(const std::string& file, std::string message) {
  return TlsError{file, "", std::move(message)};
}

// The whole file, or the reason it could not be read.
std::variant<std::string, TlsError> read_file(const std::string& path, const char* what) {
  if (path.empty()) return file_error(path, std::string(what) + " file not set");
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return file_error(path, std::string("cannot read ") + what +
                                " file: " + std::strerror(errno ? errno : ENOENT));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return file_error(path, std::string("cannot read ") + what + " file");
  return text;
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// All PEM certificates in `text`, in order (empty when there is none).
std::vector<X509Ptr> read_certificates(const std::string& text) {
  std::vector<X509Ptr> certs;
  BioPtr bio = memory_bio(text);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(cert);
  }
  ERR_clear_error();  // the end of the input is reported as an error
  return certs;
}

WallTime to_wall_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(time, &tm) != 1) return WallTime{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string format_utc(WallTime time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::optional<TlsError> check_validity(const LoadedCertificate& cert, WallTime now) {
  if (now < cert.not_before) {
    return file_error(cert.cert_file,
                      "certificate not yet valid (notBefore " + format_utc(cert.not_before) + ")");
  }
  if (now > cert.not_after) {
    return file_error(cert.cert_file,
                      "certificate expired (notAfter " + format_utc(cert.not_after) + ")");
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> san_dns_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                     static_cast<size_t>(ASN1_STRING_length(dns)));
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    names.push_back(std::move(text));
  }
  GENERAL_NAMES_free(sans);
  return names;
}

std::variant<LoadedCertificate, TlsError> load_certificate(const CertificateFiles& files,
                                                           WallTime now) {
  auto cert_text = read_file(files.cert, "certificate");
  if (auto* error = std::get_if<TlsError>(&cert_text)) return *error;
  auto key_text = read_file(files.key, "key");
  if (auto* error = std::get_if<TlsError>(&key_text)) return *error;

  std::vector<X509Ptr> certs = read_certificates(std::get<std::string>(cert_text));
  if (certs.empty()) return file_error(files.cert, "no PEM certificate in the file");
  BioPtr key_bio = memory_bio(std::get<std::string>(key_text));
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) return file_error(files.key, "no PEM private key in the file");

  LoadedCertificate loaded;
  loaded.cert_file = files.cert;
  loaded.leaf = std::move(certs.front());
  loaded.chain.reset(sk_X509_new_null());
  for (size_t i = 1; i < certs.size(); ++i) sk_X509_push(loaded.chain.get(), certs[i].release());
  loaded.key = std::move(key);
  loaded.dns_names = san_dns_names(loaded.leaf.get());
  loaded.not_before = to_wall_time(X509_get0_notBefore(loaded.leaf.get()));
  loaded.not_after = to_wall_time(X509_get0_notAfter(loaded.leaf.get()));

  if (X509_check_private_key(loaded.leaf.get(), loaded.key.get()) != 1) {
    ERR_clear_error();
    return file_error(files.key, "private key does not match the certificate " + files.cert);
  }
  if (auto error = check_validity(loaded, now)) return *error;
  return loaded;
}

std::optional<TlsError> check_ca_file(const std::string& path) {
  auto text = read_file(path, "CA");
  if (auto* error = std::get_if<TlsError>(&text)) return *error;
  if (read_certificates(std::get<std::string>(text)).empty()) {
    return file_error(path, "no PEM certificate in the CA file");
  }
  return std::nullopt;
}

}  // namespace needle::tls
