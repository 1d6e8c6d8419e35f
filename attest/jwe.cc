#include "attest/jwe.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include <array>
#include <cstdint>
#include <vector>

#include "common/base/handle.h"

namespace pp::attest {
namespace {

using Pkey = CHandle<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtx = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using CipherCtx = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using Bignum = CHandle<BIGNUM, BN_free>;

constexpr std::size_t kP256Coord = 32;

Result<std::string> Member(const nlohmann::json& jwe, const char* name) {
  const auto it = jwe.find(name);
  if (it == jwe.end() || !it->is_string()) return Fail(Code::kDataLoss, "jwe: member \"", name, "\" missing");
  auto decoded = Base64UrlDecode(it->get_ref<const std::string&>());
  if (!decoded) return Fail(Code::kDataLoss, "jwe: member \"", name, "\" is not base64url");
  return *decoded;
}

std::string BigEndian32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string LengthPrefixed(std::string_view s) { return BigEndian32(static_cast<std::uint32_t>(s.size())) + std::string(s); }

Result<Pkey> ImportP256(const nlohmann::json& epk) {
  if (!epk.is_object() || epk.value("kty", "") != "EC" || epk.value("crv", "") != "P-256")
    return Fail(Code::kDataLoss, "jwe: epk is not an EC P-256 JWK");
  if (!epk.contains("x") || !epk["x"].is_string() || !epk.contains("y") || !epk["y"].is_string())
    return Fail(Code::kDataLoss, "jwe: epk lacks x or y");
  auto x = Base64UrlDecode(epk["x"].get_ref<const std::string&>());
  auto y = Base64UrlDecode(epk["y"].get_ref<const std::string&>());
  if (!x || !y || x->size() != kP256Coord || y->size() != kP256Coord)
    return Fail(Code::kDataLoss, "jwe: epk coordinates are not 32 bytes");
  std::string point = "\x04" + *x + *y;
  char group[] = "P-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    return Fail(Code::kDataLoss, "jwe: epk is not a P-256 point");
  Pkey key(raw);
  // An off-curve point would leak bits of our private key (invalid-curve attack): check it.
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return Fail(Code::kDataLoss, "jwe: epk is not on P-256");
  return key;
}

Result<Secret> AesKeyUnwrap(const Secret& kek, std::string_view wrapped) {
  if (wrapped.size() != 40) return Fail(Code::kDataLoss, "jwe: encrypted_key is not a wrapped 256-bit key");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Fail(Code::kInternal, "jwe: out of memory");
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  std::string out(wrapped.size(), '\0');
  Secret guard;  // wipes `out` on every path once it holds key bytes
  int len = 0, fin = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                        reinterpret_cast<const unsigned char*>(wrapped.data()), static_cast<int>(wrapped.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &fin) != 1) {
    guard = Secret(std::move(out));
    return Fail(Code::kDataLoss, "jwe: AES key unwrap failed (not wrapped for this key)");
  }
  out.resize(static_cast<std::size_t>(len + fin));
  return Secret(std::move(out));
}

Result<Secret> EcdhEsA256kw(EVP_PKEY* ours, const nlohmann::json& header, std::string_view wrapped) {
  auto epk = ImportP256(header.contains("epk") ? header["epk"] : nlohmann::json());
  if (!epk) return std::unexpected(epk.error());
  std::string apu, apv;
  for (auto [name, out] : {std::pair{"apu", &apu}, std::pair{"apv", &apv}}) {
    if (!header.contains(name)) continue;
    if (!header[name].is_string()) return Fail(Code::kDataLoss, "jwe: ", name, " is not a string");
    auto d = Base64UrlDecode(header[name].get_ref<const std::string&>());
    if (!d) return Fail(Code::kDataLoss, "jwe: ", name, " is not base64url");
    *out = std::move(*d);
  }
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ours, nullptr));
  std::size_t z_len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 || EVP_PKEY_derive_set_peer(ctx.get(), epk->get()) <= 0 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &z_len) <= 0)
    return Fail(Code::kDataLoss, "jwe: ECDH with the epk failed");
  std::string z(z_len, '\0');
  if (EVP_PKEY_derive(ctx.get(), reinterpret_cast<unsigned char*>(z.data()), &z_len) <= 0) {
    Secret wipe(std::move(z));
    return Fail(Code::kDataLoss, "jwe: ECDH with the epk failed");
  }
  z.resize(z_len);
  const Secret shared(std::move(z));
  const Secret kek = ConcatKdfSha256(shared.view(), "ECDH-ES+A256KW", apu, apv, 32);
  return AesKeyUnwrap(kek, wrapped);
}

Result<Secret> RsaOaep256(EVP_PKEY* ours, std::string_view wrapped) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ours, nullptr));
  std::size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(wrapped.data());
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, in, wrapped.size()) <= 0)
    return Fail(Code::kDataLoss, "jwe: RSA-OAEP-256 setup failed");
  std::string out(len, '\0');
  if (EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, in, wrapped.size()) <= 0) {
    Secret wipe(std::move(out));
    return Fail(Code::kDataLoss, "jwe: RSA-OAEP-256 decryption failed (not encrypted to this key)");
  }
  out.resize(len);
  return Secret(std::move(out));
}

Result<Secret> AesGcmDecrypt(const Secret& cek, std::string_view iv, std::string_view ciphertext,
                             std::string_view tag, std::string_view aad) {
  if (cek.size() != 32) return Fail(Code::kDataLoss, "jwe: content key is not 256 bits");
  if (iv.size() != 12) return Fail(Code::kDataLoss, "jwe: iv is not 96 bits");
  if (tag.size() != 16) return Fail(Code::kDataLoss, "jwe: tag is not 128 bits");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  std::string out(ciphertext.size(), '\0');
  int len = 0, fin = 0;
  const auto u = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, cek.data(), u(iv)) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, u(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, u(ciphertext),
                              static_cast<int>(ciphertext.size())) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, const_cast<char*>(tag.data())) == 1;
  ok = ok && EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &fin) == 1;
  Secret result(std::move(out));
  if (!ok) return Fail(Code::kDataLoss, "jwe: A256GCM authentication failed (tampered or not for this key)");
  return result;
}

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
  const auto jwe = nlohmann::json::parse(jwe_json, nullptr, /*allow_exceptions=*/false);
  if (!jwe.is_object()) return Fail(Code::kDataLoss, "jwe: response is not a JSON object");
  if (!jwe.contains("protected") || !jwe["protected"].is_string())
    return Fail(Code::kDataLoss, "jwe: no protected header");
  const std::string& protected_b64 = jwe["protected"].get_ref<const std::string&>();
  auto header_bytes = Base64UrlDecode(protected_b64);
  if (!header_bytes) return Fail(Code::kDataLoss, "jwe: protected header is not base64url");
  auto header = nlohmann::json::parse(*header_bytes, nullptr, false);
  if (!header.is_object()) return Fail(Code::kDataLoss, "jwe: protected header is not a JSON object");
  // The JOSE header is the union of the protected, shared unprotected and per-recipient headers,
  // whose names must be disjoint (RFC 7516 section 7.2.1). Trustee puts everything in the
  // protected one; jwcrypto puts epk in the per-recipient "header" (it is bound by the key
  // agreement, so it needs no integrity protection of its own).
  for (const char* part : {"unprotected", "header"}) {
    if (!jwe.contains(part)) continue;
    if (!jwe[part].is_object()) return Fail(Code::kDataLoss, "jwe: ", part, " is not a JSON object");
    for (const auto& [name, value] : jwe[part].items()) {
      if (header.contains(name)) return Fail(Code::kDataLoss, "jwe: header parameter repeated across headers");
      header[name] = value;
    }
  }
  // "crit" and "zip" name processing we do not do
  // (RFC 7516 section 4.1.3, RFC 7515 section 4.1.11), so a JWE that uses them is refused.
  if (header.value("enc", "") != "A256GCM") return Fail(Code::kDataLoss, "jwe: enc is not A256GCM");
  if (header.value("alg", "") != KeyAlgName(alg_))
    return Fail(Code::kDataLoss, "jwe: alg is not ", KeyAlgName(alg_), " (the key we attested with)");
  if (header.contains("zip") || header.contains("crit"))
    return Fail(Code::kDataLoss, "jwe: zip/crit header parameters are not supported");

  auto wrapped = Member(jwe, "encrypted_key");
  auto iv = Member(jwe, "iv");
  auto ciphertext = Member(jwe, "ciphertext");
  auto tag = Member(jwe, "tag");
  for (const auto* r : {&wrapped, &iv, &ciphertext, &tag})
    if (!*r) return std::unexpected(r->error());
  std::string aad = protected_b64;
  if (jwe.contains("aad")) {
    if (!jwe["aad"].is_string()) return Fail(Code::kDataLoss, "jwe: aad is not a string");
    aad += "." + jwe["aad"].get<std::string>();
  }

  auto cek = alg_ == KeyAlg::kEcdhEsA256kw ? EcdhEsA256kw(key_->pkey.get(), header, *wrapped)
                                           : RsaOaep256(key_->pkey.get(), *wrapped);
  if (!cek) return std::unexpected(cek.error());
  return AesGcmDecrypt(*cek, *iv, *ciphertext, *tag, aad);
}

Secret ConcatKdfSha256(std::string_view z, std::string_view algorithm_id, std::string_view apu,
                       std::string_view apv, std::size_t key_bytes) {
  const std::string other_info = LengthPrefixed(algorithm_id) + LengthPrefixed(apu) + LengthPrefixed(apv) +
                                 BigEndian32(static_cast<std::uint32_t>(key_bytes * 8));
  std::string out;
  for (std::uint32_t counter = 1; out.size() < key_bytes; ++counter) {
    std::array<unsigned char, 32> digest{};
    unsigned int len = 0;
    CHandle<EVP_MD_CTX, EVP_MD_CTX_free> md(EVP_MD_CTX_new());
    const std::string c = BigEndian32(counter);
    EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
    EVP_DigestUpdate(md.get(), c.data(), c.size());
    EVP_DigestUpdate(md.get(), z.data(), z.size());
    EVP_DigestUpdate(md.get(), other_info.data(), other_info.size());
    EVP_DigestFinal_ex(md.get(), digest.data(), &len);
    out.append(reinterpret_cast<const char*>(digest.data()), len);
    OPENSSL_cleanse(digest.data(), digest.size());
  }
  Secret all(std::move(out));
  return Secret(std::string(all.view().substr(0, key_bytes)));
}

std::string Base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) | static_cast<unsigned char>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(v >> 6) & 63]);
  }
  return out;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return Fail(Code::kInvalidArgument, "base64url: impossible length");
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '-') v = 62;
    else if (c == '_') v = 63;
    else return Fail(Code::kInvalidArgument, "base64url: invalid character");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return Fail(Code::kInvalidArgument, "base64url: non-zero trailing bits");
  return out;
}

}  // namespace pp::attest
