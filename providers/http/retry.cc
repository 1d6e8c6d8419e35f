#include "providers/http/retry.h"

#include <time.h>

#include <charconv>
#include <condition_variable>
#include <mutex>

#include "common/base/backoff.h"

namespace pp::providers::http {
namespace {

// Waits `delay` unless the context ends first; false when it ended.
bool SleepFor(std::chrono::milliseconds delay, const OpContext& ctx) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  const auto until = std::min(std::chrono::steady_clock::now() + delay, ctx.deadline);
  std::stop_token stop = ctx.stop;
  cv.wait_until(lock, stop, until, [] { return false; });
  return !ctx.Expired();
}

Error Ended(const OpContext& ctx, const Error& last) {
  const bool cancelled = ctx.stop.stop_requested();
  std::string message = cancelled ? "cancelled" : "deadline passed";
  if (!last.message.empty()) message += " (last error: " + last.message + ")";
  return Error{cancelled ? Code::kCancelled : Code::kDeadlineExceeded, std::move(message)};
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseRetryAfter(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  long long seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc() && end == value.data() + value.size()) {
    if (seconds < 0 || seconds > 86400) return std::nullopt;
    return std::chrono::seconds(seconds);
  }
  // HTTP-date, IMF-fixdate form (RFC 9110 section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  const std::string text(value);
  const char* rest = ::strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (rest == nullptr || *rest != '\0') return std::nullopt;
  const time_t at = ::timegm(&tm);
  const time_t now = ::time(nullptr);
  if (at - now > 86400) return std::nullopt;
  return std::chrono::seconds(std::max<time_t>(0, at - now));
}

Result<Response> Send(Client& client, const std::function<Result<Request>()>& make, const Classifier& classify,
                      const RetryPolicy& policy, const OpContext& ctx, Attempts* stats) {
  Backoff backoff(policy.initial, policy.max_delay);
  Error last;
  for (int attempt = 1;; ++attempt) {
    if (ctx.Expired()) return std::unexpected(Ended(ctx, last));
    if (stats != nullptr) ++stats->attempts;
    auto request = make();
    if (!request) return std::unexpected(request.error());
    auto response = client.Do(*request, ctx);
    std::optional<std::chrono::milliseconds> retry_after;
    if (!response) {
      if (response.error().code != Code::kUnavailable) return std::unexpected(response.error());
      last = response.error();
    } else {
      auto verdict = classify(*response);
      if (verdict) return std::move(*response);
      last = verdict.error();
      if (!ShouldRetry(last)) return std::unexpected(last);
      if (last.code == Code::kAborted && stats != nullptr) ++stats->throttled;
      if (auto header = response->Header("retry-after")) retry_after = ParseRetryAfter(*header);
    }
    if (attempt >= policy.max_attempts) {
      last.message += " (gave up after " + std::to_string(attempt) + " attempts)";
      return std::unexpected(last);
    }
    auto delay = backoff.Next();
    if (retry_after) {
      // The server said when to come back: never sooner, and not at all when that is too far.
      if (*retry_after > policy.max_retry_after) {
        last.message += " (asked to retry after " + std::to_string(retry_after->count() / 1000) + " s)";
        return std::unexpected(last);
      }
      delay = std::max(delay, *retry_after);
    }
    if (std::chrono::steady_clock::now() + delay >= ctx.deadline && !ctx.stop.stop_requested()) {
      // Waiting would only run into the deadline: say so now, with what went wrong.
      return std::unexpected(Error{Code::kDeadlineExceeded, "no time left to retry (last error: " + last.message + ")"});
    }
    if (!SleepFor(delay, ctx)) return std::unexpected(Ended(ctx, last));
  }
}

}  // namespace pp::providers::http
