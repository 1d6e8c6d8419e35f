// The aws provider against the EC2 fake: what it sends (checked by the fake against botocore's
// model and signer), and every failure path, each leaving no live instance in the fake.
#include "providers/aws/aws_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <thread>

#include "providers/aws/credentials.h"
#include "providers/aws/ec2_client.h"
#include "tests/providers/aws/ec2_fixture.h"

namespace pp::providers::aws {
namespace {

using testing::Budget;
using testing::ErrorXml;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::Spec;
using namespace std::chrono_literals;
using Fake = pp::testing::FakeCloudProcess;

class AwsProviderTest : public ::testing::Test {
 protected:
  explicit AwsProviderTest(std::vector<std::string> args = {}) : fake_(std::move(args)) {}
  std::unique_ptr<Provider> Make(const AwsConfig& c) {
    auto p = MakeAwsProvider(c);
    EXPECT_TRUE(p.has_value()) << p.error().message;
    return p ? std::move(*p) : nullptr;
  }
  std::unique_ptr<Provider> Make() { return Make(fake_.Config()); }
  nlohmann::json Only(const std::string& name) {
    auto live = fake_.Live(name);
    EXPECT_EQ(live.size(), 1u) << name;
    return live.empty() ? nlohmann::json::object() : live[0];
  }
  std::vector<std::string> ClientTokens() {
    return fake_.Stats()["client_tokens"].get<std::vector<std::string>>();
  }

  testing::Ec2Fake fake_;
  const Owner owner_{"node-a", "sandbox-a"};
};

TEST_F(AwsProviderTest, CreatesAConfidentialVmWithTagsUserDataAndImdsV2Only) {
  AwsConfig c = fake_.Config();
  c.tags = {{"team", "ai"}};
  auto provider = Make(c);
  const InstanceSpec spec = Spec("podvm-cvm-1", owner_);
  auto created = provider->CreateInstance(spec, Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  const auto inst = Only(spec.name);
  EXPECT_EQ(created->id, inst["id"]);
  EXPECT_EQ(created->ips, std::vector<std::string>{inst["ip"].get<std::string>()});
  EXPECT_EQ(inst["type"], "m6a.large");
  const auto params = inst["params"];
  EXPECT_EQ(params["CpuOptions.AmdSevSnp"], "enabled");
  EXPECT_EQ(params["MetadataOptions.HttpTokens"], "required");
  EXPECT_EQ(params["SubnetId"], "subnet-0123456789abcdef0");
  EXPECT_EQ(params["SecurityGroupId.1"], "sg-0123456789abcdef0");
  EXPECT_EQ(params["BlockDeviceMapping.1.DeviceName"], "/dev/xvda");  // from DescribeImages
  EXPECT_EQ(params["BlockDeviceMapping.1.Ebs.VolumeSize"], "30");     // ROOT_VOLUME_SIZE default
  EXPECT_EQ(inst["user_data"], spec.user_data);
  EXPECT_EQ(inst["tags"]["Name"], spec.name);
  EXPECT_EQ(inst["tags"]["peerpods.node"], "node-a");
  EXPECT_EQ(inst["tags"]["peerpods.sandbox"], "sandbox-a");
  EXPECT_EQ(inst["tags"]["team"], "ai");
  EXPECT_EQ(fake_.Stats()["auth_failures"], 0);
  ASSERT_TRUE(provider->DeleteInstance(created->id, Budget(30s)));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, DisableCvmAndPublicIpChangeTheRequestAsCaaDoes) {
  AwsConfig c = fake_.Config();
  c.disable_cvm = true;
  c.use_public_ip = true;
  c.root_volume_gib = 0;
  auto provider = Make(c);
  auto created = provider->CreateInstance(Spec("podvm-plain-1", owner_), Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  const auto inst = Only("podvm-plain-1");
  const auto params = inst["params"];
  EXPECT_FALSE(params.contains("CpuOptions.AmdSevSnp"));
  EXPECT_FALSE(params.contains("SubnetId"));
  EXPECT_FALSE(params.contains("BlockDeviceMapping.1.DeviceName"));
  EXPECT_EQ(params["NetworkInterface.1.SubnetId"], "subnet-0123456789abcdef0");
  EXPECT_EQ(params["NetworkInterface.1.SecurityGroupId.1"], "sg-0123456789abcdef0");
  EXPECT_EQ(params["NetworkInterface.1.AssociatePublicIpAddress"], "true");
  EXPECT_EQ(created->ips, std::vector<std::string>{inst["public_ip"].get<std::string>()});
  EXPECT_EQ(fake_.Stats()["calls"].value("DescribeImages", 0), 0)
      << "no root volume size: no image lookup";
}

TEST_F(AwsProviderTest, ThrottlingThenSuccessReusesTheClientToken) {
  auto provider = Make();
  fake_.Faults({{{"action", "RunInstances"},
                 {"count", 2},
                 {"status", 503},
                 {"body", ErrorXml("RequestLimitExceeded", "Request limit exceeded.")}}});
  auto created = provider->CreateInstance(Spec("podvm-throttled", owner_), Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  const auto tokens = ClientTokens();
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_EQ(tokens[0], tokens[1]);
  EXPECT_EQ(tokens[1], tokens[2]);
  EXPECT_EQ(fake_.Live().size(), 1u);
}

TEST_F(AwsProviderTest, ServerErrorsWhilePollingAreRetried) {
  auto provider = Make();
  fake_.Faults({{{"action", "DescribeInstances"},
                 {"count", 3},
                 {"status", 500},
                 {"body", ErrorXml("InternalError", "x")}}});
  auto created = provider->CreateInstance(Spec("podvm-5xx-poll", owner_), Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
}

TEST_F(AwsProviderTest, PersistentServerErrorsFailUnavailableAndLeaveNothing) {
  auto provider = Make();
  fake_.Faults({{{"action", "RunInstances"},
                 {"count", 100},
                 {"status", 500},
                 {"body", ErrorXml("InternalError", "x")}}});
  auto created = provider->CreateInstance(Spec("podvm-5xx", owner_), Budget(60s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kUnavailable) << created.error().message;
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, MalformedAnswersAreRetriedWithTheSameClientTokenAndLaunchOnce) {
  auto provider = Make();
  fake_.Faults({{{"action", "RunInstances"},
                 {"count", 1},
                 {"status", 200},
                 {"body", "<RunInstancesResponse><oops"}},
                {{"action", "DescribeInstances"},
                 {"count", 2},
                 {"status", 200},
                 {"body", "not xml at all"}}});
  auto created = provider->CreateInstance(Spec("podvm-malformed", owner_), Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  const auto tokens = ClientTokens();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0], tokens[1]);
  EXPECT_EQ(fake_.Live().size(), 1u);
}

TEST_F(AwsProviderTest, MalformedAnswersForeverFailAndLeaveNothing) {
  auto provider = Make();
  fake_.Faults({{{"action", "RunInstances"},
                 {"count", 100},
                 {"status", 200},
                 {"body", "<html>proxy</html>"}}});
  auto created = provider->CreateInstance(Spec("podvm-garbage", owner_), Budget(60s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kUnavailable) << created.error().message;
  EXPECT_THAT(created.error().message, HasSubstr("malformed"));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, OversizedAnswersFailAndLeaveNothing) {
  AwsConfig c = fake_.Config();
  c.max_response_bytes = 64 << 10;
  auto provider = Make(c);
  const std::string big(100 << 10, 'x');
  fake_.Faults({{{"action", "RunInstances"}, {"count", 1}, {"status", 200}, {"body", big}}});
  auto created = provider->CreateInstance(Spec("podvm-big-run", owner_), Budget(60s));
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("larger than"));
  EXPECT_TRUE(fake_.Live().empty());

  // Oversized poll answers: the instance never shows as running, so it is terminated.
  fake_.Faults(
      {{{"action", "DescribeInstances"}, {"count", 1000}, {"status", 200}, {"body", big}}});
  auto polled = provider->CreateInstance(Spec("podvm-big-poll", owner_), Budget(3s));
  ASSERT_FALSE(polled);
  EXPECT_EQ(polled.error().code, Code::kDeadlineExceeded) << polled.error().message;
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, APollSlowerThanTheDeadlineEndsTheCreateAndTerminatesTheInstance) {
  auto provider = Make();
  fake_.Faults({{{"action", "DescribeInstances"}, {"count", 1000}, {"delay_ms", 5000}}});
  auto created = provider->CreateInstance(Spec("podvm-slow-poll", owner_), Budget(2s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kDeadlineExceeded) << created.error().message;
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, ARunInstancesAnsweredAfterTheDeadlineLeavesNothing) {
  auto provider = Make();
  fake_.Faults({{{"action", "RunInstances"}, {"count", 1}, {"delay_ms", 3000}}});
  const InstanceSpec spec = Spec("podvm-slow-run", owner_);
  auto created = provider->CreateInstance(spec, Budget(1s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kDeadlineExceeded) << created.error().message;
  // EC2 launched it after we stopped listening: the create's own lookups by its ClientToken find
  // and terminate it (the launch lands while they run), and the adaptor's recovery
  // (DeleteLeftovers of the sandbox's VM name, by its tags) would find what they missed.
  EXPECT_GE(fake_.Stats()["calls"]["DescribeInstances"].get<int>(), 1);
  auto removed = provider->DeleteLeftovers(spec.name, spec.owner, Budget(30s));
  ASSERT_TRUE(removed) << removed.error().message;
  EXPECT_TRUE(Fake::WaitFor([&] { return fake_.Live().empty(); }, 20s));
}

TEST_F(AwsProviderTest, NoCapacityForOneTypeFallsBackToTheNext) {
  AwsConfig c = fake_.Config();
  c.instance_types = {"m6a.large", "m6a.xlarge"};
  auto provider = Make(c);
  fake_.Faults({{{"action", "RunInstances"},
                 {"count", 1},
                 {"status", 500},
                 {"body", ErrorXml("InsufficientInstanceCapacity",
                                   "We currently do not have sufficient capacity.")}}});
  InstanceSpec spec = Spec("podvm-fallback", owner_);
  spec.vcpus = 2;
  spec.memory_mib = 4096;
  auto created = provider->CreateInstance(spec, Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(Only(spec.name)["type"], "m6a.xlarge");
  const auto tokens = ClientTokens();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_NE(tokens[0], tokens[1]) << "one ClientToken per candidate type";
}

TEST_F(AwsProviderTest, NoCapacityAnywhereNamesEveryTypeTried) {
  AwsConfig c = fake_.Config();
  c.instance_types = {"m6a.large", "m6a.xlarge"};
  auto provider = Make(c);
  fake_.Faults({{{"action", "RunInstances"},
                 {"count", 10},
                 {"status", 500},
                 {"body", ErrorXml("InsufficientInstanceCapacity", "no capacity")}}});
  InstanceSpec spec = Spec("podvm-nocapacity", owner_);
  spec.vcpus = 2;
  spec.memory_mib = 4096;
  auto created = provider->CreateInstance(spec, Budget(60s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kResourceExhausted);
  EXPECT_THAT(created.error().message, HasSubstr("m6a.large"));
  EXPECT_THAT(created.error().message, HasSubstr("m6a.xlarge"));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, AGpuPodGetsAGpuType) {
  AwsConfig c = fake_.Config();
  c.instance_types = {"m6a.large", "g5.xlarge"};
  c.disable_cvm = true;  // g5 has no SEV-SNP; the fake refuses AmdSevSnp on it as EC2 does
  auto provider = Make(c);
  InstanceSpec spec = Spec("podvm-gpu", owner_);
  spec.gpus = 1;
  auto created = provider->CreateInstance(spec, Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(Only(spec.name)["type"], "g5.xlarge");
}

TEST_F(AwsProviderTest, AnInstanceThatNeverRunsIsTerminatedAtTheDeadline) {
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-stuck", owner_);
  spec.image = testing::kStuckImage;
  auto created = provider->CreateInstance(spec, Budget(2s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kDeadlineExceeded) << created.error().message;
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, AnInstanceThatDiesBootingIsReportedWithEc2sReason) {
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-dies", owner_);
  spec.image = testing::kFailingImage;
  auto created = provider->CreateInstance(spec, Budget(60s));
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr("went to terminated"));
  EXPECT_THAT(created.error().message, HasSubstr("Server.InternalError"));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, ADeleteDuringAPendingCreateEndsTheCreate) {
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-deleted-early", owner_);
  spec.image = testing::kStuckImage;
  auto create =
      std::async(std::launch::async, [&] { return provider->CreateInstance(spec, Budget(120s)); });
  ASSERT_TRUE(Fake::WaitFor([&] { return fake_.Live(spec.name).size() == 1; }, 30s));
  const std::string id = fake_.Live(spec.name)[0]["id"];
  auto deleted = provider->DeleteInstance(id, Budget(30s));
  ASSERT_TRUE(deleted) << deleted.error().message;
  auto created = create.get();
  ASSERT_FALSE(created);
  EXPECT_THAT(created.error().message, HasSubstr(id));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, AStopDuringAPendingCreateCancelsItAndTerminatesTheInstance) {
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-stopped-early", owner_);
  spec.image = testing::kStuckImage;
  std::stop_source stop;
  auto create = std::async(std::launch::async, [&] {
    return provider->CreateInstance(spec, Budget(120s, stop.get_token()));
  });
  ASSERT_TRUE(Fake::WaitFor([&] { return fake_.Live(spec.name).size() == 1; }, 30s));
  stop.request_stop();
  auto created = create.get();
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kCancelled) << created.error().message;
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, DeleteLeftoversTouchesOnlyThatOwnersInstanceOfThatName) {
  auto provider = Make();
  const InstanceSpec spec = Spec("podvm-owned", owner_);
  auto created = provider->CreateInstance(spec, Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  ASSERT_TRUE(provider->DeleteLeftovers(spec.name, Owner{"node-b", "sandbox-a"}, Budget(30s)));
  ASSERT_TRUE(provider->DeleteLeftovers("podvm-other", owner_, Budget(30s)));
  EXPECT_EQ(fake_.Live().size(), 1u);
  ASSERT_TRUE(provider->DeleteLeftovers(spec.name, owner_, Budget(30s)));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsProviderTest, AnOverriddenEndpointIsStillVerifiedAgainstTheCaBundle) {
  AwsConfig c = fake_.Config();
  c.ca_bundle = "/etc/ssl/certs/ca-certificates.crt";  // public CAs: not the fake's own
  auto refused = Make(c)->Verify(Budget(30s));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Code::kFailedPrecondition) << refused.error().message;
  EXPECT_EQ(fake_.Stats()["calls"].value("DescribeInstanceTypes", 0), 0);
}

TEST_F(AwsProviderTest, TheFakeRefusesWhatBotocoresModelDoesNot) {
  // The oracle itself: a parameter the EC2 model lacks is a loud FakeModelViolation.
  http::Client client(http::ClientOptions{.ca_bundle = fake_.process().ca_bundle()});
  std::vector<std::unique_ptr<CredentialSource>> chain;
  chain.push_back(MakeStaticSource({testing::kAccessKey, testing::kSecretKey, ""}));
  CredentialsProvider creds(std::move(chain));
  Ec2Client ec2(client, Ec2Endpoint{fake_.url(), "us-east-1"}, creds);
  auto refused = ec2.Call(
      "DescribeInstances", {{"InstanceIds.1", "i-0123456789abcdef0"}},
      [](const http::Response&) -> Result<void> { return {}; }, Budget(30s));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("FakeModelViolation"));
}

TEST_F(AwsProviderTest, UserDataPastEc2sLimitIsRefusedBeforeAnyLaunch) {
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-big-userdata", owner_);
  spec.user_data = std::string(16385, 'u');
  auto created = provider->CreateInstance(spec, Budget(30s));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code, Code::kInvalidArgument);
  EXPECT_THAT(created.error().message, HasSubstr("16384"));
  EXPECT_EQ(fake_.Stats()["calls"].value("RunInstances", 0), 0);
}

TEST_F(AwsProviderTest, VerifyNamesTheMissingImageOrTypeAndAWrongKey) {
  AwsConfig c = fake_.Config();
  c.image_id = "ami-0aaaaaaaaaaaaaaaa";
  auto no_image = Make(c)->Verify(Budget(30s));
  ASSERT_FALSE(no_image);
  EXPECT_EQ(no_image.error().code, Code::kFailedPrecondition);
  EXPECT_THAT(no_image.error().message, HasSubstr("PODVM_AMI_ID"));

  c = fake_.Config();
  c.instance_types = {"m6a.large", "m9z.huge"};
  auto no_type = Make(c)->Verify(Budget(30s));
  ASSERT_FALSE(no_type);
  EXPECT_EQ(no_type.error().code, Code::kFailedPrecondition);
  EXPECT_THAT(no_type.error().message, HasSubstr("PODVM_INSTANCE_TYPES"));

  c = fake_.Config();
  c.secret_access_key = "not-the-secret";
  auto wrong = Make(c)->Verify(Budget(30s));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Code::kFailedPrecondition);
  EXPECT_THAT(wrong.error().message, HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(wrong.error().message, Not(HasSubstr("not-the-secret")));
}

TEST_F(AwsProviderTest, AMissingRegionSubnetAndGroupsComeFromInstanceMetadataAsInCaa) {
  AwsConfig c = fake_.Config();
  c.region.clear();
  c.subnet_id.clear();
  c.security_group_ids.clear();
  auto provider = Make(c);
  ASSERT_NE(provider, nullptr);
  auto created = provider->CreateInstance(Spec("podvm-imds-config", owner_), Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  const auto params = Only("podvm-imds-config")["params"];
  EXPECT_EQ(params["SubnetId"], "subnet-0feedfacefeedface");
  EXPECT_EQ(params["SecurityGroupId.1"], "sg-0aaaaaaaaaaaaaaaa");
  EXPECT_EQ(params["SecurityGroupId.2"], "sg-0bbbbbbbbbbbbbbbb");
  EXPECT_EQ(params["KeyName"], "node-key");
  EXPECT_EQ(fake_.Stats()["auth_failures"], 0) << "signed for the region IMDS gave";
}

class AwsManyPodsTest : public AwsProviderTest {
 protected:
  AwsManyPodsTest() : AwsProviderTest({"--page-size", "5"}) {}
};

TEST_F(AwsManyPodsTest, ManyCreatesShareBatchedPollsAndListingPaginates) {
  auto provider = Make();
  constexpr int kPods = 12;
  std::vector<std::future<Result<Instance>>> creates;
  for (int i = 0; i < kPods; ++i) {
    creates.push_back(std::async(std::launch::async, [&, i] {
      return provider->CreateInstance(Spec("podvm-many-" + std::to_string(i), owner_), Budget(60s));
    }));
  }
  std::vector<std::string> ids;
  for (auto& f : creates) {
    auto created = f.get();
    ASSERT_TRUE(created) << created.error().message;
    ids.push_back(created->id);
  }
  auto stats = fake_.Stats();
  // One batched DescribeInstances per round for every waiting pod, not one per pod.
  EXPECT_LT(stats["calls"]["DescribeInstances"].get<int>(), kPods) << stats["calls"].dump();
  // The type table and the image are looked up once for all of them.
  EXPECT_EQ(stats["calls"]["DescribeInstanceTypes"].get<int>(), 1) << stats["calls"].dump();
  EXPECT_EQ(stats["calls"]["DescribeImages"].get<int>(), 1) << stats["calls"].dump();

  auto listed = provider->ListInstances(owner_.node, Budget(30s));
  ASSERT_TRUE(listed) << listed.error().message;
  EXPECT_EQ(listed->size(), static_cast<std::size_t>(kPods)) << "pages of 5 must all be read";

  // Connection reuse: many sequential calls, (almost) no new connections.
  const int before = fake_.Stats()["connections"];
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(provider->ListInstances("node-z", Budget(30s)));
  EXPECT_LE(fake_.Stats()["connections"].get<int>() - before, 1);

  for (const auto& id : ids) ASSERT_TRUE(provider->DeleteInstance(id, Budget(30s)));
  EXPECT_TRUE(fake_.Live().empty());
}

TEST_F(AwsManyPodsTest, WithoutBatchingEveryInstancePollsOnItsOwn) {
  AwsConfig c = fake_.Config();
  c.batch_poll = false;
  auto provider = Make(c);
  constexpr int kPods = 4;
  std::vector<std::future<Result<Instance>>> creates;
  for (int i = 0; i < kPods; ++i) {
    creates.push_back(std::async(std::launch::async, [&, i] {
      return provider->CreateInstance(Spec("podvm-alone-" + std::to_string(i), owner_), Budget(60s));
    }));
  }
  std::vector<std::string> ids;
  for (auto& f : creates) {
    auto created = f.get();
    ASSERT_TRUE(created) << created.error().message;
    ids.push_back(created->id);
  }
  // Each instance asked about itself at least once: the comparison the cloud bench makes.
  EXPECT_GE(fake_.Stats()["calls"]["DescribeInstances"].get<int>(), kPods);
  for (const auto& id : ids) ASSERT_TRUE(provider->DeleteInstance(id, Budget(30s)));
  EXPECT_TRUE(fake_.Live().empty());
}

}  // namespace
}  // namespace pp::providers::aws

namespace pp::providers::aws {
namespace {

class AwsRateLimitedTest : public AwsProviderTest {
 protected:
  AwsRateLimitedTest() : AwsProviderTest({"--rate-limit", "4"}) {}
};

TEST_F(AwsRateLimitedTest, ABurstPastTheAccountsRateLimitIsThrottledAndStillSucceeds) {
  auto provider = Make();
  constexpr int kPods = 10;
  std::vector<std::future<Result<Instance>>> creates;
  for (int i = 0; i < kPods; ++i) {
    creates.push_back(std::async(std::launch::async, [&, i] {
      return provider->CreateInstance(Spec("podvm-burst-" + std::to_string(i), owner_),
                                      Budget(60s));
    }));
  }
  for (auto& f : creates) {
    auto created = f.get();
    EXPECT_TRUE(created) << created.error().message;
  }
  const auto stats = fake_.Stats();
  EXPECT_GT(stats["throttled"].get<int>(), 0) << "the burst should have met the rate limit";
  EXPECT_EQ(fake_.Live().size(), static_cast<std::size_t>(kPods));
  // Each launch happened once although throttled attempts were retried.
  std::set<std::string> tokens;
  for (const auto& t : stats["client_tokens"]) tokens.insert(t.get<std::string>());
  EXPECT_EQ(tokens.size(), static_cast<std::size_t>(kPods));
}

}  // namespace
}  // namespace pp::providers::aws
