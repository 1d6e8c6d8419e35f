#include "common/tls/openssl.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <climits>

namespace pp::tls {
namespace {

// PEM callbacks would otherwise read a passphrase from the terminal.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) { return -1; }

Result<UniqueBio> ReadOnlyBio(std::string_view data, std::string_view what) {
  if (data.size() > static_cast<std::size_t>(INT_MAX)) {
    return Fail(Code::kInvalidArgument, what, " is too large");
  }
  UniqueBio bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) return std::unexpected(OpenSslError(Code::kInternal, "BIO_new_mem_buf"));
  return bio;
}

Result<std::string> DrainBio(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_ctrl(bio, BIO_CTRL_INFO, 0, static_cast<void*>(&data));
  if (size < 0 || (size > 0 && data == nullptr))
    return Fail(Code::kInternal, "reading a memory BIO failed");
  return std::string(data, static_cast<std::size_t>(size));
}

bool AtEndOfPem() {
  const unsigned long err = ERR_peek_last_error();
  return ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
}

}  // namespace

Error OpenSslError(Code code, std::string_view what) {
  std::string message(what);
  message += ": ";
  bool first = true;
  while (const unsigned long err = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(err, buffer, sizeof buffer);
    if (!first) message += "; ";
    message += buffer;
    first = false;
  }
  if (first) message += "unknown OpenSSL error";
  return Error{code, std::move(message)};
}

Result<std::vector<UniqueX509>> ParseCertificates(std::string_view pem, std::string_view what) {
  ERR_clear_error();
  auto bio = ReadOnlyBio(pem, what);
  if (!bio) return std::unexpected(bio.error());
  std::vector<UniqueX509> certs;
  for (;;) {
    UniqueX509 cert(PEM_read_bio_X509(bio->get(), nullptr, NoPassphrase, nullptr));
    if (!cert) break;
    certs.push_back(std::move(cert));
  }
  if (!AtEndOfPem()) {
    return std::unexpected(
        OpenSslError(Code::kInvalidArgument, std::string(what) + " is not valid PEM"));
  }
  ERR_clear_error();
  if (certs.empty()) return Fail(Code::kInvalidArgument, what, " holds no PEM certificate");
  return certs;
}

Result<UniqueX509> ParseCertificate(std::string_view pem, std::string_view what) {
  auto certs = ParseCertificates(pem, what);
  if (!certs) return std::unexpected(certs.error());
  return std::move(certs->front());
}

Result<UniqueEvpPkey> ParsePrivateKey(std::string_view pem, std::string_view what) {
  if (pem.find("ENCRYPTED") != std::string_view::npos) {
    return Fail(Code::kInvalidArgument, what, " is encrypted; an unencrypted PEM key is required");
  }
  ERR_clear_error();
  auto bio = ReadOnlyBio(pem, what);
  if (!bio) return std::unexpected(bio.error());
  UniqueEvpPkey key(PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return std::unexpected(
        OpenSslError(Code::kInvalidArgument, std::string(what) + " is not a PEM private key"));
  }
  return key;
}

Result<std::string> CertificateToPem(X509* cert) {
  UniqueBio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return std::unexpected(OpenSslError(Code::kInternal, "encoding a certificate as PEM"));
  }
  return DrainBio(bio.get());
}

Result<std::string> PrivateKeyToPem(EVP_PKEY* key) {
  UniqueBio bio(BIO_new(BIO_s_secmem()));  // the buffer is cleared when freed
  if (!bio ||
      PEM_write_bio_PKCS8PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return std::unexpected(OpenSslError(Code::kInternal, "encoding a private key as PKCS#8 PEM"));
  }
  return DrainBio(bio.get());
}

}  // namespace pp::tls
