// The EC2 Query protocol's request side: parameters flattened and form-encoded as botocore's
// EC2Serializer does (botocore/serialize.py; names from the 2016-11-15 model's locationName /
// queryName, upper-cased first letter; lists flattened Name.1, Name.2, ... from 1; nested
// structures joined with '.'), and the builders of the requests the provider sends.
//
// Pure functions: no I/O. user_data is a secret: it only ever goes into the RunInstances body.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pp::providers::aws {

inline constexpr std::string_view kEc2Version = "2016-11-15";

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// "Action=<action>&Version=<version>&k=v&..." with every name and value percent-encoded as SigV4's
// UriEncode (RFC 3986 unreserved kept): application/x-www-form-urlencoded as AWS reads it.
std::string EncodeQueryBody(std::string_view action, std::string_view version,
                            const QueryParams& params);

// Appends Name.1=v1, Name.2=v2, ... (EC2 flattened lists are 1-based).
void AddList(QueryParams& params, std::string_view name, const std::vector<std::string>& values);

struct Ec2Filter {
  std::string name;  // e.g. "tag:peerpods.node", "instance-state-name"
  std::vector<std::string> values;
};
// Filter.N.Name, Filter.N.Value.M
void AddFilters(QueryParams& params, const std::vector<Ec2Filter>& filters);

struct RunInstancesRequest {
  std::string image_id;
  std::string instance_type;
  std::string user_data;  // raw; base64-encoded here (EC2 wants UserData in base64)
  std::string subnet_id;
  std::vector<std::string> security_group_ids;
  std::string key_name;
  bool public_ip = false;  // subnet and groups move into NetworkInterface.1 with a public address
  bool sev_snp = true;     // CpuOptions.AmdSevSnp=enabled
  std::string root_device_name;
  unsigned long long root_volume_gib = 0;  // 0: the image's size
  std::vector<std::pair<std::string, std::string>> tags;
  std::string client_token;
};

QueryParams RunInstancesParams(const RunInstancesRequest& request);

}  // namespace pp::providers::aws
