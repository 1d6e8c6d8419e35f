// TLS contexts for the agent path: mutual TLS between the node's agent proxy (client) and the pod
// VM's agent-protocol-forwarder (server), both trusting one CA (reference/caa.md sections 3 and 4).
//
// The server requires a client certificate and verifies it against the CA; the client verifies the
// server certificate against the CA (its name is checked per connection, see stream.h) and presents
// its own. Both: TLS 1.2 minimum or TLS_MIN_VERSION, TLS 1.3 preferred, TLS_CIPHER_SUITES for 1.2,
// no compression, no renegotiation. There is no "skip verify" mode: plain TCP (-disable-tls) is the
// only way around verification, and it is the caller's explicit choice.
//
// A context is immutable once made and may be shared by any number of connections and threads.
// Material holds a private key: never log it; errors name the part that failed, never its content.
#pragma once

#include <asio/ssl.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/asio.h"
#include "common/base/error.h"
#include "common/tls/settings.h"

namespace pp::tls {

struct Material {
  std::string ca_pem;    // the CA (bundle) that signs the peer's certificate
  std::string cert_pem;  // our certificate, optionally followed by intermediates
  std::string key_pem;   // our private key (a secret)
};

// Manual mode (CACERT_FILE, CERT_FILE, CERT_KEY / -ca-cert-file, -cert-file, -cert-key): reads the
// three files and checks that each parses. Errors name the file: NOT_FOUND for a missing one,
// INVALID_ARGUMENT for one that is not the PEM it should be.
Result<Material> LoadMaterialFiles(const std::string& ca_file, const std::string& cert_file,
                                   const std::string& key_file);

// One part of the material checked on its own, for callers that want to say where it came from: a
// PEM bundle of one or more certificates, or one unencrypted PEM private key. INVALID_ARGUMENT
// whose message starts with `what` when it does not parse.
Result<void> CheckCertificatesPem(std::string_view pem, std::string_view what);
Result<void> CheckPrivateKeyPem(std::string_view pem, std::string_view what);

// INVALID_ARGUMENT when a part is missing or does not parse, when certificate and key do not match,
// or when the settings are invalid.
Result<std::shared_ptr<asio::ssl::context>> MakeServerContext(const Material& material,
                                                              const TlsSettings& settings);
Result<std::shared_ptr<asio::ssl::context>> MakeClientContext(const Material& material,
                                                              const TlsSettings& settings);

}  // namespace pp::tls
