// A client of Trustee's KBS "RCAR" protocol (request, challenge, attestation, response; trustee
// kbs/docs/kbs_attestation_protocol.md, protocol version 0.4.0) and of the CoCo confidential data
// hub's local resource endpoint, which does the same on the client's behalf.
//
// GetResource("default/model-key/llama"):
//   1. POST <url>/kbs/v0/auth {"version":"0.4.0","tee":<evidence tee>,"extra-params":{
//      "supported-hash-algorithms":[...]}} -> {"nonce","extra-params"} + cookie kbs-session-id;
//   2. a fresh TEE key pair; runtime-data = {"nonce","tee-pubkey":<JWK>}; report data =
//      HASH(JCS(runtime-data)) zero-padded to 64 bytes, HASH = the challenge's
//      selected-hash-algorithm or SHA-384; evidence over it;
//   3. POST <url>/kbs/v0/attest {"init-data":{"format":"toml","body":<initdata>},"runtime-data",
//      "tee-evidence":{"primary_evidence","additional_evidence":"{}"}} with the cookie -> token;
//   4. GET <url>/kbs/v0/resource/<repo>/<type>/<tag> with the cookie -> JWE, decrypted with the key.
// A 401 on step 4 (the session expired) starts over from step 1 once.
//
// Errors (codes the loader maps to exit statuses): the KBS refused attestation or the resource
// (401) -> UNAUTHENTICATED, 403 -> PERMISSION_DENIED, 404 -> NOT_FOUND, each with the RFC 7807
// `detail` the KBS sent (printable, bounded); KBS unreachable or 5xx after the retry policy ->
// UNAVAILABLE; the overall deadline -> DEADLINE_EXCEEDED; a response that does not decrypt or parse
// -> DATA_LOSS; no TEE or no evidence from it -> FAILED_PRECONDITION. The resource and keys never appear in errors or logs.
//
// One GetResource at a time per client.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "attest/evidence.h"
#include "attest/jwe.h"
#include "attest/secret.h"
#include "common/base/error.h"
#include "providers/http/client.h"
#include "providers/http/retry.h"
#include "providers/provider.h"

namespace pp::attest {

struct KbsOptions {
  std::string url;           // http(s)://host[:port], without /kbs/v0
  std::string ca_cert_pem;   // trust only this CA for https (initdata kbs_cert); empty: system store
  std::string initdata_toml; // sent as init-data when not empty (byte for byte: the KBS hashes it)
  KeyAlg key_alg = KeyAlg::kEcdhEsA256kw;
  providers::http::RetryPolicy retry{.max_attempts = 5,
                                     .initial = std::chrono::milliseconds(250),
                                     .max_delay = std::chrono::milliseconds(4000)};
};

// Validates a resource path "<repository>/<type>/<tag>": three non-empty segments of
// [A-Za-z0-9._-] (Trustee's resource URI grammar); INVALID_ARGUMENT otherwise.
Result<void> CheckResourcePath(std::string_view path);

class KbsClient {
 public:
  // INVALID_ARGUMENT for a URL that is not http(s)://; INTERNAL if the CA cannot be staged.
  static Result<std::unique_ptr<KbsClient>> Create(KbsOptions options, std::unique_ptr<Evidence> evidence);
  ~KbsClient();

  Result<Secret> GetResource(std::string_view path, const providers::OpContext& ctx);

  // Attestation rounds run so far (tests: the expired-cookie path re-attests exactly once).
  int attestations() const { return attestations_; }

 private:
  struct Session;
  KbsClient(KbsOptions options, std::unique_ptr<Evidence> evidence);
  Result<void> Attest(const providers::OpContext& ctx);
  Result<providers::http::Response> Call(const std::string& method, const std::string& path, std::string body,
                                         const providers::OpContext& ctx);

  KbsOptions options_;
  std::unique_ptr<Evidence> evidence_;
  int ca_fd_ = -1;  // memfd with the CA PEM: libcurl reads it through /proc/self/fd, nothing on disk
  std::unique_ptr<providers::http::Client> http_;
  std::unique_ptr<Session> session_;
  int attestations_ = 0;
};

// GET <base>/cdh/resource/<path> from the confidential data hub's REST front end (guest-components
// api-server-rest, default http://127.0.0.1:8006), which attests through the attestation agent.
// UNAVAILABLE when nothing listens there (the caller then talks to the KBS itself); an HTTP error
// maps as for the KBS. One attempt: the endpoint is local.
Result<Secret> GetCdhResource(const std::string& base, std::string_view path, const providers::OpContext& ctx);

}  // namespace pp::attest
