// The provider contract suite for the gcp provider against gce_fake.py.
#include "providers/gcp/gcp_provider.h"
#include "tests/providers/gcp/gce_fixture.h"
#include "tests/providers/provider_contract.h"

namespace pp::providers::testing {
namespace {

ProviderContractParam GcpParam() {
  ProviderContractParam p;
  p.name = "gcp";
  p.make_provider = [] {
    gcp::testing::SharedFake().Reset();
    return gcp::MakeGcpProvider(gcp::testing::SharedFake().Config());
  };
  p.make_spec = [](const std::string& name, const Owner& owner) {
    InstanceSpec s;
    s.name = name;
    s.owner = owner;
    s.pod_name = "nginx";
    s.pod_namespace = "default";
    s.user_data = "#cloud-config\n";
    return s;
  };
  p.break_spec = [](InstanceSpec& s) { s.image = "no-such-image"; };
  p.unknown_id = "us-central1-a/podvm-never-made";
  p.leftovers = [](const std::string& name) {
    std::vector<std::string> left;
    for (const auto& i : gcp::testing::SharedFake().Instances(name)) {
      if (i["name"] == name) left.push_back(i["zone"].get<std::string>() + "/" + name);
    }
    return left;
  };
  p.create_timeout = std::chrono::seconds(60);
  return p;
}

INSTANTIATE_TEST_SUITE_P(Gcp, ProviderContractTest, ::testing::Values(GcpParam()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pp::providers::testing
