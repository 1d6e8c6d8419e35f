// The JSON documents of Azure Resource Manager the azure provider reads and writes: the pure core,
// no I/O, fuzzed (tests/fuzz/arm_json_fuzz.cc).
//
// Standard library and nlohmann-json only (no pp::base, no std::expected), so the fuzz target can
// build it with clang. Every parser takes untrusted bytes: it returns false (with a reason in
// `error` that never quotes the body, which may carry a token) on anything that is not the
// document it expects, and never throws.
//
// Wire formats (Microsoft Learn, "Azure REST API reference": Compute virtualMachines 2022-11-01,
// network interfaces 2023-05-01, "Track asynchronous Azure operations", "Microsoft identity
// platform and the OAuth 2.0 client credentials flow", "How to use managed identities for Azure
// resources on an Azure VM to acquire an access token").
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pp::providers::azure {

// {"error": {"code", "message", "details": [{"code", "message"}]}}. Some services nest the
// document one level deeper ({"error": {"error": {...}}}) or put code/message at the top: both
// read.
struct ArmError {
  std::string code;
  std::string message;
  std::vector<std::string> detail_codes;
};
bool ParseArmError(std::string_view body, ArmError& out, std::string& error);

// An Azure-AsyncOperation status document: {"status": "InProgress"|"Succeeded"|"Failed"|
// "Canceled"|..., "error": {...}?}. Status names compare case-insensitively (ARM guidance).
struct AsyncOperation {
  std::string status;
  std::optional<ArmError> error;
  bool Terminal() const;  // Succeeded, Failed or Canceled
  bool Succeeded() const;
};
bool ParseAsyncOperation(std::string_view body, AsyncOperation& out, std::string& error);

// What the provider needs of a virtual machine resource.
struct VmInfo {
  std::string id;
  std::string name;
  std::string provisioning_state;  // properties.provisioningState
  std::map<std::string, std::string> tags;
  std::vector<std::string> nic_ids;  // properties.networkProfile.networkInterfaces[].id
  std::string os_disk_name;          // properties.storageProfile.osDisk.name
  std::string vm_size;
};
bool ParseVm(std::string_view body, VmInfo& out, std::string& error);

// A page of GET .../virtualMachines: {"value": [VM...], "nextLink"?}.
struct VmPage {
  std::vector<VmInfo> vms;
  std::string next_link;
};
bool ParseVmPage(std::string_view body, VmPage& out, std::string& error);

// A network interface: private addresses of its IP configurations, public address resource ids.
struct NicInfo {
  std::vector<std::string> private_ips;
  std::vector<std::string> public_ip_ids;
};
bool ParseNic(std::string_view body, NicInfo& out, std::string& error);

// A public IP address resource: properties.ipAddress (absent until allocated).
bool ParsePublicIp(std::string_view body, std::string& address, std::string& error);

// A token endpoint's answer (Entra ID v2 token endpoint or IMDS): access_token plus a lifetime,
// from expires_in (a number, or a string as IMDS sends it) or, failing that, expires_on (epoch
// seconds; `now_epoch` turns it into a lifetime). A token without a usable lifetime is refused.
struct TokenReply {
  std::string access_token;
  std::int64_t expires_in_s = 0;
};
bool ParseTokenReply(std::string_view body, std::int64_t now_epoch, TokenReply& out,
                     std::string& error);

// Everything BuildVmBody needs to describe one pod VM.
struct VmBodyParams {
  std::string location;
  std::string zone;  // empty: regional
  std::string vm_size;
  std::string computer_name;
  std::string admin_username;
  std::string ssh_public_key;  // OpenSSH one-line public key
  std::string image;           // resource id, or a /CommunityGalleries/... id
  std::string os_disk_name;
  unsigned root_volume_gib = 0;  // 0: the image's size
  std::string nic_name;
  std::string subnet_id;
  std::string nsg_id;  // empty: none
  bool public_ip = false;
  bool confidential = true;  // false: DISABLECVM
  bool secure_boot = false;
  std::string user_data_b64;
  std::map<std::string, std::string> tags;
};

// The JSON body of PUT virtualMachines/{name} (api-version 2022-11-01): a confidential VM
// (securityType ConfidentialVM, vTPM, secure boot as asked, OS disk VMGuestStateOnly) unless
// `confidential` is false; the NIC declared inline (networkInterfaceConfigurations) and the OS
// disk (and public IP) with deleteOption Delete, so they die with the VM.
std::string BuildVmBody(const VmBodyParams& params);

// Case-insensitive ASCII comparison, as ARM compares names and states.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

}  // namespace pp::providers::azure
