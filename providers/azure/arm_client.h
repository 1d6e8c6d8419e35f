// ArmClient: calls to Azure Resource Manager with a bearer token, the shared retry policy, ARM's
// error classification and long-running-operation polling.
//
// Classification (ClassifyArm) of a response, by the ARM error code first, then the status:
// - 2xx: OK;
// - 429, a throttling code, or an error with an x-ms-ratelimit-remaining-* header at "0":
//   ABORTED (throttled; Retry-After honoured);
// - SkuNotAvailable, AllocationFailed, ZonalAllocationFailed, OverconstrainedAllocationRequest,
//   OverconstrainedZonalAllocationRequest, QuotaExceeded, and OperationNotAllowed about a quota:
//   RESOURCE_EXHAUSTED (CreateInstance moves on to the next size);
// - AuthorizationFailed, LinkedAuthorizationFailed, ImageNotFound, InvalidParameter,
//   InvalidResourceReference, ResourceGroupNotFound, SubscriptionNotFound, ..., or 403:
//   FAILED_PRECONDITION;
// - 401: UNAUTHENTICATED (Call refreshes the token once, then FAILED_PRECONDITION);
// - 404: NOT_FOUND;
// - 408, 409 (another operation in progress), 5xx: UNAVAILABLE;
// - any other 4xx: INVALID_ARGUMENT.
// ("Azure Resource Manager error codes", "Troubleshoot common Azure deployment errors",
// "Understand how Azure Resource Manager throttles requests".)
//
// Long-running operations ("Track asynchronous Azure operations"): a 201/202 answer names a status
// URL in Azure-AsyncOperation (preferred: poll until its body's status is Succeeded, Failed or
// Canceled) or Location (poll until it answers something other than 202), and a Retry-After to
// wait between polls. The polling URL must be on the management endpoint's origin: the bearer
// token goes nowhere else.
//
// Thread-safe: one ArmClient serves every call of a provider.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "providers/azure/arm_json.h"
#include "providers/azure/token.h"
#include "providers/http/client.h"
#include "providers/http/retry.h"
#include "providers/provider.h"

namespace pp::providers::azure {

// The outcome of one ARM response (see the table above); the message carries the ARM error code
// and message, never the request.
Result<void> ClassifyArm(const http::Response& response);

// The code of an ARM refusal with HTTP `status` (0: none, as for a failed operation) and ARM error
// `error` per the list above; `fallback` when neither says more.
Code ArmCode(long status, const ArmError& error, bool rate_limited, Code fallback);

// The ARM error code of a failed response ("" when the body has none).
std::string ArmErrorCode(const http::Response& response);

struct ArmClientConfig {
  std::string endpoint = "https://management.azure.com";  // no trailing slash needed
  http::RetryPolicy retry;
  std::chrono::milliseconds default_poll{5000};  // between LRO polls: without Retry-After, and at least
  std::chrono::milliseconds max_poll{60000};     // a longer Retry-After is cut to this
};

struct OperationStats {
  int polls = 0;
};

class ArmClient {
 public:
  ArmClient(ArmClientConfig config, http::Client& client, TokenSource& tokens);

  // One ARM call with retries. `target` is a path under the endpoint ("/subscriptions/...?
  // api-version=...") or an absolute URL on the endpoint's origin (a nextLink). An HTTP error
  // comes back classified (see above); a 401 refreshes the token and tries once more.
  Result<http::Response> Call(std::string_view method, const std::string& target,
                              const std::string& body, const OpContext& ctx);

  // Waits for the long-running operation `started` answered (201/202 with Azure-AsyncOperation or
  // Location). An answer without either is already done. Failed -> the operation's error,
  // classified by its code; Canceled -> ABORTED. Between polls it waits Retry-After (or
  // default_poll), never past ctx's deadline (DEADLINE_EXCEEDED) and stopping at once when ctx
  // is stopped (CANCELLED).
  Result<void> Wait(const http::Response& started, const OpContext& ctx,
                    OperationStats* stats = nullptr);

  // An absolute URL for `target` (a path), or `target` itself when it is an absolute URL on the
  // endpoint's origin; INVALID_ARGUMENT for another origin.
  Result<std::string> Url(const std::string& target) const;

  const ArmClientConfig& config() const { return config_; }
  TokenSource& tokens() { return tokens_; }

 private:
  std::chrono::milliseconds PollDelay(const http::Response& r) const;

  const ArmClientConfig config_;
  const std::string origin_;  // scheme://host[:port] of the endpoint
  http::Client& client_;
  TokenSource& tokens_;
};

// Waits `d` unless ctx ends first: DEADLINE_EXCEEDED when `d` reaches past the deadline (after
// waiting until it), CANCELLED at once on a stop request.
Result<void> SleepWithin(std::chrono::milliseconds d, const OpContext& ctx, std::string_view what);

}  // namespace pp::providers::azure
