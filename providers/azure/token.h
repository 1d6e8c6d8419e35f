// Bearer tokens for Azure Resource Manager from one of three sources, cached and refreshed before
// they expire.
//
// - Client credentials (a service principal's secret): POST {authority}/{tenant}/oauth2/v2.0/token
//   with grant_type=client_credentials, client_id, client_secret, scope={resource}/.default
//   (Microsoft identity platform, "OAuth 2.0 client credentials flow").
// - Workload identity (AKS): the same request with client_assertion_type
//   urn:ietf:params:oauth:client-assertion-type:jwt-bearer and client_assertion = the contents of
//   AZURE_FEDERATED_TOKEN_FILE, read afresh on every fetch because the kubelet rotates that file
//   ("Microsoft Entra Workload ID", "certificate credentials" / federated identity credentials).
// - Managed identity through IMDS: GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01
//   &resource={resource}[&client_id=...] with "Metadata: true" ("How to use managed identities for
//   Azure resources on an Azure VM to acquire an access token").
//
// Thread-safe: one fetch at a time; callers that need a token while a fetch runs wait for it
// (bounded by their own OpContext). A cached token is handed out until `refresh_margin` before it
// expires; past that the next caller fetches a new one, and if that fetch fails while the old
// token is still valid, the old one is returned. Tokens, secrets and assertions never reach a log
// or an error message.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

#include "common/base/error.h"
#include "providers/http/client.h"
#include "providers/http/retry.h"
#include "providers/provider.h"

namespace pp::providers::azure {

enum class TokenKind { kClientSecret, kWorkloadIdentity, kManagedIdentity };

struct TokenConfig {
  TokenKind kind = TokenKind::kManagedIdentity;
  std::string authority = "https://login.microsoftonline.com";  // AZURE_AUTHORITY_HOST
  std::string tenant_id;
  std::string client_id;  // managed identity: optional, picks a user-assigned identity
  std::string client_secret;
  std::string federated_token_file;
  std::string imds_endpoint = "http://169.254.169.254";
  std::string resource = "https://management.azure.com";  // the audience: scope {resource}/.default
  std::chrono::seconds refresh_margin{300};
  http::RetryPolicy retry;
  // The wall clock (tests move it); token lifetimes are wall-clock times (IMDS's expires_on).
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
};

// "client credentials", "workload identity", "managed identity": for logs and messages.
const char* TokenKindName(TokenKind kind);

class TokenSource {
 public:
  TokenSource(TokenConfig config, http::Client& client);

  // A token valid for at least `refresh_margin` (or the still-valid cached one when a refresh
  // failed). Errors: FAILED_PRECONDITION when the endpoint refuses the credentials, UNAVAILABLE /
  // ABORTED when it is down or throttling, DEADLINE_EXCEEDED / CANCELLED from `ctx`.
  Result<std::string> Get(const OpContext& ctx);

  // `token` was refused (HTTP 401): the next Get fetches a new one, unless that already happened.
  void Invalidate(const std::string& token);

  // Tokens fetched so far (for tests).
  std::size_t fetches() const;

  const TokenConfig& config() const { return config_; }

 private:
  struct Fetched {
    std::string token;
    std::chrono::system_clock::time_point expiry;
  };
  Result<Fetched> Fetch(const OpContext& ctx);
  Result<http::Request> MakeRequest() const;

  const TokenConfig config_;
  http::Client& client_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable_any fetched_cv_;
  std::string token_;
  std::chrono::system_clock::time_point expiry_{};
  bool fetching_ = false;
  std::size_t fetches_ = 0;
};

}  // namespace pp::providers::azure
