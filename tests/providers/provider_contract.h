// The provider contract (providers/provider.h) as a reusable GoogleTest suite: every Provider, the
// real ones and every stand-in, must pass it.
//
// To run it for a provider, define a ProviderContractParam and instantiate the suite in a test
// source linked together with provider_contract.cc (list both in the executable's sources, not in
// a static library: the linker would drop the unreferenced tests):
//
//   #include "tests/providers/provider_contract.h"
//   namespace pp::providers::testing {
//   ProviderContractParam MyParam() {
//     ProviderContractParam p;
//     p.name = "mine";
//     p.make_provider = [] { return MakeMyProvider(...); };           // a fresh provider per test
//     p.make_spec = [](const std::string& name, const Owner& owner) {  // a spec that boots
//       InstanceSpec s; s.name = name; s.owner = owner; ...; return s;
//     };
//     p.break_spec = [](InstanceSpec& s) { s.image = "no-such-image"; };  // makes the create fail
//     p.unknown_id = "...";           // well-formed, never an instance
//     p.leftovers = [](const std::string& name) { ... };  // optional: resources of `name` still
//     there p.create_timeout = std::chrono::minutes(5); return p;
//   }
//   INSTANTIATE_TEST_SUITE_P(Mine, ProviderContractTest, ::testing::Values(MyParam()),
//                            [](const auto& param_info) { return param_info.param.name; });
//   }
//
// The suite makes instances named "podvm-contract-<test>-<n>" with owners on nodes
// "contract-node-a" and "contract-node-b", and deletes what it made on every path.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "providers/provider.h"

namespace pp::providers::testing {

struct ProviderContractParam {
  std::string name;  // the instantiation's name (letters and digits)
  std::function<Result<std::unique_ptr<Provider>>()> make_provider;
  std::function<InstanceSpec(const std::string& name, const Owner& owner)> make_spec;
  std::function<void(InstanceSpec&)> break_spec;
  std::string unknown_id;
  // Names of provider resources made for instance `name` that still exist (empty: none); unset
  // when the provider has nothing beyond the instance.
  std::function<std::vector<std::string>(const std::string& name)> leftovers;
  std::chrono::seconds create_timeout{300};
};

// GoogleTest prints a parameter by its name.
inline void PrintTo(const ProviderContractParam& param, std::ostream* os) { *os << param.name; }

class ProviderContractTest : public ::testing::TestWithParam<ProviderContractParam> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A fresh instance name, cleaned up (DeleteLeftovers with both owners, and DeleteInstance of
  // whatever ListInstances still shows) after the test.
  std::string NewName();
  OpContext Budget(std::chrono::seconds s) const;

  std::unique_ptr<Provider> provider_;
  std::vector<std::string> names_;
  const Owner owner_a_{"contract-node-a", "contract-sandbox-a"};
  const Owner owner_b_{"contract-node-b", "contract-sandbox-b"};
};

}  // namespace pp::providers::testing
