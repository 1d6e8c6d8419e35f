// The aws provider's configuration: cloud-api-adaptor's flags and environment names
// (src/cloud-providers/aws/manager.go), the AWS SDKs' standard endpoint and CA-bundle variables,
// their validation, and the factory that declares them and makes the provider.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "providers/provider.h"

namespace pp::providers::aws {

struct AwsConfig {
  // Credentials given as flags (CAA: -aws-access-key-id etc., env AWS_ACCESS_KEY_ID ...); empty:
  // the SDKs' default chain (credentials.h).
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::string profile;  // -aws-profile (CAA) or AWS_PROFILE
  std::string region;   // -aws-region, AWS_REGION (AWS_DEFAULT_REGION as a fallback)
  std::string instance_type = "m6a.large";
  std::vector<std::string> instance_types;
  std::string image_id;
  std::string key_name;
  std::string subnet_id;
  std::vector<std::string> security_group_ids;
  bool use_public_ip = false;
  unsigned long long root_volume_gib = 30;  // 0: the image's size
  bool disable_cvm = false;
  bool use_launch_template = false;
  std::string launch_template_name = "kata";
  std::vector<std::pair<std::string, std::string>> tags;  // TAGS k=v,...
  // Endpoints (AWS SDKs and Tools Reference Guide, "Service-specific endpoints"): empty means
  // https://ec2.<region>.amazonaws.com/ and https://sts.<region>.amazonaws.com/.
  std::string ec2_endpoint;
  std::string sts_endpoint;
  std::string ca_bundle;             // AWS_CA_BUNDLE
  std::string imds_endpoint;         // AWS_EC2_METADATA_SERVICE_ENDPOINT
  std::string poll_interval = "2s";  // how often pending instances are polled (one batched call)
  bool batch_poll = true;            // false: one poll loop per instance (for comparison)
  std::size_t max_response_bytes = 16u << 20;  // not a flag: tests lower it
};

// The tag keys the provider puts on every instance (besides Name) to find its instances again.
inline constexpr const char* kNodeTag = "peerpods.node";
inline constexpr const char* kSandboxTag = "peerpods.sandbox";

// Fills a missing region, subnet, security groups and key pair from the instance metadata of the
// node the adaptor runs on (IMDSv2, within 3 s), as CAA does (src/cloud-providers/aws/imds.go);
// only when region, subnet or security groups are missing, and not when AWS_EC2_METADATA_DISABLED
// is true. What IMDS does not give stays empty.
void FillFromInstanceMetadata(AwsConfig& config);

// Checks the configuration; messages name the flag and variable to fix.
Result<void> ValidateConfig(const AwsConfig& config);

// Parses TAGS ("k1=v1,k2=v2"); INVALID_ARGUMENT for a pair without '=' or an empty key.
Result<std::vector<std::pair<std::string, std::string>>> ParseTags(std::string_view text);

std::unique_ptr<ProviderFactory> MakeAwsFactory();

}  // namespace pp::providers::aws
