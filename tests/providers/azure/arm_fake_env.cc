#include "tests/providers/azure/arm_fake_env.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace pp::providers::azure::testing {
namespace {

// A well-formed OpenSSH public key (the test never logs in): saves a key generation per provider.
constexpr char kSshKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGN0ZXN0LW9ubHkta2V5LWZvci10aGUtYXJtLWZha2Ux test\n";

std::vector<std::string> WithAssertion(std::vector<std::string> args, const std::string& file) {
  args.push_back("--assertion-file");
  args.push_back(file);
  return args;
}

}  // namespace

ArmFakeEnv::ArmFakeEnv(std::vector<std::string> args) {
  // The fake's directory is known only once it runs: the assertion file (which the fake reads on
  // every token request) lives in a directory of the test's own.
  std::string tmpl = ::testing::TempDir() + "/arm-assertion-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) assertion_dir_ = tmpl;
  fake_ = std::make_unique<pp::testing::FakeCloudProcess>(
      "arm_fake.py", WithAssertion(std::move(args), AssertionFile()));
  if (!fake_->running()) return;
  client_ = std::make_unique<http::Client>(http::ClientOptions{.ca_bundle = fake_->ca_bundle()});
  std::ofstream(fake_->dir() + "/id.pub") << kSshKey;
}

ArmFakeEnv::~ArmFakeEnv() {
  fake_.reset();
  if (assertion_dir_.empty()) return;
  std::filesystem::remove_all(assertion_dir_);
}

AzureConfig ArmFakeEnv::Config() const {
  AzureConfig c;
  c.client_id = "fake-client";
  c.client_secret = "fake-secret";
  c.tenant_id = "fake-tenant";
  c.subscription_id = kSubscription;
  c.region = "eastus";
  c.resource_group = kResourceGroup;
  c.subnet_id =
      std::string("/subscriptions/") + kSubscription +
      "/resourceGroups/net-rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/pods";
  c.image_id = kImage;
  c.ssh_key_path = fake_->dir() + "/id.pub";
  c.management_endpoint = fake_->url();
  c.management_audience = kAudience;
  c.authority_host = fake_->url();
  c.imds_endpoint = fake_->url();
  c.ca_bundle = fake_->ca_bundle();
  c.poll_interval = std::chrono::milliseconds(20);
  c.cleanup_timeout = std::chrono::seconds(60);
  c.retry.initial = std::chrono::milliseconds(10);
  c.retry.max_delay = std::chrono::milliseconds(200);
  return c;
}

void ArmFakeEnv::WriteAssertion(const std::string& jwt) const {
  const std::string tmp = AssertionFile() + ".tmp";
  std::ofstream(tmp) << jwt << "\n";
  std::rename(tmp.c_str(), AssertionFile().c_str());
}

nlohmann::json ArmFakeEnv::Stats() {
  auto text = fake_->Stats();
  EXPECT_TRUE(text.has_value()) << text.error().message;
  return text ? nlohmann::json::parse(*text) : nlohmann::json::object();
}

void ArmFakeEnv::Control(const nlohmann::json& body) {
  http::Request req{
      .method = "POST", .url = fake_->url() + "/_fake/arm", .headers = {}, .body = body.dump()};
  auto r =
      client_->Do(req, OpContext{std::chrono::steady_clock::now() + std::chrono::seconds(10), {}});
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->status, 204) << r->body;
}

void ArmFakeEnv::Faults(const nlohmann::json& rules) {
  auto ok = fake_->SetFaults(rules.dump());
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
}

int ArmFakeEnv::Calls(const std::string& action) {
  const auto calls = Stats()["calls"];
  return calls.contains(action) ? calls[action].get<int>() : 0;
}

std::vector<std::string> ArmFakeEnv::Resources(const std::string& prefix) {
  std::vector<std::string> out;
  const auto stats = Stats();
  for (const char* kind : {"vms", "nics", "disks", "public_ips"}) {
    for (const auto& name : stats[kind]) {
      if (name.get<std::string>().starts_with(prefix))
        out.push_back(std::string(kind) + ":" + name.get<std::string>());
    }
  }
  return out;
}

}  // namespace pp::providers::azure::testing
