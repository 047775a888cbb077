#pragma once
// Certificates for the tls unit tests and the TLS integration tests, made once per test process by the openssl command line
// into a temporary directory (removed at exit): a CA, leaves signed by it, an expired one, a
// second CA with its own client certificate, and files that are not what they claim to be.
// EC P-256 keys: generating them costs milliseconds, RSA would cost seconds on a loaded machine.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace needle::tls::testing {

class TestPki {
 public:
  // The process-wide set; fails the calling test (ADD_FAILURE) when openssl does.
  static const TestPki& get();

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string ca() const { return path("ca.pem"); }                 // signs every leaf below
  std::string default_cert() const { return path("default.pem"); }  // DNS:default.test
  std::string default_key() const { return path("default.key"); }
  std::string api_cert() const { return path("api.pem"); }  // DNS:api.example.com
  std::string api_key() const { return path("api.key"); }
  std::string wildcard_cert() const { return path("wild.pem"); }  // DNS:*.example.com
  std::string wildcard_key() const { return path("wild.key"); }
  std::string expired_cert() const { return path("expired.pem"); }  // notAfter before now
  std::string expired_key() const { return path("expired.key"); }
  std::string client_cert() const { return path("client.pem"); }  // clientAuth, by ca.pem
  std::string client_key() const { return path("client.key"); }
  std::string rogue_ca() const { return path("rogue-ca.pem"); }               // an unrelated CA
  std::string rogue_client_cert() const { return path("rogue-client.pem"); }  // by rogue CA
  std::string rogue_client_key() const { return path("rogue-client.key"); }
  std::string localhost_cert() const { return path("localhost.pem"); }  // DNS:localhost, 127.0.0.1
  std::string localhost_key() const { return path("localhost.key"); }
  std::string not_pem() const { return path("not-pem.txt"); }
  std::string missing() const { return path("does-not-exist.pem"); }
  bool ok() const { return ok_; }

  TestPki();
  ~TestPki();

 private:
  bool run(const std::string& command) const;
  bool make_ca(const std::string& name);
  bool make_leaf(const std::string& name, const std::string& ca, const std::string& extensions,
                 int days);

  std::string dir_;
  bool ok_ = false;
  mutable int serial_ = 1;
};

inline const TestPki& TestPki::get() {
  static const TestPki pki;
  if (!pki.ok()) ADD_FAILURE() << "could not make the test certificates with openssl";
  return pki;
}

inline TestPki::TestPki() {
  char pattern[] = "/tmp/needle-tls-test-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return;
  dir_ = pattern;
  ok_ =
      make_ca("ca") && make_ca("rogue-ca") &&
      make_leaf("default", "ca", "subjectAltName=DNS:default.test", 2) &&
      make_leaf("api", "ca", "subjectAltName=DNS:api.example.com", 2) &&
      make_leaf("wild", "ca", "subjectAltName=DNS:*.example.com", 2) &&
      make_leaf("expired", "ca", "subjectAltName=DNS:old.example.com", -1) &&
      make_leaf("client", "ca", "subjectAltName=DNS:client.test\nextendedKeyUsage=clientAuth", 2) &&
      make_leaf("rogue-client", "rogue-ca",
                "subjectAltName=DNS:client.test\nextendedKeyUsage=clientAuth", 2) &&
      make_leaf("localhost", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1", 2);
  std::ofstream(path("not-pem.txt")) << "this is not a PEM file\n";
}

inline TestPki::~TestPki() {
  std::error_code ignored;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
}

inline bool TestPki::run(const std::string& command) const {
  const std::string quiet = command + " >/dev/null 2>&1";
  return std::system(quiet.c_str()) == 0;
}

inline bool TestPki::make_ca(const std::string& name) {
  return run(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      " -keyout " +
      path(name + ".key") + " -out " + path(name + ".pem") + " -subj /CN=" + name + " -days 3");
}

// `days` < 0 makes a certificate whose notAfter is before its notBefore (now): expired.
inline bool TestPki::make_leaf(const std::string& name, const std::string& ca,
                               const std::string& extensions, int days) {
  std::ofstream(path(name + ".ext")) << extensions << "\n";
  return run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " +
             path(name + ".key") + " -out " + path(name + ".csr") + " -subj /CN=" + name) &&
         run("openssl x509 -req -in " + path(name + ".csr") + " -CA " + path(ca + ".pem") +
             " -CAkey " + path(ca + ".key") + " -set_serial " + std::to_string(serial_++) +
             " -days " + std::to_string(days) + " -extfile " + path(name + ".ext") + " -out " +
             path(name + ".pem"));
}

}  // namespace needle::tls::testing
