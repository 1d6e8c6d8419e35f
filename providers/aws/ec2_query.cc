#include "providers/aws/ec2_query.h"

#include "common/podvm/encoding.h"
#include "providers/aws/sigv4.h"

namespace pp::providers::aws {

std::string EncodeQueryBody(std::string_view action, std::string_view version,
                            const QueryParams& params) {
  std::string body = "Action=" + UriEncode(action) + "&Version=" + UriEncode(version);
  for (const auto& [name, value] : params) {
    body += '&';
    body += UriEncode(name);
    body += '=';
    body += UriEncode(value);
  }
  return body;
}

void AddList(QueryParams& params, std::string_view name, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    params.emplace_back(std::string(name) + '.' + std::to_string(i + 1), values[i]);
  }
}

void AddFilters(QueryParams& params, const std::vector<Ec2Filter>& filters) {
  for (std::size_t i = 0; i < filters.size(); ++i) {
    const std::string prefix = "Filter." + std::to_string(i + 1);
    params.emplace_back(prefix + ".Name", filters[i].name);
    AddList(params, prefix + ".Value", filters[i].values);
  }
}

QueryParams RunInstancesParams(const RunInstancesRequest& r) {
  // Member names per the EC2 model's RunInstancesRequest; see the table of wire names in the EC2
  // API Reference, RunInstances, "Request Parameters".
  QueryParams p;
  p.emplace_back("ImageId", r.image_id);
  p.emplace_back("InstanceType", r.instance_type);
  p.emplace_back("MinCount", "1");
  p.emplace_back("MaxCount", "1");
  p.emplace_back("ClientToken", r.client_token);
  if (!r.user_data.empty()) p.emplace_back("UserData", podvm::Base64Encode(r.user_data));
  if (!r.key_name.empty()) p.emplace_back("KeyName", r.key_name);
  if (r.public_ip) {
    // SubnetId/SecurityGroupId may not be combined with NetworkInterface (EC2 answers
    // InvalidParameterCombination): a public address needs them on the interface.
    p.emplace_back("NetworkInterface.1.DeviceIndex", "0");
    p.emplace_back("NetworkInterface.1.AssociatePublicIpAddress", "true");
    p.emplace_back("NetworkInterface.1.DeleteOnTermination", "true");
    if (!r.subnet_id.empty()) p.emplace_back("NetworkInterface.1.SubnetId", r.subnet_id);
    AddList(p, "NetworkInterface.1.SecurityGroupId", r.security_group_ids);
  } else {
    if (!r.subnet_id.empty()) p.emplace_back("SubnetId", r.subnet_id);
    AddList(p, "SecurityGroupId", r.security_group_ids);
  }
  if (r.sev_snp) p.emplace_back("CpuOptions.AmdSevSnp", "enabled");
  // IMDSv2 only inside the VM: session tokens required (EC2 User Guide, "Configure the instance
  // metadata options for new instances").
  p.emplace_back("MetadataOptions.HttpTokens", "required");
  p.emplace_back("MetadataOptions.HttpEndpoint", "enabled");
  if (!r.root_device_name.empty() && r.root_volume_gib > 0) {
    p.emplace_back("BlockDeviceMapping.1.DeviceName", r.root_device_name);
    p.emplace_back("BlockDeviceMapping.1.Ebs.VolumeSize", std::to_string(r.root_volume_gib));
    p.emplace_back("BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
  }
  if (!r.tags.empty()) {
    p.emplace_back("TagSpecification.1.ResourceType", "instance");
    for (std::size_t i = 0; i < r.tags.size(); ++i) {
      const std::string prefix = "TagSpecification.1.Tag." + std::to_string(i + 1);
      p.emplace_back(prefix + ".Key", r.tags[i].first);
      p.emplace_back(prefix + ".Value", r.tags[i].second);
    }
  }
  return p;
}

}  // namespace pp::providers::aws
