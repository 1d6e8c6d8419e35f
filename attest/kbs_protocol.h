// The KBS protocol's messages without I/O (trustee kbs/docs/kbs_attestation_protocol.md): what
// kbs_client.cc sends and reads, kept pure so that it is fuzzed (tests/fuzz/attest_fuzz.cc) and
// tested on its own. Standard library, nlohmann-json and OpenSSL's digests only (no pp::base, no
// std::expected), so the fuzz target can build it with clang.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>


namespace pp::attest {

inline constexpr std::string_view kKbsProtocolVersion = "0.4.0";
inline constexpr std::string_view kSessionCookie = "kbs-session-id";

struct Challenge {
  std::string nonce;
  std::string hash = "sha384";  // sha256 | sha384 | sha512
};

// The /auth answer {"nonce","extra-params"}. extra-params may be an object, a string holding a
// JSON object, or "" (Trustee's generic backend); its optional selected-hash-algorithm must be
// sha256/sha384/sha512 and defaults to sha384, as in guest-components. False with a reason
// otherwise.
bool ParseChallenge(std::string_view body, Challenge& out, std::string& error);

// HASH(JCS(runtime_data)) zero-padded to the 64 bytes of TEE report data. False with a reason when
// the value has no canonical form or `hash` is not one of the three.
bool ReportData(const nlohmann::json& runtime_data, std::string_view hash, std::string& out, std::string& error);

// The RFC 7807 `detail` of an error body, printable and at most 200 characters; empty when the
// body has none.
std::string ProblemDetail(std::string_view body);

// The value of cookie `name` in one Set-Cookie header value ("name=value; Path=/; ..."); nullopt
// when it is another cookie or empty.
std::optional<std::string> CookieValue(std::string_view set_cookie, std::string_view name);

}  // namespace pp::attest
