// The aws factory: cloud-api-adaptor's flag and environment names reach the wire (checked in the
// EC2 fake), and a bad configuration is refused with a message naming what to fix.
#include "providers/aws/factory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>

#include "common/base/go_flags.h"
#include "tests/providers/aws/ec2_fixture.h"

namespace pp::providers::aws {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Sets environment variables for one test and restores them after.
class ScopedEnv {
 public:
  void Set(const std::string& name, const std::string& value) {
    const char* old = ::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

Result<std::unique_ptr<Provider>> FromCommandLine(std::vector<const char*> argv) {
  auto factory = MakeAwsFactory();
  CLI::App app;
  GoFlagDefaults(app);
  factory->AddFlags(app);
  argv.insert(argv.begin(), "aws");
  std::ostringstream out, err;
  const int rc =
      ParseGoCommandLine(app, static_cast<int>(argv.size()), argv.data(), nullptr, &out, &err);
  if (rc != -1) return Fail(Code::kInvalidArgument, "command line: ", err.str());
  return factory->Create();
}

TEST(AwsFactoryTest, CaaFlagsAndEnvironmentReachTheWire) {
  testing::Ec2Fake fake;
  ScopedEnv env;
  env.Set("AWS_ACCESS_KEY_ID", testing::kAccessKey);
  env.Set("AWS_SECRET_ACCESS_KEY", testing::kSecretKey);
  env.Set("AWS_REGION", "us-east-1");
  env.Set("PODVM_AMI_ID", testing::kImage);
  env.Set("AWS_ENDPOINT_URL", fake.url());  // the generic endpoint covers EC2 and STS
  env.Set("AWS_CA_BUNDLE", fake.process().ca_bundle());
  env.Set("AWS_SG_IDS", "sg-1,sg-2");
  env.Set("TAGS", "team=ai,env=dev");
  env.Set("DISABLECVM", "true");
  env.Set("AWS_POLL_INTERVAL", "50ms");
  auto provider = FromCommandLine(
      {"-subnetid", "subnet-9", "-root-volume-size", "50", "-instance-type", "m6a.xlarge"});
  ASSERT_TRUE(provider) << provider.error().message;
  auto created =
      (*provider)->CreateInstance(testing::Spec("podvm-flags", {"n", "s"}), testing::Budget(60s));
  ASSERT_TRUE(created) << created.error().message;
  const auto live = fake.Live("podvm-flags");
  ASSERT_EQ(live.size(), 1u);
  const auto& params = live[0]["params"];
  EXPECT_EQ(live[0]["type"], "m6a.xlarge");
  EXPECT_EQ(params["SubnetId"], "subnet-9");
  EXPECT_EQ(params["SecurityGroupId.1"], "sg-1");
  EXPECT_EQ(params["SecurityGroupId.2"], "sg-2");
  EXPECT_FALSE(params.contains("CpuOptions.AmdSevSnp"));
  EXPECT_EQ(params["BlockDeviceMapping.1.Ebs.VolumeSize"], "50");
  EXPECT_EQ(live[0]["tags"]["team"], "ai");
  EXPECT_EQ(live[0]["tags"]["env"], "dev");
  ASSERT_TRUE((*provider)->DeleteInstance(created->id, testing::Budget(30s)));
}

TEST(AwsFactoryTest, RefusesABadConfigurationNamingTheFlagAndVariable) {
  AwsConfig c;
  c.image_id = "ami-1";
  EXPECT_THAT(ValidateConfig(c).error().message, HasSubstr("-aws-region (AWS_REGION)"));
  c.region = "us-east-1";
  c.image_id.clear();
  EXPECT_THAT(ValidateConfig(c).error().message, HasSubstr("-imageid (PODVM_AMI_ID)"));
  c.image_id = "ami-1";
  c.ec2_endpoint = "ec2.example.com";
  EXPECT_THAT(ValidateConfig(c).error().message, HasSubstr("AWS_ENDPOINT_URL_EC2"));
  c.ec2_endpoint.clear();
  c.tags = {{"peerpods.node", "x"}};
  EXPECT_THAT(ValidateConfig(c).error().message, HasSubstr("set by the provider"));
  c.tags.clear();
  c.poll_interval = "fast";
  EXPECT_THAT(ValidateConfig(c).error().message, HasSubstr("AWS_POLL_INTERVAL"));
  EXPECT_THAT(ParseTags("a=b,broken").error().message, HasSubstr("TAGS"));
  auto tags = ParseTags("a=b, c=d=e");
  ASSERT_TRUE(tags);
  EXPECT_EQ(*tags, (std::vector<std::pair<std::string, std::string>>{{"a", "b"}, {"c", "d=e"}}));
}

}  // namespace
}  // namespace pp::providers::aws

namespace pp::providers::aws {
namespace {

TEST(AwsFactoryTest, IsRegisteredAsAwsInTheBuiltinProviders) {
  Registry registry;
  RegisterBuiltinProviders(registry);
  ProviderFactory* aws = registry.Find("aws");
  ASSERT_NE(aws, nullptr);
  EXPECT_EQ(aws->Name(), "aws");
}

}  // namespace
}  // namespace pp::providers::aws
