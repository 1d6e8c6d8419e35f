// The provider contract suite (tests/providers/provider_contract.h) for the aws provider against
// the EC2 fake, which checks every request's signature and parameters with botocore.
#include <memory>

#include "providers/aws/aws_provider.h"
#include "tests/providers/aws/ec2_fixture.h"
#include "tests/providers/provider_contract.h"

namespace pp::providers::testing {
namespace {

// One fake for the whole suite (each test makes its own provider); stopped at exit.
aws::testing::Ec2Fake& Fake() {
  static aws::testing::Ec2Fake fake;
  return fake;
}

ProviderContractParam AwsParam() {
  ProviderContractParam p;
  p.name = "aws";
  p.make_provider = [] { return aws::MakeAwsProvider(Fake().Config()); };
  p.make_spec = [](const std::string& name, const Owner& owner) {
    return aws::testing::Spec(name, owner);
  };
  // An image whose instances terminate while booting: the create fails after RunInstances, so
  // the undo path is what is tested.
  p.break_spec = [](InstanceSpec& s) { s.image = aws::testing::kFailingImage; };
  p.unknown_id = "i-0000000000000000f";
  p.leftovers = [](const std::string& name) {
    std::vector<std::string> ids;
    for (const auto& i : Fake().Live(name)) ids.push_back(i.value("id", ""));
    return ids;
  };
  p.create_timeout = std::chrono::seconds(60);
  return p;
}

INSTANTIATE_TEST_SUITE_P(Aws, ProviderContractTest, ::testing::Values(AwsParam()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pp::providers::testing
