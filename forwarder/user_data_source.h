// Where process-user-data gets the user-data document: a plain file, a NoCloud "cidata" ISO 9660
// image (file or block device), or an IMDS-style HTTP URL. Each reader is bounded by
// kMaxUserDataBytes. Blocking; meant for process-user-data's single thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/base/error.h"

namespace pp::forwarder {

// The whole file. NOT_FOUND when it does not exist (yet), RESOURCE_EXHAUSTED when too large.
Result<std::string> ReadUserDataFile(const std::string& path);

// The file "user-data" at the root of a NoCloud image whose volume id is "cidata" (any case), read
// with libiso9660 (Rock Ridge and Joliet names included); no mount needed. NOT_FOUND when the image
// or the file is missing, INVALID_ARGUMENT when it is not an ISO 9660 image or not labelled cidata.
Result<std::string> ReadCidataUserData(const std::string& image);

// GET `url` (http or https only, no redirects, no proxy) with the extra `headers` ("Name: value",
// e.g. "Metadata: true" for Azure). UNAVAILABLE for connection errors and 5xx, NOT_FOUND for 404,
// FAILED_PRECONDITION for other non-2xx, RESOURCE_EXHAUSTED when the body is too large,
// DEADLINE_EXCEEDED when the attempt takes longer than `attempt_timeout`.
Result<std::string> FetchUserDataUrl(const std::string& url,
                                     const std::vector<std::string>& headers,
                                     std::chrono::milliseconds attempt_timeout);

// Whether an error from the readers above may go away by itself (device or IMDS not ready yet).
bool IsRetryable(const Error& error);

// Calls `read(remaining)` until it succeeds, fails with a non-retryable error, or `timeout` has
// passed, sleeping `delay` between attempts (CAA: a fixed 5 s within 180 s). `on_retry` sees each
// retryable failure. The last error, prefixed with the attempt count, when time runs out.
Result<std::string> ReadWithRetry(
    const std::function<Result<std::string>(std::chrono::milliseconds remaining)>& read,
    std::chrono::milliseconds timeout, std::chrono::milliseconds delay,
    const std::function<void(const Error&)>& on_retry);

}  // namespace pp::forwarder
