#include "providers/azure/token.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/providers/azure/arm_fake_env.h"

namespace pp::providers::azure::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

OpContext Budget(std::chrono::seconds s = 30s) { return OpContext{Clock::now() + s, {}}; }

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::make_unique<ArmFakeEnv>(std::vector<std::string>{"--token-ttl", "3600"});
    ASSERT_TRUE(env_->running());
    client_ =
        std::make_unique<http::Client>(http::ClientOptions{.ca_bundle = env_->fake().ca_bundle()});
  }

  TokenConfig Config(TokenKind kind) {
    const AzureConfig a = env_->Config();
    TokenConfig t;
    t.kind = kind;
    t.authority = a.authority_host;
    t.tenant_id = a.tenant_id;
    t.client_id = a.client_id;
    t.client_secret = kind == TokenKind::kClientSecret ? a.client_secret : "";
    t.federated_token_file = env_->AssertionFile();
    t.imds_endpoint = a.imds_endpoint;
    t.resource = kAudience;
    t.retry.initial = 10ms;
    t.now = [this] { return now_.load(); };
    return t;
  }

  // Whether the fake takes `token` on an ARM call.
  bool Accepted(const std::string& token) {
    http::Request req{.method = "GET",
                      .url = env_->fake().url() + "/subscriptions/" + kSubscription +
                             "/resourceGroups/" + kResourceGroup + "?api-version=2021-04-01",
                      .headers = {{"Authorization", "Bearer " + token}},
                      .body = ""};
    auto r = client_->Do(req, Budget());
    return r && r->status == 200;
  }

  std::unique_ptr<ArmFakeEnv> env_;
  std::unique_ptr<http::Client> client_;
  std::atomic<std::chrono::system_clock::time_point> now_{std::chrono::system_clock::now()};
};

TEST_F(TokenTest, ClientCredentialsGetATokenArmAccepts) {
  TokenSource tokens(Config(TokenKind::kClientSecret), *client_);
  auto token = tokens.Get(Budget());
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_TRUE(Accepted(*token));
  EXPECT_EQ(env_->Stats()["tokens_issued"]["client_secret"], 1);
}

TEST_F(TokenTest, AWrongSecretIsAConfigurationErrorThatNeverShowsTheSecret) {
  TokenConfig config = Config(TokenKind::kClientSecret);
  config.client_secret = "not-the-secret-xyz";
  TokenSource tokens(config, *client_);
  auto token = tokens.Get(Budget());
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, Code::kFailedPrecondition) << token.error().message;
  EXPECT_EQ(token.error().message.find("not-the-secret-xyz"), std::string::npos);
}

TEST_F(TokenTest, ACachedTokenIsReusedUntilTheRefreshMargin) {
  TokenSource tokens(Config(TokenKind::kClientSecret), *client_);  // 3600 s tokens, 300 s margin
  auto first = tokens.Get(Budget());
  ASSERT_TRUE(first.has_value()) << first.error().message;
  now_ = now_.load() + 3200s;
  auto second = tokens.Get(Budget());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(tokens.fetches(), 1u);
  now_ = now_.load() + 200s;  // 3400 s: inside the last 300 s
  auto third = tokens.Get(Budget());
  ASSERT_TRUE(third.has_value()) << third.error().message;
  EXPECT_NE(*third, *first);
  EXPECT_EQ(tokens.fetches(), 2u);
}

TEST_F(TokenTest, ARefreshThatFailsKeepsTheStillValidToken) {
  TokenSource tokens(Config(TokenKind::kClientSecret), *client_);
  auto first = tokens.Get(Budget());
  ASSERT_TRUE(first.has_value());
  env_->Faults(
      nlohmann::json::array({{{"action", "POST token"}, {"count", 100}, {"status", 503}}}));
  now_ = now_.load() + 3400s;
  auto again = tokens.Get(Budget());
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(*again, *first);
}

TEST_F(TokenTest, InvalidateMakesTheNextGetFetch) {
  TokenSource tokens(Config(TokenKind::kClientSecret), *client_);
  auto first = tokens.Get(Budget());
  ASSERT_TRUE(first.has_value());
  tokens.Invalidate("some other token");
  EXPECT_EQ(*tokens.Get(Budget()), *first);
  tokens.Invalidate(*first);
  auto second = tokens.Get(Budget());
  ASSERT_TRUE(second.has_value());
  EXPECT_NE(*second, *first);
}

TEST_F(TokenTest, WorkloadIdentityReadsTheFederatedTokenFileAfreshOnEveryFetch) {
  env_->WriteAssertion("eyJhbGciOiJSUzI1NiJ9.first.sig");
  TokenSource tokens(Config(TokenKind::kWorkloadIdentity), *client_);
  auto first = tokens.Get(Budget());
  ASSERT_TRUE(first.has_value()) << first.error().message;
  EXPECT_TRUE(Accepted(*first));
  // The kubelet rotates the projected token: the fake now accepts only the new one.
  env_->WriteAssertion("eyJhbGciOiJSUzI1NiJ9.second.sig");
  tokens.Invalidate(*first);
  auto second = tokens.Get(Budget());
  ASSERT_TRUE(second.has_value()) << second.error().message;
  EXPECT_EQ(env_->Stats()["tokens_issued"]["assertion"], 2);
}

TEST_F(TokenTest, WorkloadIdentityWithoutItsFileSaysWhichFile) {
  TokenSource tokens(Config(TokenKind::kWorkloadIdentity), *client_);
  auto token = tokens.Get(Budget());
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, Code::kFailedPrecondition);
  EXPECT_NE(token.error().message.find("AZURE_FEDERATED_TOKEN_FILE"), std::string::npos);
}

TEST_F(TokenTest, ManagedIdentityAsksImdsWithTheMetadataHeader) {
  TokenSource tokens(Config(TokenKind::kManagedIdentity), *client_);
  auto token = tokens.Get(Budget());
  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_TRUE(Accepted(*token));
  EXPECT_EQ(env_->Stats()["tokens_issued"]["imds"], 1);
  TokenConfig other = Config(TokenKind::kManagedIdentity);
  other.client_id = "an-identity-the-vm-does-not-have";
  TokenSource unknown(other, *client_);
  auto refused = unknown.Get(Budget());
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, Code::kFailedPrecondition);
}

TEST_F(TokenTest, ManyCallersAtOnceShareOneFetch) {
  TokenSource tokens(Config(TokenKind::kClientSecret), *client_);
  env_->Faults(
      nlohmann::json::array({{{"action", "POST token"}, {"count", 1}, {"delay_ms", 300}}}));
  std::vector<std::jthread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (tokens.Get(Budget())) ++ok;
    });
  }
  threads.clear();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(tokens.fetches(), 1u);
  EXPECT_EQ(env_->Calls("POST token"), 1);
}

TEST_F(TokenTest, AWaitingCallerKeepsItsOwnDeadline) {
  TokenSource tokens(Config(TokenKind::kClientSecret), *client_);
  env_->Faults(
      nlohmann::json::array({{{"action", "POST token"}, {"count", 1}, {"delay_ms", 3000}}}));
  std::jthread slow([&] { (void)tokens.Get(Budget()); });
  ASSERT_TRUE(
      pp::testing::FakeCloudProcess::WaitFor([&] { return env_->Calls("POST token") == 1; }, 10s));
  auto late = tokens.Get(OpContext{Clock::now() + 200ms, {}});
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code, Code::kDeadlineExceeded);
}

}  // namespace
}  // namespace pp::providers::azure::testing
