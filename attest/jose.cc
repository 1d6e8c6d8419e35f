#include "attest/jose.h"

#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>

namespace pp::attest::jose {
namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, Deleter<EVP_CIPHER_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;

constexpr std::size_t kP256Coord = 32;

// Sets `error` and returns false, so that a failing step is one line.
bool Refuse(std::string& error, std::string message) {
  error = std::move(message);
  return false;
}

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

bool Member(const nlohmann::json& jwe, const char* name, std::string& out, std::string& error) {
  const auto it = jwe.find(name);
  if (it == jwe.end() || !it->is_string()) return Refuse(error, std::string("jwe: member \"") + name + "\" missing");
  if (!Base64UrlDecode(it->get_ref<const std::string&>(), out))
    return Refuse(error, std::string("jwe: member \"") + name + "\" is not base64url");
  return true;
}

std::string BigEndian32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

std::string LengthPrefixed(std::string_view s) { return BigEndian32(static_cast<std::uint32_t>(s.size())) + std::string(s); }

bool ImportP256(const nlohmann::json& epk, Pkey& out, std::string& error) {
  if (!epk.is_object() || epk.value("kty", "") != "EC" || epk.value("crv", "") != "P-256")
    return Refuse(error, "jwe: epk is not an EC P-256 JWK");
  if (!epk.contains("x") || !epk["x"].is_string() || !epk.contains("y") || !epk["y"].is_string())
    return Refuse(error, "jwe: epk lacks x or y");
  std::string x, y;
  if (!Base64UrlDecode(epk["x"].get_ref<const std::string&>(), x) ||
      !Base64UrlDecode(epk["y"].get_ref<const std::string&>(), y) || x.size() != kP256Coord || y.size() != kP256Coord)
    return Refuse(error, "jwe: epk coordinates are not 32 bytes");
  std::string point = "\x04" + x + y;
  char group[] = "P-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    return Refuse(error, "jwe: epk is not a P-256 point");
  Pkey key(raw);
  // An off-curve point would leak bits of our private key (invalid-curve attack): check it.
  PkeyCtx check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return Refuse(error, "jwe: epk is not on P-256");
  out = std::move(key);
  return true;
}

bool AesKeyUnwrap(const Secret& kek, std::string_view wrapped, Secret& cek, std::string& error) {
  if (wrapped.size() != 40) return Refuse(error, "jwe: encrypted_key is not a wrapped 256-bit key");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Refuse(error, "jwe: out of memory");
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  Secret out(std::string(wrapped.size(), '\0'));
  auto* o = out.mutable_data();
  int len = 0, fin = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), o, &len, U(wrapped), static_cast<int>(wrapped.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), o + len, &fin) != 1)
    return Refuse(error, "jwe: AES key unwrap failed (not wrapped for this key)");
  cek = Secret(std::string(out.view().substr(0, static_cast<std::size_t>(len + fin))));
  return true;
}

bool EcdhEsA256kw(EVP_PKEY* ours, const nlohmann::json& header, std::string_view wrapped, Secret& cek,
                  std::string& error) {
  Pkey epk;
  if (!ImportP256(header.contains("epk") ? header["epk"] : nlohmann::json(), epk, error)) return false;
  std::string apu, apv;
  for (auto [name, out] : {std::pair{"apu", &apu}, std::pair{"apv", &apv}}) {
    if (!header.contains(name)) continue;
    if (!header[name].is_string() || !Base64UrlDecode(header[name].get_ref<const std::string&>(), *out))
      return Refuse(error, std::string("jwe: ") + name + " is not base64url");
  }
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ours, nullptr));
  std::size_t z_len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) <= 0 || EVP_PKEY_derive_set_peer(ctx.get(), epk.get()) <= 0 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &z_len) <= 0)
    return Refuse(error, "jwe: ECDH with the epk failed");
  Secret z(std::string(z_len, '\0'));
  if (EVP_PKEY_derive(ctx.get(), z.mutable_data(), &z_len) <= 0 || z_len != z.size())
    return Refuse(error, "jwe: ECDH with the epk failed");
  const Secret kek = ConcatKdfSha256(z.view(), "ECDH-ES+A256KW", apu, apv, 32);
  return AesKeyUnwrap(kek, wrapped, cek, error);
}

bool RsaOaep256(EVP_PKEY* ours, std::string_view wrapped, Secret& cek, std::string& error) {
  PkeyCtx ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ours, nullptr));
  std::size_t len = 0;
  if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_decrypt(ctx.get(), nullptr, &len, U(wrapped), wrapped.size()) <= 0)
    return Refuse(error, "jwe: RSA-OAEP-256 setup failed");
  Secret out(std::string(len, '\0'));
  if (EVP_PKEY_decrypt(ctx.get(), out.mutable_data(), &len, U(wrapped), wrapped.size()) <= 0)
    return Refuse(error, "jwe: RSA-OAEP-256 decryption failed (not encrypted to this key)");
  cek = Secret(std::string(out.view().substr(0, len)));
  return true;
}

bool AesGcmDecrypt(const Secret& cek, std::string_view iv, std::string_view ciphertext, std::string_view tag,
                   std::string_view aad, Secret& plaintext, std::string& error) {
  if (cek.size() != 32) return Refuse(error, "jwe: content key is not 256 bits");
  if (iv.size() != 12) return Refuse(error, "jwe: iv is not 96 bits");
  if (tag.size() != 16) return Refuse(error, "jwe: tag is not 128 bits");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  Secret out(std::string(ciphertext.size(), '\0'));
  auto* o = out.mutable_data();
  int len = 0, fin = 0;
  std::string tag_copy(tag);
  const bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) == 1 &&
                  EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, cek.data(), U(iv)) == 1 &&
                  EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
                  EVP_DecryptUpdate(ctx.get(), o, &len, U(ciphertext), static_cast<int>(ciphertext.size())) == 1 &&
                  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag_copy.data()) == 1 &&
                  EVP_DecryptFinal_ex(ctx.get(), o + len, &fin) == 1;
  if (!ok) return Refuse(error, "jwe: A256GCM authentication failed (tampered or not for this key)");
  plaintext = std::move(out);
  return true;
}

}  // namespace

bool DecryptFlattened(EVP_PKEY* key, std::string_view alg, std::string_view jwe_json, Secret& plaintext,
                      std::string& error) {
  plaintext.Clear();
  const auto jwe = nlohmann::json::parse(jwe_json, nullptr, /*allow_exceptions=*/false);
  if (!jwe.is_object()) return Refuse(error, "jwe: response is not a JSON object");
  if (!jwe.contains("protected") || !jwe["protected"].is_string()) return Refuse(error, "jwe: no protected header");
  const std::string& protected_b64 = jwe["protected"].get_ref<const std::string&>();
  std::string header_bytes;
  if (!Base64UrlDecode(protected_b64, header_bytes)) return Refuse(error, "jwe: protected header is not base64url");
  auto header = nlohmann::json::parse(header_bytes, nullptr, false);
  if (!header.is_object()) return Refuse(error, "jwe: protected header is not a JSON object");
  // The JOSE header is the union of the protected, shared unprotected and per-recipient headers,
  // whose names must be disjoint (RFC 7516 section 7.2.1). Trustee puts everything in the
  // protected one; jwcrypto puts epk in the per-recipient "header" (it is bound by the key
  // agreement, so it needs no integrity protection of its own).
  for (const char* part : {"unprotected", "header"}) {
    if (!jwe.contains(part)) continue;
    if (!jwe[part].is_object()) return Refuse(error, std::string("jwe: ") + part + " is not a JSON object");
    for (const auto& [name, value] : jwe[part].items()) {
      if (header.contains(name)) return Refuse(error, "jwe: header parameter repeated across headers");
      header[name] = value;
    }
  }
  // "crit" and "zip" name processing we do not do (RFC 7516 section 4.1.3, RFC 7515 section
  // 4.1.11), so a JWE that uses them is refused.
  if (!header.contains("enc") || header["enc"] != "A256GCM") return Refuse(error, "jwe: enc is not A256GCM");
  if (!header.contains("alg") || header["alg"] != alg)
    return Refuse(error, "jwe: alg is not " + std::string(alg) + " (the key we attested with)");
  if (header.contains("zip") || header.contains("crit"))
    return Refuse(error, "jwe: zip/crit header parameters are not supported");

  std::string wrapped, iv, ciphertext, tag;
  if (!Member(jwe, "encrypted_key", wrapped, error) || !Member(jwe, "iv", iv, error) ||
      !Member(jwe, "ciphertext", ciphertext, error) || !Member(jwe, "tag", tag, error))
    return false;
  std::string aad = protected_b64;
  if (jwe.contains("aad")) {
    if (!jwe["aad"].is_string()) return Refuse(error, "jwe: aad is not a string");
    aad += "." + jwe["aad"].get<std::string>();
  }
  Secret cek;
  const bool unwrapped = alg == "ECDH-ES+A256KW" ? EcdhEsA256kw(key, header, wrapped, cek, error)
                         : alg == "RSA-OAEP-256" ? RsaOaep256(key, wrapped, cek, error)
                                                 : Refuse(error, "jwe: unsupported key algorithm");
  if (!unwrapped) return false;
  return AesGcmDecrypt(cek, iv, ciphertext, tag, aad, plaintext, error);
}

Secret ConcatKdfSha256(std::string_view z, std::string_view algorithm_id, std::string_view apu,
                       std::string_view apv, std::size_t key_bytes) {
  const std::string other_info = LengthPrefixed(algorithm_id) + LengthPrefixed(apu) + LengthPrefixed(apv) +
                                 BigEndian32(static_cast<std::uint32_t>(key_bytes * 8));
  Secret out(std::string((key_bytes + 31) / 32 * 32, '\0'));
  auto* o = out.mutable_data();
  for (std::uint32_t counter = 1; (counter - 1) * 32 < key_bytes; ++counter) {
    unsigned int len = 0;
    MdCtx md(EVP_MD_CTX_new());
    const std::string c = BigEndian32(counter);
    EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
    EVP_DigestUpdate(md.get(), c.data(), c.size());
    EVP_DigestUpdate(md.get(), z.data(), z.size());
    EVP_DigestUpdate(md.get(), other_info.data(), other_info.size());
    EVP_DigestFinal_ex(md.get(), o + (counter - 1) * 32, &len);
  }
  return Secret(std::string(out.view().substr(0, key_bytes)));
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

bool Base64UrlDecode(std::string_view text, std::string& result) {
  if (text.size() % 4 == 1) return false;
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
    else return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return false;
  result = std::move(out);
  return true;
}

}  // namespace pp::attest::jose
