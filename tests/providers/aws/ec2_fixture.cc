#include "tests/providers/aws/ec2_fixture.h"

#include <gtest/gtest.h>

namespace pp::providers::aws::testing {

Ec2Fake::Ec2Fake(std::vector<std::string> args) : fake_("ec2_fake.py", std::move(args)) {}

AwsConfig Ec2Fake::Config() const {
  AwsConfig c;
  c.access_key_id = kAccessKey;
  c.secret_access_key = kSecretKey;
  c.region = "us-east-1";
  c.image_id = kImage;
  c.subnet_id = "subnet-0123456789abcdef0";
  c.security_group_ids = {"sg-0123456789abcdef0"};
  c.ec2_endpoint = fake_.url();
  c.sts_endpoint = fake_.url();
  c.imds_endpoint = fake_.url();
  c.ca_bundle = fake_.ca_bundle();
  c.poll_interval = "50ms";
  return c;
}

nlohmann::json Ec2Fake::Stats() {
  auto s = fake_.Stats();
  EXPECT_TRUE(s.has_value()) << s.error().message;
  return s ? nlohmann::json::parse(*s) : nlohmann::json::object();
}

std::vector<nlohmann::json> Ec2Fake::Live(const std::string& name) {
  std::vector<nlohmann::json> out;
  for (const auto& i : Stats().value("instances", nlohmann::json::array())) {
    if (name.empty() || i.value("name", "") == name) out.push_back(i);
  }
  return out;
}

void Ec2Fake::Faults(const nlohmann::json& rules) {
  auto ok = fake_.SetFaults(rules.dump());
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
}

std::string ErrorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>" + code +
         "</Code><Message>" + message +
         "</Message></Error></Errors><RequestID>00000000-fake</RequestID></Response>";
}

InstanceSpec Spec(const std::string& name, const Owner& owner) {
  InstanceSpec s;
  s.name = name;
  s.owner = owner;
  s.pod_name = "pod";
  s.pod_namespace = "default";
  s.user_data = "#cloud-config\nwrite_files: []\n";
  return s;
}

OpContext Budget(std::chrono::milliseconds d, std::stop_token stop) {
  return OpContext{std::chrono::steady_clock::now() + d, std::move(stop)};
}

}  // namespace pp::providers::aws::testing
