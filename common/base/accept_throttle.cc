#include "common/base/accept_throttle.h"

#include <spdlog/spdlog.h>

#include <asio/error.hpp>
#include <cerrno>
#include <utility>

namespace pp {

AcceptFailure ClassifyAcceptError(const std::error_code& ec) {
  // Asio reports errno values in a category of its own.
  if (ec.category() != std::system_category() && ec.category() != std::generic_category() &&
      ec.category() != asio::error::get_system_category()) {
    return AcceptFailure::kFatal;
  }
  switch (ec.value()) {
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
      return AcceptFailure::kBackOff;
    case EINTR:
    case EAGAIN:
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return AcceptFailure::kRetryNow;
    default:
      return AcceptFailure::kFatal;
  }
}

std::size_t RateLimiter::Record(Clock::time_point now) {
  ++suppressed_;
  if (last_report_ && now - *last_report_ < interval_) return 0;
  last_report_ = now;
  return std::exchange(suppressed_, 0);
}

AcceptThrottle::AcceptThrottle(std::string what, Options options)
    : what_(std::move(what)),
      backoff_(options.initial_pause, options.max_pause),
      log_(options.log_interval),
      recovered_log_(options.log_interval) {}

std::optional<std::chrono::milliseconds> AcceptThrottle::OnError(const std::error_code& ec) {
  ++consecutive_;
  const AcceptFailure kind = ClassifyAcceptError(ec);
  if (kind == AcceptFailure::kFatal) {
    spdlog::error("{}: {}; no longer accepting connections", what_, ec.message());
    return std::nullopt;
  }
  const std::chrono::milliseconds pause =
      kind == AcceptFailure::kBackOff ? backoff_.Next() : std::chrono::milliseconds(0);
  if (const std::size_t count = log_.Record(RateLimiter::Clock::now()); count == 1) {
    spdlog::warn(
        "{}: {}{}", what_, ec.message(),
        kind == AcceptFailure::kBackOff ? "; pausing accepts until resources free up" : "");
  } else if (count > 1) {
    spdlog::warn("{}: {} ({} failures since the last report)", what_, ec.message(), count);
  }
  return pause;
}

void AcceptThrottle::OnSuccess() {
  if (consecutive_ == 0) return;
  // Rate-limited too: failures and successes that alternate must not log a pair of lines each.
  if (recovered_log_.Record(RateLimiter::Clock::now()) > 0) {
    spdlog::info("{}: accepting again after {} failure(s)", what_, consecutive_);
  }
  consecutive_ = 0;
  backoff_.Reset();
}

}  // namespace pp
