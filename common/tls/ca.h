// CertificateAuthority: the adaptor's own CA for TLS between the node's agent proxy and the pod
// VM's agent-protocol-forwarder ("auto mode", reference/caa.md section 3).
//
// Like CAA's in-memory CA (ECDSA P-256, self-signed, CN "agent-protocol-forwarder", notBefore now -
// 5 min, 2 years, 128-bit random serial, PKCS#8 keys) but persisted, so a restarted adaptor still
// trusts, and is trusted by, the pod VMs it created before. The state directory holds ca.crt (0644)
// and ca.key (0600). An existing pair is loaded, never replaced: a missing half, a corrupt file, a
// mismatched pair, a key readable by group or others or an expired CA is an error that names the
// file and the fix. Each pod VM gets a server certificate whose CN and only DNS SAN are its
// instance name; the agent proxy gets a client certificate; both are signed by this CA and never
// outlive it.
//
// Threading: after construction the object is immutable; Issue* may run concurrently.
// Secrets: KeyPair::key_pem and the CA key are never logged nor put in an error message.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/error.h"

namespace pp::tls {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;  // PKCS#8, unencrypted: a secret
};

// When a certificate is valid, relative to the moment it is issued.
struct Validity {
  std::chrono::seconds not_before = std::chrono::minutes(-5);  // tolerates clock skew
  std::chrono::seconds not_after = std::chrono::days(730);
};

class CertificateAuthority {
 public:
  // Loads <state_dir>/ca.crt and ca.key, or creates both (and state_dir, 0700) when both are
  // absent. On failure nothing on disk has changed, except a created but still empty state_dir.
  static Result<CertificateAuthority> LoadOrCreate(const std::string& state_dir);

  // A CA that lives only in memory (tests, or a node without a state dir).
  static Result<CertificateAuthority> CreateInMemory();

  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;
  ~CertificateAuthority();

  // A server certificate for a pod VM: CN = the only DNS SAN = `san_dns_name` (letters, digits,
  // '.',
  // '-', '_'; at most 253 characters, else INVALID_ARGUMENT), EKU serverAuth, fresh P-256 key.
  Result<KeyPair> IssueServerCert(std::string_view san_dns_name,
                                  const Validity& validity = {}) const;

  // A client certificate for the agent proxy: CN = `cn` (same character rules), EKU clientAuth.
  Result<KeyPair> IssueClientCert(std::string_view cn, const Validity& validity = {}) const;

  // The CA certificate, PEM: what both sides trust.
  const std::string& CertPem() const;

 private:
  struct State;
  explicit CertificateAuthority(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace pp::tls
