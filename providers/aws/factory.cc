#include "providers/aws/factory.h"

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>

#include "common/base/go_flags.h"
#include "providers/aws/aws_provider.h"
#include "providers/aws/imds.h"
#include "providers/http/client.h"

namespace pp::providers::aws {
namespace {

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(std::move(item));
    start = end + 1;
  }
  return out;
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class AwsFactory final : public ProviderFactory {
 public:
  std::string_view Name() const override { return "aws"; }
  std::string_view Description() const override {
    return "pod VMs as EC2 instances (AMD SEV-SNP confidential VMs unless DISABLECVM)";
  }

  void AddFlags(CLI::App& app) override {
    AwsConfig& c = config_;
    // CAA's flags and environment names (src/cloud-providers/aws/manager.go).
    app.add_option("--aws-access-key-id", c.access_key_id,
                   "access key id (empty: the SDKs' credential chain)")
        ->envname("AWS_ACCESS_KEY_ID");
    app.add_option("--aws-secret-key", c.secret_access_key, "secret access key")
        ->envname("AWS_SECRET_ACCESS_KEY");
    app.add_option("--aws-session-token", c.session_token, "session token of temporary credentials")
        ->envname("AWS_SESSION_TOKEN");
    app.add_option("--aws-profile", c.profile, "profile in the shared credentials file")
        ->envname("AWS_PROFILE");
    app.add_option("--aws-region", c.region, "region")->envname("AWS_REGION");
    app.add_option("--instance-type", c.instance_type, "default pod VM instance type")
        ->envname("PODVM_INSTANCE_TYPE")
        ->capture_default_str();
    app.add_option("--instance-types", instance_types_, "allowed instance types, comma separated")
        ->envname("PODVM_INSTANCE_TYPES");
    app.add_option("--imageid", c.image_id, "pod VM AMI id")->envname("PODVM_AMI_ID");
    app.add_option("--keyname", c.key_name, "SSH key pair name for the pod VMs")
        ->envname("SSH_KP_NAME");
    app.add_option("--subnetid", c.subnet_id, "subnet of the pod VMs")->envname("AWS_SUBNET_ID");
    app.add_option("--securitygroupids", security_groups_, "security group ids, comma separated")
        ->envname("AWS_SG_IDS");
    app.add_flag("--use-public-ip", c.use_public_ip, "reach the pod VMs on a public address")
        ->envname("USE_PUBLIC_IP");
    app.add_option("--root-volume-size", c.root_volume_gib,
                   "root volume size in GiB (0: the image's)")
        ->envname("ROOT_VOLUME_SIZE")
        ->capture_default_str();
    app.add_flag("--disable-cvm", c.disable_cvm,
                 "plain VMs instead of AMD SEV-SNP confidential VMs")
        ->envname("DISABLECVM");
    app.add_flag("--use-lt", c.use_launch_template, "launch from an EC2 launch template")
        ->envname("USE_PODVM_LAUNCHTEMPLATE");
    app.add_option("--aws-lt-name", c.launch_template_name, "launch template name")
        ->envname("PODVM_LAUNCHTEMPLATE_NAME")
        ->capture_default_str();
    app.add_option("--tags", tags_, "extra instance tags, key=value pairs, comma separated")
        ->envname("TAGS");
    // Additions: the AWS SDKs' standard endpoint and CA-bundle settings.
    app.add_option("--ec2-endpoint", c.ec2_endpoint,
                   "EC2 endpoint URL (else AWS_ENDPOINT_URL, else the region's)")
        ->envname("AWS_ENDPOINT_URL_EC2");
    app.add_option("--sts-endpoint", c.sts_endpoint,
                   "STS endpoint URL (else AWS_ENDPOINT_URL, else the region's)")
        ->envname("AWS_ENDPOINT_URL_STS");
    app.add_option("--aws-ca-bundle", c.ca_bundle,
                   "PEM bundle of CAs trusted for the AWS endpoints")
        ->envname("AWS_CA_BUNDLE");
    app.add_option("--poll-interval", c.poll_interval,
                   "how often pending instances are polled (Go duration)")
        ->envname("AWS_POLL_INTERVAL")
        ->capture_default_str();
    app.add_option("--batch-poll", c.batch_poll,
                   "wait for new instances with one DescribeInstances for all of them")
        ->envname("AWS_BATCH_POLL")
        ->capture_default_str();
  }

  Result<std::unique_ptr<Provider>> Create() override {
    AwsConfig c = config_;
    c.instance_types = SplitList(instance_types_);
    c.security_group_ids = SplitList(security_groups_);
    auto tags = ParseTags(tags_);
    if (!tags) return std::unexpected(tags.error());
    c.tags = std::move(*tags);
    if (c.region.empty()) c.region = Env("AWS_DEFAULT_REGION");
    if (c.ec2_endpoint.empty()) c.ec2_endpoint = Env("AWS_ENDPOINT_URL");
    if (c.sts_endpoint.empty()) c.sts_endpoint = Env("AWS_ENDPOINT_URL");
    return MakeAwsProvider(std::move(c));
  }

 private:
  AwsConfig config_;
  std::string instance_types_, security_groups_, tags_;
};

bool IsHttpUrl(const std::string& url) {
  return url.starts_with("https://") || url.starts_with("http://");
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> ParseTags(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const std::string& pair : SplitList(std::string(text))) {
    const std::size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(Code::kInvalidArgument, "aws: -tags (TAGS): '", pair, "' is not key=value");
    }
    out.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
  }
  return out;
}

Result<void> ValidateConfig(const AwsConfig& c) {
  if (c.region.empty())
    return Fail(Code::kInvalidArgument, "aws: -aws-region (AWS_REGION) is empty");
  if (c.image_id.empty() && !c.use_launch_template) {
    return Fail(Code::kInvalidArgument, "aws: -imageid (PODVM_AMI_ID) is empty");
  }
  if (c.instance_type.empty())
    return Fail(Code::kInvalidArgument, "aws: -instance-type (PODVM_INSTANCE_TYPE) is empty");
  if (c.use_launch_template && c.launch_template_name.empty()) {
    return Fail(Code::kInvalidArgument, "aws: -aws-lt-name (PODVM_LAUNCHTEMPLATE_NAME) is empty");
  }
  if (c.root_volume_gib > 64 * 1024) {
    return Fail(Code::kInvalidArgument, "aws: -root-volume-size (ROOT_VOLUME_SIZE) is in GiB; ",
                std::to_string(c.root_volume_gib), " is too large");
  }
  for (const auto& [k, v] : c.tags) {
    // EC2 tag rules (EC2 User Guide, "Tag restrictions"): keys up to 128, values up to 256
    // characters, the aws: prefix reserved. Our own keys are not for TAGS to override.
    if (k == "Name" || k == kNodeTag || k == kSandboxTag) {
      return Fail(Code::kInvalidArgument, "aws: -tags (TAGS): key ", k,
                  " is set by the provider itself");
    }
    if (k.size() > 128 || v.size() > 256 || k.starts_with("aws:")) {
      return Fail(Code::kInvalidArgument, "aws: -tags (TAGS): key ", k.substr(0, 128),
                  " is reserved or too long (keys up to 128, values up to 256 characters)");
    }
  }
  if (c.tags.size() > 47)
    return Fail(Code::kInvalidArgument, "aws: -tags (TAGS): at most 47 tags (EC2 allows 50)");
  for (const auto& [name, url] :
       {std::pair{"-ec2-endpoint (AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL)", c.ec2_endpoint},
        std::pair{"-sts-endpoint (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL)", c.sts_endpoint}}) {
    if (!url.empty() && !IsHttpUrl(url)) {
      return Fail(Code::kInvalidArgument, "aws: ", name, " '", url, "' is not an http(s) URL");
    }
  }
  if (auto d = ParseGoDuration(c.poll_interval); !d || *d < std::chrono::milliseconds(10)) {
    return Fail(Code::kInvalidArgument, "aws: -poll-interval (AWS_POLL_INTERVAL) '",
                c.poll_interval, "' is not a Go duration of at least 10ms");
  }
  return {};
}

// CAA fills a missing region, subnet, security groups and key pair from the instance metadata of
// the node it runs on (src/cloud-providers/aws/imds.go); so do we, briefly, and only when one of
// the first three is missing.
void FillFromInstanceMetadata(AwsConfig& c) {
  if (!c.region.empty() && !c.subnet_id.empty() && !c.security_group_ids.empty()) return;
  const char* disabled = std::getenv("AWS_EC2_METADATA_DISABLED");
  if (disabled != nullptr && std::string_view(disabled) == "true") return;
  std::string endpoint = c.imds_endpoint;
  if (endpoint.empty()) {
    const char* env = std::getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    endpoint = env != nullptr && *env != '\0' ? env : std::string(kDefaultImdsEndpoint);
  }
  http::Client client(http::ClientOptions{.ca_bundle = c.ca_bundle,
                                          .connect_timeout = std::chrono::milliseconds(1000)});
  ImdsSession imds(endpoint, client);
  auto node = ReadNodeConfig(
      imds, OpContext{std::chrono::steady_clock::now() + std::chrono::seconds(3), {}});
  if (!node) {
    spdlog::info("aws: no region, subnet or security groups from instance metadata: {}",
                 node.error().message);
    return;
  }
  const auto fill = [](auto& field, const auto& value, std::string_view what) {
    if (field.empty() && !value.empty()) {
      field = value;
      spdlog::info("aws: {} from instance metadata", what);
    }
  };
  fill(c.region, node->region, "region");
  fill(c.subnet_id, node->subnet_id, "subnet");
  fill(c.security_group_ids, node->security_group_ids, "security groups");
  fill(c.key_name, node->key_name, "key pair");
}

std::unique_ptr<ProviderFactory> MakeAwsFactory() { return std::make_unique<AwsFactory>(); }

}  // namespace pp::providers::aws
