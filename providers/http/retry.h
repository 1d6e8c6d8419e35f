// The retry policy every cloud provider shares: capped, jittered exponential backoff (pp::Backoff)
// that honours Retry-After, bounded by attempts and by the call's OpContext.
//
// A provider describes its cloud with a Classifier: given a response, it returns OK (done), or an
// Error whose code says what to do (providers/provider.h taxonomy): UNAVAILABLE (5xx, transport)
// and ABORTED (throttled: EC2 RequestLimitExceeded, ARM 429, GCP rateLimitExceeded) are retried,
// everything else is returned at once. Transport errors from Client::Do are retried when
// UNAVAILABLE.
//
// `make` builds the request anew for every attempt, so that signatures (SigV4's x-amz-date) and
// tokens are fresh; idempotency tokens (EC2 ClientToken, GCP requestId) must be made once, outside
// `make`, so that every attempt carries the same one.
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include "providers/http/client.h"

namespace pp::providers::http {

struct RetryPolicy {
  int max_attempts = 5;
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max_delay{20000};
  // A Retry-After longer than this is not waited for: the call fails with the throttling error.
  std::chrono::milliseconds max_retry_after{60000};
};

// The outcome of one response as the provider's cloud defines it.
using Classifier = std::function<Result<void>(const Response&)>;

// Parses a Retry-After value (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date); nullopt when
// absent or malformed.
std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value);

struct Attempts {
  int attempts = 0;
  int throttled = 0;  // responses classified ABORTED
};

// Sends until the classifier accepts a response, an error is not retryable, attempts run out or
// the context ends (then DEADLINE_EXCEEDED/CANCELLED with the last error in the message). On
// success returns the accepted response; `stats`, when given, counts what happened.
Result<Response> Send(Client& client, const std::function<Result<Request>()>& make,
                      const Classifier& classify, const RetryPolicy& policy, const OpContext& ctx,
                      Attempts* stats = nullptr);

}  // namespace pp::providers::http
