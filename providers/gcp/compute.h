// The Compute Engine REST API (v1) as the gcp provider uses it: the response parsers (pure,
// fuzzed), the error classifier, and ComputeClient, which sends authorised calls with the shared
// retry policy and waits for zonal operations.
//
// Error taxonomy (providers/provider.h) of a Google error body
// {"error": {"code", "message", "status", "errors": [{"domain", "reason", "message"}]}}
// (https://cloud.google.com/compute/docs/api/handle-api-errors):
//   429, 403 rateLimitExceeded / userRateLimitExceeded          ABORTED (Retry-After honoured)
//   5xx                                                         UNAVAILABLE
//   ZONE_RESOURCE_POOL_EXHAUSTED(_WITH_DETAILS), QUOTA_EXCEEDED,
//   resourcePoolExhausted, quotaExceeded                        RESOURCE_EXHAUSTED
//   401, 403 forbidden and other 403s                           FAILED_PRECONDITION
//   404                                                         NOT_FOUND
//   409 alreadyExists                                           ALREADY_EXISTS
//   other 4xx                                                   INVALID_ARGUMENT
// The same codes arrive inside a DONE operation's `error.errors[].code` (an insert refused for
// capacity after it was accepted); OperationError maps those alike.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/error.h"
#include "providers/gcp/responses.h"
#include "providers/gcp/token.h"
#include "providers/http/client.h"
#include "providers/http/retry.h"
#include "providers/provider.h"

namespace pp::providers::gcp {

inline constexpr std::string_view kDefaultComputeEndpoint =
    "https://compute.googleapis.com/compute/v1";

// OK for 2xx, else the classified error (messages start with `what`). 401 is UNAUTHENTICATED, for
// ComputeClient to refresh its token once.
Result<void> ClassifyResponse(const http::Response& response, std::string_view what);

Result<Operation> ParseOperation(std::string_view body);

// The failure a DONE operation reports; OK when it has no error.
Result<void> OperationError(const Operation& op, std::string_view what);

Result<InstanceInfo> ParseInstance(std::string_view body);

Result<InstanceList> ParseInstanceList(std::string_view body);

// machineTypes.get: guestCpus, memoryMb, accelerators[].guestAcceleratorCount/-Type.
Result<MachineTypeInfo> ParseMachineType(std::string_view body);

// images.get: the image's diskSizeGb (an int64 the API sends as a string).
Result<unsigned long long> ParseImageDiskSizeGb(std::string_view body);

// DEADLINE_EXCEEDED / CANCELLED ("gcp: ... while <what>") once the context ended, else OK.
Result<void> CheckContext(const OpContext& ctx, std::string_view what);
// Sleeps `d` or until the context ends; false when it ended.
bool SleepFor(const OpContext& ctx, std::chrono::milliseconds d);

struct ComputeOptions {
  std::string endpoint = std::string(kDefaultComputeEndpoint);  // up to and including /compute/v1
  std::string project;
  http::RetryPolicy retry;
  // Between two /wait calls that returned a not-yet-DONE operation.
  std::chrono::milliseconds op_poll_initial{500};
  std::chrono::milliseconds op_poll_max{5000};
};

class ComputeClient {
 public:
  // `client` and `tokens` must outlive this.
  ComputeClient(http::Client& client, TokenSource& tokens, ComputeOptions options);

  // One authorised call to `path` (relative to the endpoint, e.g. ProjectPath("/zones/..."), query
  // included), retried per the policy. A 401 drops the token and tries once more with a new one;
  // a second 401 is FAILED_PRECONDITION. `what` starts error messages.
  Result<http::Response> Call(std::string_view method, std::string_view path, std::string_view body,
                              std::string_view what, const OpContext& ctx);

  // Waits for a zonal operation (POST .../operations/{name}/wait, which returns when it is DONE
  // or after a while) and returns it DONE; the operation's own error is not inspected here.
  Result<Operation> WaitOperation(const Operation& op, std::string_view what, const OpContext& ctx);

  // "/projects/{project}" + rest.
  std::string ProjectPath(std::string_view rest) const;

  const ComputeOptions& options() const { return options_; }

  // Calls answered so far, counted per attempt (for tests and benches).
  std::size_t calls() const;

 private:
  http::Client& client_;
  TokenSource& tokens_;
  ComputeOptions options_;
  std::atomic<std::size_t> calls_{0};
};

}  // namespace pp::providers::gcp
