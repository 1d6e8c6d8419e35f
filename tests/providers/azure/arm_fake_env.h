// Test-only: arm_fake.py (tests/providers/fakes) running for a test, and an azure provider
// configuration that points every endpoint (ARM, login authority, IMDS) at it.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "providers/azure/azure_provider.h"
#include "providers/http/client.h"
#include "tests/providers/fakes/fake_process.h"

namespace pp::providers::azure::testing {

inline constexpr char kSubscription[] = "00000000-0000-0000-0000-000000000001";
inline constexpr char kResourceGroup[] = "peerpods-rg";
inline constexpr char kImage[] =
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/images-rg/providers/"
    "Microsoft.Compute/galleries/g/images/podvm/versions/1.0.0";
inline constexpr char kAudience[] = "https://management.fake.test";

class ArmFakeEnv {
 public:
  explicit ArmFakeEnv(std::vector<std::string> args = {});
  ~ArmFakeEnv();

  bool running() const { return fake_->running(); }
  pp::testing::FakeCloudProcess& fake() { return *fake_; }

  // Client credentials against the fake, 20 ms polls, fast retries, an SSH key file.
  AzureConfig Config() const;
  // The federated token file tests rewrite (the fake accepts only its current content).
  std::string AssertionFile() const { return assertion_dir_ + "/federated-token"; }
  void WriteAssertion(const std::string& jwt) const;

  nlohmann::json Stats();
  // POST /_fake/arm; POST /_fake/faults.
  void Control(const nlohmann::json& body);
  void Faults(const nlohmann::json& rules);
  int Calls(const std::string& action);
  // VMs, NICs and disks the fake holds whose names start with `prefix`.
  std::vector<std::string> Resources(const std::string& prefix);

 private:
  std::string assertion_dir_;
  std::unique_ptr<pp::testing::FakeCloudProcess> fake_;
  std::unique_ptr<http::Client> client_;
};

}  // namespace pp::providers::azure::testing
