// The test provider stands in for real providers in the unit and interop tests: it must keep the
// same contract (tests/providers/provider_contract.h) that the libvirt provider keeps.
#include "tests/providers/provider_contract.h"
#include "tests/support/test_provider.h"

namespace pp::providers::testing {
namespace {

// The instance last made by the test provider under test, to report its leftovers.
pp::testing::TestProvider* current = nullptr;

ProviderContractParam TestProviderParam() {
  ProviderContractParam p;
  p.name = "TestProvider";
  p.make_provider = []() -> Result<std::unique_ptr<Provider>> {
    auto provider = std::make_unique<pp::testing::TestProvider>();
    current = provider.get();
    return std::unique_ptr<Provider>(std::move(provider));
  };
  p.make_spec = [](const std::string& name, const Owner& owner) {
    InstanceSpec s;
    s.name = name;
    s.owner = owner;
    s.pod_name = "contract";
    s.pod_namespace = "default";
    return s;
  };
  p.break_spec = [](InstanceSpec& s) { s.pod_name = "faillate-contract"; };  // fails after its volume and instance exist
  p.unknown_id = "test-999999";
  p.leftovers = [](const std::string&) {
    std::vector<std::string> left;
    if (current != nullptr && current->Volumes() > 0) left.push_back(std::to_string(current->Volumes()) + " volume(s)");
    return left;
  };
  p.create_timeout = std::chrono::seconds(10);
  return p;
}

INSTANTIATE_TEST_SUITE_P(TestProvider, ProviderContractTest, ::testing::Values(TestProviderParam()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pp::providers::testing
