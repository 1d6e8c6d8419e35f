// Readers of EC2 and STS XML responses (libxml2), pure functions of the bytes.
//
// EC2 answers in the Query protocol's XML (namespace http://ec2.amazonaws.com/doc/2016-11-15/,
// lowerCamel element names, lists as <xSet><item>...</item></xSet>); errors come in the envelope
// <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>. STS uses
// <ErrorResponse><Error><Code/><Message/></Error></ErrorResponse>. Element names follow botocore's
// EC2 model (service-2.json, locationName of each member). Namespaces are ignored: elements are
// matched by local name.
//
// Every reader returns nullopt for input it cannot use, with the reason in `error` ("malformed
// DescribeInstances response: ..."), never quoting the body (STS bodies hold secrets). No network
// access, no entity expansion, no DTD loading. Standard library and libxml2 only (no pp::Result),
// so that the clang fuzz build can take it: tests/fuzz/ec2_xml_fuzz.cc.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pp::providers::aws {

struct Ec2Error {
  std::string code;
  std::string message;
  std::string request_id;
};

// The first <Error> of an EC2 (<Response><Errors>) or STS (<ErrorResponse>) error body; nullopt
// when the body is not such an envelope.
std::optional<Ec2Error> ParseErrorXml(std::string_view xml);

struct Ec2Instance {
  std::string id;
  std::string state;  // pending, running, shutting-down, terminated, stopping, stopped
  std::string instance_type;
  std::string private_ip;
  std::string public_ip;
  std::string state_reason;  // stateReason/message, when EC2 says why (e.g. a failed launch)
  std::map<std::string, std::string> tags;
};

struct Ec2InstancePage {
  std::vector<Ec2Instance> instances;
  std::string next_token;
};

// RunInstancesResponse (instancesSet) and DescribeInstancesResponse (reservationSet/item/
// instancesSet), both read by this one function.
std::optional<Ec2InstancePage> ParseInstancesXml(std::string_view xml, std::string& error);

// TerminateInstancesResponse: the ids EC2 says it is terminating.
std::optional<std::vector<std::string>> ParseTerminateXml(std::string_view xml, std::string& error);

struct Ec2InstanceTypeInfo {
  std::string name;
  unsigned vcpus = 0;
  unsigned long long memory_mib = 0;
  unsigned gpus = 0;
  std::string gpu_model;  // the first GPU's name, e.g. "H100"
  bool sev_snp = false;   // processorInfo/supportedFeatures has amd-sev-snp
};

struct Ec2InstanceTypePage {
  std::vector<Ec2InstanceTypeInfo> types;
  std::string next_token;
};

std::optional<Ec2InstanceTypePage> ParseInstanceTypesXml(std::string_view xml, std::string& error);

struct Ec2Image {
  std::string id;
  std::string root_device_name;
  unsigned long long root_volume_gib = 0;  // 0: the image does not say
};

// DescribeImagesResponse: the images found (an unknown id gives an empty list or an error).
std::optional<std::vector<Ec2Image>> ParseImagesXml(std::string_view xml, std::string& error);

struct StsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;
  std::chrono::system_clock::time_point expiration;
};

// AssumeRoleWithWebIdentityResponse/AssumeRoleWithWebIdentityResult/Credentials.
std::optional<StsCredentials> ParseAssumeRoleWithWebIdentityXml(std::string_view xml,
                                                                std::string& error);

// ISO 8601 UTC times as AWS writes them: "2026-12-01T20:00:00Z", with optional fractional
// seconds and "+00:00".
std::optional<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text);

}  // namespace pp::providers::aws
