// The provider contract suite (tests/providers/provider_contract.h) for the azure provider against
// arm_fake.py, once waiting for new VMs through the batched list poll and once through each
// operation's Azure-AsyncOperation URL.
#include <memory>

#include "providers/azure/azure_provider.h"
#include "tests/providers/azure/arm_fake_env.h"
#include "tests/providers/provider_contract.h"

namespace pp::providers::testing {
namespace {

using azure::testing::ArmFakeEnv;

// One fake for the whole suite (a fresh provider per test): the contract's names keep tests apart.
ArmFakeEnv* started = nullptr;
ArmFakeEnv& Fake() {
  if (!started) started = new ArmFakeEnv();
  return *started;
}

class StopFake : public ::testing::Environment {
 public:
  void TearDown() override {
    delete started;
    started = nullptr;
  }
};
const auto* const kStopFake = ::testing::AddGlobalTestEnvironment(new StopFake);

ProviderContractParam Param(const char* label, bool batch) {
  ProviderContractParam p;
  p.name = label;
  p.make_provider = [batch]() -> Result<std::unique_ptr<Provider>> {
    if (!Fake().running()) return Fail(Code::kUnavailable, "arm_fake.py did not start");
    azure::AzureConfig config = Fake().Config();
    config.batch_poll = batch;
    auto provider = azure::AzureProvider::Create(std::move(config));
    if (!provider) return std::unexpected(provider.error());
    return std::unique_ptr<Provider>(std::move(*provider));
  };
  p.make_spec = [](const std::string& name, const Owner& owner) {
    InstanceSpec s;
    s.name = name;
    s.owner = owner;
    s.pod_name = "contract";
    s.pod_namespace = "default";
    s.user_data = "#cloud-config\nwrite_files: []\n";
    return s;
  };
  p.break_spec = [](InstanceSpec& s) {
    s.image = std::string("/subscriptions/") + azure::testing::kSubscription +
              "/resourceGroups/images-rg/providers/Microsoft.Compute/images/no-such-image";
  };
  p.unknown_id = std::string("/subscriptions/") + azure::testing::kSubscription +
                 "/resourceGroups/" + azure::testing::kResourceGroup +
                 "/providers/Microsoft.Compute/virtualMachines/podvm-never-made";
  p.leftovers = [](const std::string& name) { return Fake().Resources(name); };
  p.create_timeout = std::chrono::seconds(60);
  return p;
}

INSTANTIATE_TEST_SUITE_P(Azure, ProviderContractTest,
                         ::testing::Values(Param("BatchPoll", true), Param("OperationPoll", false)),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pp::providers::testing
