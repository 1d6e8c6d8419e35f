// libFuzzer target: arbitrary bytes as everything the pod VM's KBS client reads from the network
// (attest/kbs_protocol.h: the /auth challenge, RFC 7807 error bodies, Set-Cookie values; and
// attest/jwe.h: the resource JWE), and as JSON to canonicalize (attest/jcs.h). Parsers must refuse
// with a reason or yield what they promise; a JWE nobody made for our keys must never decrypt; the
// canonical form must be a fixed point. Built by the "fuzz" preset (clang, ASan+UBSan).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include <openssl/evp.h>

#include "attest/jcs.h"
#include "attest/jose.h"
#include "attest/kbs_protocol.h"

namespace at = pp::attest;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  at::Challenge challenge;
  std::string error;
  if (at::ParseChallenge(input, challenge, error)) {
    if (challenge.nonce.empty()) std::abort();
    if (challenge.hash != "sha256" && challenge.hash != "sha384" && challenge.hash != "sha512") std::abort();
  } else if (error.empty()) {
    std::abort();
  }
  if (at::ProblemDetail(input).size() > 203) std::abort();
  if (auto v = at::CookieValue(input, at::kSessionCookie); v && (v->empty() || v->find(';') != std::string::npos))
    std::abort();

  static EVP_PKEY* const ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  static EVP_PKEY* const rsa = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
  if (ec == nullptr || rsa == nullptr) std::abort();
  for (auto [key, alg] : {std::pair{ec, "ECDH-ES+A256KW"}, std::pair{rsa, "RSA-OAEP-256"}}) {
    pp::attest::Secret plain;
    error.clear();
    if (at::jose::DecryptFlattened(key, alg, input, plain, error)) std::abort();  // forged without our key
    if (error.empty() || !plain.empty()) std::abort();
  }
  std::string decoded;
  if (at::jose::Base64UrlDecode(input, decoded) && at::jose::Base64UrlEncode(decoded) != input) std::abort();

  const auto json = nlohmann::json::parse(input, nullptr, false);
  std::string canonical;
  if (!json.is_discarded() && at::Canonicalize(json, canonical, error)) {
    const auto again = nlohmann::json::parse(canonical, nullptr, false);
    std::string twice;
    if (again.is_discarded() || !at::Canonicalize(again, twice, error) || twice != canonical) std::abort();
  }
  return 0;
}
