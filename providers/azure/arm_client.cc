#include "providers/azure/arm_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <mutex>

#include "common/podvm/encoding.h"

namespace pp::providers::azure {
namespace {

using namespace std::chrono_literals;

constexpr std::array kCapacityCodes = {"SkuNotAvailable",
                                       "AllocationFailed",
                                       "ZonalAllocationFailed",
                                       "OverconstrainedAllocationRequest",
                                       "OverconstrainedZonalAllocationRequest",
                                       "QuotaExceeded"};
constexpr std::array kMisconfiguredCodes = {"AuthorizationFailed",
                                            "LinkedAuthorizationFailed",
                                            "InvalidAuthenticationToken",
                                            "ImageNotFound",
                                            "PlatformImageNotFound",
                                            "GalleryImageNotFound",
                                            "InvalidParameter",
                                            "InvalidResourceReference",
                                            "ResourceGroupNotFound",
                                            "SubscriptionNotFound",
                                            "SubnetNotFound",
                                            "NetworkSecurityGroupNotFound",
                                            "InvalidSubscriptionId",
                                            "MissingSubscriptionRegistration",
                                            "LocationNotAvailableForResourceType",
                                            "BadRequestFormat"};
constexpr std::array kThrottlingCodes = {"TooManyRequests", "SubscriptionRequestsThrottled",
                                         "ResourceCollectionRequestsThrottled",
                                         "ResourceRequestsThrottled"};

template <std::size_t N>
bool OneOf(std::string_view code, const std::array<const char*, N>& codes) {
  return std::any_of(codes.begin(), codes.end(),
                     [&](const char* c) { return EqualsIgnoreCase(code, c); });
}

// ARM reports the remaining budget in x-ms-ratelimit-remaining-{subscription,tenant}-{reads,writes,
// deletes}; a refusal with one at 0 is throttling whatever the status says.
bool RateLimitExhausted(const http::Response& r) {
  for (const auto& [name, value] : r.headers) {
    if (name.starts_with("x-ms-ratelimit-remaining-") && value == "0") return true;
  }
  return false;
}

bool ContainsIgnoreCase(std::string_view text, std::string_view word) {
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (EqualsIgnoreCase(text.substr(i, word.size()), word)) return true;
  }
  return false;
}

std::string Origin(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto path = url.find('/', scheme + 3);
  return std::string(url.substr(0, path));
}

}  // namespace

std::string ArmErrorCode(const http::Response& response) {
  ArmError e;
  std::string ignored;
  return ParseArmError(response.body, e, ignored) ? e.code : std::string();
}

// The code of an ARM refusal: by its error code first (a capacity error is one whatever its
// status), then by the status; `fallback` for a status that says nothing more.
Code ArmCode(long status, const ArmError& error, bool rate_limited, Code fallback) {
  const std::string_view code = error.code;
  if (status == 429 || OneOf(code, kThrottlingCodes) || rate_limited) return Code::kAborted;
  if (status == 401) return Code::kUnauthenticated;
  if (OneOf(code, kCapacityCodes)) return Code::kResourceExhausted;
  // ARM refuses a VM past a vCPU quota with OperationNotAllowed ("... exceeding approved
  // standardDCASv5Family Cores quota"); the same code also means "not now" (a VM being deleted).
  if (EqualsIgnoreCase(code, "OperationNotAllowed") && ContainsIgnoreCase(error.message, "quota")) {
    return Code::kResourceExhausted;
  }
  if (OneOf(code, kMisconfiguredCodes) || status == 403) return Code::kFailedPrecondition;
  if (status == 404) return Code::kNotFound;
  if (status >= 500 || status == 408 || status == 409) return Code::kUnavailable;
  return fallback;
}

Result<void> ClassifyArm(const http::Response& r) {
  if (r.status >= 200 && r.status < 300) return {};
  ArmError e;
  std::string ignored;
  std::string what = "azure: " + std::to_string(r.status);
  if (ParseArmError(r.body, e, ignored)) {
    what += " " + podvm::Printable(e.code, 80);
    if (!e.message.empty()) what += ": " + podvm::Printable(e.message, 300);
  }
  return std::unexpected(
      Error{ArmCode(r.status, e, RateLimitExhausted(r), Code::kInvalidArgument), what});
}

Result<void> SleepWithin(std::chrono::milliseconds d, const OpContext& ctx, std::string_view what) {
  const auto until = std::chrono::steady_clock::now() + d;
  const auto wake = std::min(until, ctx.deadline);
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  cv.wait_until(lock, ctx.stop, wake, [] { return false; });
  if (ctx.stop.stop_requested()) return Fail(Code::kCancelled, "azure: stopped while ", what);
  if (until > ctx.deadline)
    return Fail(Code::kDeadlineExceeded, "azure: deadline passed while ", what);
  return {};
}

ArmClient::ArmClient(ArmClientConfig config, http::Client& client, TokenSource& tokens)
    : config_(std::move(config)),
      origin_(Origin(config_.endpoint)),
      client_(client),
      tokens_(tokens) {}

Result<std::string> ArmClient::Url(const std::string& target) const {
  if (target.starts_with("/")) return origin_ + target;
  if (Origin(target) == origin_) return target;
  return Fail(Code::kInvalidArgument, "azure: refusing to send the ARM token to ",
              podvm::Printable(Origin(target), 80), " (not the management endpoint ", origin_, ")");
}

Result<http::Response> ArmClient::Call(std::string_view method, const std::string& target,
                                       const std::string& body, const OpContext& ctx) {
  auto url = Url(target);
  if (!url) return std::unexpected(url.error());
  std::string used_token;
  const auto make = [&]() -> Result<http::Request> {
    auto token = tokens_.Get(ctx);
    if (!token) return std::unexpected(token.error());
    used_token = *token;
    http::Request req;
    req.method = std::string(method);
    req.url = *url;
    req.headers = {{"Authorization", "Bearer " + *token}};
    if (!body.empty()) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body;
    }
    return req;
  };
  for (int attempt = 0;; ++attempt) {
    auto response = http::Send(client_, make, ClassifyArm, config_.retry, ctx);
    if (response || response.error().code != Code::kUnauthenticated) return response;
    if (attempt == 1) {
      return Fail(
          Code::kFailedPrecondition, response.error().message,
          " (a fresh token was refused too: check the identity's role assignments and tenant)");
    }
    // The token may have been revoked or expired early: fetch a new one and try once more.
    spdlog::info("azure: ARM refused the token, fetching a new one");
    tokens_.Invalidate(used_token);
  }
}

std::chrono::milliseconds ArmClient::PollDelay(const http::Response& r) const {
  if (auto header = r.Header("retry-after")) {
    // Retry-After is the least wait ARM asks for (RFC 9110 section 10.2.3); never poll more often
    // than our own interval either, so that "Retry-After: 0" cannot turn a wait into a busy loop.
    if (auto after = http::ParseRetryAfter(*header)) {
      return std::clamp(*after, config_.default_poll, std::max(config_.default_poll, config_.max_poll));
    }
  }
  return config_.default_poll;
}

Result<void> ArmClient::Wait(const http::Response& started, const OpContext& ctx,
                             OperationStats* stats) {
  std::string url;
  bool async_operation = false;
  if (auto h = started.Header("azure-asyncoperation"); h && !h->empty()) {
    url = std::string(*h);
    async_operation = true;
  } else if (auto l = started.Header("location"); l && !l->empty()) {
    url = std::string(*l);
  } else {
    return {};  // nothing to poll: the answer is the result
  }
  auto delay = PollDelay(started);
  for (;;) {
    if (auto slept = SleepWithin(delay, ctx, "waiting for an ARM operation"); !slept) return slept;
    auto polled = Call("GET", url, "", ctx);
    if (stats) ++stats->polls;
    if (!polled) return std::unexpected(polled.error());
    delay = PollDelay(*polled);
    if (!async_operation) {
      if (polled->status == 202) continue;
      return {};
    }
    AsyncOperation op;
    std::string error;
    if (!ParseAsyncOperation(polled->body, op, error))
      return Fail(Code::kUnavailable, "azure: ", error);
    if (!op.Terminal()) continue;
    if (op.Succeeded()) return {};
    if (!EqualsIgnoreCase(op.status, "Failed"))
      return Fail(Code::kAborted, "azure: the operation was canceled");
    if (!op.error) return Fail(Code::kUnknown, "azure: the operation failed without an error code");
    // Classified by its code as ARM's own answers are: capacity, misconfiguration, ...
    return Fail(ArmCode(0, *op.error, false, Code::kUnknown),
                "azure: the operation failed: ", podvm::Printable(op.error->code, 80), ": ",
                podvm::Printable(op.error->message, 300));
  }
}

}  // namespace pp::providers::azure
