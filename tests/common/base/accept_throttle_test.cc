#include "common/base/accept_throttle.h"

#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <cerrno>

#include "tests/support/log_capture.h"

namespace pp {
namespace {

using namespace std::chrono_literals;

std::error_code Errno(int value) { return {value, std::system_category()}; }

TEST(AcceptThrottleTest, ClassifiesAcceptErrors) {
  for (int e : {EMFILE, ENFILE, ENOBUFS, ENOMEM})
    EXPECT_EQ(ClassifyAcceptError(Errno(e)), AcceptFailure::kBackOff) << e;
  for (int e : {ECONNABORTED, EPROTO, EPERM, EINTR, EAGAIN, ENETDOWN, EHOSTUNREACH, ENETUNREACH}) {
    EXPECT_EQ(ClassifyAcceptError(Errno(e)), AcceptFailure::kRetryNow) << e;
  }
  for (int e : {EBADF, EINVAL, ENOTSOCK, EFAULT})
    EXPECT_EQ(ClassifyAcceptError(Errno(e)), AcceptFailure::kFatal) << e;
  // What an Asio accept loop really gets: errno values in Asio's own category.
  EXPECT_EQ(ClassifyAcceptError(asio::error::no_descriptors), AcceptFailure::kBackOff);
  EXPECT_EQ(ClassifyAcceptError(asio::error::no_buffer_space), AcceptFailure::kBackOff);
  EXPECT_EQ(ClassifyAcceptError(asio::error::connection_aborted), AcceptFailure::kRetryNow);
  EXPECT_EQ(ClassifyAcceptError(asio::error::bad_descriptor), AcceptFailure::kFatal);
  EXPECT_EQ(ClassifyAcceptError(asio::error::eof), AcceptFailure::kFatal) << "not an errno";
}

TEST(AcceptThrottleTest, RateLimiterReportsFirstThenOncePerIntervalWithTheCount) {
  RateLimiter limiter(60s);
  const auto t0 = RateLimiter::Clock::time_point{};
  EXPECT_EQ(limiter.Record(t0), 1u);
  EXPECT_EQ(limiter.Record(t0 + 1s), 0u);
  EXPECT_EQ(limiter.Record(t0 + 59s), 0u);
  EXPECT_EQ(limiter.Suppressed(), 2u);
  EXPECT_EQ(limiter.Record(t0 + 60s), 3u) << "this one and the two suppressed";
  EXPECT_EQ(limiter.Record(t0 + 61s), 0u);
  EXPECT_EQ(limiter.Record(t0 + 200s), 2u);
}

TEST(AcceptThrottleTest, BacksOffOnExhaustionRetriesAtOnceOtherwiseAndLogsBoundedly) {
  testing::LogCapture logs;
  AcceptThrottle throttle("test: accept on x",
                          {.initial_pause = 10ms, .max_pause = 80ms, .log_interval = 1h});
  std::chrono::milliseconds last{0};
  for (int i = 0; i < 1000; ++i) {
    auto pause = throttle.OnError(Errno(EMFILE));
    ASSERT_TRUE(pause);
    EXPECT_GE(*pause, 5ms);
    EXPECT_LE(*pause, 80ms);
    last = *pause;
  }
  EXPECT_GE(last, 40ms) << "the pause grows to its cap";
  EXPECT_EQ(throttle.ConsecutiveFailures(), 1000u);
  EXPECT_EQ(logs.Count("test: accept on x: "), 1u)
      << "one line for a thousand failures within the interval";

  throttle.OnSuccess();
  EXPECT_EQ(throttle.ConsecutiveFailures(), 0u);
  EXPECT_EQ(logs.Count("accepting again after 1000 failure(s)"), 1u);
  auto pause = throttle.OnError(Errno(EMFILE));
  ASSERT_TRUE(pause);
  EXPECT_LE(*pause, 10ms) << "a success starts the backoff over";
  for (int i = 0; i < 100; ++i) throttle.OnSuccess(), (void)throttle.OnError(Errno(ENFILE));
  EXPECT_EQ(logs.Lines().size(), 2u)
      << "alternating failures and successes stay within the bound too";

  EXPECT_EQ(throttle.OnError(Errno(ECONNABORTED)), std::chrono::milliseconds(0));
  EXPECT_EQ(throttle.OnError(Errno(EBADF)), std::nullopt);
  EXPECT_EQ(logs.Count("no longer accepting"), 1u);
}

}  // namespace
}  // namespace pp
