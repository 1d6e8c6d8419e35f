#include "attest/jwe.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <array>

#include "attest/jose.h"
#include "common/base/handle.h"

namespace pp::attest {
namespace {

using Pkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using Bignum = CHandle<BIGNUM, BN_free>;
constexpr std::size_t kP256Coord = 32;

}  // namespace

struct TeeKeyPair::Key {
  Pkey pkey;
};

TeeKeyPair::TeeKeyPair(KeyAlg alg, std::unique_ptr<Key> key) : alg_(alg), key_(std::move(key)) {}
TeeKeyPair::TeeKeyPair(TeeKeyPair&&) noexcept = default;
TeeKeyPair& TeeKeyPair::operator=(TeeKeyPair&&) noexcept = default;
TeeKeyPair::~TeeKeyPair() = default;

std::string_view KeyAlgName(KeyAlg alg) {
  return alg == KeyAlg::kEcdhEsA256kw ? "ECDH-ES+A256KW" : "RSA-OAEP-256";
}

Result<KeyAlg> ParseKeyAlg(std::string_view name) {
  if (name == "ECDH-ES+A256KW") return KeyAlg::kEcdhEsA256kw;
  if (name == "RSA-OAEP-256") return KeyAlg::kRsaOaep256;
  return Fail(Code::kInvalidArgument, "key algorithm must be ECDH-ES+A256KW or RSA-OAEP-256");
}

Result<TeeKeyPair> TeeKeyPair::Generate(KeyAlg alg) {
  EVP_PKEY* raw = alg == KeyAlg::kEcdhEsA256kw
                      ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                      : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
  if (raw == nullptr) return Fail(Code::kInternal, "attest: generating the TEE key pair failed");
  auto key = std::make_unique<Key>();
  key->pkey.reset(raw);
  return TeeKeyPair(alg, std::move(key));
}

nlohmann::json TeeKeyPair::PublicJwk() const {
  EVP_PKEY* pkey = key_->pkey.get();
  if (alg_ == KeyAlg::kEcdhEsA256kw) {
    std::array<unsigned char, 1 + 2 * kP256Coord> point{};
    std::size_t len = 0;
    EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(), point.size(), &len);
    const std::string_view p(reinterpret_cast<const char*>(point.data()), point.size());
    return {{"kty", "EC"}, {"crv", "P-256"}, {"alg", "ECDH-ES+A256KW"},
            {"x", Base64UrlEncode(p.substr(1, kP256Coord))}, {"y", Base64UrlEncode(p.substr(1 + kP256Coord))}};
  }
  const auto bn = [pkey](const char* name) {
    BIGNUM* raw = nullptr;
    EVP_PKEY_get_bn_param(pkey, name, &raw);
    Bignum b(raw);
    std::string out(static_cast<std::size_t>(BN_num_bytes(b.get())), '\0');
    BN_bn2bin(b.get(), reinterpret_cast<unsigned char*>(out.data()));
    return Base64UrlEncode(out);
  };
  return {{"kty", "RSA"}, {"alg", "RSA-OAEP-256"}, {"n", bn(OSSL_PKEY_PARAM_RSA_N)}, {"e", bn(OSSL_PKEY_PARAM_RSA_E)}};
}

Result<Secret> TeeKeyPair::Decrypt(std::string_view jwe_json) const {
  Secret plaintext;
  std::string error;
  if (!jose::DecryptFlattened(key_->pkey.get(), KeyAlgName(alg_), jwe_json, plaintext, error))
    return Fail(Code::kDataLoss, error);
  return plaintext;
}

std::string Base64UrlEncode(std::string_view bytes) { return jose::Base64UrlEncode(bytes); }

Result<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  if (!jose::Base64UrlDecode(text, out)) return Fail(Code::kInvalidArgument, "not unpadded base64url");
  return out;
}

Secret ConcatKdfSha256(std::string_view z, std::string_view algorithm_id, std::string_view apu,
                       std::string_view apv, std::size_t key_bytes) {
  return jose::ConcatKdfSha256(z, algorithm_id, apu, apv, key_bytes);
}

}  // namespace pp::attest
