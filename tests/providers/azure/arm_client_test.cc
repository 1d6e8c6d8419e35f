#include "providers/azure/arm_client.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/providers/azure/arm_fake_env.h"

namespace pp::providers::azure::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

OpContext Budget(std::chrono::milliseconds d = 30s) { return OpContext{Clock::now() + d, {}}; }

// An ArmClient against the fake; operation answers are scripted with the fake's faults (the
// operation ids need not exist: a scripted answer comes first).
class ArmClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::make_unique<ArmFakeEnv>();
    ASSERT_TRUE(env_->running());
    client_ =
        std::make_unique<http::Client>(http::ClientOptions{.ca_bundle = env_->fake().ca_bundle()});
    TokenConfig t;
    t.kind = TokenKind::kClientSecret;
    t.authority = env_->fake().url();
    t.tenant_id = "fake-tenant";
    t.client_id = "fake-client";
    t.client_secret = "fake-secret";
    t.resource = kAudience;
    tokens_ = std::make_unique<TokenSource>(t, *client_);
    ArmClientConfig c;
    c.endpoint = env_->fake().url();
    c.default_poll = 10ms;
    c.retry.initial = 10ms;
    c.retry.max_delay = 100ms;
    arm_ = std::make_unique<ArmClient>(c, *client_, *tokens_);
  }

  std::string OperationsUrl() const {
    return env_->fake().url() + "/subscriptions/" + kSubscription +
           "/providers/Microsoft.Compute/locations/eastus/operations/op1?api-version=2022-11-01";
  }
  std::string ResultsUrl() const {
    return env_->fake().url() + "/subscriptions/" + kSubscription +
           "/providers/Microsoft.Compute/locations/eastus/operationresults/"
           "op1?api-version=2022-11-01";
  }
  http::Response Started(bool async_operation, bool location, std::string retry_after = "0") const {
    http::Response r;
    r.status = 202;
    if (async_operation) r.headers.emplace_back("azure-asyncoperation", OperationsUrl());
    if (location) r.headers.emplace_back("location", ResultsUrl());
    r.headers.emplace_back("retry-after", retry_after);
    return r;
  }
  static json Status(const std::string& status, int count = 1, json extra = json::object()) {
    json body = {{"status", status}};
    body.update(extra);
    return {{"action", "GET operations"},
            {"count", count},
            {"status", 200},
            {"body", body.dump()},
            {"headers", {{"Retry-After", "0"}}}};
  }

  std::unique_ptr<ArmFakeEnv> env_;
  std::unique_ptr<http::Client> client_;
  std::unique_ptr<TokenSource> tokens_;
  std::unique_ptr<ArmClient> arm_;
};

TEST_F(ArmClientTest, PollsAzureAsyncOperationUntilSucceeded) {
  env_->Faults(json::array({Status("InProgress", 3), Status("Succeeded")}));
  OperationStats stats;
  auto done = arm_->Wait(Started(true, true), Budget(), &stats);
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(stats.polls, 4);
  EXPECT_EQ(env_->Calls("GET operationresults"), 0)
      << "Azure-AsyncOperation is preferred over Location";
}

TEST_F(ArmClientTest, PollsLocationUntilItStopsAnswering202) {
  env_->Faults(json::array(
      {{{"action", "GET operationresults"}, {"count", 2}, {"status", 202}, {"body", ""}},
       {{"action", "GET operationresults"}, {"count", 1}, {"status", 200}, {"body", "{}"}}}));
  OperationStats stats;
  auto done = arm_->Wait(Started(false, true), Budget(), &stats);
  ASSERT_TRUE(done.has_value()) << done.error().message;
  EXPECT_EQ(stats.polls, 3);
}

TEST_F(ArmClientTest, AnAnswerWithNothingToPollIsDone) {
  http::Response r;
  r.status = 200;
  OperationStats stats;
  EXPECT_TRUE(arm_->Wait(r, Budget(), &stats).has_value());
  EXPECT_EQ(stats.polls, 0);
}

TEST_F(ArmClientTest, AFailedOperationIsClassifiedByItsErrorCode) {
  env_->Faults(json::array(
      {Status("Failed", 1, {{"error", {{"code", "AllocationFailed"}, {"message", "full"}}}})}));
  auto done = arm_->Wait(Started(true, false), Budget());
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kResourceExhausted);
  EXPECT_NE(done.error().message.find("AllocationFailed"), std::string::npos);
  env_->Faults(
      json::array({Status("Failed", 1, {{"error", {{"code", "OSProvisioningTimedOut"}}}})}));
  done = arm_->Wait(Started(true, false), Budget());
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kUnknown);
}

TEST_F(ArmClientTest, ACanceledOperationIsAborted) {
  env_->Faults(json::array({Status("Canceled")}));
  auto done = arm_->Wait(Started(true, true), Budget());
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kAborted);
}

TEST_F(ArmClientTest, ARetryAfterPastTheDeadlineIsNotPolledThrough) {
  OperationStats stats;
  auto done = arm_->Wait(Started(true, true, "30"), Budget(300ms), &stats);
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kDeadlineExceeded);
  EXPECT_EQ(stats.polls, 0) << "polled before the Retry-After the answer asked for";
  EXPECT_EQ(env_->Calls("GET operations"), 0);
}

TEST_F(ArmClientTest, TheDeadlineEndsAnOperationThatNeverEnds) {
  env_->Faults(json::array({Status("InProgress", 100000)}));
  auto done = arm_->Wait(Started(true, true), Budget(500ms));
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kDeadlineExceeded) << done.error().message;
  EXPECT_GT(env_->Calls("GET operations"), 0);
}

TEST_F(ArmClientTest, AStopEndsPollingAtOnce) {
  env_->Faults(json::array({Status("InProgress", 100000)}));
  std::stop_source stop;
  std::jthread stopper([&] {
    (void)pp::testing::FakeCloudProcess::WaitFor([&] { return env_->Calls("GET operations") >= 2; },
                                                 20s);
    stop.request_stop();
  });
  auto done = arm_->Wait(Started(true, true), OpContext{Clock::now() + 60s, stop.get_token()});
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kCancelled) << done.error().message;
}

TEST_F(ArmClientTest, AMalformedOperationStatusIsAnError) {
  env_->Faults(json::array(
      {{{"action", "GET operations"}, {"count", 1}, {"status", 200}, {"body", "{not json"}}}));
  auto done = arm_->Wait(Started(true, true), Budget());
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kUnavailable);
}

TEST_F(ArmClientTest, TheTokenGoesToNoOtherOrigin) {
  http::Response r = Started(false, false);
  r.headers.emplace_back("azure-asyncoperation", "https://elsewhere.example/operations/1");
  auto done = arm_->Wait(r, Budget());
  ASSERT_FALSE(done.has_value());
  EXPECT_EQ(done.error().code, Code::kInvalidArgument);
  EXPECT_EQ(tokens_->fetches(), 0u);
}

TEST_F(ArmClientTest, ThrottlingIsRetriedAfterRetryAfter) {
  env_->Faults(json::array({{{"action", "GET resourceGroups"},
                             {"count", 2},
                             {"status", 429},
                             {"body", R"({"error":{"code":"TooManyRequests","message":"slow"}})"},
                             {"headers", {{"Retry-After", "0"}}}}}));
  auto got = arm_->Call("GET",
                        std::string("/subscriptions/") + kSubscription + "/resourcegroups/" +
                            kResourceGroup + "?api-version=2021-04-01",
                        "", Budget());
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(got->status, 200);
}

TEST_F(ArmClientTest, AnExpiredTokenIsRefreshedOnceAndTheCallRetried) {
  const std::string rg = std::string("/subscriptions/") + kSubscription + "/resourceGroups/" +
                         kResourceGroup + "?api-version=2021-04-01";
  ASSERT_TRUE(arm_->Call("GET", rg, "", Budget()).has_value());
  env_->Control({{"expire_tokens", true}});
  auto got = arm_->Call("GET", rg, "", Budget());
  ASSERT_TRUE(got.has_value()) << got.error().message;
  EXPECT_EQ(tokens_->fetches(), 2u);
}

}  // namespace
}  // namespace pp::providers::azure::testing
