// The credential chain: each source against the EC2 fake's STS and IMDS or temp files, the
// order of the SDKs' default chain, refresh before expiry, and temporary credentials whose session
// token the fake requires signed.
#include "providers/aws/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "providers/aws/ec2_client.h"
#include "providers/aws/ec2_xml.h"
#include "tests/providers/aws/ec2_fixture.h"

namespace pp::providers::aws {
namespace {

using testing::Budget;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

std::string TempFile(const std::string& content) {
  std::string path = (std::filesystem::temp_directory_path() / "pp-aws-XXXXXX").string();
  const int fd = ::mkstemp(path.data());
  ::close(fd);
  std::ofstream(path) << content;
  return path;
}

TEST(SharedCredentialsTest, ReadsTheProfileAsked) {
  const std::string text =
      "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key=s1\n\n"
      "[work]\n; another\naws_access_key_id=AKIDWORK\naws_secret_access_key = s2 "
      "\naws_session_token = tok\n";
  auto def = ParseSharedCredentials(text, "default");
  ASSERT_TRUE(def) << def.error().message;
  EXPECT_EQ(def->access_key_id, "AKIDDEFAULT");
  EXPECT_EQ(def->secret_access_key, "s1");
  EXPECT_EQ(def->session_token, "");
  auto work = ParseSharedCredentials(text, "work");
  ASSERT_TRUE(work);
  EXPECT_EQ(work->secret_access_key, "s2");
  EXPECT_EQ(work->session_token, "tok");
  EXPECT_EQ(ParseSharedCredentials(text, "other").error().code, Code::kNotFound);
  auto half = ParseSharedCredentials("[default]\naws_access_key_id=A\n", "default");
  ASSERT_FALSE(half);
  EXPECT_EQ(half.error().code, Code::kFailedPrecondition);
}

// A source whose answers the test scripts.
class ScriptedSource final : public CredentialSource {
 public:
  std::string_view Name() const override { return "scripted"; }
  Result<TimedCredentials> Fetch(const OpContext&) override {
    ++calls;
    if (fail) return Fail(Code::kUnavailable, "scripted failure");
    return TimedCredentials{{"AKID" + std::to_string(calls.load()), "secret", "token"},
                            std::chrono::system_clock::now() + lifetime};
  }
  std::atomic<int> calls{0};
  std::chrono::seconds lifetime{3600};
  bool fail = false;
};

TEST(CredentialsProviderTest, RefreshesOnlyWithinTheWindowBeforeExpiry) {
  auto owned = std::make_unique<ScriptedSource>();
  ScriptedSource& source = *owned;
  std::vector<std::unique_ptr<CredentialSource>> chain;
  chain.push_back(std::move(owned));
  CredentialsProvider provider(std::move(chain), std::chrono::minutes(5));
  auto first = provider.Get(Budget(5s));
  ASSERT_TRUE(first);
  EXPECT_EQ(provider.Get(Budget(5s))->access_key_id, first->access_key_id);
  EXPECT_EQ(source.calls, 1) << "valid for an hour: no refresh";

  source.lifetime = std::chrono::seconds(240);  // the next ones expire inside the 5-minute window
  provider.Invalidate();
  EXPECT_EQ(provider.Get(Budget(5s))->access_key_id, "AKID2");
  EXPECT_EQ(provider.Get(Budget(5s))->access_key_id, "AKID3") << "due for refresh: fetched again";

  // A failed refresh keeps credentials that have not expired yet.
  source.fail = true;
  auto kept = provider.Get(Budget(5s));
  ASSERT_TRUE(kept) << kept.error().message;
  EXPECT_EQ(kept->access_key_id, "AKID3");
  EXPECT_EQ(provider.SourceName(), "scripted");
}

TEST(CredentialsProviderTest, ManyThreadsShareOneFetch) {
  auto owned = std::make_unique<ScriptedSource>();
  ScriptedSource& source = *owned;
  std::vector<std::unique_ptr<CredentialSource>> chain;
  chain.push_back(std::move(owned));
  CredentialsProvider provider(std::move(chain));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      if (provider.Get(Budget(5s))) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 16);
  EXPECT_EQ(source.calls, 1);
}

TEST(CredentialsChainTest, FollowsTheSdkOrderAndNamesEverySourceWhenNoneWorks) {
  const std::string file =
      TempFile("[default]\naws_access_key_id=AKIDFILE\naws_secret_access_key=s\n");
  http::Client client;
  CredentialsConfig c;
  c.shared_credentials_file = file;
  c.profile = "default";
  c.imds_disabled = true;
  c.access_key_id = "AKIDENV";
  c.secret_access_key = "s";
  EXPECT_EQ(MakeDefaultCredentialsProvider(c, client)->Get(Budget(5s))->access_key_id, "AKIDENV");
  c.access_key_id.clear();
  auto from_file = MakeDefaultCredentialsProvider(c, client);
  EXPECT_EQ(from_file->Get(Budget(5s))->access_key_id, "AKIDFILE");
  EXPECT_EQ(from_file->SourceName(), "shared credentials file");

  c.shared_credentials_file = file + ".missing";
  c.imds_disabled = false;
  c.imds_endpoint = "http://127.0.0.1:9";  // nothing listens on the discard port
  auto none = MakeDefaultCredentialsProvider(c, client)->Get(Budget(20s));
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Code::kFailedPrecondition);
  EXPECT_THAT(none.error().message, HasSubstr("AWS_ACCESS_KEY_ID"));
  EXPECT_THAT(none.error().message, HasSubstr("IMDSv2"));
  std::filesystem::remove(file);
}

class FakeCredentialsTest : public ::testing::Test {
 protected:
  FakeCredentialsTest() : client_(http::ClientOptions{.ca_bundle = fake_.process().ca_bundle()}) {}
  // A DescribeInstances signed with `provider`'s credentials: the fake checks signature and token.
  Result<void> Describe(CredentialsProvider& provider) {
    Ec2Client ec2(client_, Ec2Endpoint{fake_.url(), "us-east-1"}, provider);
    return ec2.Call(
        "DescribeInstances", {}, [](const http::Response&) -> Result<void> { return {}; },
        Budget(20s));
  }
  testing::Ec2Fake fake_;
  http::Client client_;
};

TEST_F(FakeCredentialsTest, WebIdentityAssumesTheRoleAndItsSessionTokenIsSentSigned) {
  const std::string token_file = TempFile("fake-web-identity-token\n");
  CredentialsConfig c;
  c.web_identity_token_file = token_file;
  c.role_arn = "arn:aws:iam::123456789012:role/peerpods";
  c.sts_endpoint = fake_.url();
  c.imds_disabled = true;
  auto provider = MakeDefaultCredentialsProvider(c, client_);
  auto creds = provider->Get(Budget(20s));
  ASSERT_TRUE(creds) << creds.error().message;
  EXPECT_THAT(creds->access_key_id, ::testing::StartsWith("ASIA"));
  EXPECT_FALSE(creds->session_token.empty());
  auto ok = Describe(*provider);
  EXPECT_TRUE(ok) << ok.error().message;
  const auto stats = fake_.Stats();
  EXPECT_EQ(stats["issued_credentials"], 1);
  EXPECT_EQ(stats["auth_failures"], 0);

  // The kubelet rotates the token file; a refused token is the operator's to fix, and the
  // message does not carry the token.
  std::ofstream(token_file) << "rotated-but-wrong\n";
  provider->Invalidate();
  auto refused = provider->Get(Budget(20s));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kFailedPrecondition);
  EXPECT_THAT(refused.error().message, HasSubstr("InvalidIdentityToken"));
  EXPECT_THAT(refused.error().message, Not(HasSubstr("rotated-but-wrong")));
  std::filesystem::remove(token_file);
}

TEST_F(FakeCredentialsTest, ImdsV2InstanceRoleCredentialsWork) {
  CredentialsConfig c;
  c.imds_endpoint = fake_.url();
  auto provider = MakeDefaultCredentialsProvider(c, client_);
  auto creds = provider->Get(Budget(20s));
  ASSERT_TRUE(creds) << creds.error().message;
  EXPECT_EQ(provider->SourceName(), "EC2 instance role (IMDSv2)");
  auto ok = Describe(*provider);
  EXPECT_TRUE(ok) << ok.error().message;
  const auto calls = fake_.Stats()["calls"];
  EXPECT_EQ(calls["IMDS token"], 1);
  EXPECT_EQ(calls["IMDS credentials"], 2);  // the role, then its credentials
}

TEST_F(FakeCredentialsTest, ExpiredCredentialsAreFetchedAgainAndTheCallRetriedOnce) {
  // A refresh window of 0: the provider keeps its credentials until EC2 itself says they expired.
  std::vector<std::unique_ptr<CredentialSource>> chain;
  chain.push_back(MakeImdsSource(fake_.url(), client_));
  CredentialsProvider provider(std::move(chain), std::chrono::seconds(0));
  ASSERT_TRUE(provider.Get(Budget(20s)));
  // Scripted: EC2 answers ExpiredToken once, as it does when a token dies in flight.
  fake_.Faults(
      {{{"action", "DescribeInstances"},
        {"count", 1},
        {"status", 400},
        {"body", testing::ErrorXml("ExpiredToken",
                                   "The security token included in the request is expired")}}});
  Ec2Client ec2(client_, Ec2Endpoint{fake_.url(), "us-east-1"}, provider);
  auto ok = ec2.Call(
      "DescribeInstances", {}, [](const http::Response&) -> Result<void> { return {}; },
      Budget(20s));
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(fake_.Stats()["issued_credentials"], 2);
  EXPECT_EQ(provider.fetches(), 2);
}

}  // namespace
}  // namespace pp::providers::aws
