// The provider contract suite (tests/providers/provider_contract.h) for the libvirt provider,
// against a real libvirtd in a network namespace of its own with the test pod VM image as its base
// volume (deploy/local/libvirt-netns.sh --image podvm-test.qcow2 -- <this binary>): its instances
// are real VMs booting under TCG.
#include <gtest/gtest.h>

#include "providers/libvirt/libvirt_provider.h"
#include "providers/libvirt/volumes.h"
#include "tests/providers/libvirt/libvirtd_fixture.h"
#include "tests/providers/provider_contract.h"

namespace pp::providers::testing {
namespace {

using libvirt::testing::LibvirtdEnv;

ProviderContractParam LibvirtParam() {
  ProviderContractParam p;
  p.name = "Libvirt";
  p.make_provider = []() -> Result<std::unique_ptr<Provider>> {
    auto env = libvirt::testing::LibvirtdEnvFromEnvironment();
    if (!env) return Fail(Code::kFailedPrecondition, "run under deploy/local/libvirt-netns.sh");
    return libvirt::MakeLibvirtProvider(libvirt::testing::TestConfig(*env));
  };
  p.make_spec = [](const std::string& name, const Owner& owner) {
    InstanceSpec s;
    s.name = name;
    s.owner = owner;
    s.pod_name = "contract";
    s.pod_namespace = "default";
    s.user_data = "#cloud-config\n";
    return s;
  };
  // Fails after the volumes and the domain were made: QEMU refuses to start a machine with more
  // vCPUs than it supports, so the undo steps are what leaves nothing behind.
  p.break_spec = [](InstanceSpec& s) { s.vcpus = 4096; };
  p.unknown_id = "0b5e6f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b";
  p.leftovers = [](const std::string& name) {
    std::vector<std::string> left;
    auto env = libvirt::testing::LibvirtdEnvFromEnvironment();
    if (!env) return std::vector<std::string>{"(no libvirtd)"};
    auto probe = libvirt::testing::LibvirtdProbe::Open(*env);
    if (!probe) return std::vector<std::string>{probe.error().message};
    for (const auto& vol : {libvirt::RootVolumeName(name), libvirt::CidataVolumeName(name)}) {
      if (probe->VolumeExists(vol)) left.push_back("volume " + vol);
    }
    if (probe->DomainExists(name)) left.push_back("domain " + name);
    return left;
  };
  p.create_timeout = std::chrono::seconds(300);
  return p;
}

INSTANTIATE_TEST_SUITE_P(Libvirt, ProviderContractTest, ::testing::Values(LibvirtParam()),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pp::providers::testing
