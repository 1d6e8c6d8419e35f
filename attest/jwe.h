// The TEE key pair of one attestation and the decryption of what the KBS wraps to it.
//
// Trustee answers GET /kbs/v0/resource/... with a JWE in the flattened JSON serialization (RFC 7516
// section 7.2.2; trustee kbs/src/jwe/mod.rs): {"protected","encrypted_key","iv","ciphertext","tag"}
// with `enc` = A256GCM and `alg` following the tee-pubkey the client sent in /attest:
//   ECDH-ES+A256KW (RFC 7518 section 4.6): Z = ECDH(our P-256 key, header epk), KEK = Concat KDF
//     (RFC 7518 section 4.6.2, NIST SP 800-56A) with SHA-256, AlgorithmID "ECDH-ES+A256KW",
//     PartyUInfo/PartyVInfo from apu/apv (empty when absent), keydatalen 256; CEK = AES key unwrap
//     (RFC 3394) of encrypted_key;
//   RSA-OAEP-256 (RFC 7518 section 4.3): CEK = RSAES-OAEP with SHA-256 and MGF1-SHA-256.
// The content is AES-256-GCM with AAD = the ASCII of the `protected` member as received (RFC 7516
// section 5.2 step 14), plus "." and the `aad` member when present.
//
// The private key never leaves this object; it is made in this process and freed with it. Errors
// say which step failed, never key material or plaintext. Thread-compatible. The JOSE work itself is
// in jose.h (without pp::base, so that it is fuzzed); this is its face for the client.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "attest/secret.h"
#include "common/base/error.h"

namespace pp::attest {

enum class KeyAlg { kEcdhEsA256kw, kRsaOaep256 };

// "ECDH-ES+A256KW" / "RSA-OAEP-256"
std::string_view KeyAlgName(KeyAlg alg);
// From the name (as in a flag); INVALID_ARGUMENT for anything else.
Result<KeyAlg> ParseKeyAlg(std::string_view name);

class TeeKeyPair {
 public:
  // A fresh EC P-256 or RSA-2048 key pair. INTERNAL when OpenSSL fails.
  static Result<TeeKeyPair> Generate(KeyAlg alg);

  TeeKeyPair(TeeKeyPair&&) noexcept;
  TeeKeyPair& operator=(TeeKeyPair&&) noexcept;
  ~TeeKeyPair();

  KeyAlg alg() const { return alg_; }

  // The public key as the JWK /attest carries in runtime-data.tee-pubkey (RFC 7517/7518 section 6):
  // {"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x","y"} or {"kty":"RSA","alg":"RSA-OAEP-256","n","e"}.
  nlohmann::json PublicJwk() const;

  // Decrypts a flattened-JSON JWE addressed to this key. DATA_LOSS for anything malformed, an
  // algorithm other than ours with A256GCM, or a failed unwrap/authentication; no partial output.
  Result<Secret> Decrypt(std::string_view jwe_json) const;

 private:
  struct Key;
  TeeKeyPair(KeyAlg alg, std::unique_ptr<Key> key);
  KeyAlg alg_;
  std::unique_ptr<Key> key_;
};

// RFC 4648 section 5 base64url without padding (the JOSE form, RFC 7515 section 2).
std::string Base64UrlEncode(std::string_view bytes);
// Decodes unpadded base64url; a trailing '=' padding is refused as JOSE requires. INVALID_ARGUMENT
// on any other character or a length no encoding produces.
Result<std::string> Base64UrlDecode(std::string_view text);

// Concat KDF (NIST SP 800-56A section 5.8.1, single-step) as RFC 7518 section 4.6.2 instantiates it
// with SHA-256: OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo (each a 32-bit big-endian length
// then the bytes) || SuppPubInfo (keydatalen in bits, 32-bit big-endian). Exposed for the known-answer
// test of RFC 7518 appendix C.
Secret ConcatKdfSha256(std::string_view z, std::string_view algorithm_id, std::string_view apu,
                       std::string_view apv, std::size_t key_bytes);

}  // namespace pp::attest
