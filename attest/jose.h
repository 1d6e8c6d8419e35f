// The JOSE pieces of the KBS resource response, without pp::base (no std::expected) so that the
// fuzz target can build them with clang: base64url (RFC 4648 section 5, unpadded as RFC 7515
// section 2 requires), the Concat KDF (RFC 7518 section 4.6.2) and the decryption of a
// flattened-JSON JWE (RFC 7516 section 7.2.2) with a private key. jwe.h describes the protocol and
// wraps these for the client. Errors say which step failed, never key material or plaintext.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "attest/secret.h"

namespace pp::attest::jose {

std::string Base64UrlEncode(std::string_view bytes);
// Unpadded base64url; false on '=' padding, any other character, an impossible length or non-zero
// trailing bits.
bool Base64UrlDecode(std::string_view text, std::string& out);

// Concat KDF (NIST SP 800-56A section 5.8.1, single-step) with SHA-256 as RFC 7518 section 4.6.2
// instantiates it: OtherInfo = AlgorithmID || PartyUInfo || PartyVInfo (each a 32-bit big-endian
// length then the bytes) || SuppPubInfo (keydatalen in bits, 32-bit big-endian).
Secret ConcatKdfSha256(std::string_view z, std::string_view algorithm_id, std::string_view apu,
                       std::string_view apv, std::size_t key_bytes);

// Decrypts a flattened-JSON JWE whose `alg` must be `alg` ("ECDH-ES+A256KW" with an EC P-256
// `key`, or "RSA-OAEP-256" with an RSA `key`) and whose `enc` must be A256GCM. False with a
// reason in `error` and `plaintext` empty on anything malformed or unauthentic.
bool DecryptFlattened(EVP_PKEY* key, std::string_view alg, std::string_view jwe_json, Secret& plaintext,
                      std::string& error);

}  // namespace pp::attest::jose
