#include "providers/azure/ssh_key.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <memory>

#include "common/base/file.h"
#include "common/podvm/encoding.h"

namespace pp::providers::azure {
namespace {

void PutString(std::string& out, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  out.push_back(char(n >> 24));
  out.push_back(char(n >> 16));
  out.push_back(char(n >> 8));
  out.push_back(char(n));
  out.append(s);
}

// An SSH mpint (RFC 4251 section 5): big-endian, a leading zero byte when the top bit is set.
std::string Mpint(const BIGNUM* bn) {
  std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
  if (!bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0x80))
    bytes.insert(bytes.begin(), '\0');
  return bytes;
}

}  // namespace

Result<std::string> MakeThrowawaySshPublicKey() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(3072), EVP_PKEY_free);
  if (!key) return Fail(Code::kInternal, "azure: generating an RSA key failed");
  BIGNUM* n = nullptr;
  BIGNUM* e = nullptr;
  if (EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
      EVP_PKEY_get_bn_param(key.get(), OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
    BN_free(n);
    BN_free(e);
    return Fail(Code::kInternal, "azure: reading the RSA public key failed");
  }
  std::string blob;
  PutString(blob, "ssh-rsa");
  PutString(blob, Mpint(e));
  PutString(blob, Mpint(n));
  BN_free(n);
  BN_free(e);
  return "ssh-rsa " + podvm::Base64Encode(blob) + " peerpods";
}

Result<std::string> ReadSshPublicKey(const std::string& path) {
  auto text = ReadFile(path, 16 * 1024);
  if (!text) {
    return Fail(Code::kFailedPrecondition, "azure: -ssh-key-path ", path, ": ",
                text.error().message);
  }
  std::string line = text->substr(0, text->find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (!(line.starts_with("ssh-rsa ") || line.starts_with("ssh-ed25519 ") ||
        line.starts_with("ecdsa-sha2-"))) {
    return Fail(Code::kFailedPrecondition, "azure: -ssh-key-path ", path,
                " is not an OpenSSH public key");
  }
  return line;
}

}  // namespace pp::providers::azure
