// OAuth 2.0 access tokens for the Compute API: from a service-account key (a self-signed RS256 JWT
// exchanged at the key's token_uri, RFC 7523 as Google's "OAuth 2.0 for Server to Server
// Applications" describes it) or from the metadata server of the GCE VM or GKE node we run on.
//
// A TokenSource caches its token and fetches a new one `refresh_margin` before it expires; callers
// share it across threads (one fetch at a time, the others wait for it within their own deadline).
// A token the API refused (HTTP 401) is dropped with Invalidate() so that the next call fetches
// anew. Tokens and keys never reach a log line or an error message.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/base/error.h"
#include "providers/http/client.h"
#include "providers/provider.h"

namespace pp::providers::gcp {

inline constexpr std::string_view kDefaultTokenUri = "https://oauth2.googleapis.com/token";
// CAA asks for this scope (src/cloud-providers/gcp/provider.go, computeScope).
inline constexpr std::string_view kComputeScope = "https://www.googleapis.com/auth/compute";
inline constexpr std::string_view kDefaultMetadataHost = "metadata.google.internal";

// The fields of a service-account key file ("type": "service_account") that we use.
struct ServiceAccountKey {
  std::string client_email;
  std::string private_key;  // PEM (PKCS#8 "BEGIN PRIVATE KEY", as Google issues them)
  std::string private_key_id;
  std::string token_uri;  // the key's, else kDefaultTokenUri
  std::string project_id;
};

// Parses a key file's JSON. INVALID_ARGUMENT names what is missing (never a value); another
// credential type (gcloud's "authorized_user", "external_account") is refused by name.
Result<ServiceAccountKey> ParseServiceAccountKey(std::string_view json);

// base64url without padding (RFC 7515 section 2).
std::string Base64Url(std::string_view bytes);

// The signed JWT a key presents to the token endpoint: header {"alg":"RS256","typ":"JWT","kid"},
// claims {iss: client_email, scope, aud, iat: now, exp: now + 1 h} (Google's maximum lifetime).
Result<std::string> MakeJwtAssertion(const ServiceAccountKey& key, std::string_view scope,
                                     std::string_view audience,
                                     std::chrono::system_clock::time_point now);

struct AccessToken {
  std::string token;
  std::chrono::steady_clock::time_point expiry;
};

// Parses a token endpoint's (or the metadata server's) answer {access_token, expires_in,
// token_type: "Bearer"}; `now` is when the request was sent.
Result<AccessToken> ParseTokenResponse(std::string_view body,
                                       std::chrono::steady_clock::time_point now);

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // A bearer token valid for at least a little longer, fetched when needed. Errors: the context's
  // (DEADLINE_EXCEEDED, CANCELLED), UNAVAILABLE/ABORTED from the endpoint, FAILED_PRECONDITION
  // when the credentials are refused.
  virtual Result<std::string> Token(const OpContext& ctx) = 0;
  // The API refused `token`: forget it (unless a newer one replaced it already).
  virtual void Invalidate(std::string_view token) = 0;
  // Tokens fetched so far (for tests).
  virtual std::size_t fetches() const = 0;
};

struct TokenOptions {
  std::string token_endpoint;                                     // empty: the key's token_uri
  std::string metadata_host = std::string(kDefaultMetadataHost);  // host[:port] or a URL
  std::string scope = std::string(kComputeScope);
  std::chrono::seconds refresh_margin{300};
};

// Tokens for `key` from its token endpoint (or the override), through `client`, which must outlive
// the source.
std::unique_ptr<TokenSource> MakeServiceAccountTokenSource(ServiceAccountKey key,
                                                           http::Client& client,
                                                           TokenOptions options);

// Tokens of the VM's default service account from the metadata server
// (GET /computeMetadata/v1/instance/service-accounts/default/token, Metadata-Flavor: Google).
std::unique_ptr<TokenSource> MakeMetadataTokenSource(http::Client& client, TokenOptions options);

// The source CAA's configuration implies: `credentials` (GCP_CREDENTIALS) holds a key's JSON (it
// starts with '{') or the path of a key file; when empty, the file GOOGLE_APPLICATION_CREDENTIALS
// names (as Google's libraries look for it); else the metadata server. `project_id`, when not
// null, receives the key's project_id.
Result<std::unique_ptr<TokenSource>> MakeTokenSource(std::string_view credentials,
                                                     http::Client& client, TokenOptions options,
                                                     std::string* project_id = nullptr);

// The metadata server's base URL for a GCE_METADATA_HOST-style value: "host[:port]" means
// http://host[:port] (as Google's client libraries read it); a value with a scheme is kept.
std::string MetadataBaseUrl(std::string_view host);

}  // namespace pp::providers::gcp
