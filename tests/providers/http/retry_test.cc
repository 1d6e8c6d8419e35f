// The shared retry policy against a loopback peer that throttles and fails on script.
#include "providers/http/retry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <future>

#include "tests/providers/fakes/fake_process.h"

namespace pp::providers::http {
namespace {

using ::testing::HasSubstr;

OpContext Budget(std::chrono::milliseconds ms, std::stop_token stop = {}) {
  return OpContext{std::chrono::steady_clock::now() + ms, std::move(stop)};
}

// A cloud whose 429 means "throttled" and 5xx "try again".
Result<void> Classify(const Response& r) {
  if (r.status == 429) return Fail(Code::kAborted, "throttled");
  if (r.status >= 500) return Fail(Code::kUnavailable, "HTTP ", std::to_string(r.status));
  if (r.status >= 400) return Fail(Code::kInvalidArgument, "HTTP ", std::to_string(r.status));
  return {};
}

RetryPolicy Quick() {
  RetryPolicy p;
  p.initial = std::chrono::milliseconds(10);
  p.max_delay = std::chrono::milliseconds(40);
  return p;
}

class RetryTest : public ::testing::Test {
 protected:
  RetryTest() : fake_("echo_fake.py"), client_(Options()) {}
  ClientOptions Options() const {
    ClientOptions o;
    o.ca_bundle = fake_.ca_bundle();
    return o;
  }
  std::function<Result<Request>()> Maker(const std::string& path) {
    return [this, path]() -> Result<Request> {
      ++made_;
      Request r;
      r.url = fake_.url() + path;
      return r;
    };
  }
  int Calls(const std::string& action) {
    auto stats = fake_.Stats();
    return stats ? nlohmann::json::parse(*stats)["calls"].value(action, 0) : -1;
  }
  testing::FakeCloudProcess fake_;
  Client client_;
  int made_ = 0;
};

TEST_F(RetryTest, RetriesThrottlingAndServerErrorsThenSucceedsWithAFreshRequestEachTime) {
  ASSERT_TRUE(fake_.SetFaults(R"([{"action":"echo","count":2,"status":429,"headers":{"Retry-After":"0"}},
                                 {"action":"echo","count":1,"status":503}])"));
  Attempts stats;
  auto response = Send(client_, Maker("/echo"), Classify, Quick(), Budget(std::chrono::seconds(20)), &stats);
  ASSERT_TRUE(response) << response.error().ToString();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(stats.attempts, 4);
  EXPECT_EQ(stats.throttled, 2);
  EXPECT_EQ(made_, 4);  // signatures and tokens are made anew for every attempt
  EXPECT_EQ(Calls("echo"), 4);
}

TEST_F(RetryTest, GivesUpAfterTheLastAttemptWithTheLastError) {
  ASSERT_TRUE(fake_.SetFaults(R"([{"action":"status","count":100,"status":503}])"));
  auto response = Send(client_, Maker("/status/503"), Classify, Quick(), Budget(std::chrono::seconds(20)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kUnavailable);
  EXPECT_THAT(response.error().message, HasSubstr("gave up after 5 attempts"));
  EXPECT_EQ(Calls("status"), 5);
}

TEST_F(RetryTest, APermanentErrorIsNotRetried) {
  auto response = Send(client_, Maker("/status/400"), Classify, Quick(), Budget(std::chrono::seconds(20)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kInvalidArgument);
  EXPECT_EQ(Calls("status"), 1);
}

TEST_F(RetryTest, WaitsAtLeastWhatRetryAfterAsks) {
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(fake_.SetFaults(R"([{"action":"echo","count":1,"status":429,"headers":{"Retry-After":"1"}}])"));
  auto response = Send(client_, Maker("/echo"), Classify, Quick(), Budget(std::chrono::seconds(20)));
  ASSERT_TRUE(response) << response.error().ToString();
  // Our backoff alone would have retried after at most 40 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

TEST_F(RetryTest, ARetryAfterBeyondThePolicyFailsAtOnce) {
  auto response = Send(client_, Maker("/retry-after/3600"), Classify, Quick(), Budget(std::chrono::seconds(20)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kAborted);
  EXPECT_THAT(response.error().message, HasSubstr("retry after 3600 s"));
  EXPECT_EQ(Calls("retry-after"), 1);
}

TEST_F(RetryTest, ARetryThatWouldOutliveTheDeadlineIsNotWaitedFor) {
  auto response = Send(client_, Maker("/retry-after/5"), Classify, Quick(), Budget(std::chrono::seconds(2)));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kDeadlineExceeded);
  EXPECT_THAT(response.error().message, HasSubstr("throttled"));
  EXPECT_EQ(Calls("retry-after"), 1);
}

TEST_F(RetryTest, AStopDuringTheBackoffEndsTheCall) {
  RetryPolicy slow = Quick();
  slow.initial = slow.max_delay = std::chrono::seconds(30);
  std::stop_source stop;
  auto call = std::async(std::launch::async, [&] {
    return Send(client_, Maker("/status/503"), Classify, slow, Budget(std::chrono::seconds(120), stop.get_token()));
  });
  ASSERT_TRUE(pp::testing::FakeCloudProcess::WaitFor([&] { return Calls("status") == 1; }, std::chrono::seconds(10)));
  stop.request_stop();
  ASSERT_EQ(call.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  auto response = call.get();
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().code, Code::kCancelled);
  EXPECT_THAT(response.error().message, HasSubstr("HTTP 503"));
}

TEST(ParseRetryAfterTest, ReadsSecondsAndHttpDates) {
  EXPECT_EQ(ParseRetryAfter("0"), std::chrono::milliseconds(0));
  EXPECT_EQ(ParseRetryAfter(" 120 "), std::chrono::seconds(120));
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT"), std::chrono::milliseconds(0));  // in the past
  EXPECT_FALSE(ParseRetryAfter(""));
  EXPECT_FALSE(ParseRetryAfter("-1"));
  EXPECT_FALSE(ParseRetryAfter("soon"));
  EXPECT_FALSE(ParseRetryAfter("12abc"));
  EXPECT_FALSE(ParseRetryAfter("99999999999999999999"));
}

}  // namespace
}  // namespace pp::providers::http
