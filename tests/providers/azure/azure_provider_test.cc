#include "providers/azure/azure_provider.h"

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <thread>

#include "providers/azure/factory.h"
#include "tests/providers/azure/arm_fake_env.h"

namespace pp::providers::azure::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

OpContext Budget(std::chrono::milliseconds d = 60s) { return OpContext{Clock::now() + d, {}}; }

const Owner kOwner{"node-a", "sandbox-a"};

// Each test: a fake of its own, a provider on it, and at the end nothing left in the fake.
class AzureProviderTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    env_ = std::make_unique<ArmFakeEnv>(
        std::vector<std::string>{"--provision-polls", "2", "--delete-polls", "2"});
    ASSERT_TRUE(env_->running());
    config_ = env_->Config();
    config_.batch_poll = GetParam();
  }

  std::unique_ptr<AzureProvider> Make() {
    auto provider = AzureProvider::Create(config_);
    EXPECT_TRUE(provider.has_value()) << provider.error().message;
    return provider ? std::move(*provider) : nullptr;
  }

  static InstanceSpec Spec(const std::string& name) {
    InstanceSpec s;
    s.name = name;
    s.owner = kOwner;
    s.pod_name = "pod";
    s.pod_namespace = "ns";
    s.user_data = "#cloud-config\nwrite_files: []\n";
    return s;
  }

  std::string Id(const std::string& name) const {
    return std::string("/subscriptions/") + kSubscription + "/resourceGroups/" + kResourceGroup +
           "/providers/Microsoft.Compute/virtualMachines/" + name;
  }

  void ExpectNothingLeft(const std::string& prefix = "podvm-") {
    EXPECT_EQ(env_->Resources(prefix), std::vector<std::string>{}) << "left in the fake";
  }

  std::unique_ptr<ArmFakeEnv> env_;
  AzureConfig config_;
};

TEST_P(AzureProviderTest, CreatesAConfidentialVmTheSdkModelAcceptsAndDeletesAllOfIt) {
  config_.tags = {{"team", "ai"}};
  auto provider = Make();
  auto vm = provider->CreateInstance(Spec("podvm-a-12345678"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  EXPECT_EQ(vm->id, Id("podvm-a-12345678"));
  ASSERT_EQ(vm->ips.size(), 1u);
  EXPECT_TRUE(vm->ips[0].starts_with("127.")) << vm->ips[0];
  const json stats = env_->Stats();
  EXPECT_EQ(stats["violations"], 0);
  const json& body = stats["bodies"]["podvm-a-12345678"];
  EXPECT_EQ(body["tags"]["peerpods.node"], "node-a");
  EXPECT_EQ(body["tags"]["peerpods.sandbox"], "sandbox-a");
  EXPECT_EQ(body["tags"]["team"], "ai");
  EXPECT_EQ(body["properties"]["hardwareProfile"]["vmSize"], "Standard_DC2as_v5");
  EXPECT_EQ(env_->Resources("podvm-a-12345678"),
            (std::vector<std::string>{"vms:podvm-a-12345678", "nics:podvm-a-12345678-net",
                                      "disks:podvm-a-12345678-disk"}));
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  ExpectNothingLeft();
  EXPECT_EQ(provider->token_fetches(), 1u) << "one token serves every call";
  if (GetParam()) {
    EXPECT_EQ(env_->Calls("GET operations"), 2)
        << "create waited by list polls; only the delete polls its operation";
  }
}

TEST_P(AzureProviderTest, PlainVmsWithDisableCvm) {
  config_.disable_cvm = true;
  env_.reset();
  env_ = std::make_unique<ArmFakeEnv>(std::vector<std::string>{"--allow-plain"});
  ASSERT_TRUE(env_->running());
  AzureConfig c = env_->Config();
  c.disable_cvm = true;
  c.batch_poll = GetParam();
  auto provider = AzureProvider::Create(c);
  ASSERT_TRUE(provider.has_value());
  auto vm = (*provider)->CreateInstance(Spec("podvm-plain-1"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  EXPECT_FALSE(env_->Stats()["bodies"]["podvm-plain-1"]["properties"].contains("securityProfile"));
  ASSERT_TRUE((*provider)->DeleteInstance(vm->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, TheSdkModelRefusesABodyWithoutWhatWeMean) {
  // The fake's oracle at work: secure boot on where the fake expects it off.
  config_.enable_secure_boot = true;
  auto provider = Make();
  auto vm = provider->CreateInstance(Spec("podvm-sb-1"), Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_NE(vm.error().message.find("FakeModelViolation"), std::string::npos) << vm.error().message;
  EXPECT_EQ(env_->Stats()["violations"], 1);
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, OversizedUserDataIsRefusedBeforeAnyCall) {
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-big-1");
  spec.user_data.assign(49 * 1024, 'x');  // 65,536+ bytes in base64
  auto vm = provider->CreateInstance(spec, Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kInvalidArgument);
  EXPECT_EQ(env_->Calls("PUT virtualMachines"), 0);
}

TEST_P(AzureProviderTest, ThrottledAndFailingCallsAreRetried) {
  auto provider = Make();
  env_->Faults(json::array(
      {{{"action", "PUT virtualMachines"},
        {"count", 2},
        {"status", 429},
        {"body", R"({"error":{"code":"TooManyRequests","message":"slow down"}})"},
        {"headers", {{"Retry-After", "0"}}}},
       {{"action", "GET networkInterfaces"}, {"count", 1}, {"status", 503}, {"body", ""}},
       {{"action", "LIST virtualMachines"}, {"count", 1}, {"status", 500}, {"body", ""}},
       {{"action", "GET operations"}, {"count", 1}, {"status", 502}, {"body", ""}}}));
  auto vm = provider->CreateInstance(Spec("podvm-retry-1"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  EXPECT_EQ(env_->Calls("PUT virtualMachines"), 3);
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, APutRetriedAfterArmAcceptedItWaitsForTheVm) {
  auto provider = Make();
  env_->Control({{"put_errors_after_create", 1}});
  auto vm = provider->CreateInstance(Spec("podvm-lost-1"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  EXPECT_EQ(env_->Calls("PUT virtualMachines"), 2);
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, ThrottlingThatDoesNotEndFailsAndLeavesNothing) {
  auto provider = Make();
  env_->Faults(json::array({{{"action", "GET virtualMachines"},
                             {"count", 1000},
                             {"status", 429},
                             {"body", R"({"error":{"code":"TooManyRequests","message":"slow"}})"},
                             {"headers", {{"Retry-After", "0"}}}}}));
  auto vm = provider->CreateInstance(Spec("podvm-throttled-1"), Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kAborted) << vm.error().message;
  env_->Faults(json::array());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, ServerErrorsThatDoNotEndFailAndLeaveNothing) {
  auto provider = Make();
  env_->Faults(json::array(
      {{{"action", "GET networkInterfaces"}, {"count", 1000}, {"status", 500}, {"body", ""}}}));
  auto vm = provider->CreateInstance(Spec("podvm-5xx-1"), Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kUnavailable) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, ATimeoutLeavesNothing) {
  auto provider = Make();
  env_->Faults(
      json::array({{{"action", "GET networkInterfaces"}, {"count", 1}, {"delay_ms", 3000}}}));
  auto vm = provider->CreateInstance(Spec("podvm-slow-1"), Budget(2s));
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kDeadlineExceeded) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, MalformedAnswersFailAndLeaveNothing) {
  auto provider = Make();
  env_->Faults(json::array(
      {{{"action", "GET virtualMachines"}, {"count", 1}, {"status", 200}, {"body", "{\"na"}}}));
  auto vm = provider->CreateInstance(Spec("podvm-garbled-1"), Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kUnavailable) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, OversizedAnswersFailAndLeaveNothing) {
  config_.max_response_bytes = 64 * 1024;
  auto provider = Make();
  env_->Faults(json::array({{{"action", "GET networkInterfaces"},
                             {"count", 1},
                             {"status", 200},
                             {"body", std::string(200 * 1024, ' ') + "{}"}}}));
  auto vm = provider->CreateInstance(Spec("podvm-huge-1"), Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_NE(vm.error().message.find("larger than"), std::string::npos) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, SkuNotAvailableMovesOnToTheNextSize) {
  config_.instance_sizes = {"Standard_DC2as_v5", "Standard_DC4as_v5", "Standard_DC8as_v5"};
  auto provider = Make();
  env_->Control(
      {{"fail_sizes",
        {{"Standard_DC2as_v5", "SkuNotAvailable"}, {"Standard_DC4as_v5", "AllocationFailed"}}}});
  InstanceSpec spec = Spec("podvm-fallback-1");
  spec.vcpus = 2;
  spec.memory_mib = 4096;
  auto vm = provider->CreateInstance(spec, Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  const json stats = env_->Stats();
  EXPECT_EQ(stats["bodies"]["podvm-fallback-1"]["properties"]["hardwareProfile"]["vmSize"],
            "Standard_DC8as_v5");
  EXPECT_EQ(stats["vms"].size(), 1u) << "the VM whose allocation failed is gone";
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, SizesTheTableDoesNotKnowAreSizedByTheVmSizesList) {
  config_.instance_sizes = {"Standard_D4s_v5", "Standard_D2s_v5"};
  config_.instance_size = "Standard_D4s_v5";
  auto provider = Make();
  InstanceSpec spec = Spec("podvm-sized-1");
  spec.vcpus = 1;
  spec.memory_mib = 1024;
  auto vm = provider->CreateInstance(spec, Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  EXPECT_EQ(env_->Stats()["bodies"]["podvm-sized-1"]["properties"]["hardwareProfile"]["vmSize"],
            "Standard_D2s_v5");
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  auto again = provider->CreateInstance(Spec("podvm-sized-2"), Budget());
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(env_->Calls("GET vmSizes"), 1) << "asked once";
  ASSERT_TRUE(provider->DeleteInstance(again->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, APublicIpComesFirstAndGoesWithTheVm) {
  config_.use_public_ip = true;
  auto provider = Make();
  auto vm = provider->CreateInstance(Spec("podvm-public-1"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  ASSERT_EQ(vm->ips.size(), 2u);
  EXPECT_TRUE(vm->ips[0].starts_with("127.201.")) << vm->ips[0];
  EXPECT_EQ(env_->Resources("podvm-public-1").size(), 4u);
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, NoCapacityAnywhereNamesEverySizeTried) {
  config_.instance_sizes = {"Standard_DC2as_v5", "Standard_DC4as_v5"};
  auto provider = Make();
  env_->Control(
      {{"fail_sizes",
        {{"Standard_DC2as_v5", "AllocationFailed"}, {"Standard_DC4as_v5", "SkuNotAvailable"}}}});
  InstanceSpec spec = Spec("podvm-full-1");
  spec.vcpus = 2;
  spec.memory_mib = 2048;
  auto vm = provider->CreateInstance(spec, Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kResourceExhausted);
  EXPECT_NE(vm.error().message.find("Standard_DC2as_v5"), std::string::npos) << vm.error().message;
  EXPECT_NE(vm.error().message.find("Standard_DC4as_v5"), std::string::npos) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, AVmWhoseProvisioningFailsIsDeleted) {
  auto provider = Make();
  env_->Control({{"fail_vms", {{"podvm-broken-1", "OSProvisioningTimedOut"}}}});
  auto vm = provider->CreateInstance(Spec("podvm-broken-1"), Budget());
  ASSERT_FALSE(vm.has_value());
  EXPECT_NE(vm.error().message.find("OSProvisioningTimedOut"), std::string::npos)
      << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, AnExpiredTokenIsReplacedWithoutFailingTheCall) {
  auto provider = Make();
  auto vm = provider->CreateInstance(Spec("podvm-token-1"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  env_->Control({{"expire_tokens", true}});
  ASSERT_TRUE(provider->DeleteInstance(vm->id, Budget()).has_value());
  EXPECT_EQ(provider->token_fetches(), 2u);
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, AStopDuringALongCreateDeletesWhatWasMade) {
  auto provider = Make();
  env_->Control({{"hold_vms", {"podvm-stopped-1"}}});
  std::stop_source stop;
  std::jthread stopper([&] {
    (void)pp::testing::FakeCloudProcess::WaitFor(
        [&] { return !env_->Resources("podvm-stopped-1").empty(); }, 30s);
    stop.request_stop();
  });
  auto vm = provider->CreateInstance(Spec("podvm-stopped-1"),
                                     OpContext{Clock::now() + 60s, stop.get_token()});
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kCancelled) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, DeleteLeftoversDuringALongCreateEndsIt) {
  auto provider = Make();
  env_->Control({{"hold_vms", {"podvm-raced-1"}}});
  Result<Instance> vm = Fail(Code::kUnknown, "not run");
  std::jthread create([&] { vm = provider->CreateInstance(Spec("podvm-raced-1"), Budget(30s)); });
  ASSERT_TRUE(pp::testing::FakeCloudProcess::WaitFor(
      [&] { return !env_->Resources("podvm-raced-1").empty(); }, 30s));
  auto removed = provider->DeleteLeftovers("podvm-raced-1", kOwner, Budget());
  EXPECT_TRUE(removed.has_value()) << removed.error().message;
  create.join();
  ASSERT_FALSE(vm.has_value());
  EXPECT_EQ(vm.error().code, Code::kAborted) << vm.error().message;
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, DeleteLeftoversTakesOrphansButNotAnotherOwnersThings) {
  auto provider = Make();
  env_->Control({{"orphans",
                  {{{"kind", "nic"}, {"name", "podvm-crash-1-net"}},
                   {{"kind", "disk"}, {"name", "podvm-crash-1-disk"}},
                   {{"kind", "pip"}, {"name", "podvm-crash-1-net-ip"}},
                   {{"kind", "nic"},
                    {"name", "podvm-theirs-1-net"},
                    {"tags", {{"peerpods.node", "node-b"}}}}}}});
  ASSERT_TRUE(provider->DeleteLeftovers("podvm-crash-1", kOwner, Budget()).has_value());
  ASSERT_TRUE(provider->DeleteLeftovers("podvm-theirs-1", kOwner, Budget()).has_value());
  EXPECT_EQ(env_->Resources("podvm-"), std::vector<std::string>{"nics:podvm-theirs-1-net"});
  InstanceSpec theirs = Spec("podvm-b-vm-1");
  theirs.owner = Owner{"node-b", "sandbox-b"};
  auto vm = provider->CreateInstance(theirs, Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  ASSERT_TRUE(provider->DeleteLeftovers("podvm-b-vm-1", kOwner, Budget()).has_value());
  EXPECT_EQ(env_->Resources("podvm-b-vm-1").size(), 3u) << "another owner's VM was touched";
  ASSERT_TRUE(provider->DeleteLeftovers("podvm-b-vm-1", theirs.owner, Budget()).has_value());
  EXPECT_TRUE(env_->Resources("podvm-b-vm-1").empty());
}

TEST_P(AzureProviderTest, ManyCreatesAtOnceFollowListPages) {
  auto provider = Make();
  constexpr int kVms = 7;  // pages of 3
  std::vector<Result<Instance>> made(kVms, Fail(Code::kUnknown, "not run"));
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < kVms; ++i) {
      threads.emplace_back([&, i] {
        made[i] = provider->CreateInstance(Spec("podvm-many-" + std::to_string(i)), Budget());
      });
    }
  }
  for (const auto& m : made) ASSERT_TRUE(m.has_value()) << m.error().message;
  auto listed = provider->ListInstances("node-a", Budget());
  ASSERT_TRUE(listed.has_value()) << listed.error().message;
  EXPECT_EQ(listed->size(), std::size_t(kVms));
  for (const auto& i : *listed) EXPECT_EQ(i.owner, kOwner);
  if (GetParam()) {
    EXPECT_EQ(env_->Calls("GET operations"), 0) << "batched creates poll no operation";
    EXPECT_GT(provider->batch_polls(), 0u) << "creates waited through the list poll";
  }
  for (const auto& m : made) ASSERT_TRUE(provider->DeleteInstance(m->id, Budget()).has_value());
  ExpectNothingLeft();
}

TEST_P(AzureProviderTest, VerifyChecksTheResourceGroupAndImage) {
  auto provider = Make();
  EXPECT_TRUE(provider->Verify(Budget()).has_value());
  config_.resource_group = "no-such-rg";
  auto wrong_rg = Make()->Verify(Budget());
  ASSERT_FALSE(wrong_rg.has_value());
  EXPECT_EQ(wrong_rg.error().code, Code::kFailedPrecondition);
  config_ = env_->Config();
  config_.image_id += "-missing";
  auto wrong_image = Make()->Verify(Budget());
  ASSERT_FALSE(wrong_image.has_value());
  EXPECT_EQ(wrong_image.error().code, Code::kFailedPrecondition);
  EXPECT_NE(wrong_image.error().message.find("AZURE_IMAGE_ID"), std::string::npos);
}

TEST_P(AzureProviderTest, WorkloadAndManagedIdentityCreateToo) {
  env_->WriteAssertion("eyJhbGciOiJSUzI1NiJ9.workload.sig");
  config_.client_secret.clear();
  config_.federated_token_file = env_->AssertionFile();
  auto workload = Make();
  auto vm = workload->CreateInstance(Spec("podvm-wi-1"), Budget());
  ASSERT_TRUE(vm.has_value()) << vm.error().message;
  config_.federated_token_file.clear();
  config_.client_id.clear();
  auto managed = Make();
  ASSERT_TRUE(managed->DeleteInstance(vm->id, Budget()).has_value());
  const json issued = env_->Stats()["tokens_issued"];
  EXPECT_EQ(issued["assertion"], 1);
  EXPECT_EQ(issued["imds"], 1);
  ExpectNothingLeft();
}

INSTANTIATE_TEST_SUITE_P(Azure, AzureProviderTest, ::testing::Values(true, false),
                         [](const auto& param_info) {
                           return param_info.param ? "BatchPoll" : "OperationPoll";
                         });

TEST(AzureFactoryTest, ReadsCaasFlagsAndEnvironment) {
  auto factory = MakeAzureFactory();
  EXPECT_EQ(factory->Name(), "azure");
  CLI::App app;
  factory->AddFlags(app);
  ::setenv("AZURE_SUBSCRIPTION_ID", "sub", 1);
  ::setenv("AZURE_INSTANCE_SIZES", "Standard_DC2as_v5, Standard_DC4es_v5", 1);
  const char* argv[] = {"azure",
                        "--region",
                        "westeurope",
                        "--resourcegroup",
                        "rg",
                        "--subnetid",
                        "/s",
                        "--imageid",
                        "/i",
                        "--tags",
                        "a=b,c=d",
                        "--ssh-key-path",
                        "/nonexistent/key.pub"};
  ASSERT_NO_THROW(app.parse(static_cast<int>(std::size(argv)), argv));
  ::unsetenv("AZURE_SUBSCRIPTION_ID");
  ::unsetenv("AZURE_INSTANCE_SIZES");
  auto provider = factory->Create();
  ASSERT_FALSE(provider.has_value());  // everything checks out up to the key file
  EXPECT_EQ(provider.error().code, Code::kFailedPrecondition);
  EXPECT_NE(provider.error().message.find("-ssh-key-path"), std::string::npos)
      << provider.error().message;
}

TEST(AzureConfigTest, MessagesNameTheFlagAndVariable) {
  AzureConfig c;
  auto missing = ValidateConfig(c);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message.find("AZURE_SUBSCRIPTION_ID"), std::string::npos);
  c.subscription_id = "s";
  c.region = "r";
  c.resource_group = "g";
  c.subnet_id = "/s";
  c.image_id = "/i";
  EXPECT_TRUE(ValidateConfig(c).has_value()) << "managed identity needs nothing more";
  EXPECT_EQ(SelectTokenKind(c), TokenKind::kManagedIdentity);
  c.client_secret = "x";
  auto no_client = ValidateConfig(c);
  ASSERT_FALSE(no_client.has_value());
  EXPECT_NE(no_client.error().message.find("AZURE_CLIENT_ID"), std::string::npos);
  c.client_id = "id";
  c.tenant_id = "t";
  EXPECT_EQ(SelectTokenKind(c), TokenKind::kClientSecret);
  c.management_endpoint = "http://management.azure.com";
  auto plain = ValidateConfig(c);
  ASSERT_FALSE(plain.has_value());
  EXPECT_NE(plain.error().message.find("AZURE_RESOURCE_MANAGER_ENDPOINT"), std::string::npos);
  EXPECT_FALSE(ParseTags("novalue").has_value());
  EXPECT_EQ(*ParseTags("a=1, b=2=3"),
            (std::map<std::string, std::string>{{"a", "1"}, {"b", "2=3"}}));
}

}  // namespace
}  // namespace pp::providers::azure::testing
