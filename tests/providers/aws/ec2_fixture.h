// The EC2 fake (tests/providers/fakes/ec2_fake.py) for the aws provider's tests, and provider
// configurations pointing at it. Test-only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "providers/aws/factory.h"
#include "providers/provider.h"
#include "tests/providers/fakes/fake_process.h"

namespace pp::providers::aws::testing {

inline constexpr const char* kImage = "ami-0123456789abcdef0";
inline constexpr const char* kStuckImage = "ami-0stuck000000000000";    // never leaves pending
inline constexpr const char* kFailingImage = "ami-0fails000000000000";  // terminated at boot
inline constexpr const char* kAccessKey = "AKIDFAKEEXAMPLE";
inline constexpr const char* kSecretKey = "fake/secret/key+for/tests";

class Ec2Fake {
 public:
  explicit Ec2Fake(std::vector<std::string> args = {});

  pp::testing::FakeCloudProcess& process() { return fake_; }
  std::string url() const { return fake_.url(); }
  // A provider configuration for this fake: static keys, polls every 50 ms.
  AwsConfig Config() const;

  nlohmann::json Stats();
  // Live instances (pending, running, stopping, stopped), optionally only those named `name`.
  std::vector<nlohmann::json> Live(const std::string& name = "");
  // POST /_fake/faults (a JSON list of rules, see fakecloud.py).
  void Faults(const nlohmann::json& rules);

 private:
  pp::testing::FakeCloudProcess fake_;
};

// An EC2 error body as EC2 sends it.
std::string ErrorXml(const std::string& code, const std::string& message);

InstanceSpec Spec(const std::string& name, const Owner& owner);

OpContext Budget(std::chrono::milliseconds d, std::stop_token stop = {});

}  // namespace pp::providers::aws::testing
