#include "common/tls/context.h"

#include <openssl/err.h>

#include "common/base/file.h"
#include "common/tls/openssl.h"

namespace pp::tls {
namespace {

constexpr std::size_t kMaxPemFile =
    1024 * 1024;  // a CA bundle can be large; anything beyond is not PEM material
constexpr unsigned char kSessionIdContext[] = "pp-tls";

enum class Side { kServer, kClient };

Result<void> Check(int ok, std::string_view what) {
  if (ok != 1) return std::unexpected(OpenSslError(Code::kInvalidArgument, what));
  return {};
}

Result<void> UseMaterial(SSL_CTX* ctx, const Material& material, Side side) {
  if (material.ca_pem.empty())
    return Fail(Code::kInvalidArgument, "tls: the CA certificate is missing");
  if (material.cert_pem.empty())
    return Fail(Code::kInvalidArgument, "tls: the certificate is missing");
  if (material.key_pem.empty())
    return Fail(Code::kInvalidArgument, "tls: the private key is missing");

  auto cas = ParseCertificates(material.ca_pem, "tls: the CA certificate");
  if (!cas) return std::unexpected(cas.error());
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (const UniqueX509& ca : *cas) {
    if (auto ok = Check(X509_STORE_add_cert(store, ca.get()), "tls: trusting the CA certificate");
        !ok)
      return ok;
    if (side == Side::kServer) {
      // Tells clients which CA to pick a certificate from.
      if (auto ok = Check(SSL_CTX_add_client_CA(ctx, ca.get()), "tls: listing the client CA"); !ok)
        return ok;
    }
  }

  auto chain = ParseCertificates(material.cert_pem, "tls: the certificate");
  if (!chain) return std::unexpected(chain.error());
  if (auto ok =
          Check(SSL_CTX_use_certificate(ctx, chain->front().get()), "tls: using the certificate");
      !ok)
    return ok;
  for (std::size_t i = 1; i < chain->size(); ++i) {
    // SSL_CTX_add1_chain_cert, without the macro's C cast.
    const long added =
        SSL_CTX_ctrl(ctx, SSL_CTRL_CHAIN_CERT, 1, static_cast<void*>((*chain)[i].get()));
    if (auto ok = Check(added == 1 ? 1 : 0, "tls: adding an intermediate certificate"); !ok)
      return ok;
  }

  auto key = ParsePrivateKey(material.key_pem, "tls: the private key");
  if (!key) return std::unexpected(key.error());
  if (X509_check_private_key(chain->front().get(), key->get()) != 1) {
    ERR_clear_error();
    return Fail(Code::kInvalidArgument,
                "tls: the certificate and the private key do not belong together");
  }
  return Check(SSL_CTX_use_PrivateKey(ctx, key->get()), "tls: using the private key");
}

Result<std::shared_ptr<asio::ssl::context>> MakeContext(const Material& material,
                                                        const TlsSettings& settings, Side side) {
  auto min_version = MinProtocolVersion(settings);
  if (!min_version) return std::unexpected(min_version.error());
  auto ciphers = Tls12CipherList(settings);
  if (!ciphers) return std::unexpected(ciphers.error());

  ERR_clear_error();
  UniqueSslCtx ctx(SSL_CTX_new(side == Side::kServer ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return std::unexpected(OpenSslError(Code::kInternal, "tls: SSL_CTX_new"));
  // No maximum: TLS 1.3 whenever both sides have it.
  if (SSL_CTX_set_min_proto_version(ctx.get(), *min_version) != 1) {
    return std::unexpected(
        OpenSslError(Code::kInternal, "tls: setting the minimum protocol version"));
  }
  uint64_t options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
  if (side == Side::kServer) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
  SSL_CTX_set_options(ctx.get(), options);
  if (SSL_CTX_set_cipher_list(ctx.get(), ciphers->c_str()) != 1) {
    return std::unexpected(
        OpenSslError(Code::kInvalidArgument, "tls: TLS_CIPHER_SUITES " + *ciphers));
  }
  if (auto used = UseMaterial(ctx.get(), material, side); !used)
    return std::unexpected(used.error());

  if (side == Side::kServer) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    // Needed for session resumption when client certificates are verified.
    if (SSL_CTX_set_session_id_context(ctx.get(), kSessionIdContext,
                                       sizeof kSessionIdContext - 1) != 1) {
      return std::unexpected(OpenSslError(Code::kInternal, "tls: setting the session id context"));
    }
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  }
  // The asio context takes ownership of the SSL_CTX.
  return std::make_shared<asio::ssl::context>(ctx.release());
}

}  // namespace

Result<Material> LoadMaterialFiles(const std::string& ca_file, const std::string& cert_file,
                                   const std::string& key_file) {
  Material material;
  const struct {
    const char* what;
    const std::string& path;
    std::string& out;
  } files[] = {{"CA certificate", ca_file, material.ca_pem},
               {"certificate", cert_file, material.cert_pem},
               {"private key", key_file, material.key_pem}};
  for (const auto& file : files) {
    if (file.path.empty())
      return Fail(Code::kInvalidArgument, "tls: the ", file.what, " file path is empty");
    auto content = ReadFile(file.path, kMaxPemFile);
    if (!content) return std::unexpected(content.error());
    file.out = std::move(*content);
  }
  if (auto ok = ParseCertificates(material.ca_pem, ca_file); !ok)
    return std::unexpected(ok.error());
  if (auto ok = ParseCertificates(material.cert_pem, cert_file); !ok)
    return std::unexpected(ok.error());
  if (auto ok = ParsePrivateKey(material.key_pem, key_file); !ok)
    return std::unexpected(ok.error());
  return material;
}

Result<void> CheckCertificatesPem(std::string_view pem, std::string_view what) {
  auto certs = ParseCertificates(pem, what);
  if (!certs) return std::unexpected(certs.error());
  return {};
}

Result<void> CheckPrivateKeyPem(std::string_view pem, std::string_view what) {
  auto key = ParsePrivateKey(pem, what);
  if (!key) return std::unexpected(key.error());
  return {};
}

Result<std::shared_ptr<asio::ssl::context>> MakeServerContext(const Material& material,
                                                              const TlsSettings& settings) {
  return MakeContext(material, settings, Side::kServer);
}

Result<std::shared_ptr<asio::ssl::context>> MakeClientContext(const Material& material,
                                                              const TlsSettings& settings) {
  return MakeContext(material, settings, Side::kClient);
}

}  // namespace pp::tls
